"""The features the learned task classifier reads: one definition for training
(``scripts/train_task_classifier.py``) and inference (:mod:`gateway.judging.task_model`).

A conversation is read as :data:`SEGMENTS`, bounded slices each with a weight:
the last user message's instruction (its start and end) counts fully, the
middle of a long message (mostly pasted material) less, the earlier user turn,
the last assistant reply and the system prompt less again. Each segment yields
a *set* of string features; a segment's features each count
``weight / sqrt(len(set))`` so a long slice does not outvote a short one.

Features of a slice (lower-cased; words split at ASCII punctuation and
whitespace with one ``bytes.translate``):

* words, and the first five letters of a long word (``trans~``: translate,
  translation, translating; ``übers~``);
* scripts written without spaces (Han, kana, Hangul, Thai): every character
  and every pair of adjacent characters, for at most :data:`SPACELESS`
  characters a slice;
* numbers as their digit count (``#2``), and the symbols code and formulas are
  made of (``%{`` ``%;`` ``%=`` ``%$`` ``%\\`` ...);
* the first two words of the message, as such (``^translate``);
* shapes of the last user message: a code fence, LaTeX, the share of code
  characters and of digits, its length and line count, a closing question
  mark or colon, the number of user turns, a system prompt, tools.

Everything is read from bounded slices, so the cost is bounded whatever the
length of the conversation (``bench/task_heldout.py`` measures it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: (name, weight) of each slice read; the order of :func:`segments`' result
SEGMENTS: tuple[tuple[str, float], ...] = (
    ("instruction", 1.0),
    ("body", 0.35),
    ("previous_user", 0.5),
    ("assistant", 0.2),
    ("system", 0.4),
)
#: characters of the last user message read at its start and end as the instruction
HEAD = 320
TAIL = 200
#: characters of the middle of a long message read as its body
BODY = 300
#: characters read of the earlier user turn, the assistant reply and the system prompt
CONTEXT = 300
ASSISTANT = 200
#: characters of a space-less script (Han, kana, Hangul, Thai) expanded into
#: character features per slice: they carry several letters' worth each
SPACELESS = 160
SPACELESS_TAIL = 100
SPACELESS_CONTEXT = 120
#: characters scanned for the message's shape (code fences, LaTeX, symbols)
SHAPE_HEAD = 1200
SHAPE_TAIL = 400

_STEM = 5
# ASCII punctuation and whitespace separate words (bytes.translate: one C pass)
_SEPARATORS = bytes(
    32 if chr(b) in "\t\n\r\x0b\x0c .,:;!?()[]{}\"'/\\<>=*&%$@|~^`-+#_" else b for b in range(256)
)
#: the symbols code and formulas are made of, each a feature
_SYMBOLS = b"{}()[];=<>$\\^*/+#:?`|&%@~_"
_NOT_SYMBOLS = bytes(b for b in range(256) if b not in _SYMBOLS)
_SYMBOL_FEATURES = {b: "%" + chr(b) for b in _SYMBOLS}
_NOT_DIGITS = bytes(b for b in range(256) if not 48 <= b <= 57)
_CODE_CHARS = b"{};=<>_[]`$"
_DIGITS = b"0123456789"
_LATEX = (
    "\\frac",
    "\\int",
    "\\sqrt",
    "\\sum",
    "\\lim",
    "\\begin{",
    "\\cdot",
    "\\pi",
    "\\le",
    "\\math",
)


@dataclass(frozen=True, slots=True)
class TaskInput:
    """The texts of a request a classifier reads (built by :func:`gateway.judging.task.task_input`).

    ``previous_user`` is the user turn before the last one, ``assistant`` the
    last assistant reply before the last user turn; ``user_turns`` counts the
    user turns. ``has_tools`` says tools were offered.
    """

    last_user: str
    system: str = ""
    has_tools: bool = False
    previous_user: str = ""
    assistant: str = ""
    user_turns: int = 1


def _spaceless(token: str) -> bool:
    """A run of a script written without spaces (Han, kana, Hangul, Thai)."""
    o = ord(token[0])
    return o >= 0x2E80 or 0x0E00 <= o < 0x0E80 or 0x1100 <= o < 0x1200


def words(text: str, out: set[str], spaceless: int = SPACELESS) -> None:
    """Add the word, stem, character and symbol features of ``text`` to ``out``;
    at most ``spaceless`` characters of space-less scripts become character
    features."""
    raw = text.lower().encode("utf-8", "replace")
    ordered = list(map(bytes.decode, raw.translate(_SEPARATORS).split()))
    tokens = set(ordered)
    symbols = raw.translate(None, _NOT_SYMBOLS)
    if symbols:
        out.update([_SYMBOL_FEATURES[b] for b in set(symbols)])
    if raw.translate(None, _NOT_DIGITS):
        # numbers count by their length only: a price list is not a sum
        numbers = [t for t in tokens if t.isdigit()]
        tokens.difference_update(numbers)
        out.update([f"#{min(len(t), 5)}" for t in numbers])
    if not raw.isascii():
        # in the text's order: which characters the cap keeps must not depend on set order
        runs = [t for t in ordered if not t.isascii() and _spaceless(t)]
        if runs:
            tokens.difference_update(runs)
            chars = "".join(runs)[:spaceless]
            out.update(chars)
            out.update([chars[i : i + 2] for i in range(len(chars) - 1)])
    out.update(tokens)
    out.update([t[:_STEM] + "~" for t in tokens if len(t) > _STEM + 1])


def _lead(text: str) -> list[str]:
    """The first two words of ``text``."""
    raw = text.lstrip()[:40].lower().encode("utf-8", "replace")
    return list(map(bytes.decode, raw.translate(_SEPARATORS).split()[:2]))


def _bucket(value: float, edges: tuple[float, ...]) -> int:
    for i, edge in enumerate(edges):
        if value < edge:
            return i
    return len(edges)


def shape(conv: TaskInput, out: set[str]) -> None:
    """Shape features of the last user message and the conversation."""
    text = conv.last_user.strip()
    window = (
        text if len(text) <= SHAPE_HEAD + SHAPE_TAIL else text[:SHAPE_HEAD] + text[-SHAPE_TAIL:]
    )
    raw = window.encode("utf-8", "surrogatepass")
    size = len(raw) or 1
    code = (size - len(raw.translate(None, _CODE_CHARS))) / size
    digits = (size - len(raw.translate(None, _DIGITS))) / size
    out.add(f"$code{_bucket(code, (0.005, 0.02, 0.04, 0.08))}")
    out.add(f"$digits{_bucket(digits, (0.001, 0.01, 0.03, 0.08))}")
    out.add(f"$len{_bucket(len(text), (20, 60, 160, 500, 1500))}")
    out.add(f"$lines{_bucket(window.count(chr(10)), (1, 3, 10, 40))}")
    if "```" in window:
        out.add("$fence")
    if ("\\" in window and any(marker in window for marker in _LATEX)) or window.count("$") >= 2:
        out.add("$latex")
    if text.endswith(("?", "\uff1f", "\u061f")):
        out.add("$question")
    if text[:HEAD].rstrip().endswith((":", "\uff1a")):
        out.add("$colon")
    out.add(f"$turns{min(conv.user_turns, 3)}")
    if conv.system:
        out.add("$system")
    if conv.has_tools:
        out.add("$tools")


def segments(conv: TaskInput) -> list[set[str]]:
    """The feature set of every segment of :data:`SEGMENTS` (some may be empty)."""
    text = conv.last_user
    inst: set[str] = set()
    if len(text) <= HEAD + TAIL:
        words(text, inst)
        body = ""
    else:
        words(text[:HEAD], inst)
        words(text[-TAIL:], inst, SPACELESS_TAIL)
        body = text[HEAD : min(len(text) - TAIL, HEAD + BODY)]
    lead = _lead(text)
    if lead:
        inst.add("^" + lead[0])
        if len(lead) == 2:
            inst.add("^" + lead[0] + " " + lead[1])
    shape(conv, inst)
    out = [inst, set(), set(), set(), set()]
    if body:
        words(body, out[1], SPACELESS_CONTEXT)
    prev = conv.previous_user
    if prev:
        if len(prev) > CONTEXT:
            prev = prev[: CONTEXT - 80] + "\n" + prev[-80:]
        words(prev, out[2], SPACELESS_CONTEXT)
    if conv.assistant:
        words(conv.assistant[:ASSISTANT], out[3], SPACELESS_CONTEXT)
    if conv.system:
        words(conv.system[:CONTEXT], out[4], SPACELESS_CONTEXT)
    return out


def scale(features: set[str], weight: float) -> float:
    """What each feature of a segment counts: ``weight / sqrt(n)``."""
    return weight / math.sqrt(len(features)) if features else 0.0
