"""Normalised views of a text, each with a map back to the original characters.

A detector runs on a view, and every finding is mapped back through the view's
offsets, so redaction replaces the *original* characters, however obfuscated.
A view is built only when a cheap test says it would differ from the text
(ordinary ASCII prose gets none):

* :func:`fold`: NFKC (full-width digits and letters, ligatures, circled and
  mathematical letters), without format characters (Unicode ``Cf``: zero-width
  spaces and joiners, soft hyphens, bidi marks, BOM), other control characters,
  combining marks, with digits of every script read as ASCII digits, with the
  ASCII that tag characters and variation selectors smuggle read as ASCII, with
  Cyrillic and Greek look-alikes
  folded to Latin (:data:`CONFUSABLES`), and with literal escapes read as their
  character (``\\u0041`` is ``A``; ``\\u0000``, ``\\x00``, ``\\u200b`` vanish).
  Text that is NFKC already and where no non-ASCII character touches an ASCII
  one (or is invisible) is left alone: CJK or Cyrillic prose costs one check.
* :func:`digit_view`: numbers written with other separators (``4111.1111.1111.1111``,
  double spaces, ``_``, ``/``, no-break spaces) re-separated by one space, so the
  checksummed detectors read them.
* :func:`glue_view`: a space before a secret's prefix glued to a word
  (``myAKIA…``), so a key is found where a bounded detector would skip it.
* :func:`percent_view`: ``%XX`` escapes decoded.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from gateway.judging.probe import Finding, Probe


@dataclass(frozen=True, slots=True)
class Folded:
    """A view ``text``; its character ``j`` comes from ``original[starts[j]:ends[j]]``."""

    text: str
    starts: list[int]
    ends: list[int]

    def span(self, start: int, end: int) -> tuple[int, int]:
        """The original span of the view's ``text[start:end]`` (``end > start``)."""
        return self.starts[start], self.ends[end - 1]

    def map(self, findings: list[Finding]) -> list[Finding]:
        out = []
        for f in findings:
            if f.end > f.start:
                start, end = self.span(f.start, f.end)
                out.append(Finding(f.entity, start, end))
        return out

    def then(self, inner: Folded) -> Folded:
        """``inner``, a view of this view's text, as a view of the original."""
        return Folded(
            inner.text,
            [self.starts[s] for s in inner.starts],
            [self.ends[e - 1] for e in inner.ends],
        )


class _Builder:
    __slots__ = ("ends", "parts", "starts")

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.starts: list[int] = []
        self.ends: list[int] = []

    def copy(self, text: str, start: int, end: int) -> None:
        """``text[start:end]`` unchanged."""
        if end > start:
            self.parts.append(text[start:end])
            self.starts.extend(range(start, end))
            self.ends.extend(range(start + 1, end + 1))

    def put(self, chars: str, start: int, end: int) -> None:
        """``chars`` in place of ``original[start:end]``."""
        if chars:
            self.parts.append(chars)
            self.starts.extend([start] * len(chars))
            self.ends.extend([end] * len(chars))

    def build(self) -> Folded:
        return Folded("".join(self.parts), self.starts, self.ends)


#: Cyrillic and Greek letters that look like Latin ones (our own table: the
#: letters a reader cannot tell apart in common fonts), as pairs of
#: (look-alike, Latin letter) written as escapes
_LOOK_ALIKES = (
    # cyrillic
    "\u0410A\u0412B\u0415E\u041aK\u041cM\u041dH\u041eO\u0420P\u0421C\u0422T"
    "\u0423Y\u0425X\u0405S\u0406I\u0408J\u051aQ\u051cW\u04aeY\u04bah\u0430a"
    "\u0432b\u0435e\u043ak\u043cm\u043dh\u043eo\u0440p\u0441c\u0442t\u0443y"
    "\u0445x\u0455s\u0456i\u0458j\u051bq\u051dw\u04afy\u04bbh\u04cfl"
    # greek
    "\u0391A\u0392B\u0395E\u0396Z\u0397H\u0399I\u039aK\u039cM\u039dN\u039fO"
    "\u03a1P\u03a4T\u03a5Y\u03a7X\u03b1a\u03bfo\u03c1p\u03bdv\u03b9i\u03bak"
    "\u03c4t\u03c5u\u03c7x\u03f2c\u03f3j"
    # latin
    "\u0261g\u0131i\u0237j\u2113l"
)
CONFUSABLES: Mapping[str, str] = MappingProxyType(
    {_LOOK_ALIKES[i]: _LOOK_ALIKES[i + 1] for i in range(0, len(_LOOK_ALIKES), 2)}
)

_DROP_CATEGORIES = frozenset({"Cf", "Cc", "Mn", "Me", "Cs", "Co", "Cn"})
_KEEP_CONTROLS = frozenset("\t\n\r")
#: literal escapes, as a client may type them (or as JSON inside a string holds
#: them): ``\\uXXXX`` and ``\\xXX`` read as their character, ``\\0`` as NUL
_ESCAPES = re.compile(r"\\(?:u[0-9a-fA-F]{4}|x[0-9a-fA-F]{2}|0(?![0-9]))")
_ASCII_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_NON_ASCII = re.compile(r"[^\x00-\x7f]+")
#: the characters that make an ASCII text worth folding
_PLAIN_BYTES = bytes(range(32, 127)).replace(b"\\", b"") + b"\t\n\r"


_SEGMENTS = re.compile(
    rf"(?P<esc>{_ESCAPES.pattern})|(?P<ctl>{_ASCII_CONTROLS.pattern}+)|{_NON_ASCII.pattern}"
)
#: a non-ASCII character next to a printable ASCII one, an invisible one, or a
#: digit of another script
_MIXED = re.compile(
    "[!-~][^\x00-\x7f]|[^\x00-\x7f][!-~]|(?![0-9])\\d"
    "|[\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufe00-\ufe0f\ufeff"
    "\ufff9-\ufffb\U000e0000-\U000e01ef]"
)


def _smuggled(code: int) -> str | None:
    """The ASCII character an invisible one carries, if it carries one: tag
    characters (U+E0020-E007E mirror ASCII) and variation selectors read as
    bytes (VS1-16 are 0-15, VS17-256 are 16-255), both used to hide text a
    model still reads."""
    if 0xE0020 <= code <= 0xE007E:
        return chr(code - 0xE0000)
    if 0xE0100 <= code <= 0xE01EF:
        byte = code - 0xE0100 + 16
        return chr(byte) if 32 <= byte < 127 else ""
    if 0xFE00 <= code <= 0xFE0F:
        return ""
    return None


def _fold_char(ch: str) -> str:
    """What one non-ASCII character reads as for a detector ('' when invisible)."""
    smuggled = _smuggled(ord(ch))
    if smuggled is not None:
        return smuggled
    if ch.isdecimal():  # a digit of any script reads as its ASCII digit
        return str(unicodedata.decimal(ch))
    out = []
    for c in unicodedata.normalize("NFKC", ch):
        if c in _KEEP_CONTROLS or (c < "\x80" and c >= " "):
            out.append(c)
            continue
        if unicodedata.category(c) in _DROP_CATEGORIES:
            continue
        out.append(CONFUSABLES.get(c, c))
    return "".join(out)


def fold(text: str) -> Folded | None:
    """The folded view of ``text``, or ``None`` when it would equal ``text``."""
    if text.isascii():
        # one translate: anything left is a control character or a backslash
        if not text.encode("ascii").translate(None, _PLAIN_BYTES):
            return None
        if _ESCAPES.search(text) is None and _ASCII_CONTROLS.search(text) is None:
            return None
    elif unicodedata.is_normalized("NFKC", text) and _MIXED.search(text) is None:
        # no character changes under NFKC, and no non-ASCII character touches an
        # ASCII one (a look-alike or an invisible character inside an ASCII
        # token would): nothing to fold for a detector of ASCII shapes
        return None
    b = _Builder()
    cache: dict[str, str] = {}
    last = 0
    for m in _SEGMENTS.finditer(text):
        start, end = m.span()
        b.copy(text, last, start)
        last = end
        escape = m.group("esc")
        if escape is not None:
            char = "\0" if escape == "\\0" else chr(int(escape[2:], 16))
            b.put(_fold_char(char) if not " " <= char < "\x7f" else char, start, end)
            continue
        if m.group("ctl") is not None:
            continue  # dropped
        keep = start  # characters from here on are unchanged so far
        for i in range(start, end):
            ch = text[i]
            folded = cache.get(ch)
            if folded is None:
                folded = cache[ch] = _fold_char(ch)
            if folded != ch:
                b.copy(text, keep, i)
                b.put(folded, i, i + 1)
                keep = i + 1
        b.copy(text, keep, end)
    b.copy(text, last, len(text))
    view = b.build()
    return None if view.text == text else view


#: separators the detectors do not read between digits (they read one space or dash)
_SEPARATORS = frozenset(" \t-.·_/\u00a0\u2009\u202f\u2007")


def digit_view(text: str) -> Folded | None:
    """``text`` with odd separators between digit groups made one space.

    Odd: two or more separators (``4111  1111``), or one of ``. _ / ·``, a tab or
    a no-break space; never a full stop and a space (a sentence's end). A lone ``.`` is re-separated only between groups of 3+
    digits on both sides (``4111.1111``, not ``3.14159`` or ``192.168.1.1``'s
    ``168.1``), so decimals and versions keep reading as they do.
    """
    runs = Probe(text).runs
    if len(runs) < 2:
        return None
    b = _Builder()
    last = 0
    for (left, end), (start, right) in itertools.pairwise(runs):
        gap = text[end:start]
        if len(gap) > 8 or not _SEPARATORS.issuperset(gap) or gap in (" ", "-"):
            continue
        if "." in gap and (" " in gap or "\t" in gap):
            continue  # the end of a sentence ("in 2020. 15 people"), not one number
        if gap == "." and (end - left < 3 or right - start < 3):
            continue
        b.copy(text, last, end)
        b.put(" ", end, start)
        last = start
    if last == 0:
        return None
    b.copy(text, last, len(text))
    return b.build()


#: secret prefixes distinctive enough to be read even glued to a word
GLUED_PREFIXES = (
    "AKIA", "ASIA", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "glpat-",
    "xoxb-", "xoxp-", "xoxa-", "xoxe-", "xoxr-", "xoxs-", "sk-ant-", "sk-proj-",
    "sk-svcacct-", "sk_live_", "sk_test_", "rk_live_", "rk_test_", "AIza", "eyJ",
)  # fmt: skip
_ALNUM = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
_ANCHOR_CHARS = "KSz_J-"


def _anchored() -> Mapping[str, tuple[tuple[int, str], ...]]:
    """Each prefix under the rarest character it holds (its anchor) and its offset."""
    table: dict[str, tuple[tuple[int, str], ...]] = {}
    for prefix in GLUED_PREFIXES:
        char = next(c for c in _ANCHOR_CHARS if c in prefix)
        table[char] = (*table.get(char, ()), (prefix.index(char), prefix))
    return MappingProxyType(table)


_BY_ANCHOR = _anchored()


def glue_view(text: str) -> Folded | None:
    """``text`` with a space before each secret prefix glued to a word."""
    cuts: list[int] = []
    for anchor, prefixes in _BY_ANCHOR.items():
        i = text.find(anchor, 1)
        while i >= 0:
            for offset, prefix in prefixes:
                at = i - offset
                if at > 0 and text[at - 1] in _ALNUM and text.startswith(prefix, at):
                    cuts.append(at)
            i = text.find(anchor, i + 1)
    if not cuts:
        return None
    b = _Builder()
    last = 0
    for at in sorted(set(cuts)):
        b.copy(text, last, at)
        b.put(" ", at, at + 1)  # the space maps onto the prefix's first character
        last = at
    b.copy(text, last, len(text))
    return b.build()


_PERCENT = re.compile(r"%[0-9A-Fa-f]{2}(?:%[0-9A-Fa-f]{2})*")


def percent_view(text: str) -> Folded | None:
    """``text`` with its ``%XX`` escapes decoded (as UTF-8 where they form it)."""
    if "%" not in text:
        return None
    b = _Builder()
    last = 0
    for m in _PERCENT.finditer(text):
        start, end = m.span()
        raw = bytes(int(text[i + 1 : i + 3], 16) for i in range(start, end, 3))
        decoded = raw.decode("utf-8", "replace")
        b.copy(text, last, start)
        b.put(decoded, start, end)
        last = end
    if last == 0:
        return None
    b.copy(text, last, len(text))
    return b.build()
