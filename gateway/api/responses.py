"""OpenAI's Responses API (``POST /v1/responses``) spoken over the chat pipeline.

A Responses request is translated into an OpenAI chat body (:func:`to_chat`),
which the pipeline judges, decides on and routes like any chat request under the
same policies; the chat answer becomes a Response object (:mod:`gateway.api.responses_answer`)
or, streamed, the Responses event stream. What the
translation drops (reasoning items, ``metadata``, ``reasoning``) is never sent
to a target, so what is sent is still what was judged.

Translation of ``input`` (a string, or items):

* messages (``role`` user, assistant, system, developer; content a string or
  ``input_text`` / ``output_text`` / ``input_image`` / ``input_file`` parts);
* ``function_call`` items become the assistant's ``tool_calls`` (consecutive
  calls in one assistant message); ``function_call_output`` items become ``tool``
  messages; ``reasoning`` items are dropped;
* ``instructions`` becomes the first, system message (it is not carried over to
  a follow-up, as OpenAI does);
* function ``tools`` become chat function tools; built-in tools (web search,
  file search, code interpreter, …) get a clear 400: no target behind the
  translation runs them; ``tool_choice``, ``parallel_tool_calls``;
* ``text.format`` ``json_schema`` / ``json_object`` becomes ``response_format``;
  ``max_output_tokens`` becomes ``max_tokens``.

A follow-up (``previous_response_id``) is expanded by the gateway from its own
store (:mod:`gateway.api.responses_store`): the stored conversation's messages
come first, and the conversation is judged as a whole, at least at the highest
level any earlier turn had.
"""

from __future__ import annotations

import random
from typing import Any

from gateway.errors import InvalidRequest

_ROLES = frozenset({"user", "assistant", "system", "developer"})
_BUILTIN_TOOLS = frozenset(
    {
        "web_search",
        "web_search_preview",
        "file_search",
        "code_interpreter",
        "computer_use_preview",
        "computer_use",
        "image_generation",
        "mcp",
        "local_shell",
        "shell",
        "apply_patch",
    }
)


def new_id(prefix: str) -> str:
    return f"{prefix}_{random.getrandbits(128):032x}"


# --- request ---------------------------------------------------------------------


class Translated:
    """A Responses request as the pipeline will see it, and what the Response
    object echoes back."""

    __slots__ = ("chat", "echo", "input_items", "previous_id", "store", "stream")

    def __init__(
        self,
        chat: dict[str, Any],
        echo: dict[str, Any],
        input_items: list[dict[str, Any]],
        previous_id: str | None,
        store: bool,
        stream: bool,
    ) -> None:
        self.chat, self.echo, self.input_items = chat, echo, input_items
        self.previous_id, self.store, self.stream = previous_id, store, stream


def parse(body: Any) -> Translated:
    """Validate a Responses body and translate what it says (without history);
    raises :class:`InvalidRequest` naming the parameter."""
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest(
            "Missing required parameter: 'model'.", param="model", code="missing_required_parameter"
        )
    raw_input = body.get("input")
    if raw_input is None:
        raise InvalidRequest(
            "Missing required parameter: 'input'.", param="input", code="missing_required_parameter"
        )
    items = input_items(raw_input)
    messages: list[dict[str, Any]] = []
    instructions = body.get("instructions")
    if instructions is not None:
        if not isinstance(instructions, str):
            raise _type("instructions", "a string")
        messages.append({"role": "system", "content": instructions})
    messages.extend(items_to_messages(items))
    chat: dict[str, Any] = {"model": model, "messages": messages}
    stream = _flag(body, "stream", False)
    if stream:
        chat["stream"] = True
        chat["stream_options"] = {"include_usage": True}
    store = _flag(body, "store", True)
    for name in ("temperature", "top_p"):
        value = body.get(name)
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise _type(name, "a number")
            chat[name] = value
    limit = body.get("max_output_tokens")
    if limit is not None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise _type("max_output_tokens", "an integer >= 1")
        chat["max_tokens"] = limit
    tools = body.get("tools")
    if tools is not None:
        chat["tools"] = _tools(tools)
    choice = body.get("tool_choice")
    if choice is not None:
        chat["tool_choice"] = _tool_choice(choice)
    parallel = body.get("parallel_tool_calls")
    if parallel is not None:
        if not isinstance(parallel, bool):
            raise _type("parallel_tool_calls", "a boolean")
        chat["parallel_tool_calls"] = parallel
    text = body.get("text")
    if text is not None:
        fmt = _text_format(text)
        if fmt is not None:
            chat["response_format"] = fmt
    user = body.get("user") or body.get("safety_identifier")
    if isinstance(user, str):
        chat["user"] = user
    metadata = body.get("metadata")
    if metadata is not None and (
        not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values())
    ):
        raise _type("metadata", "an object of strings")
    previous = body.get("previous_response_id")
    if previous is not None and (not isinstance(previous, str) or not previous):
        raise _type("previous_response_id", "a string")
    echo = {
        "model": model,
        "instructions": instructions,
        "metadata": metadata or {},
        "temperature": body.get("temperature"),
        "top_p": body.get("top_p"),
        "max_output_tokens": limit,
        "tools": tools or [],
        "tool_choice": choice if choice is not None else "auto",
        "parallel_tool_calls": parallel if parallel is not None else True,
        "text": text if isinstance(text, dict) else {"format": {"type": "text"}},
        "previous_response_id": previous,
        "store": store,
    }
    return Translated(chat, echo, items, previous, store, stream)


def _flag(body: dict[str, Any], name: str, default: bool) -> bool:
    value = body.get(name, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise _type(name, "a boolean")
    return value


def _type(param: str, expected: str) -> InvalidRequest:
    return InvalidRequest(
        f"Invalid type for '{param}': expected {expected}.", param=param, code="invalid_type"
    )


def input_items(value: Any) -> list[dict[str, Any]]:
    """``input`` as a list of items (a string is one user message)."""
    if isinstance(value, str):
        return [{"type": "message", "role": "user", "content": value}]
    if not isinstance(value, list):
        raise _type("input", "a string or an array of input items")
    items = []
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            raise _type(f"input[{i}]", "an object")
        kind = item.get("type", "message" if "role" in item else None)
        if kind not in ("message", "function_call", "function_call_output", "reasoning"):
            raise InvalidRequest(
                f"Invalid value for 'input[{i}].type': {kind!r} is not supported; use message, "
                "function_call, function_call_output or reasoning.",
                param=f"input[{i}].type",
                code="invalid_value",
            )
        items.append({**item, "type": kind})
    return items


def items_to_messages(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Chat messages of input (or stored output) items."""
    messages: list[dict[str, Any]] = []
    for i, item in enumerate(items):
        kind = item["type"]
        where = f"input[{i}]"
        if kind == "reasoning":
            continue
        if kind == "function_call":
            call_id, name = item.get("call_id"), item.get("name")
            arguments = item.get("arguments", "")
            if not isinstance(call_id, str) or not isinstance(name, str):
                raise InvalidRequest(f"'{where}' needs a call_id and a name.", param=where)
            if not isinstance(arguments, str):
                raise _type(f"{where}.arguments", "a string")
            call = {
                "id": call_id,
                "type": "function",
                "function": {"name": name, "arguments": arguments},
            }
            last = messages[-1] if messages else None
            if last is not None and last["role"] == "assistant" and "tool_calls" in last:
                last["tool_calls"].append(call)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
            continue
        if kind == "function_call_output":
            call_id, output = item.get("call_id"), item.get("output")
            if not isinstance(call_id, str):
                raise InvalidRequest(f"'{where}.call_id' is required.", param=where)
            if isinstance(output, list):
                output = "\n".join(str(p.get("text", "")) for p in output if isinstance(p, dict))
            if not isinstance(output, str):
                raise _type(f"{where}.output", "a string")
            messages.append({"role": "tool", "tool_call_id": call_id, "content": output})
            continue
        role = item.get("role")
        if not isinstance(role, str) or role not in _ROLES:
            raise InvalidRequest(
                f"Invalid value for '{where}.role': use user, assistant, system or developer.",
                param=f"{where}.role",
                code="invalid_value",
            )
        messages.append({"role": role, "content": _content(item.get("content"), role, where)})
    return messages


def _content(content: Any, role: str, where: str) -> Any:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise _type(f"{where}.content", "a string or an array of content parts")
    parts: list[dict[str, Any]] = []
    for j, part in enumerate(content):
        at = f"{where}.content[{j}]"
        if not isinstance(part, dict):
            raise _type(at, "an object")
        kind = part.get("type")
        if kind in ("input_text", "output_text", "text"):
            text = part.get("text")
            if not isinstance(text, str):
                raise _type(f"{at}.text", "a string")
            parts.append({"type": "text", "text": text})
        elif kind == "refusal":
            parts.append({"type": "text", "text": str(part.get("refusal", ""))})
        elif kind == "input_image":
            url = part.get("image_url")
            if not isinstance(url, str):
                raise InvalidRequest(
                    f"'{at}' needs an image_url (file ids are not supported by the gateway).",
                    param=at,
                )
            image: dict[str, Any] = {"url": url}
            if isinstance(part.get("detail"), str):
                image["detail"] = part["detail"]
            parts.append({"type": "image_url", "image_url": image})
        elif kind == "input_file":
            data = part.get("file_data")
            if not isinstance(data, str):
                raise InvalidRequest(
                    f"'{at}' needs file_data (file ids and URLs are not supported by the gateway).",
                    param=at,
                )
            file: dict[str, Any] = {"file_data": data}
            if isinstance(part.get("filename"), str):
                file["filename"] = part["filename"]
            parts.append({"type": "file", "file": file})
        else:
            raise InvalidRequest(
                f"Invalid value for '{at}.type': {kind!r} is not supported.",
                param=f"{at}.type",
                code="invalid_value",
            )
    if role == "assistant":  # chat takes an assistant's text as a string
        return "".join(p["text"] for p in parts if p["type"] == "text")
    return parts


def _tools(tools: Any) -> list[dict[str, Any]]:
    if not isinstance(tools, list):
        raise _type("tools", "an array")
    out = []
    for i, tool in enumerate(tools):
        where = f"tools[{i}]"
        if not isinstance(tool, dict):
            raise _type(where, "an object")
        kind = tool.get("type")
        if kind != "function":
            if kind in _BUILTIN_TOOLS:
                raise InvalidRequest(
                    f"The built-in tool '{kind}' is not supported by this gateway's targets; "
                    "declare a function tool instead.",
                    param=f"{where}.type",
                    code="unsupported_tool",
                )
            raise InvalidRequest(
                f"Invalid value for '{where}.type': {kind!r}.", param=f"{where}.type"
            )
        name = tool.get("name")
        if not isinstance(name, str) or not name:
            raise InvalidRequest(f"'{where}.name' is required.", param=f"{where}.name")
        function: dict[str, Any] = {"name": name}
        for key in ("description", "parameters", "strict"):
            if tool.get(key) is not None:
                function[key] = tool[key]
        out.append({"type": "function", "function": function})
    return out


def _tool_choice(choice: Any) -> Any:
    if choice in ("auto", "none", "required"):
        return choice
    if isinstance(choice, dict) and choice.get("type") == "function":
        name = choice.get("name")
        if isinstance(name, str):
            return {"type": "function", "function": {"name": name}}
    raise InvalidRequest(
        "Invalid value for 'tool_choice': use auto, none, required or a function.",
        param="tool_choice",
    )


def _text_format(text: Any) -> dict[str, Any] | None:
    if not isinstance(text, dict):
        raise _type("text", "an object")
    fmt = text.get("format")
    if fmt is None:
        return None
    if not isinstance(fmt, dict):
        raise _type("text.format", "an object")
    kind = fmt.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "json_object"}
    if kind == "json_schema":
        schema = {k: fmt[k] for k in ("name", "schema", "strict", "description") if k in fmt}
        if not isinstance(schema.get("name"), str) or not isinstance(schema.get("schema"), dict):
            raise InvalidRequest(
                "'text.format' json_schema needs a name and a schema.", param="text.format"
            )
        return {"type": "json_schema", "json_schema": schema}
    raise InvalidRequest(f"Invalid value for 'text.format.type': {kind!r}.", param="text.format")
