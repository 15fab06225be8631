"""OpenAI wire requests: lenient on the wire, strict where it matters.

The body is parsed once with orjson and validated on the fields the gateway
reads or that OpenAI would reject with a 400 (types, depth, counts:
:mod:`gateway.judging.shape`). Every other field is kept for the upstream
(tools, response_format, n, logprobs, seed, stop, metadata, …) — and, like
every field, judged and redacted by the one walk (:mod:`gateway.judging.walk`)
before anything is sent. Fields that would let a client steer *where* a
request goes or with which credentials are dropped here, before anything else
sees the body.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from gateway.endpoints import Endpoint
from gateway.errors import InvalidRequest, PayloadTooLarge
from gateway.judging.shape import RequestLimits, check_count, check_depth

#: Fields a client could use to point a provider elsewhere or inject
#: credentials or provider-specific behaviour. Never forwarded.
STEERING_FIELDS = frozenset(
    {
        "api_base",
        "base_url",
        "api_key",
        "api_version",
        "api_type",
        "organization",
        "custom_llm_provider",
        "extra_headers",
        "extra_body",
        "extra_query",
        "headers",
        "timeout",
        "request_timeout",
        "num_retries",
        "max_retries",
        "mock_response",
        "fallbacks",
        "context_window_fallback_dict",
        "input_cost_per_token",
        "output_cost_per_token",
        "caching",
        "cache",
        "proxy_server_request",
        "aws_access_key_id",
        "aws_secret_access_key",
        "aws_session_token",
        "aws_region_name",
        "vertex_project",
        "vertex_location",
        "vertex_credentials",
        "azure_ad_token",
    }
)
STEERING_PREFIXES = ("litellm_", "user_api_key")

CHAT_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})


@dataclass(frozen=True, slots=True)
class ParsedRequest:
    endpoint: Endpoint
    body: dict[str, Any]
    model: str
    stream: bool
    #: the client asked for a usage chunk at the end of its stream
    include_usage: bool


_DEFAULT_LIMITS = RequestLimits()


def parse_body(
    raw: bytes, endpoint: Endpoint, *, max_bytes: int, limits: RequestLimits = _DEFAULT_LIMITS
) -> ParsedRequest:
    """Parse and validate one request body; raises :class:`InvalidRequest`.

    Past this function, every field the gateway reads has the type it
    expects and the body is within ``limits`` (depth, counts), so no later
    step can fail on the client's input."""
    if len(raw) > max_bytes:
        raise PayloadTooLarge(
            f"Request body is {len(raw)} bytes; the limit is {max_bytes} bytes.",
        )
    if not raw.strip():
        raise InvalidRequest(
            "The request body is empty. Send a JSON object, e.g. "
            '{"model": "auto", "messages": [{"role": "user", "content": "Hi"}]}.'
        )
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(
            "We could not parse the JSON body of your request. (HINT: This likely means you "
            "aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, "
            f"but what was sent was not valid JSON: {exc})",
            code="invalid_json",
        ) from None
    if not isinstance(body, dict):
        raise InvalidRequest(
            f"The request body must be a JSON object, not {_json_type(body)}.",
            code="invalid_type",
        )
    check_depth(raw, body, limits.max_depth)
    return validate(body, endpoint, limits)


def validate(
    body: dict[str, Any], endpoint: Endpoint, limits: RequestLimits = _DEFAULT_LIMITS
) -> ParsedRequest:
    for key in [k for k in body if k in STEERING_FIELDS or k.startswith(STEERING_PREFIXES)]:
        del body[key]
    model = body.get("model")
    if model is None:
        raise InvalidRequest(
            "you must provide a model parameter", param="model", code="missing_required_parameter"
        )
    if not isinstance(model, str) or not model:
        raise InvalidRequest(
            f"Invalid type for 'model': expected a non-empty string, but got {_json_type(model)}.",
            param="model",
            code="invalid_type",
        )
    stream = body.get("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise _type_error("stream", "a boolean", stream)
    if endpoint is Endpoint.CHAT:
        _validate_messages(body.get("messages"), limits)
    elif endpoint is Endpoint.COMPLETIONS:
        _validate_prompt(body.get("prompt"), limits)
        _validate_optional(body, "suffix", str, "a string")
    else:
        _validate_input(body.get("input"), limits)
        if stream:
            raise InvalidRequest("Embeddings cannot be streamed.", param="stream")
    _validate_common(body, limits)
    include_usage = False
    options = body.get("stream_options")
    if options is not None:
        if not isinstance(options, dict):
            raise _type_error("stream_options", "an object", options)
        if not stream:
            raise InvalidRequest(
                "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                param="stream_options",
            )
        flag = options.get("include_usage", False)
        if not isinstance(flag, bool):
            raise _type_error("stream_options.include_usage", "a boolean", flag)
        include_usage = flag
    return ParsedRequest(endpoint, body, model, stream, include_usage)


def _validate_messages(messages: Any, limits: RequestLimits) -> None:
    if messages is None:
        raise InvalidRequest(
            "Missing required parameter: 'messages'.",
            param="messages",
            code="missing_required_parameter",
        )
    if not isinstance(messages, list):
        raise _type_error("messages", "an array", messages)
    if not messages:
        raise InvalidRequest(
            "Invalid 'messages': empty array. Expected an array with minimum length 1, "
            "but got an empty array instead.",
            param="messages",
            code="empty_array",
        )
    check_count("messages", messages, limits.max_messages, "GATEWAY_MAX_MESSAGES")
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise _type_error(where, "an object", message)
        role = message.get("role")
        if role is None:
            raise InvalidRequest(
                f"Missing required parameter: '{where}.role'.",
                param=f"{where}.role",
                code="missing_required_parameter",
            )
        if not isinstance(role, str):
            raise _type_error(f"{where}.role", "a string", role)
        if role not in CHAT_ROLES:
            roles = ", ".join(sorted(CHAT_ROLES))
            raise InvalidRequest(
                f"Invalid value: {role!r}. Supported values for '{where}.role' are: {roles}.",
                param=f"{where}.role",
                code="invalid_value",
            )
        content = message.get("content")
        if not (content is None or isinstance(content, str)):
            _validate_parts(where, content, limits)
        if len(message) > (2 if "content" in message else 1):  # more than role and content
            _validate_message_fields(where, message)


def _validate_parts(where: str, content: Any, limits: RequestLimits) -> None:
    if not isinstance(content, list):
        raise _type_error(f"{where}.content", "a string or an array of content parts", content)
    check_count(f"{where}.content", content, limits.max_parts, "GATEWAY_MAX_CONTENT_PARTS")
    for j, part in enumerate(content):
        if not isinstance(part, dict) or not isinstance(part.get("type"), str):
            raise InvalidRequest(
                f"Invalid '{where}.content[{j}]': expected an object with a 'type' field.",
                param=f"{where}.content[{j}]",
                code="invalid_type",
            )
        if part["type"] == "text" and not isinstance(part.get("text"), str):
            raise _type_error(f"{where}.content[{j}].text", "a string", part.get("text"))


def _validate_message_fields(where: str, message: dict[str, Any]) -> None:
    """The other message fields the gateway reads (names, tool calls)."""
    for name in ("name", "tool_call_id", "refusal"):
        value = message.get(name)
        if value is not None and not isinstance(value, str):
            raise _type_error(f"{where}.{name}", "a string", value)
    calls = message.get("tool_calls")
    if calls is not None:
        if not isinstance(calls, list):
            raise _type_error(f"{where}.tool_calls", "an array", calls)
        for k, call in enumerate(calls):
            if not isinstance(call, dict):
                raise _type_error(f"{where}.tool_calls[{k}]", "an object", call)
            _validate_function(f"{where}.tool_calls[{k}].function", call.get("function"))
    if "function_call" in message:
        _validate_function(f"{where}.function_call", message["function_call"])


def _validate_function(where: str, function: Any) -> None:
    if function is None:
        return
    if not isinstance(function, dict):
        raise _type_error(where, "an object", function)
    for name in ("name", "arguments"):
        value = function.get(name)
        if value is not None and not isinstance(value, str):
            raise _type_error(f"{where}.{name}", "a string", value)


def _validate_prompt(prompt: Any, limits: RequestLimits) -> None:
    if prompt is None:
        raise InvalidRequest(
            "Missing required parameter: 'prompt'.",
            param="prompt",
            code="missing_required_parameter",
        )
    if isinstance(prompt, str):
        return
    if isinstance(prompt, list) and prompt and _prompt_items(prompt, limits, "prompt"):
        return
    raise _type_error("prompt", "a string, an array of strings or an array of tokens", prompt)


def _validate_input(value: Any, limits: RequestLimits) -> None:
    if value is None:
        raise InvalidRequest(
            "Missing required parameter: 'input'.",
            param="input",
            code="missing_required_parameter",
        )
    if isinstance(value, str):
        if not value:
            raise InvalidRequest("'input' cannot be an empty string.", param="input")
        return
    if isinstance(value, list) and value and _prompt_items(value, limits, "input"):
        if any(isinstance(item, str) and not item for item in value):
            raise InvalidRequest("'input' cannot contain empty strings.", param="input")
        return
    raise _type_error(
        "input", "a non-empty string, an array of strings or an array of tokens", value
    )


def _prompt_items(items: list[Any], limits: RequestLimits, param: str) -> bool:
    """A list of strings, of token ids, or of token-id lists (OpenAI's shapes)."""
    check_count(param, items, limits.max_inputs, "GATEWAY_MAX_INPUTS")
    for item in items:
        if isinstance(item, list):
            if not _all_of(item, (int,)):
                return False
        elif not isinstance(item, str | int) or isinstance(item, bool):
            return False
    return True


_NUMERIC = {
    "temperature": (0.0, 2.0),
    "top_p": (0.0, 1.0),
    "presence_penalty": (-2.0, 2.0),
    "frequency_penalty": (-2.0, 2.0),
}
_POSITIVE_INTS = ("n", "max_tokens", "max_completion_tokens")


def _validate_common(body: dict[str, Any], limits: RequestLimits) -> None:
    for name, (low, high) in _NUMERIC.items():
        value = body.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _type_error(name, "a number", value)
        if not low <= value <= high:
            raise InvalidRequest(
                f"Invalid '{name}': {value} is out of range; expected a value between "
                f"{low:g} and {high:g}.",
                param=name,
                code="invalid_value",
            )
    for name in _POSITIVE_INTS:
        value = body.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            raise _type_error(name, "an integer", value)
        if value < 1:
            raise InvalidRequest(
                f"Invalid '{name}': {value} is less than the minimum of 1.",
                param=name,
                code="invalid_value",
            )
    seed = body.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise _type_error("seed", "an integer", seed)
    for name in ("tools", "functions"):
        value = body.get(name)
        if value is None:
            continue
        if not isinstance(value, list):
            raise _type_error(name, "an array", value)
        check_count(name, value, limits.max_tools, "GATEWAY_MAX_TOOLS")
        for i, tool in enumerate(value):
            if not isinstance(tool, dict):
                raise _type_error(f"{name}[{i}]", "an object", tool)
    metadata = body.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise _type_error("metadata", "an object", metadata)
    _validate_optional(body, "user", str, "a string")
    _validate_optional(body, "response_format", dict, "an object")
    _validate_optional(body, "prediction", dict, "an object")
    choice = body.get("tool_choice")
    if choice is not None and not isinstance(choice, str | dict):
        raise _type_error("tool_choice", "a string or an object", choice)
    stop = body.get("stop")
    if not (
        stop is None or isinstance(stop, str) or (isinstance(stop, list) and _all_of(stop, (str,)))
    ):
        raise _type_error("stop", "a string or an array of strings", stop)


def _validate_optional(body: dict[str, Any], name: str, kind: type, expected: str) -> None:
    value = body.get(name)
    if value is not None and not isinstance(value, kind):
        raise _type_error(name, expected, value)


def _all_of(items: list[Any], types: tuple[type, ...]) -> bool:
    return all(isinstance(item, types) and not isinstance(item, bool) for item in items)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _type_error(param: str, expected: str, value: Any) -> InvalidRequest:
    return InvalidRequest(
        f"Invalid type for '{param}': expected {expected}, but got {_json_type(value)} instead.",
        param=param,
        code="invalid_type",
    )
