"""Built-in detectors for personal data: compiled patterns plus checksums.

This module holds cards, IP addresses and emails, and gathers every personal-data
detector by the probe view it reads first (:data:`ON_STARTS` ...): national ids
are in :mod:`gateway.judging.national_ids`, IBANs in :mod:`gateway.judging.iban`,
phones in :mod:`gateway.judging.phones`, dates of birth in :mod:`gateway.judging.dob`.

Each detector is a function ``(probe) -> Iterator[Finding]`` that first runs a
cheap prefilter (a single-character ``in`` test, the text's digit runs), so
ordinary prose costs a few microseconds. Numeric detectors are anchored at the
starts of digit runs instead of scanning every position of the text.

Checks that keep false positives down, per entity:

- ``payment_card``: 13-19 digits (single spaces or dashes between them),
  leading digit 2-6 (the major networks' ranges), Luhn-valid; after a card word
  ("card", "cc", "tarjeta", "Karte", "carte", "カード"…), 12-19 digits of any network.
- ``iban``, national ids, ``phone``, ``date_of_birth``: see their modules.
- ``ip_address``: IPv4 with valid octets (no leading zeros) and IPv6 that
  parses, has a digit and two non-empty groups. A dotted quad is an address
  even when it is a version number, unless the word "version" just precedes it.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterator

from gateway.judging import national_ids as ids
from gateway.judging.anchors import CARD_WORDS, anchored, fragment, free_left, only_digits
from gateway.judging.checksums import luhn_valid
from gateway.judging.dob import date_of_birth
from gateway.judging.iban import iban
from gateway.judging.phones import phone
from gateway.judging.probe import Finding, Probe, lower_aligned, match_end

__all__ = ["date_of_birth", "email", "iban", "ip_address", "payment_card", "phone"]

_DIGITS = "0123456789"


_CARD = re.compile(r"[2-6](?:[ -]?[0-9]){12,18}(?![0-9]|-[0-9])")
#: contiguous, or grouped with a first group of four (4-4-4-4, Amex 4-6-5)
_card = anchored(
    "payment_card",
    _CARD,
    lambda s: luhn_valid(only_digits(s)),
    lambda n, sep: 13 <= n <= 19 or (n == 4 and sep in " -"),
    whole=True,
)
#: after a card word: 12-19 digits from any network (Maestro's 12, UATP's leading 1)
_CARD_ANY = re.compile(r"[0-9](?:[ -]?[0-9]){11,18}(?![0-9]|-[0-9])")
_CARD_WORDS = CARD_WORDS
_CARD_WINDOW = 32


def _card_in_context(probe: Probe) -> Iterator[Finding]:
    text = probe.text
    n = len(text)
    for run_start, run_end in probe.starts:
        length = run_end - run_start
        sep = text[run_end] if run_end < n else ""
        if (
            not (12 <= length <= 19 or (length == 4 and sep in " -"))
            or not free_left(text, run_start)
            or fragment(text, run_start)
        ):
            continue
        m = _CARD_ANY.match(text, run_start)
        if m is None:
            continue
        digits = only_digits(m.group())
        if (
            not (text[run_start] in "23456" and len(digits) >= 13)  # the shape alone finds those
            and luhn_valid(digits)
            and _CARD_WORDS.search(probe.lower, max(0, run_start - _CARD_WINDOW), run_start)
        ):
            yield Finding("payment_card", run_start, m.end())


def payment_card(probe: Probe) -> Iterator[Finding]:
    """Cards: 13-19 digits from 2-6, Luhn; after a card word, 12-19 digits, Luhn."""
    yield from _card(probe)
    yield from _card_in_context(probe)


_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}(?![0-9]|\.[0-9])")
_ipv4 = anchored("ip_address", _IPV4, lambda s: True, lambda n, sep: n <= 3 and sep == ".")
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
            and free_left(text, start)
            and (last == n or not text[last].isalnum())
            and _is_ipv6(candidate, text.startswith("/", last))
        ):
            stop = last
            yield Finding("ip_address", start, last)


def _is_ipv6(candidate: str, prefix: bool) -> bool:
    """A parsable address with a digit and two groups; one group will do for
    ``::1`` (``::`` in front) and a network (``fe80::/10``, ``prefix``)."""
    if not any(ch in _DIGITS for ch in candidate):
        return False
    groups = sum(1 for group in candidate.split(":") if group)
    if groups < 2 and not (groups == 1 and (prefix or candidate.startswith("::"))):
        return False
    try:
        ipaddress.IPv6Address(candidate)
    except ValueError:
        return False
    return True


def ip_address(probe: Probe) -> Iterator[Finding]:
    yield from _ipv4_not_version(probe)
    yield from _ipv6(probe)


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
    *ids.ON_STARTS,
    ("ip_address", _ipv4_not_version),
    ("phone", phone),
)
#: parts that try nothing unless :attr:`Probe.lettered` has a run
ON_LETTERED: tuple[tuple[str, Detect], ...] = ids.ON_LETTERED
#: parts that try nothing unless :attr:`Probe.runs` has a run
ON_RUNS: tuple[tuple[str, Detect], ...] = (
    ("iban", iban),
    *ids.ON_RUNS,
    ("date_of_birth", date_of_birth),
)
#: parts that try nothing unless their character (one of the probe's marks, as
#: a byte value: ``int in bytes`` is a memchr) is in the text
ON_CHAR: tuple[tuple[int, str, Detect], ...] = (
    (ord("@"), "email", email),
    (ord(":"), "ip_address", _ipv6),
)
#: every part, for the reference scan that runs them all
ALL: tuple[tuple[str, Detect], ...] = (
    *ON_STARTS,
    *ON_LETTERED,
    *ON_RUNS,
    *((name, detect) for _, name, detect in ON_CHAR),
)
