"""The one walk over a request body: every string in it, and what cannot be read.

A body is a JSON value as parsed (dicts, lists, strings, numbers, booleans,
``None``), of any endpoint: chat, completions, embeddings, Responses, Messages.
:func:`walk` visits every dict key and every string value at any depth, known
field or not, in document order, except the top-level ``model`` value (an
alias the gateway resolves itself). Numbers and booleans are not text.

What the gateway cannot read as text is *unjudged* (the entity
:data:`~gateway.judging.sensitivity.UNJUDGED`, a level the policy sets):

* token-id arrays: a list of integers where a text would be (``prompt``,
  ``input``, ``content``, ``text``…, nested or not), or any such list of 16+;
  ``logit_bias`` (token ids as keys);
* file, audio and video content parts (``file``, ``input_file``,
  ``input_audio``, ``audio``, ``video``, ``document`` unless its source is text);
* strings that are payloads (:func:`~gateway.judging.decode.opaque_string`):
  binary base64, ``data:`` URIs of non-text media, image URLs with a query string;
* anything that is not a JSON value.

Unjudged parts are walked too (their strings are scanned like any other).

:func:`rebuild` makes the body that is sent from the walk: fresh containers
throughout, each string replaced by the string of the same index, each
unjudged part optionally replaced; nothing reaches the copy without passing
through the walk. Depth is bounded (:data:`MAX_DEPTH`; request validation
allows less), beyond it the body is refused.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gateway.errors import InvalidRequest
from gateway.judging.decode import opaque_string

#: deeper than this, a body is refused (request validation stops at less)
MAX_DEPTH = 100
#: keys whose value is text when it is a string, and token ids when it is integers
TEXT_KEYS = frozenset(
    {"prompt", "input", "content", "text", "suffix", "messages", "arguments", "instructions",
     "system", "query", "documents", "tokens", "input_ids", "token_ids", "prompt_token_ids",
     "prediction", "refusal", "output"}
)  # fmt: skip
#: a list of this many integers is token ids wherever it is
TOKEN_RUN = 16
#: value strings under these keys are structure, not the conversation's text
#: (each is still scanned on its own)
_STRUCTURE_KEYS = frozenset({"role", "type", "object", "format", "media_type", "detail"})
#: value strings under these keys are identifiers another part refers to
ID_KEYS = frozenset({"id", "tool_call_id", "call_id"})
_OPAQUE_PARTS = frozenset(
    {"file", "input_file", "input_audio", "audio", "video", "input_video", "video_url"}
)

#: (index of the unjudged part, the part) -> its replacement, or None to keep it
Opaque = Callable[[int, Any], Any]


@dataclass(slots=True)
class Walked:
    """What one walk saw."""

    #: every string visited (keys and values), in document order
    strings: list[str] = field(default_factory=list)
    #: indices into ``strings`` of the values that make up the conversation's
    #: text, in order (joined to find what is split across parts)
    pieces: list[int] = field(default_factory=list)
    #: indices into ``strings`` of identifier values (a string right under one
    #: of :data:`ID_KEYS`)
    ids: set[int] = field(default_factory=set)
    #: how many parts are unjudged
    unjudged: int = 0


class _Walk:
    __slots__ = ("opaque", "replace", "seen", "strings_at", "unjudged_at")

    def __init__(
        self, seen: Walked | None, replace: Sequence[str] | None, opaque: Opaque | None
    ) -> None:
        self.seen = seen
        self.replace = replace
        self.opaque = opaque
        self.strings_at = 0
        self.unjudged_at = 0

    def string(self, value: str, piece: bool, key: str | None = None) -> str:
        i = self.strings_at
        self.strings_at = i + 1
        seen = self.seen
        if seen is not None:
            seen.strings.append(value)
            if piece:
                seen.pieces.append(i)
                if key in ID_KEYS:
                    seen.ids.add(i)
        return value if self.replace is None else self.replace[i]

    def value(self, node: Any, key: str | None, depth: int, in_list: bool) -> Any:
        if depth > MAX_DEPTH:
            raise InvalidRequest(
                f"The request body is nested deeper than {MAX_DEPTH} levels.", code="too_deep"
            )
        kind = type(node)
        if kind is str:
            # an identifier is a string right under its key, never an item of a list
            out: Any = self.string(node, key not in _STRUCTURE_KEYS, None if in_list else key)
            opaque = opaque_string(node, key)
        elif kind is dict or isinstance(node, Mapping):
            out = {}
            for k, v in node.items():
                name = self.string(k, False) if type(k) is str else k
                out[name] = self.value(v, k if type(k) is str else None, depth + 1, False)
            opaque = _opaque_dict(node, key)
        elif kind is list or kind is tuple:
            out = [self.value(item, key, depth + 1, True) for item in node]
            opaque = _token_ids(node, key)
        elif node is None or kind is bool or kind is int or kind is float:
            return node
        else:
            out, opaque = node, True
        if not opaque:
            return out
        n = self.unjudged_at
        self.unjudged_at = n + 1
        if self.seen is not None:
            self.seen.unjudged += 1
        if self.opaque is not None:
            replacement = self.opaque(n, node)
            if replacement is not None:
                if in_list and kind is dict:
                    return {"type": "text", "text": replacement}
                return replacement
        return out


def _opaque_dict(node: Mapping[Any, Any], key: str | None) -> bool:
    if key == "logit_bias":
        return bool(node)
    kind = node.get("type")
    if type(kind) is not str:
        return False
    if kind in _OPAQUE_PARTS:
        return True
    if kind == "document":
        source = node.get("source")
        return not (isinstance(source, Mapping) and source.get("type") == "text")
    return False


def _token_ids(node: Sequence[Any], key: str | None) -> bool:
    if not node or (key not in TEXT_KEYS and len(node) < TOKEN_RUN):
        return False
    return all(type(item) is int for item in node)


def walk(body: Any) -> Walked:
    """Visit every string of ``body`` and count its unjudged parts."""
    seen = Walked()
    _top(_Walk(seen, None, None), body)
    return seen


def rebuild(body: Any, strings: Sequence[str], opaque: Opaque | None = None) -> Any:
    """A fresh copy of ``body`` from its walk: string ``i`` of :func:`walk` becomes
    ``strings[i]``; an unjudged part ``n`` becomes ``opaque(n, part)`` when that is
    not ``None`` (a content part in a list becomes a text part holding it)."""
    return _top(_Walk(None, strings, opaque), body)


def _top(w: _Walk, body: Any) -> Any:
    if type(body) is not dict:
        return w.value(body, None, 0, False)
    out: dict[Any, Any] = {}
    for k, v in body.items():
        name = w.string(k, False) if type(k) is str else k
        if k == "model" and type(v) is str:
            out[name] = v
        else:
            out[name] = w.value(v, k if type(k) is str else None, 1, False)
    return out
