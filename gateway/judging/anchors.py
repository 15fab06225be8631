"""What numeric detectors share: anchoring at digit runs, clean left edges, context words.

A numeric entity is tried only where a digit run of the right shape starts
(:attr:`~gateway.judging.probe.Probe.starts` or ``lettered``), never at every
position of a text. Context words (``"BSN"``, ``"Steuer-ID"``, ``"生年月日"``)
are looked up only around a candidate that already has the shape (and passed
its checksum), so prose pays nothing for them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from gateway.judging.probe import Finding, Probe

DIGITS = "0123456789"

#: a match may not start right after one of these (it would be a fragment)
LEFT_STOP = frozenset("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_.-/+@")

#: how far before (and after) a candidate its context words may stand
CONTEXT_BEFORE = 48
CONTEXT_AFTER = 24


def free_left(text: str, i: int) -> bool:
    return i == 0 or text[i - 1] not in LEFT_STOP


def free_right(text: str, i: int) -> bool:
    """Nothing glued to the right of a match ending at ``i`` (a letter, a digit,
    or a separator and a digit)."""
    if i >= len(text):
        return True
    ch = text[i]
    if ch.isalnum() or ch == "_":
        return False
    return not (ch in ".-/:" and i + 1 < len(text) and text[i + 1] in DIGITS)


def fragment(text: str, start: int) -> bool:
    """A number at ``start`` continues a short group with a digit, one space
    before it (``BE71 0961 2345``, ``51 824 753 5564``): a piece of a longer
    number (an IBAN, an account), not a number of its own."""
    if start < 2 or text[start - 1] != " " or text[start - 2] not in DIGITS:
        return False
    i = start - 2
    while i > 0 and start - 1 - i < 5 and (text[i - 1].isalnum() or text[i - 1] == "-"):
        i -= 1
    return start - 1 - i <= 4 and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "-"))


def only_digits(s: str) -> str:
    return "".join(ch for ch in s if ch in DIGITS)


def near(probe: Probe, start: int, end: int, words: tuple[str, ...]) -> bool:
    """Whether one of ``words`` (lower case) stands shortly before ``start`` or after ``end``."""
    lower = probe.lower
    window = lower[max(0, start - CONTEXT_BEFORE) : start] + " " + lower[end : end + CONTEXT_AFTER]
    return any(word in window for word in words)


def anchored(
    entity: str,
    pattern: re.Pattern[str],
    valid: Callable[[str], bool],
    fits: Callable[[int, str], bool],
    back: int = 0,
    whole: bool = False,
) -> Callable[[Probe], Iterator[Finding]]:
    """A detector trying ``pattern`` at digit runs: :attr:`Probe.starts`, or, with
    ``back`` characters before the run, :attr:`Probe.lettered`.

    ``fits(run_length, next_char)`` is the cheap shape test that decides whether
    the regex is tried at all (an SSN starts with 3 digits and a dash or space).
    ``whole``: a match right after a group with a digit and a space
    (``DE89 3704 0044 …``) is a fragment of a longer number, not one.
    """

    def detect(probe: Probe) -> Iterator[Finding]:
        text = probe.text
        n = len(text)
        end = 0
        for run_start, run_end in probe.lettered if back else probe.starts:
            start = run_start - back
            if (
                start < end
                or start < 0
                or not fits(run_end - run_start, text[run_end] if run_end < n else "")
                or not free_left(text, start)
                or (whole and fragment(text, start))
            ):
                continue
            m = pattern.match(text, start)
            if m is not None:
                # a number that fails its checksum is not one, nor is any tail of it
                end = m.end()
                if valid(m.group()):
                    yield Finding(entity, start, end)

    return detect


#: words that say a number is a payment card (any of the languages the other context words cover)
CARD_WORDS = re.compile(
    r"(?<![a-z])(?:card|cc|credit|debit|visa|mastercard|amex|maestro|tarjeta|karte|kreditkarte"
    r"|carte|cartão|cartao|carta|kaart|karta|kort)(?![a-z])|カード|卡|카드|карт"
)
