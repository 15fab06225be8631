"""Redact entities from a request, and put them back into the answer.

A :class:`Redaction` is built per request. :meth:`Redaction.redact_body`
walks the body (:mod:`gateway.judging.walk`: every key and string value, any
depth) and rebuilds it from the walk with every finding of the listed entity
types replaced by a numbered placeholder: ``[EMAIL_1]``, ``[PHONE_2]``.
Findings come from every reading of each string (:mod:`gateway.judging.views`:
normalised, decoded, split across the conversation's pieces) and always
replace the *original* characters; overlapping findings are replaced as one.
The same value gets the same placeholder everywhere in the request; numbering
is per entity type and starts at 1, skipping any placeholder-shaped string the
request already contains (so restoring never turns the client's own
``[EMAIL_1]`` into someone's address). When ``unjudged`` is listed, each part
the gateway cannot read is replaced by an ``[UNJUDGED_n]`` text (never
restored: it is not text).

:meth:`Redaction.restore_text` puts original values back into an answer;
:meth:`Redaction.restore_answer` does it in every string of a whole answer
(content, refusal, tool-call arguments, whatever the shape);
:class:`StreamRestorer` does it for streamed deltas, which may split a
placeholder across chunks. Placeholders the model invents that are not in the
mapping stay as they are. The mapping holds the original values: never log it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import orjson

from gateway.judging.probe import Finding
from gateway.judging.sensitivity import UNJUDGED, Scanner
from gateway.judging.views import across, cover, readings
from gateway.judging.walk import MAX_DEPTH, rebuild, walk

_PLACEHOLDER = re.compile(r"\[[A-Z0-9_]+_[0-9]+\]")
_NOT_TAG = re.compile(r"[^A-Z0-9]+")


def _overlaps(found: Any, f: Finding) -> bool:
    return any(g.start < f.end and f.start < g.end for g in found)


def placeholder_tag(entity: str) -> str:
    """``email`` -> ``EMAIL``; custom names are upper-cased, other characters become ``_``."""
    return _NOT_TAG.sub("_", entity.upper()).strip("_") or "ENTITY"


class Redaction:
    """The redaction of one request, and the restoration of its answer."""

    def __init__(self, scanner: Scanner, entities: frozenset[str]) -> None:
        self._scanner = scanner
        self._entities = entities
        self._by_value: dict[tuple[str, str], str] = {}
        self._mapping: dict[str, str] = {}
        self._counts: dict[str, int] = {}
        self._next: dict[str, int] = {}
        self._taken: set[str] = set()
        self.counts: Mapping[str, int] = MappingProxyType(self._counts)
        self.mapping: Mapping[str, str] = MappingProxyType(self._mapping)

    def redact_body(self, body: dict[str, Any]) -> dict[str, Any]:
        """A new body with every listed entity replaced by its placeholder; ``body`` is untouched."""
        if not self._entities:
            return dict(body)
        walked = walk(body)
        strings = walked.strings
        # placeholder-shaped text already in the request must not be reused
        for text in strings:
            if "[" in text:
                self._taken.update(_PLACEHOLDER.findall(text))
        spans: dict[int, list[Finding]] = {}
        by_text: dict[str, list[Finding]] = {}
        for i, text in enumerate(strings):
            found = by_text.get(text)
            if found is None:
                found = by_text[text] = cover(readings(self._scanner, text, self._entities))
            if found:
                spans[i] = found
        pieces = walked.pieces
        for parts in across(self._scanner, [strings[i] for i in pieces], self._entities):
            # every part goes, even where a piece's own finding covers the rest
            # ("ada.love" + "lace@example.com"): text glued to a finding is lost to
            # the placeholder rather than a piece of a value left. Only an
            # identifier glued to a finding its neighbour holds whole keeps its
            # value ("call_1" + "jane@example.com: 3 orders"), so references hold.
            explained = any(_overlaps(spans.get(pieces[k], ()), f) for k, f in parts)
            for k, f in parts:
                if not (explained and pieces[k] in walked.ids):
                    spans.setdefault(pieces[k], []).append(f)
        replaced = [
            self._replace(text, cover(spans[i]) if i in spans else ())
            for i, text in enumerate(strings)
        ]
        opaque = self._opaque if UNJUDGED in self._entities and walked.unjudged else None
        out: dict[str, Any] = rebuild(body, replaced, opaque)
        return out

    def redact_text(self, text: str) -> str:
        """``text`` with every listed entity replaced (numbering shared with the whole request)."""
        return self._replace(text, cover(readings(self._scanner, text, self._entities)))

    def _replace(self, text: str, findings: Any) -> str:
        if not findings:
            return text
        pieces: list[str] = []
        last = 0
        for f in findings:
            pieces.append(text[last : f.start])
            pieces.append(self._placeholder(f.entity, text[f.start : f.end]))
            last = f.end
        pieces.append(text[last:])
        return "".join(pieces)

    def _opaque(self, n: int, part: Any) -> str:
        """The text that replaces unjudged part ``n`` (not restorable: it is not text)."""
        tag = placeholder_tag(UNJUDGED)
        k = self._next.get(tag, 0)
        while True:
            k += 1
            placeholder = f"[{tag}_{k}]"
            if placeholder not in self._taken:
                break
        self._next[tag] = k
        self._taken.add(placeholder)
        self._counts[UNJUDGED] = self._counts.get(UNJUDGED, 0) + 1
        return placeholder

    def _placeholder(self, entity: str, value: str) -> str:
        key = (entity, value)
        existing = self._by_value.get(key)
        if existing is not None:
            return existing
        tag = placeholder_tag(entity)
        n = self._next.get(tag, 0)
        while True:
            n += 1
            placeholder = f"[{tag}_{n}]"
            if placeholder not in self._mapping and placeholder not in self._taken:
                break
        self._next[tag] = n
        self._by_value[key] = placeholder
        self._mapping[placeholder] = value
        self._counts[entity] = self._counts.get(entity, 0) + 1
        return placeholder

    def restore_answer(self, raw: bytes) -> bytes:
        """A whole answer with its placeholders restored in every string of it."""
        if not self._mapping:
            return raw
        data = orjson.loads(raw)
        return orjson.dumps(self._restore_value(data, 0))

    def _restore_value(self, node: Any, depth: int) -> Any:
        if type(node) is str:
            return self.restore_text(node)
        if depth > MAX_DEPTH:
            return node
        if type(node) is dict:
            return {k: self._restore_value(v, depth + 1) for k, v in node.items()}
        if type(node) is list:
            return [self._restore_value(v, depth + 1) for v in node]
        return node

    def excerpt(self, text: str, limit: int = 500) -> str:
        """The first ``limit`` characters of ``text``, redacted (for log samples)."""
        return self.redact_text(text[:limit])

    def restore_text(self, text: str) -> str:
        """``text`` with every known placeholder replaced by its original value."""
        if not self._mapping or "[" not in text:
            return text
        mapping = self._mapping
        return _PLACEHOLDER.sub(lambda m: mapping.get(m.group(), m.group()), text)

    def stream_restorer(self) -> StreamRestorer:
        """A restorer for one stream of deltas (keep one per choice index)."""
        return StreamRestorer(self)


class StreamRestorer:
    """Restores placeholders in streamed deltas.

    ``"".join(feed(d) for d in deltas) + flush()`` equals
    ``restore_text("".join(deltas))`` for any split of the text. ``feed`` holds
    back only a tail that starts at the last ``[`` and is still a proper prefix
    of a known placeholder, so at most one placeholder's length is delayed.
    """

    def __init__(self, redaction: Redaction) -> None:
        self._redaction = redaction
        self._held = ""

    def feed(self, delta: str) -> str:
        """The restored text that is safe to emit now."""
        text = self._held + delta if self._held else delta
        self._held = ""
        cut = text.rfind("[")
        if cut < 0:
            return text
        tail = text[cut:]
        if "]" not in tail and any(
            p.startswith(tail) and p != tail for p in self._redaction.mapping
        ):
            self._held = tail
            text = text[:cut]
        return self._redaction.restore_text(text)

    def flush(self) -> str:
        """Whatever is still held, at the end of the stream."""
        held, self._held = self._held, ""
        return self._redaction.restore_text(held)
