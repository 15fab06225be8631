"""IBANs: compact or in groups of four, upper or lower case, any IBAN country.

A candidate starts at a digit run whose two check digits follow two letters
that are a known country code (:data:`~gateway.judging.checksums.IBAN_LENGTHS`)
with no letter or digit right before them (punctuation may be: ``/DE89…``,
``.de89…``); it then reads letters and digits, single spaces
allowed between them, until it holds that country's length. It is an IBAN when
nothing alphanumeric is glued after it and the ISO 13616 mod-97 check holds.
So ``DE89370400440532013000`` is found in JSON (``"DE89…"``), YAML (``iban:
DE89…``), CSV (``,DE89…,``), after ``IBAN:`` and in ``de89 3704 0044 …``.
"""

from __future__ import annotations

from collections.abc import Iterator

from gateway.judging.checksums import IBAN_LENGTHS, iban_valid
from gateway.judging.probe import Finding, Probe

_ALNUM = frozenset("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_LETTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def _read(text: str, start: int, length: int) -> int | None:
    """Where ``length`` alphanumerics from ``start`` end (single spaces or dashes
    between them allowed), or None when the text holds fewer."""
    n = len(text)
    i, seen = start, 0
    while seen < length:
        if i >= n:
            return None
        ch = text[i]
        if ch in _ALNUM:
            seen += 1
        elif ch not in " -" or i + 1 >= n or text[i + 1] not in _ALNUM or text[i - 1] in " -":
            return None
        i += 1
    return i


def iban(probe: Probe) -> Iterator[Finding]:
    text = probe.text
    end = 0
    for run_start, run_end in probe.runs:
        start = run_start - 2
        if (
            run_end - run_start < 2
            or start < end
            or start < 0
            or text[start] not in _LETTERS
            or text[start + 1] not in _LETTERS
            or (start and text[start - 1] in _ALNUM)
        ):
            continue
        length = IBAN_LENGTHS.get(text[start : start + 2].upper())
        if length is None:
            continue
        stop = _read(text, start, length)
        if stop is None or (stop < len(text) and text[stop] in _ALNUM):
            continue
        if iban_valid(text[start:stop].replace(" ", "").replace("-", "").upper()):
            end = stop
            yield Finding("iban", start, stop)
