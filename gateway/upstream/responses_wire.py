"""A Responses request sent natively: the body a Responses-speaking target gets.

The gateway judges (and, when a rule says so, redacts) a Responses request as
the chat body it translates to (:mod:`gateway.api.responses`). A target that
speaks Responses itself (``responses: native``) gets a Responses body rebuilt
from that judged chat body by :meth:`NativeResponses.body`, never the client's
own bytes: every text that leaves was read and judged, redaction placeholders
included, and what the translation does not carry (unknown fields, reasoning
items, ``metadata``) is not sent. Rebuilt from chat:

* the instructions (the chat body's first, system message when the request
  had ``instructions``) become ``instructions``;
* messages become input messages (``input_text`` / ``input_image`` /
  ``input_file`` parts), an assistant's ``tool_calls`` ``function_call``
  items, ``tool`` messages ``function_call_output`` items;
* function tools, ``tool_choice``, ``parallel_tool_calls``, ``temperature``,
  ``top_p``, ``max_tokens`` (as ``max_output_tokens``), ``response_format``
  (as ``text.format``), ``user``, ``stream`` and ``store``.

A follow-up whose earlier turn this very target served natively, and stored on
its side, is sent with the provider's own response id as
``previous_response_id`` and only this turn's input; any other target gets
the whole conversation the gateway expanded from its store.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.errors import UpstreamStatusError
from gateway.targets import Target


class NativeResponses:
    """One Responses request's native plan, shared by the router (which body
    a target gets), the relay (the ids it rewrites in the event stream) and the
    edge (what it stores once the answer is complete)."""

    __slots__ = (
        "final",
        "history",
        "instructions",
        "previous_id",
        "provider_id",
        "provider_previous",
        "provider_target",
        "response_id",
        "store",
    )

    def __init__(
        self,
        *,
        response_id: str,
        previous_id: str | None = None,
        store: bool = True,
        instructions: bool = False,
        history: int = 0,
        provider_target: str | None = None,
        provider_previous: str | None = None,
    ) -> None:
        #: the gateway's id for this response (the client never sees the provider's)
        self.response_id = response_id
        #: the gateway id the client sent as ``previous_response_id``
        self.previous_id = previous_id
        self.store = store
        #: the chat body starts with the request's instructions as a system message
        self.instructions = instructions
        #: how many chat messages (after the instructions) are expanded history
        self.history = history
        #: the target that served the previous turn natively, and its id there
        self.provider_target = provider_target
        self.provider_previous = provider_previous
        #: set from the native answer: the provider's id of this response
        self.provider_id: str | None = None
        #: set by the stream relay: the final Response object (restored, ids rewritten)
        self.final: dict[str, Any] | None = None

    def speaks(self, target: Target) -> bool:
        return target.responses_native

    def body(self, target: Target, chat: Mapping[str, Any]) -> dict[str, Any]:
        """The Responses body for ``target``, built from the judged chat body
        (whose ``model`` is already the target's)."""
        messages = list(chat.get("messages") or [])
        out: dict[str, Any] = {"model": chat["model"]}
        if self.instructions and messages:
            first = messages.pop(0)
            out["instructions"] = _text_of(first.get("content"))
        if (
            self.provider_previous is not None
            and target.name == self.provider_target
            and target.responses_native
        ):
            # the provider keeps the earlier turns: only this turn's input
            messages = messages[self.history :]
            out["previous_response_id"] = self.provider_previous
        out["input"] = input_items(messages)
        for name in ("temperature", "top_p", "parallel_tool_calls", "user"):
            if chat.get(name) is not None:
                out[name] = chat[name]
        if chat.get("max_tokens") is not None:
            out["max_output_tokens"] = chat["max_tokens"]
        if chat.get("tools") is not None:
            out["tools"] = [_tool(tool) for tool in chat["tools"]]
        if chat.get("tool_choice") is not None:
            out["tool_choice"] = _tool_choice(chat["tool_choice"])
        if isinstance(chat.get("response_format"), dict):
            out["text"] = {"format": _text_format(chat["response_format"])}
        if chat.get("stream"):
            out["stream"] = True
        out["store"] = self.store
        return out

    def forgotten(self, error: BaseException) -> bool:
        """``error`` says the provider no longer has the previous turn whose id
        was sent; the id is dropped (the next body is the whole conversation)."""
        if (
            self.provider_previous is None
            or not isinstance(error, UpstreamStatusError)
            or error.upstream_status not in (400, 404)
            or error.code != "previous_response_not_found"
        ):
            return False
        self.provider_previous = None
        return True

    def answered(self, provider_id: Any) -> None:
        """The native answer's own id (kept to send a follow-up with it)."""
        if isinstance(provider_id, str) and self.provider_id is None:
            self.provider_id = provider_id

    def rewrite(self, response: dict[str, Any]) -> None:
        """A Response object from the provider, with the gateway's ids."""
        self.answered(response.get("id"))
        response["id"] = self.response_id
        response["previous_response_id"] = self.previous_id


def input_items(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Responses input items of chat messages."""
    items: list[dict[str, Any]] = []
    for message in messages:
        role = message.get("role")
        content = message.get("content")
        if role == "tool":
            items.append(
                {
                    "type": "function_call_output",
                    "call_id": message.get("tool_call_id"),
                    "output": _text_of(content),
                }
            )
            continue
        if role == "assistant":
            text = _text_of(content)
            if text:
                items.append({"type": "message", "role": "assistant", "content": text})
            for call in message.get("tool_calls") or []:
                function = call.get("function") or {}
                items.append(
                    {
                        "type": "function_call",
                        "call_id": call.get("id"),
                        "name": function.get("name"),
                        "arguments": function.get("arguments") or "",
                    }
                )
            continue
        if isinstance(content, list):
            content = [_part(part) for part in content]
        items.append({"type": "message", "role": role, "content": content})
    return items


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


def _part(part: dict[str, Any]) -> dict[str, Any]:
    kind = part.get("type")
    if kind == "image_url":
        image = part.get("image_url") or {}
        out: dict[str, Any] = {"type": "input_image", "image_url": image.get("url")}
        out["detail"] = image.get("detail", "auto")
        return out
    if kind == "file":
        file = part.get("file") or {}
        out = {"type": "input_file", "file_data": file.get("file_data")}
        if file.get("filename") is not None:
            out["filename"] = file["filename"]
        return out
    return {"type": "input_text", "text": part.get("text", "")}


def _tool(tool: dict[str, Any]) -> dict[str, Any]:
    function = tool.get("function") or {}
    out: dict[str, Any] = {"type": "function", "name": function.get("name")}
    for key in ("description", "parameters", "strict"):
        if function.get(key) is not None:
            out[key] = function[key]
    return out


def _tool_choice(choice: Any) -> Any:
    if isinstance(choice, dict):
        return {"type": "function", "name": (choice.get("function") or {}).get("name")}
    return choice


def _text_format(fmt: dict[str, Any]) -> dict[str, Any]:
    if fmt.get("type") == "json_schema":
        return {"type": "json_schema", **(fmt.get("json_schema") or {})}
    return {"type": fmt.get("type", "text")}
