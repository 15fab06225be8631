"""The text a detector scans, with the views several detectors share.

A :class:`Probe` computes each view (the marks a detector starts from,
lower-cased text, digit runs, the runs a number can start with, the runs after
a capital letter, a character's positions) at most once, so a scan over all
detectors pays for each only once. Detectors report :class:`Finding` spans.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from types import MappingProxyType

_DIGITS = "0123456789"
#: with more digits than this (or than one char in 32), one regex pass over the
#: text beats a find() call per digit
_FIND_LOOP_MIN = 256
_DIGIT_RUN = re.compile(r"[0-9]+")
_UPPER = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
#: the characters some detector starts from: digits (numbers, dates), ``@``
#: (emails, URL credentials), ``:`` (IPv6, URLs) and the anchors of the secrets'
#: prefixes (:data:`gateway.judging.secrets.ANCHOR_ORDER`). Most prose has few of them.
MARKS = "0123456789@:-_JKSz~$QA./|"
_NOT_MARKS = bytes(b for b in range(256) if chr(b) not in MARKS)
_MARK_SYMBOLS = b"@:-_JKSz~$QA./|"
#: a find() per occurrence costs about what a regex scan of this many characters does
_TIGHT_CHARS_PER_FIND = 512
_TIGHT = MappingProxyType({c: re.compile(re.escape(c) + r"(?=\S)") for c in MARKS})
_DIGIT_MASK = bytes(ord("#") if chr(b) in _DIGITS else ord(" ") for b in range(256))


@dataclass(frozen=True, slots=True)
class Finding:
    """An entity of type ``entity`` at ``text[start:end]``."""

    entity: str
    start: int
    end: int


class Probe:
    """One text plus views several detectors share, each computed at most once."""

    __slots__ = (
        "_ascii",
        "_lettered",
        "_lower",
        "_marks",
        "_needles",
        "_positions",
        "_runs",
        "_starts",
        "_tight",
        "text",
    )

    def __init__(self, text: str) -> None:
        self.text = text
        self._marks: bytes | None = None
        self._lower: str | None = None
        self._runs: list[tuple[int, int]] | None = None
        self._starts: list[tuple[int, int]] | None = None
        self._lettered: list[tuple[int, int]] | None = None
        self._positions: dict[str, list[int]] = {}
        self._needles: dict[str, list[int]] = {}
        self._tight: dict[str, list[int]] = {}
        self._ascii: bool | None = None

    @property
    def marks(self) -> bytes:
        """The text's :data:`MARKS` characters, in order, as ASCII bytes.

        One ``bytes.translate`` (every byte of a UTF-8 multi-byte character is
        >= 0x80, so none is a mark): the cheap test of which views can be empty.
        """
        if self._marks is None:
            data = self.text.encode("utf-8", "surrogatepass")
            self._marks = data.translate(None, _NOT_MARKS)
        return self._marks

    @property
    def has_digits(self) -> bool:
        """Whether the text has an ASCII digit, read from :attr:`marks`."""
        return bool(self.marks.translate(None, _MARK_SYMBOLS))

    @property
    def lower(self) -> str:
        """The text lower-cased, index for index (see :func:`lower_aligned`)."""
        if self._lower is None:
            self._lower = lower_aligned(self.text)
        return self._lower

    @property
    def runs(self) -> list[tuple[int, int]]:
        """``(start, end)`` of every maximal run of ASCII digits, in order."""
        if self._runs is None:
            self._runs = _digit_runs(self.text)
        return self._runs

    @property
    def starts(self) -> list[tuple[int, int]]:
        """The digit runs a number-shaped entity can begin with.

        A run shorter than 8 digits, not after a ``+``, and not continued by a
        separator and another digit ("in 2023 we") can be none of them: this skips most runs
        in prose before any regex runs.
        """
        starts = self._starts
        if starts is None:
            starts, self._lettered = self._sort_runs()
            self._starts = starts
        return starts

    @property
    def lettered(self) -> list[tuple[int, int]]:
        """Digit runs right after a capital letter (and maybe a space): IBAN, NINO, NIE."""
        lettered = self._lettered
        if lettered is None:
            self._starts, lettered = self._sort_runs()
            self._lettered = lettered
        return lettered

    def _sort_runs(self) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """:attr:`starts` and :attr:`lettered`, in one pass over the runs."""
        text = self.text
        n = len(text)
        starts: list[tuple[int, int]] = []
        lettered: list[tuple[int, int]] = []
        for run in self.runs:
            start, end = run
            if start:
                before = text[start - 1]
                if before in _UPPER or (start > 1 and before == " " and text[start - 2] in _UPPER):
                    lettered.append(run)
            if (end - start >= 8 or (start and text[start - 1] == "+")) or (
                end + 1 < n
                and text[end] in " -./)"
                and (
                    text[end + 1] in _DIGITS
                    or (end + 2 < n and text[end + 1] == " " and text[end + 2] in _DIGITS)
                )
            ):
                starts.append(run)
        return starts, lettered

    def positions(self, char: str) -> list[int]:
        """Every index of ``char`` in the text (``str.find`` is a memchr for one character)."""
        found = self._positions.get(char)
        if found is None:
            found = []
            text = self.text
            i = text.find(char)
            while i >= 0:
                found.append(i)
                i = text.find(char, i + 1)
            self._positions[char] = found
        return found

    def tight(self, char: str) -> list[int]:
        """Every index of ``char`` followed by a character that is not white space.

        A few occurrences (for the text's length): their memchr positions, filtered;
        more: one regex scan (its literal first character found at C speed), so the
        full stops and colons of prose, followed by a space, cost no Python loop.
        """
        found = self._tight.get(char)
        if found is None:
            text = self.text
            count = self.marks.count(ord(char)) if len(char) == 1 and ord(char) < 128 else -1
            if count >= 0 and (count <= 2 or count * _TIGHT_CHARS_PER_FIND < len(text)):
                # a few occurrences: their memchr positions, filtered (a regex scan costs a pass)
                found = [i for i in self.positions(char) if text[i + 1 : i + 2].strip()]
            else:
                pattern = _TIGHT.get(char)
                if pattern is None:
                    pattern = re.compile(re.escape(char) + r"(?=\S)")
                found = [m.start() for m in pattern.finditer(text)]
            self._tight[char] = found
        return found

    def finds(self, needle: str) -> list[int]:
        """Every index of lower-case ``needle`` in :attr:`lower` (one substring
        search per needle, shared by the detectors that start from it)."""
        found = self._needles.get(needle)
        if found is None:
            found = []
            lower = self.lower
            i = lower.find(needle)
            while i >= 0:
                found.append(i)
                i = lower.find(needle, i + 1)
            self._needles[needle] = found
        return found

    @property
    def ascii(self) -> bool:
        """Whether the text is ASCII (words of other scripts are looked for only if not)."""
        if self._ascii is None:
            self._ascii = self.text.isascii()
        return self._ascii


def lower_aligned(text: str) -> str:
    """``text.lower()`` with the same length, so indices into it index ``text`` too.

    A few characters lower-case to two (``İ``); those are left as they are.
    """
    lower = text.lower()
    if len(lower) == len(text):
        return lower
    # U+0130 is the one character whose lower case is two (tests/judging/test_linear.py
    # checks it): lower-case around it, at C speed
    lower = "\u0130".join(part.lower() for part in text.split("\u0130"))
    if len(lower) == len(text):
        return lower
    return "".join(low if len(low) == 1 else ch for ch, low in ((c, c.lower()) for c in text))


def _digit_runs(text: str) -> list[tuple[int, int]]:
    # str.find is a memchr per digit: far cheaper than a regex scan on prose,
    # which has few digits. Digit-heavy text switches to the linear regex pass.
    if text.isascii():
        return _ascii_digit_runs(text)
    positions: list[int] = []
    cap = max(_FIND_LOOP_MIN, len(text) // 32)
    for digit in _DIGITS:
        i = text.find(digit)
        while i >= 0:
            positions.append(i)
            if len(positions) > cap:
                return [m.span() for m in _DIGIT_RUN.finditer(text)]
            i = text.find(digit, i + 1)
    if not positions:
        return []
    positions.sort()
    runs: list[tuple[int, int]] = []
    start = prev = positions[0]
    for i in positions[1:]:
        if i != prev + 1:
            runs.append((start, prev + 1))
            start = i
        prev = i
    runs.append((start, prev + 1))
    return runs


def _ascii_digit_runs(text: str) -> list[tuple[int, int]]:
    """:func:`_digit_runs` of an ASCII text (byte offsets are character offsets).

    One ``bytes.translate`` maps digits to ``#`` and everything else to a
    space; then two memchr calls per run find where it starts and ends.
    """
    mask = text.encode("ascii").translate(_DIGIT_MASK)
    if mask.count(b"#") > max(_FIND_LOOP_MIN, len(text) // 32):
        return [m.span() for m in _DIGIT_RUN.finditer(text)]
    runs: list[tuple[int, int]] = []
    start = mask.find(b"#")
    while start >= 0:
        end = mask.find(b" ", start)
        if end < 0:
            runs.append((start, len(mask)))
            break
        runs.append((start, end))
        start = mask.find(b"#", end)
    return runs


def match_end(pattern: re.Pattern[str], text: str, pos: int) -> int:
    """Where ``pattern``, which matches the empty string (``[...]*``), stops at ``pos``."""
    m = pattern.match(text, pos)
    return pos if m is None else m.end()
