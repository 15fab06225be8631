"""The request litellm is given: which client fields pass, and what the target adds.

Pure and free of litellm (the adapter, :mod:`gateway.upstream.litellm_adapter`,
is the only module that imports it):

* The request body is filtered through an allowlist of OpenAI fields per
  endpoint (:data:`ALLOWED_FIELDS`). Anything else, notably every field in
  :data:`STEERING_FIELDS` that would let a client redirect the call (another
  ``api_base``, another key, litellm's own knobs), never reaches litellm. The
  target alone decides the model, key, base URL, headers and timeouts.
* litellm never retries (``num_retries=0``, ``max_retries=0``): retries and
  fallbacks belong to the router. OpenAI parameters the provider does not
  support are dropped by litellm (``drop_params=True``) instead of failing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from gateway.endpoints import Endpoint
from gateway.errors import InvalidRequest
from gateway.targets import Target
from gateway.upstream.provider import UpstreamCall

_SHARED_FIELDS: Final = frozenset({"user"})
_CHAT_FIELDS: Final = _SHARED_FIELDS | {
    "messages",
    "frequency_penalty",
    "presence_penalty",
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "max_tokens",
    "max_completion_tokens",
    "n",
    "response_format",
    "seed",
    "stop",
    "stream_options",
    "temperature",
    "top_p",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "functions",
    "function_call",
    "reasoning_effort",
    "modalities",
    "audio",
    "prediction",
    "web_search_options",
    # Anthropic's sampling knob: only Anthropic targets get it (upstream/dialect.py)
    "top_k",
}
_COMPLETION_FIELDS: Final = _SHARED_FIELDS | {
    "prompt",
    "best_of",
    "echo",
    "frequency_penalty",
    "presence_penalty",
    "logit_bias",
    "logprobs",
    "max_tokens",
    "n",
    "seed",
    "stop",
    "stream_options",
    "suffix",
    "temperature",
    "top_p",
}
_EMBEDDING_FIELDS: Final = _SHARED_FIELDS | {"input", "dimensions", "encoding_format"}

#: The OpenAI request fields passed on to litellm, per endpoint. ``model`` and
#: ``stream`` are not among them: the adapter sets those itself.
ALLOWED_FIELDS: Final[Mapping[Endpoint, frozenset[str]]] = {
    Endpoint.CHAT: _CHAT_FIELDS,
    Endpoint.COMPLETIONS: _COMPLETION_FIELDS,
    Endpoint.EMBEDDINGS: _EMBEDDING_FIELDS,
}

#: Fields litellm would obey if a client sent them, so that a client could
#: redirect the call, swap the key or change litellm's behaviour. None is ever
#: in :data:`ALLOWED_FIELDS` (a test holds that). ``metadata`` is here because
#: litellm reads it as its own logging/routing metadata, not OpenAI's.
STEERING_FIELDS: Final = frozenset(
    {
        "api_base",
        "base_url",
        "api_key",
        "api_version",
        "azure_ad_token",
        "aws_access_key_id",
        "aws_secret_access_key",
        "aws_region_name",
        "vertex_project",
        "vertex_location",
        "vertex_credentials",
        "custom_llm_provider",
        "headers",
        "extra_headers",
        "extra_body",
        "extra_query",
        "organization",
        "timeout",
        "request_timeout",
        "num_retries",
        "max_retries",
        "mock_response",
        "mock_tool_calls",
        "fallbacks",
        "context_window_fallback_dict",
        "metadata",
        "caching",
        "cache",
        "no-log",
        "input_cost_per_token",
        "output_cost_per_token",
        "input_cost_per_second",
        "output_cost_per_second",
        "model_list",
        "drop_params",
        "additional_drop_params",
        "allowed_openai_params",
        "proxy_server_request",
        "litellm_call_id",
        "litellm_logging_obj",
        "litellm_metadata",
        "litellm_params",
        "litellm_credential_name",
        "model",
        "stream",
    }
)


def model_name(target: Target) -> str:
    """litellm's ``provider/model`` string for ``target``."""
    prefix = target.litellm_provider
    if not prefix or target.model.startswith(f"{prefix}/"):
        return target.model
    return f"{prefix}/{target.model}"


def build_kwargs(call: UpstreamCall, *, stream: bool) -> dict[str, Any]:
    """The keyword arguments for litellm: the allowed body fields plus what the
    target decides. The result holds the API key: never log it."""
    allowed = ALLOWED_FIELDS[call.endpoint]
    kwargs = {key: value for key, value in call.body.items() if key in allowed}
    if "tools" in kwargs:
        _check_tools(kwargs["tools"])
        # litellm would otherwise inspect the tools for its own MCP gateway,
        # which calls MCP servers itself: the gateway never lets it.
        kwargs["_skip_mcp_handler"] = True
    if stream:
        kwargs["stream"] = True
    else:
        kwargs.pop("stream_options", None)
    target = call.target
    kwargs["model"] = model_name(target)
    kwargs["timeout"] = target.timeouts.first_byte
    kwargs["num_retries"] = 0
    kwargs["max_retries"] = 0
    kwargs["drop_params"] = True
    if target.api_key:
        kwargs["api_key"] = target.api_key
    if target.base_url:
        kwargs["api_base"] = target.base_url
    headers = dict(target.headers)
    if call.traceparent is not None:
        # the attempt's trace context, as the OpenAI-compatible path sends it
        headers["traceparent"] = call.traceparent
    headers.update(call.forwarded)
    if headers:
        kwargs["extra_headers"] = headers
    return kwargs


def _check_tools(tools: Any) -> None:
    """Chat Completions tools are functions; other kinds (``mcp``, hosted
    tools) would make litellm or the provider call out on the client's say."""
    if not isinstance(tools, list):
        raise InvalidRequest("tools must be an array", param="tools")
    for index, tool in enumerate(tools):
        if not isinstance(tool, dict) or tool.get("type") != "function":
            raise InvalidRequest(
                "only tools of type 'function' are supported", param=f"tools[{index}].type"
            )


def wants_usage(body: Mapping[str, Any]) -> bool:
    options = body.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True
