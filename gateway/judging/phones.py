"""Phone numbers: international, and national formats with a shape or a context word.

Found without context (the shape is enough):

- ``+`` and a country code, 8-15 digits in groups (``+44 20 7946 0958``,
  ``+41 (0)44 668 18 00``, ``+8613812345678``);
- NANP with valid area and exchange codes (``(415) 555-0100``, ``415-555-0100``);
- national numbers with a trunk ``0`` and separators, 9-12 digits
  (``020 7946 0958``, ``030/123456``, ``01 23 45 67 89``, ``090-1234-5678``);
- Chinese mobiles, 11 digits from ``13``-``19`` (``13812345678``).

Found after a phone word (``phone``, ``tel``, ``mobile``, ``fax``, ``call me
on``, ``Telefon``, ``Handy``, ``téléphone``, ``teléfono``, ``telefone``,
``cellulare``, ``telefoon``, ``телефон``, ``電話``, ``电话``, ``手机``, ``전화``…
within :data:`CONTEXT_WINDOW` characters before): any 7-15 digits in phone-like
groups (``Mobile: 432 03 163``, ``Fax: 9498777106``, ``Desk: 001-253-366-9781``).

Never a phone: a digit run glued to letters or to more digits (the tail of an
IBAN or account number), a date (``2020-06-20``, ``12.03.2024``), a version
(``1.2.3``), a bare run without context other than a Chinese mobile.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from gateway.judging.anchors import DIGITS, fragment, free_left, only_digits
from gateway.judging.probe import Finding, Probe

_SEP_END = r"(?![0-9]|[.\-/:][0-9])"
#: the digit groups are read greedily and never given back (an atomic group): with
#: optional separators, a long digit run splits into groups in thousands of ways,
#: and a regex that backtracks tries them all. :func:`_intl_end` then ends
#: the number where the backtracking one would.
_INTL = re.compile(r"\+[1-9][0-9]{0,2}(?:[ .\-]?\(0?[0-9]{0,4}\))?(?>(?:[ .\-]?[0-9]{1,6}){1,6})")
_INTL_END = re.compile(_SEP_END)
_NANP = re.compile(
    r"(?:1[ .\-]?)?(?:\([2-9][0-9]{2}\) ?|[2-9][0-9]{2}[ .\-])[2-9][0-9]{2}[ .\-][0-9]{4}"
    + _SEP_END
)
_TRUNK = re.compile(
    r"(?:\(0[1-9][0-9]{0,3}\) ?|0[1-9][0-9]{0,3}[ /\-])[0-9]{3,8}(?:[ \-][0-9]{2,4}){0,3}"
    + _SEP_END
)
_PAIRS = re.compile(r"0[1-9]([ .\-])[0-9]{2}(?:\1[0-9]{2}){3}" + _SEP_END)
_CN_MOBILE = re.compile(r"1[3-9][0-9]{9}(?![0-9])")
#: after a phone word: groups of digits, maybe in parentheses, 7-15 digits in all
_LOOSE = re.compile(r"(?>\(?[0-9]{1,15}\)?(?:(?:[ .\-/]|\) ?)\(?[0-9]{1,8}\)?){0,6})" + _SEP_END)
_YMD = re.compile(r"([0-9]{4})([-./])([0-9]{1,2})\2([0-9]{1,2})")
_DMY = re.compile(r"([0-9]{1,2})([-./])([0-9]{1,2})\2([0-9]{2}|[0-9]{4})")

CONTEXT_WINDOW = 28
_CONTEXT = re.compile(
    r"(?<![a-z])(?:phone|telephone|tel|tél|mobile|mob|cell|cellphone|fax|desk"
    r"|call me|call us|call|calling|dial|sms|whatsapp|reach me|answering|messages to"
    r"|telefon|telefonnummer|handy|rufnummer|mobil|téléphone|portable|numéro|teléfono|telefono"
    r"|móvil|movil|celular|número|numero|telefone|telemóvel|cellulare|telefoon|mobiel"
    r"|telefonu|komórka|puhelin|telefonnr)(?![a-z])"
    r"|телефон|тел\.|моб\.|電話|电话|手机|手機|携帯|전화|휴대폰|핸드폰|연락처",
)


def _phone_shape(first: str, length: int, sep: str) -> bool:
    """Could a phone without ``+`` or ``(`` begin with this run? NANP ``415-``,
    ``1-415``; national ``020 ``, ``07700 ``, ``030/``, ``01 23``."""
    if sep not in " .-/":
        return False
    return length == 3 or (length == 1 and first == "1") or (first == "0" and length <= 5)


def _intl_end(text: str, start: int) -> int | None:
    """Where the ``+`` number at ``start`` ends, or None.

    The greedy groups end it, unless a digit (or ``.``/``-``/``/``/``:`` and a
    digit) follows; then it ends before the last space between groups that
    leaves one out, as a backtracking match would.
    """
    m = _INTL.match(text, start)
    if m is None:
        return None
    stop = m.end()
    if _INTL_END.match(text, stop):
        return stop
    groups_start = start + 2
    space = text.rfind(" ", groups_start, stop)
    while space > groups_start:
        if text[space - 1] in DIGITS and text[space + 1] in DIGITS:
            return space
        space = text.rfind(" ", groups_start, space)
    return None


#: words that say what the number just before them is ("930.167.3943 fax")
_AFTER = re.compile(
    r"[ \t(\-]{0,3}(?:phone|tel|mobile|mob|cell|fax|office|desk|home|work)(?![a-z])"
)


def _in_context(probe: Probe, start: int) -> bool:
    return _CONTEXT.search(probe.lower, max(0, start - CONTEXT_WINDOW), start) is not None


def _labelled_after(probe: Probe, end: int) -> bool:
    return _AFTER.match(probe.lower, end) is not None


def _loose_ok(number: str) -> bool:
    """7-15 digits, and not a date or a range of years (``2019-2020``)."""
    if not 7 <= len(only_digits(number)) <= 15 or _is_date(number):
        return False
    groups = _GROUPS.findall(number)
    return not all(len(g) == 4 and g[:2] in ("19", "20") for g in groups)


_GROUPS = re.compile(r"[0-9]+")


def _is_date(number: str) -> bool:
    """The whole number is a calendar date (``2020-06-20``, ``20.06.2020``, ``6/20/20``)."""
    m = _YMD.fullmatch(number)
    if m is not None:
        return 1 <= int(m.group(3)) <= 12 and 1 <= int(m.group(4)) <= 31
    m = _DMY.fullmatch(number)
    if m is not None:
        a, b = int(m.group(1)), int(m.group(3))
        return 1 <= min(a, b) <= 12 and 1 <= max(a, b) <= 31
    return False


def phone(probe: Probe) -> Iterator[Finding]:
    text = probe.text
    end = 0
    n = len(text)
    for run_start, run_end in probe.starts:
        start = run_start
        if start and text[start - 1] in "+(":
            start -= 1
        if start < end or not free_left(text, start):
            continue
        if text[start] == "+":
            stop = _intl_end(text, start)
            if stop is not None and 8 <= len(only_digits(text[start:stop])) <= 15:
                end = stop
                yield Finding("phone", start, end)
            continue
        if fragment(text, start):
            continue
        m = None
        sep = text[run_end] if run_end < n else ""
        if text[start] == "(" or _phone_shape(text[run_start], run_end - run_start, sep):
            m = _NANP.match(text, start)
            if m is None:
                m = _PAIRS.match(text, start) or _TRUNK.match(text, start)
                if m is not None and not 9 <= len(only_digits(m.group())) <= 12:
                    m = None
        if m is None and run_end - run_start == 11 and text[start] == "1":
            m = _CN_MOBILE.match(text, start)
        if m is None:
            m = _LOOSE.match(text, start)
            if m is not None and not (
                _loose_ok(m.group())
                and (_in_context(probe, start) or _labelled_after(probe, m.end()))
            ):
                m = None
        if m is not None:
            end = m.end()
            yield Finding("phone", start, end)
