"""One written form of a national id, and the detector that finds it.

An :class:`IdFormat` names the digit runs it starts at, the regex tried there,
the check, and when the format alone is too weak to count without a context
word; :func:`detector` turns any number of them into one detector that reads
:attr:`~gateway.judging.probe.Probe.runs` once, with a dict lookup per run.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from gateway.judging.anchors import fragment, free_left, free_right
from gateway.judging.probe import Finding, Probe

Detect = Callable[[Probe], Iterator[Finding]]
_LETTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_NOT_ALNUM = re.compile(r"[^0-9A-Za-z]")
_SEPARATORS = frozenset(" -.+/")
_DIGITS = frozenset("0123456789")


def always(match: str, compact: str) -> bool:
    return True


def never(match: str, compact: str) -> bool:
    return False


def separated(match: str, compact: str) -> bool:
    return len(match) != len(compact)


@dataclass(frozen=True, slots=True)
class IdFormat:
    """One written form of one national id.

    ``shapes`` picks the digit runs the ``pattern`` is tried at: ``(length,
    next)``, a run of ``length`` digits followed by one of the characters
    ``next`` (``"*"``: by anything); ``back`` letters before the run are part of
    the match. ``valid`` gets
    the match's letters and digits, upper case; a match that ``strong`` does not
    vouch for (e.g. a bare digit run) counts only with a ``context`` word nearby.
    """

    entity: str
    pattern: re.Pattern[str]
    shapes: tuple[tuple[int, str], ...]
    valid: Callable[[str], bool]
    strong: Callable[[str, str], bool] = always
    context: re.Pattern[str] | None = None
    back: int = 0
    #: ``valid`` gets the match as written (upper case), separators and all
    raw: bool = False
    #: words that, nearby, say the number is something else (a card)
    veto: re.Pattern[str] | None = None


def words(*words: str) -> re.Pattern[str]:
    """Context words, matched in lower-cased text as whole words (Latin letters
    may not touch them; CJK and other scripts need no spaces)."""
    alternatives = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
    return re.compile(rf"(?<![a-z])(?:{alternatives})(?![a-z])")


_BEFORE, _AFTER = 48, 24


def _in_context(probe: Probe, start: int, end: int, words: re.Pattern[str] | None) -> bool:
    if words is None:
        return False
    lower = probe.lower
    return (
        words.search(lower, max(0, start - _BEFORE), start) is not None
        or words.search(lower, end, end + _AFTER) is not None
    )


def detector(*formats: IdFormat) -> Detect:
    """One detector for ``formats``: a single pass over the digit runs, each run
    tried only by the formats that start at a run of its length
    (a dict lookup per run), so 30 formats cost prose
    about what one does. Findings of different formats may overlap:
    :func:`~gateway.judging.sensitivity.resolve` keeps one."""
    by_length: dict[int, list[tuple[IdFormat, str]]] = {}
    for fmt in formats:
        for length, after in fmt.shapes:
            by_length.setdefault(length, []).append((fmt, after))

    def detect(probe: Probe) -> Iterator[Finding]:
        text = probe.text
        n = len(text)
        for run_start, run_end in probe.runs:
            tries = by_length.get(run_end - run_start)
            if tries is None:
                continue
            for fmt, after in tries:
                found = _try(probe, fmt, after, run_start, run_end, n)
                if found is not None:
                    yield found

    return detect


def _try(
    probe: Probe, fmt: IdFormat, after: str, run_start: int, run_end: int, n: int
) -> Finding | None:
    text = probe.text
    back = fmt.back
    start = run_start - back
    if (
        start < 0
        or (back and text[run_start - 1] not in _LETTERS)
        or (
            after != "*"
            and (
                run_end + 1 >= n
                or text[run_end] not in after
                # a separator must be followed by the next group's digit
                or (text[run_end] in _SEPARATORS and text[run_end + 1] not in _DIGITS)
            )
        )
        or not free_left(text, start)
        or fragment(text, start)
        or (back and not all(ch in _LETTERS for ch in text[start:run_start]))
    ):
        return None
    m = fmt.pattern.match(text, start)
    if m is None or not free_right(text, m.end()):
        return None
    matched = m.group()
    stop = m.end()
    if (
        stop + 1 < n
        and text[stop] in matched
        and text[stop] in _SEPARATORS
        and text[stop + 1] in _DIGITS
    ):
        return None  # one more group follows: a longer number (4111 1111 1111 1111)
    compact = _NOT_ALNUM.sub("", matched).upper()
    if (
        fmt.valid(matched.upper() if fmt.raw else compact)
        and (fmt.strong(matched, compact) or _in_context(probe, start, m.end(), fmt.context))
        and not (fmt.veto and _in_context(probe, start, m.end(), fmt.veto))
    ):
        return Finding(fmt.entity, start, m.end())
    return None
