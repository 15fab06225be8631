"""Bounds on a request body's shape: how deep it nests and how many items its arrays hold.

Every later step (the texts walk, token counting, cache keys, the JSON the
upstream receives) walks the body, some of them recursively; orjson itself
refuses to *write* past 254 levels. A body past these bounds is the client's
error (400, naming the bound and the setting that raises it), decided here
before any of those steps runs.

The depth check costs nothing for most bodies: a body with no more brackets
than the depth limit cannot nest deeper than it, and counting them is one C
pass over the bytes. Only bodies with more containers are walked (containers
only, iteratively, stopping at the first one too deep).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.errors import InvalidRequest
from gateway.settings import Settings


@dataclass(frozen=True, slots=True)
class RequestLimits:
    #: the body object is level 1, ``messages`` 2, a message 3, its content parts 4, …
    max_depth: int = 64
    max_messages: int = 2048
    #: content parts of one message
    max_parts: int = 1024
    max_tools: int = 128
    #: items of a ``prompt`` or ``input`` array
    max_inputs: int = 2048

    @classmethod
    def of(cls, settings: Settings) -> RequestLimits:
        return cls(
            max_depth=settings.max_json_depth,
            max_messages=settings.max_messages,
            max_parts=settings.max_content_parts,
            max_tools=settings.max_tools,
            max_inputs=settings.max_inputs,
        )


def check_depth(raw: bytes, body: Any, max_depth: int) -> None:
    """Raise :class:`InvalidRequest` if ``body`` (parsed from ``raw``) nests
    deeper than ``max_depth`` containers."""
    if raw.count(b"[") + raw.count(b"{") <= max_depth:
        return
    if _deeper_than(body, max_depth):
        raise InvalidRequest(
            f"The request body is nested more than {max_depth} levels deep "
            "(the gateway's limit, GATEWAY_MAX_JSON_DEPTH).",
            code="too_deep",
        )


def _deeper_than(body: Any, limit: int) -> bool:
    stack: list[tuple[Any, int]] = [(body, 1)]
    pop, push = stack.pop, stack.append
    while stack:
        value, depth = pop()
        if depth > limit:
            return True
        for child in value.values() if type(value) is dict else value:
            if type(child) is dict or type(child) is list:
                push((child, depth + 1))
    return False


def check_count(param: str, items: list[Any], limit: int, setting: str) -> None:
    if len(items) > limit:
        raise InvalidRequest(
            f"Invalid '{param}': array too long. Expected an array with maximum length "
            f"{limit}, but got an array with length {len(items)} instead "
            f"(the gateway's limit, {setting}).",
            param=param,
            code="array_above_max_length",
        )
