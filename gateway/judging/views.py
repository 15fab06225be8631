"""Every reading of one text the scanner looks at, its findings in the original.

:func:`find_everywhere` runs the :class:`~gateway.judging.sensitivity.Scanner`
on the text as it is, then on each view that differs from it (the folded
view, the digit and glue views of :mod:`gateway.judging.fold`, the
percent-decoded view), on the private-key bodies without a BEGIN line, and on
the decoded text of every base64, hex or ``data:text`` piece
(:mod:`gateway.judging.decode`, one level deep, then again inside that).
Each finding is mapped back to the original characters: a finding in a
decoded piece covers the whole encoded piece. Overlaps resolve as in
:meth:`Scanner.find` (the longer wins).

Ordinary ASCII prose without encodings costs one extra regex pass over the
text and a few substring tests.
"""

from __future__ import annotations

import bisect

from gateway.judging.decode import decodings, headless_private_keys
from gateway.judging.fold import Folded, digit_view, fold, glue_view, percent_view
from gateway.judging.probe import Finding
from gateway.judging.sensitivity import UNJUDGED, Scanner, resolve
from gateway.judging.walk import Walked

#: a word shorter than this (letters only) has no other reading: too short to
#: hold an encoded or glued secret
SHORT = 16
#: decoded text is read again for encodings inside it, this many levels deep
MAX_DECODE_DEPTH = 2


def find_everywhere(
    scanner: Scanner, text: str, entities: frozenset[str] | None = None
) -> list[Finding]:
    """Non-overlapping findings of every reading of ``text``, sorted by start."""
    found = readings(scanner, text, entities)
    return resolve(found) if len(found) > 1 else found


def cover(found: list[Finding]) -> list[Finding]:
    """Overlapping findings merged into one span each (the entity of the longest),
    sorted: what redaction replaces, so no piece of any finding is left."""
    merged: list[Finding] = []
    longest = 0
    for f in sorted(found, key=lambda f: (f.start, -f.end)):
        if merged and f.start < merged[-1].end:
            last = merged[-1]
            entity = f.entity if f.end - f.start > longest else last.entity
            longest = max(longest, f.end - f.start)
            merged[-1] = Finding(entity, last.start, max(last.end, f.end))
        else:
            merged.append(f)
            longest = f.end - f.start
    return merged


def readings(
    scanner: Scanner, text: str, entities: frozenset[str] | None = None, depth: int = 0
) -> list[Finding]:
    """The findings of every reading of ``text``, in the original's offsets; they may overlap."""
    found = scanner.find(text, entities)
    if len(text) < SHORT and text.isascii() and text.isalpha():
        return found  # a word: no other reading differs, nothing is encoded in it
    extra: list[Finding] = []
    folded = fold(text)
    base = folded.text if folded is not None else text
    if folded is not None:
        extra.extend(folded.map(scanner.find(base, entities)))
    for make in (digit_view, glue_view, percent_view):
        view = make(base)
        if view is not None:
            if folded is not None:
                view = folded.then(view)
            extra.extend(view.map(scanner.find(view.text, entities)))
    if entities is None or "private_key" in entities:
        extra.extend(_mapped(folded, list(headless_private_keys(base))))
    if depth < MAX_DECODE_DEPTH:
        opaque: list[Finding] | None = [] if entities is None or UNJUDGED in entities else None
        for start, end, decoded in decodings(base, opaque):
            inner = readings(scanner, decoded, entities, depth + 1)
            if inner:
                span = folded.span(start, end) if folded is not None else (start, end)
                extra.extend(Finding(f.entity, *span) for f in inner)
        if opaque:
            extra.extend(_mapped(folded, opaque))
    if not extra:
        return found
    found.extend(extra)
    return _unique(found)


def _mapped(folded: Folded | None, findings: list[Finding]) -> list[Finding]:
    return findings if folded is None else folded.map(findings)


def _unique(found: list[Finding]) -> list[Finding]:
    return list(dict.fromkeys(found))


#: characters on each side of a boundary between two pieces read together
ACROSS_WINDOW = 160


def across(
    scanner: Scanner, pieces: list[str], entities: frozenset[str] | None = None
) -> list[list[tuple[int, Finding]]]:
    """Findings split across consecutive ``pieces`` (a conversation's texts read
    as one): for each, ``(piece index, its part in that piece)`` for every piece
    it covers.

    Only the windows around the boundaries are read, so the cost is linear in the
    number of pieces, whatever their size.
    """
    if len(pieces) < 2:
        return []
    starts: list[int] = []
    at = 0
    for piece in pieces:
        starts.append(at)
        at += len(piece)
    joined = "".join(pieces)
    bounds = [s for s in starts[1:] if 0 < s < len(joined)]
    windows: list[list[int]] = []
    for b in bounds:
        lo, hi = max(0, b - ACROSS_WINDOW), min(len(joined), b + ACROSS_WINDOW)
        if windows and lo <= windows[-1][1]:
            windows[-1][1] = hi
        else:
            windows.append([lo, hi])
    out: list[list[tuple[int, Finding]]] = []
    for lo, hi in windows:
        for f in readings(scanner, joined[lo:hi], entities):
            start, end = lo + f.start, lo + f.end
            if not any(start < b < end for b in bounds):
                continue  # inside one piece: that piece's own reading has it
            parts: list[tuple[int, Finding]] = []
            i = bisect.bisect_right(starts, start) - 1
            while i < len(pieces) and starts[i] < end:
                piece_end = starts[i] + len(pieces[i])
                s, e = max(start, starts[i]), min(end, piece_end)
                if e > s:
                    parts.append((i, Finding(f.entity, s - starts[i], e - starts[i])))
                i += 1
            out.append(parts)
    return out


#: strings up to this long have their entity types remembered (keys and short values
#: repeat across requests: "role", "content", "user")
MEMO_LENGTH = 32
#: at most this many strings are remembered
MEMO_SIZE = 4096
_NOTHING: frozenset[str] = frozenset()


def body_entities(
    scanner: Scanner, walked: Walked, memo: dict[str, frozenset[str]] | None = None
) -> dict[str, int]:
    """The entity types of a walked body and how many findings of each: of each
    distinct string, of what is split across its pieces, and :data:`UNJUDGED`
    (one per part) when a part could not be read. A finding across pieces is
    counted only where none of the pieces it covers holds one of its type (so
    a count is never more than what was found, and may miss a split finding
    beside a whole one).

    ``memo`` (one per scanner: findings depend only on the text and the scanner)
    remembers the short strings that hold nothing (keys, roles, ``"user"``), up
    to :data:`MEMO_SIZE` of them; a string that holds a finding is never kept.
    """
    counts: dict[str, int] = {}
    seen: set[str] = set()
    #: the types found in each string that holds a finding
    types_in: dict[str, set[str]] = {}
    for text in walked.strings:
        if text in seen:
            continue
        seen.add(text)
        if memo is not None and len(text) <= MEMO_LENGTH:
            if text in memo:
                continue  # known to hold nothing
            findings = find_everywhere(scanner, text)
            if not findings and len(memo) < MEMO_SIZE:
                memo[text] = _NOTHING  # never a string that holds a finding
        else:
            findings = find_everywhere(scanner, text)
        for f in findings:
            counts[f.entity] = counts.get(f.entity, 0) + 1
            types_in.setdefault(text, set()).add(f.entity)
    strings = walked.strings
    pieces = [strings[i] for i in walked.pieces]
    for parts in across(scanner, pieces):
        if not parts:
            continue
        entity = parts[0][1].entity
        if entity not in counts:
            counts[entity] = 1
        elif not any(entity in types_in.get(pieces[i], ()) for i, _ in parts):
            # else most likely a finding of a piece run on into the next one
            # (texts are read as one, without a separator): counted there
            counts[entity] += 1
    if walked.unjudged:
        counts[UNJUDGED] = counts.get(UNJUDGED, 0) + walked.unjudged
    return counts
