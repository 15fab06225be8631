"""Built-in detectors for personal data: compiled patterns plus checksums.

Each detector is a function ``(probe) -> Iterator[Finding]`` that first runs a
cheap prefilter (a single-character ``in`` test, the text's digit runs), so
ordinary prose costs a few microseconds. Numeric detectors are anchored at the
starts of digit runs instead of scanning every position of the text.

Checks that keep false positives down, per entity:

- ``payment_card``: 13-19 digits (single spaces or dashes between them),
  leading digit 2-6 (the major networks' ranges), Luhn-valid.
- ``us_ssn``: ``AAA-GG-SSSS`` (dashes or spaces), never area 000, 666 or 9xx,
  group 00 or serial 0000.
- ``uk_nino``: the format and the letters HMRC allows (no checksum exists).
- ``ca_sin``: ``123 456 782`` grouped 3-3-3, first digit not 0 or 8, Luhn.
- ``es_dni``: Spanish DNI/NIE, 8 digits (NIE: X/Y/Z + 7) and the mod-23 letter.
- ``in_aadhaar``: 12 digits grouped 4-4-4, first digit 2-9, Verhoeff.
- ``iban``: known country, that country's length, mod-97 = 1.
- ``ip_address``: IPv4 with valid octets (no leading zeros) and IPv6 that
  parses, has a digit and two non-empty groups. A dotted quad is an address
  even when it is a version number, unless the word "version" just precedes it.
- ``phone``: ``+`` international (8-15 digits), NANP ``(415) 555-0100`` with
  valid area and exchange codes, national numbers with a trunk ``0`` and
  separators (``020 7946 0958``, ``030 123456``, ``01 23 45 67 89``). A bare
  digit string is never a phone.
- ``date_of_birth``: a full date within a few characters after "DOB", "date of
  birth", "birth date", "birthday" or "born".
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterator

from gateway.judging.checksums import IBAN_LENGTHS, iban_valid, luhn_valid, verhoeff_valid
from gateway.judging.probe import Finding, Probe, lower_aligned, match_end

_DIGITS = "0123456789"
_DNI_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE"


# --- numeric detectors, anchored at digit runs ----------------------------------

#: a match may not start right after one of these (it would be a fragment)
_LEFT_STOP = frozenset("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_.-/+@")


def _free_left(text: str, i: int) -> bool:
    return i == 0 or text[i - 1] not in _LEFT_STOP


def _anchored(
    entity: str,
    pattern: re.Pattern[str],
    valid: Callable[[str], bool],
    fits: Callable[[int, str], bool],
    back: int = 0,
) -> Callable[[Probe], Iterator[Finding]]:
    """A detector trying ``pattern`` at digit runs: :attr:`Probe.starts`, or, with
    ``back`` characters before the run, :attr:`Probe.lettered`.

    ``fits(run_length, next_char)`` is the cheap shape test that decides whether
    the regex is tried at all (an SSN starts with 3 digits and a dash or space).
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
                or not _free_left(text, start)
            ):
                continue
            m = pattern.match(text, start)
            if m is not None:
                # a number that fails its checksum is not one, nor is any tail of it
                end = m.end()
                if valid(m.group()):
                    yield Finding(entity, start, end)

    return detect


def _only_digits(s: str) -> str:
    return "".join(ch for ch in s if ch in _DIGITS)


_CARD = re.compile(r"[2-6](?:[ -]?[0-9]){12,18}(?![0-9]|-[0-9])")
#: contiguous, or grouped with a first group of four (4-4-4-4, Amex 4-6-5)
payment_card = _anchored(
    "payment_card",
    _CARD,
    lambda s: luhn_valid(_only_digits(s)),
    lambda n, sep: 13 <= n <= 19 or (n == 4 and sep in " -"),
)

_SSN = re.compile(r"(?!000|666|9)[0-9]{3}([- ])(?!00)[0-9]{2}\1(?!0000)[0-9]{4}(?![0-9]|[-.][0-9])")
us_ssn = _anchored("us_ssn", _SSN, lambda s: True, lambda n, sep: n == 3 and sep in " -")

_SIN = re.compile(r"[1-79][0-9]{2}([ -])[0-9]{3}\1[0-9]{3}(?![0-9]|[-.][0-9])")
ca_sin = _anchored(
    "ca_sin", _SIN, lambda s: luhn_valid(_only_digits(s)), lambda n, sep: n == 3 and sep in " -"
)

_AADHAAR = re.compile(r"[2-9][0-9]{3}([ -])[0-9]{4}\1[0-9]{4}(?![0-9]|[-.][0-9])")
in_aadhaar = _anchored(
    "in_aadhaar",
    _AADHAAR,
    lambda s: verhoeff_valid(_only_digits(s)),
    lambda n, sep: n == 4 and sep in " -",
)


def _dni_valid(s: str) -> bool:
    body = s[:-1].replace("-", "")
    head = "XYZ".find(body[0])
    number = int(str(head) + body[1:] if head >= 0 else body)
    return _DNI_LETTERS[number % 23] == s[-1]


_DNI = re.compile(r"[0-9]{8}-?[A-Z](?![A-Za-z0-9])")
_NIE = re.compile(r"[XYZ][0-9]{7}-?[A-Z](?![A-Za-z0-9])")
_dni = _anchored("es_dni", _DNI, _dni_valid, lambda n, sep: n == 8)
_nie = _anchored("es_dni", _NIE, _dni_valid, lambda n, sep: n == 7, back=1)


def es_dni(probe: Probe) -> Iterator[Finding]:
    yield from _dni(probe)
    yield from _nie(probe)


_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}(?![0-9]|\.[0-9])")
_ipv4 = _anchored("ip_address", _IPV4, lambda s: True, lambda n, sep: n <= 3 and sep == ".")
_HEX = frozenset("0123456789abcdefABCDEF")
_IPV6_CHARS = _HEX | {":", "."}


def _ipv4_not_version(probe: Probe) -> Iterator[Finding]:
    for f in _ipv4(probe):
        if "version" not in lower_aligned(probe.text[max(0, f.start - 12) : f.start]):
            yield f


#: the longest IPv6 address in text form (``ffff:...:255.255.255.255``)
_IPV6_MAX = 45
_IPV6_RUN = re.compile(r"[0-9A-Fa-f:.]*")


def _ipv6(probe: Probe) -> Iterator[Finding]:
    """IPv6 addresses: a run of hex digits, ``:`` and ``.`` around a ``:``.

    Each run is read once, however many colons it holds; a run longer than an
    address can be is none (a fingerprint, a hex dump).
    """
    text = probe.text
    n = len(text)
    stop = 0
    for colon in probe.positions(":"):
        # prose ("Note: the") fails this at once: an address has hex or ':' on both sides
        if (
            colon < stop
            or colon + 1 >= n
            or text[colon + 1] not in _IPV6_CHARS
            or (colon and text[colon - 1] not in _IPV6_CHARS)
        ):
            continue
        start = colon
        while start > stop and text[start - 1] in _IPV6_CHARS and colon - start <= _IPV6_MAX:
            start -= 1
        end = match_end(_IPV6_RUN, text, colon)
        stop = end
        candidate = text[start:end].rstrip(".")
        if candidate.endswith(":") and not candidate.endswith("::"):
            candidate = candidate[:-1]
        if len(candidate) > _IPV6_MAX or (start and text[start - 1] in _IPV6_CHARS):
            continue
        last = start + len(candidate)
        if (
            candidate.count(":") >= 2
            and _free_left(text, start)
            and (last == n or not text[last].isalnum())
            and _is_ipv6(candidate)
        ):
            stop = last
            yield Finding("ip_address", start, last)


def _is_ipv6(candidate: str) -> bool:
    if not any(ch in _DIGITS for ch in candidate):
        return False
    if sum(1 for group in candidate.split(":") if group) < 2:
        return False
    try:
        ipaddress.IPv6Address(candidate)
    except ValueError:
        return False
    return True


def ip_address(probe: Probe) -> Iterator[Finding]:
    yield from _ipv4_not_version(probe)
    yield from _ipv6(probe)


_IBAN = re.compile(r"[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,30}")


def iban(probe: Probe) -> Iterator[Finding]:
    text = probe.text
    end = 0
    for run_start, run_end in probe.lettered:
        start = run_start - 2
        if run_end - run_start != 2 or start < end or start < 0 or not _free_left(text, start):
            continue
        m = _IBAN.match(text, start)
        if m is None:
            continue
        compact = m.group().replace(" ", "")
        length = IBAN_LENGTHS.get(compact[:2])
        if length is None or len(compact) < length or not iban_valid(compact[:length]):
            continue
        # the match may run on into following capitals: stop after `length` chars
        stop, seen = start, 0
        while seen < length:
            if text[stop] != " ":
                seen += 1
            stop += 1
        if stop < len(text) and text[stop].isalnum():
            continue
        end = stop
        yield Finding("iban", start, stop)


_NINO = re.compile(
    r"(?!BG|GB|KN|NK|NT|TN|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]"
    r" ?[0-9]{2} ?[0-9]{2} ?[0-9]{2} ?[A-D](?![A-Za-z0-9])"
)
_nino_tight = _anchored("uk_nino", _NINO, lambda s: True, lambda n, sep: n == 6, back=2)
_nino_spaced = _anchored(
    "uk_nino", _NINO, lambda s: True, lambda n, sep: n == 2 and sep == " ", back=3
)


def uk_nino(probe: Probe) -> Iterator[Finding]:
    yield from _nino_tight(probe)
    yield from _nino_spaced(probe)


_SEP_END = r"(?![0-9]|[.\-/:][0-9])"
#: the digit groups are read greedily and never given back (an atomic group): with
#: optional separators, a long digit run splits into groups in thousands of ways,
#: and a regex that backtracks tries them all. :func:`_intl_phone_end` then ends
#: the number where the backtracking one would.
_PHONE_INTL = re.compile(
    r"\+[1-9][0-9]{0,2}(?:[ .\-]?\(0?[0-9]{0,4}\))?(?>(?:[ .\-]?[0-9]{1,6}){1,6})"
)
_PHONE_INTL_END = re.compile(_SEP_END)
_PHONE_NANP = re.compile(
    r"(?:1[ .\-]?)?(?:\([2-9][0-9]{2}\) ?|[2-9][0-9]{2}[ .\-])[2-9][0-9]{2}[ .\-][0-9]{4}"
    + _SEP_END
)
_PHONE_TRUNK = re.compile(
    r"(?:\(0[1-9][0-9]{0,3}\) ?|0[1-9][0-9]{0,3}[ /\-])[0-9]{3,8}(?:[ \-][0-9]{2,4}){0,3}"
    + _SEP_END
)
_PHONE_PAIRS = re.compile(r"0[1-9]([ .\-])[0-9]{2}(?:\1[0-9]{2}){3}" + _SEP_END)


def _phone_shape(first: str, length: int, sep: str) -> bool:
    """Could a phone without ``+`` or ``(`` begin with this run? NANP ``415-``,
    ``1-415``; national ``020 ``, ``07700 ``, ``030/``, ``01 23``."""
    if sep not in " .-/":
        return False
    return length == 3 or (length == 1 and first == "1") or (first == "0" and length <= 5)


def _intl_phone_end(text: str, start: int) -> int | None:
    """Where the ``+`` number at ``start`` ends, or None.

    The greedy groups end it, unless a digit (or ``.``/``-``/``/``/``:`` and a
    digit) follows; then it ends before the last space between groups that
    leaves one out, as a backtracking match would.
    """
    m = _PHONE_INTL.match(text, start)
    if m is None:
        return None
    stop = m.end()
    if _PHONE_INTL_END.match(text, stop):
        return stop
    groups_start = start + 2
    space = text.rfind(" ", groups_start, stop)
    while space > groups_start:
        if text[space - 1] in _DIGITS and text[space + 1] in _DIGITS:
            return space
        space = text.rfind(" ", groups_start, space)
    return None


def phone(probe: Probe) -> Iterator[Finding]:
    text = probe.text
    end = 0
    n = len(text)
    for run_start, run_end in probe.starts:
        start = run_start
        if start and text[start - 1] in "+(":
            start -= 1
        elif not _phone_shape(
            text[run_start], run_end - run_start, text[run_end] if run_end < n else ""
        ):
            continue
        if start < end or not _free_left(text, start):
            continue
        if text[start] == "+":
            stop = _intl_phone_end(text, start)
            if stop is not None and 8 <= len(_only_digits(text[start:stop])) <= 15:
                end = stop
                yield Finding("phone", start, end)
            continue
        else:
            m = _PHONE_NANP.match(text, start)
            if m is None:
                m = _PHONE_PAIRS.match(text, start) or _PHONE_TRUNK.match(text, start)
                ok = m is not None and 9 <= len(_only_digits(m.group())) <= 12
            else:
                ok = True
        if ok and m is not None:
            end = m.end()
            yield Finding("phone", start, end)


# --- date of birth, anchored at its keyword -------------------------------------

_DOB_KEYWORDS = ("birth", "born", "dob", "d.o.b")
_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
)
_DATE = re.compile(
    r"(?:[0-9]{1,2}[./\-][0-9]{1,2}[./\-](?:[0-9]{4}|[0-9]{2})"
    r"|[0-9]{4}[./\-][0-9]{1,2}[./\-][0-9]{1,2}"
    rf"|[0-9]{{1,2}}(?:st|nd|rd|th)?(?: of)? {_MONTH},? [0-9]{{4}}"
    rf"|{_MONTH} [0-9]{{1,2}}(?:st|nd|rd|th)?,? [0-9]{{4}})(?![0-9])",
    re.IGNORECASE,
)
#: how far after the keyword the date may start ("date of birth: ", "born on the ")
_DOB_WINDOW = 24


#: where a date can start: a digit or a month's first three letters (lower-cased text)
_DATE_START = re.compile(r"[0-9]|jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec")


def date_of_birth(probe: Probe) -> Iterator[Finding]:
    """A date starting within :data:`_DOB_WINDOW` characters after a keyword.

    The date pattern is tried only where a date can start (a digit, a month's
    name) in that window, not at every position of it: thousands of "born"s
    cost a few cheap searches each.
    """
    if not probe.has_digits:  # every date has digits
        return
    lower = probe.lower
    text = probe.text
    end = 0
    for keyword in _DOB_KEYWORDS:
        i = lower.find(keyword)
        while i >= 0:
            after = i + len(keyword)
            if _keyword_bounded(lower, i, keyword):
                date = _date_after(text, lower, max(after, end), after + _DOB_WINDOW + 1)
                if date is not None:
                    end = date.end()
                    yield Finding("date_of_birth", date.start(), date.end())
            i = lower.find(keyword, after)


def _date_after(text: str, lower: str, pos: int, last: int) -> re.Match[str] | None:
    """The first date starting in ``[pos, last)``."""
    start = _DATE_START.search(lower, pos, last + 2)
    while start is not None and start.start() < last:
        m = _DATE.match(text, start.start())
        if m is not None:
            return m
        start = _DATE_START.search(lower, start.start() + 1, last + 2)
    return None


def _keyword_bounded(lower: str, i: int, keyword: str) -> bool:
    """The keyword is a word of its own ("born", not "stubborn"; "dob", not "adobe")."""
    if i and lower[i - 1].isalpha():
        return False
    if keyword in ("birth", "born"):  # "birthday", "birthdate" are keywords too
        return True
    after = i + len(keyword)
    return after >= len(lower) or not lower[after].isalpha()


# --- email ---------------------------------------------------------------------

#: the local-part characters people use (RFC 5322 allows more, e.g. ``=`` and ``/``,
#: which would glue ``password=`` or a path onto the address)
_EMAIL_LOCAL = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._%+'-")
_EMAIL_DOMAIN = re.compile(
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![A-Za-z0-9\-])"
)


def email(probe: Probe) -> Iterator[Finding]:
    text = probe.text
    at = text.find("@")
    while at >= 0:
        start = at
        while start > 0 and text[start - 1] in _EMAIL_LOCAL and at - start < 64:
            start -= 1
        while start < at and text[start] in ".'`{|}":  # trim leading punctuation
            start += 1
        m = _EMAIL_DOMAIN.match(text, at)
        if start < at and m is not None and not _in_url_authority(text, start):
            yield Finding("email", start, m.end())
            at = text.find("@", m.end())
        else:
            at = text.find("@", at + 1)


def _in_url_authority(text: str, start: int) -> bool:
    """``scheme://user:pass@host``: the ``pass@host`` there is a credential, not an address."""
    head = text[max(0, start - 80) : start]
    k = head.rfind("://")
    return k >= 0 and not any(ch.isspace() for ch in head[k:])


# --- the detectors in parts, by the probe view each part reads -------------------

Detect = Callable[[Probe], Iterator[Finding]]

#: parts that try nothing unless :attr:`Probe.starts` has a run
ON_STARTS: tuple[tuple[str, Detect], ...] = (
    ("payment_card", payment_card),
    ("us_ssn", us_ssn),
    ("ca_sin", ca_sin),
    ("es_dni", _dni),
    ("in_aadhaar", in_aadhaar),
    ("ip_address", _ipv4_not_version),
    ("phone", phone),
)
#: parts that try nothing unless :attr:`Probe.lettered` has a run
ON_LETTERED: tuple[tuple[str, Detect], ...] = (
    ("iban", iban),
    ("uk_nino", uk_nino),
    ("es_dni", _nie),
)
#: parts that try nothing unless :attr:`Probe.runs` has a run (every date has digits)
ON_RUNS: tuple[tuple[str, Detect], ...] = (("date_of_birth", date_of_birth),)
#: parts that try nothing unless their character (one of the probe's marks, as
#: a byte value: ``int in bytes`` is a memchr) is in the text
ON_CHAR: tuple[tuple[int, str, Detect], ...] = (
    (ord("@"), "email", email),
    (ord(":"), "ip_address", _ipv6),
)
