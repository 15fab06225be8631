"""The prefiltered scan finds exactly what running every detector finds.

:meth:`Scanner.find` skips the detectors whose first view of the text is empty;
:meth:`Scanner.find_all_detectors` runs them all. Generated texts mix prose,
digits, separators, capitals and whole or cut fragments of real entity formats,
so every prefilter is exercised on both sides of its threshold.
"""

from __future__ import annotations

import base64
import json
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.judging.probe import Probe
from gateway.judging.sensitivity import BUILTIN_ENTITIES, UNJUDGED, Scanner

SCANNER = Scanner()
CUSTOM = Scanner(custom={"ticket": r"TICKET-[0-9]{4}", "code_word": r"(?i)blue ?moon"})


def _b64(obj: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


#: real-looking entities of every built-in type, plus near misses
FRAGMENTS = (
    "4111 1111 1111 1111", "4111111111111111", "5500-0000-0000-0004", "378282246310005",
    "4111 1111 1111 1112", "GB82 WEST 1234 5698 7654 32", "DE89370400440532013000",
    "GB82WEST12345698765432", "FR14 2004 1010 0505 0001 3M02 606", "123-45-6789",
    "078-05-1120", "219 09 9999", "666-12-3456", "AB123456C", "AB 12 34 56 C", "JG103759A",
    "QQ123456C", "130 692 544", "278-901-236", "12345678Z", "X1234567L", "Y7654321G",
    "2345 6789 0124", "4987-6543-2102", "+1 415 555 0100", "+44 20 7946 0958",
    "(415) 555-0100", "415.555.0100", "1-800-555-0199", "020 7946 0958", "030 123456",
    "01 23 45 67 89", "07700 900123", "10.20.30.40", "192.168.0.1", "256.1.1.1",
    "version 1.2.3.4", "2001:db8::1", "fe80::1ff:fe23:4567:890a", "::1", "a:b:c",
    "jane.doe@example.com", "x@y.io", "user@localhost", "AKIAIOSFODNN7EXAMPLE",
    "ASIAIOSFODNN7EXAMPLE", "ghp_" + "A1b2C3d4E5" * 3 + "F6g7H8",
    "github_pat_" + "a1B2" * 6, "glpat-xxxxXXXX1234yyyyZZZZ", "xoxb-123456789012-AbCdEf",
    "https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXXXXXX",
    "sk-proj-abc123DEF456ghi789JKL0", "sk-ant-api03-" + "Ab1_" * 6,
    "sk_live_4eC39HqLyjWDarjtT1zdp7dc", "AIzaSyA-1234567890abcdefghijklmnopqrstu",
    f"{_b64({'alg': 'HS256'})}.{_b64({'sub': '1'})}.sig", "eyJnot-base64.abc.def",
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA0Z3VS5JJcds3\n-----END RSA PRIVATE KEY-----",
    "-----BEGIN OPENSSH PRIVATE KEY-----\\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmU",
    "password=hunter22", "PASSWORD: s3cret!", '"api_key": "abc123def456"', "token=$TOKEN",
    "postgres://admin:pa55w0rd@db.internal:5432/app", "DOB: 12/03/1985",
    "date of birth 1985-03-12", "born on 12th March 1985", "birthday: March 12, 1985",
    "TICKET-1234", "blue moon",
    "Steuer-ID 65929970489", "2 55 08 14 168 025 38", "RSSMRA85T10A562S", "BSN 111222333",
    "85.07.30-033.28", "44051401359", "811218-9876", "131052-308T", "01010750160",
    "NIF 123456789", "529.982.247-25", "HEGG560427MVZRRL04", "11010519491231002X",
    "マイナンバー 1234 5678 9018", "960121-1021413", "123 456 782", "S2740116C",
    "8001015009087", "teudat zehut 123456782", "10000000146", "geboren am 12. März 1985",
    "出生日期\uff1a1985年5月3日", "Fax: 9498777106", "13812345678", "card 503802053770",
    "iban de89 3704 0044 0532 0130 00",
)  # fmt: skip
WORDS = (
    "the", "meeting", "notes", "in", "2023", "we", "Call", "me", "at", "ext", "42",
    "Summarize", "budget", "EUR", "Key", "secret", "token", "pass", "Ask", "Zoe", "Jake",
    "Stripe", "version", "born", "stubborn", "dob", "Version",
)  # fmt: skip
SEPARATORS = (" ", "  ", "-", ".", "/", ")", "(", "+", ":", "@", "_", "\n", ", ", "=", "'")
NOISE = "0123456789 -./:+()@_=ABCDEFGHIJKLMNOPQRSTUVWXYZabcxyz\n\"'İ"


def _cut(fragment: str, start: int, length: int) -> str:
    return fragment[start : start + length]


def _redigit(fragment: str, digits: str) -> str:
    """The fragment with its digits replaced (``digits`` is the new 0-9): same shape,
    other numbers, often only a few distinct digits."""
    return fragment.translate(str.maketrans("0123456789", digits))


#: a replacement for 0-9 drawn from a few digits (a number of 0s and 1s is still a number)
new_digits = st.sets(st.sampled_from("0123456789"), min_size=1, max_size=4).flatmap(
    lambda few: st.text(alphabet=sorted(few), min_size=10, max_size=10)
)
pieces = st.one_of(
    st.sampled_from(FRAGMENTS),
    st.builds(_cut, st.sampled_from(FRAGMENTS), st.integers(0, 30), st.integers(1, 30)),
    st.builds(_redigit, st.sampled_from(FRAGMENTS), new_digits),
    st.sampled_from(WORDS),
    st.sampled_from(SEPARATORS),
    st.text(alphabet="0123456789", min_size=1, max_size=20),
    st.text(alphabet=NOISE, max_size=12),
)
texts = st.lists(pieces, max_size=24).map("".join)
subsets = st.frozensets(st.sampled_from(sorted(BUILTIN_ENTITIES | {"ticket", "code_word"})))


@settings(max_examples=600)
@given(texts)
def test_prefiltered_find_equals_every_detector(text: str) -> None:
    assert SCANNER.find(text) == SCANNER.find_all_detectors(text)


@settings(max_examples=300)
@given(texts, subsets)
def test_prefiltered_find_equals_every_detector_for_some_entities(
    text: str, entities: frozenset[str]
) -> None:
    assert CUSTOM.find(text, entities) == CUSTOM.find_all_detectors(text, entities)
    assert CUSTOM.find(text) == CUSTOM.find_all_detectors(text)


@settings(max_examples=300)
@given(st.sampled_from(FRAGMENTS), new_digits, st.sampled_from(WORDS), st.sampled_from(SEPARATORS))
def test_prefiltered_find_equals_every_detector_on_one_fragment(
    fragment: str, digits: str, word: str, separator: str
) -> None:
    text = f"{word} {_redigit(fragment, digits)}{separator}"
    assert SCANNER.find(text) == SCANNER.find_all_detectors(text)


@given(st.text(max_size=200))
def test_prefiltered_find_equals_every_detector_on_any_text(text: str) -> None:
    assert SCANNER.find(text) == SCANNER.find_all_detectors(text)


def test_fragments_are_found_by_both_paths() -> None:
    # the generated texts above only mean something if the fragments hold entities
    text = " | ".join(FRAGMENTS)
    fast = {f.entity for f in SCANNER.find(text)}
    assert fast == {f.entity for f in SCANNER.find_all_detectors(text)}
    assert fast == BUILTIN_ENTITIES - {UNJUDGED}


@given(st.one_of(texts, st.text(max_size=300), st.text(alphabet="0123456789 x", max_size=3000)))
def test_digit_runs_are_the_maximal_ascii_digit_runs(text: str) -> None:
    assert Probe(text).runs == [m.span() for m in re.finditer(r"[0-9]+", text)]
