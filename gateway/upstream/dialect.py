"""What of a chat body only some providers understand, and who gets it.

The Messages endpoint (:mod:`gateway.api.messages`) keeps Anthropic's
``cache_control`` markers on the chat body it makes (on content parts, tool
messages and tools; litellm turns them back into Anthropic's), and ``top_k``.
They mean something to Anthropic targets only: every other target gets the body
without them (:func:`for_target`), as it gets no ``anthropic-*`` header. The
markers were judged with the rest of the body; dropping them sends less, never
something unjudged.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.targets import Kind, Target

_MARK = "cache_control"


def is_anthropic(target: Target) -> bool:
    return target.litellm_provider == "anthropic"


def for_target(body: Mapping[str, Any], target: Target) -> Mapping[str, Any]:
    """``body`` as ``target`` gets it: unchanged for Anthropic targets, and for
    any body without Anthropic's markers (the usual case: the same object)."""
    if is_anthropic(target):
        return body
    messages, tools = body.get("messages"), body.get("tools")
    marked_messages = isinstance(messages, list) and any(_marked(m) for m in messages)
    marked_tools = isinstance(tools, list) and any(
        isinstance(t, dict) and _MARK in t for t in tools
    )
    top_k = "top_k" in body and target.kind is not Kind.OPEN
    if not marked_messages and not marked_tools and not top_k:
        return body
    out = dict(body)
    if marked_messages:
        out["messages"] = [_unmarked(m) for m in body["messages"]]
    if marked_tools:
        out["tools"] = [_without(t) if isinstance(t, dict) else t for t in body["tools"]]
    if target.kind is not Kind.OPEN:
        # OpenAI (and litellm's other providers) reject ``top_k``; a
        # self-hosted server (vLLM, llama.cpp, SGLang) takes it as sampling
        out.pop("top_k", None)
    return out


def _marked(message: Any) -> bool:
    if not isinstance(message, dict):
        return False
    if _MARK in message:
        return True
    content = message.get("content")
    return isinstance(content, list) and any(isinstance(p, dict) and _MARK in p for p in content)


def _unmarked(message: Any) -> Any:
    if not _marked(message):
        return message
    out = _without(message)
    content = out.get("content")
    if isinstance(content, list):
        out["content"] = [_without(p) if isinstance(p, dict) else p for p in content]
    return out


def _without(part: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in part.items() if k != _MARK}
