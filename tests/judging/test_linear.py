"""Every detector is linear in its input, on inputs built to make it not be.

For each built-in detector (run alone, through ``Scanner.find`` restricted to
its entity) and inputs aimed at it — repeated keywords and prefixes, runs of
one separator, long base64 or digit runs, near-misses of its checksum — ten
times the input may cost at most twelve times the time. A quadratic scan
costs a hundred times; a regex that backtracks, far more.

Timings are the CPU time of the thread (``time.thread_time``: on a shared VM
the wall clock of a 40 ms scan counts the other processes' time slices, that
of a 1 ms scan mostly does not), the best of several runs, retried a few
times before failing; anything under :data:`FLOOR_S` counts as the floor
(sub-millisecond scans stall nobody). When the machine itself scales a plain
linear pass worse than 10x (memory shared with other processes), the bound
stretches with it, by at most :data:`MACHINE_SLACK` (see :func:`scaling`).
"""

from __future__ import annotations

import base64
import gc
import random
import re
import sys
import time
from collections.abc import Callable

import pytest

from gateway.judging.probe import lower_aligned
from gateway.judging.sensitivity import BUILTIN_ENTITIES, SECRET_ENTITIES, UNJUDGED, Scanner

#: the small input's size in characters; the large one is ten times it
SMALL = 3_000
RATIO = 12.0
FLOOR_S = 0.0002
ATTEMPTS = 8
#: how far a machine that scales badly right now may stretch RATIO
MACHINE_SLACK = 2.0

Make = Callable[[int], str]


def repeat(unit: str, head: str = "", tail: str = "") -> Make:
    return lambda n: head + unit * max(1, (n - len(head) - len(tail)) // len(unit)) + tail


def b64(n: int) -> str:
    return base64.b64encode(random.Random(n).randbytes(n * 3 // 4)).decode()


def b64_lines(n: int) -> str:
    return base64.encodebytes(random.Random(n).randbytes(n * 3 // 4)).decode()


#: adversarial inputs, by name
INPUTS: dict[str, Make] = {
    "key repeated": repeat("key"),
    "pass repeated": repeat("pass"),
    "token_ repeated": repeat("token_"),
    "long dotted name": repeat("a.", tail="key=hunter22x"),
    "key= repeated": repeat("key="),
    "password: repeated": repeat("password:"),
    "quoted key repeated": repeat("key='"),
    "url credentials repeated": repeat("x://u:p@"),
    "scheme then colons": repeat("a:", head="a://"),
    "long word before ://": repeat("a", tail="://u:p@h"),
    "base64": b64,
    "base64 lines": b64_lines,
    "sk- repeated": repeat("sk-"),
    "AKIA repeated": repeat("AKIA"),
    "jwt lookalikes": repeat("eyJhbGci."),
    "PEM headers without END": repeat("-----BEGIN RSA PRIVATE KEY-----\n"),
    "PEM header, long label": repeat("A ", head="-----BEGIN "),
    "PEM distinct labels": lambda n: "".join(
        f"-----BEGIN K{i} PRIVATE KEY-----\n" for i in range(n // 32)
    ),
    "slack prefixes": repeat("xoxb-"),
    "github prefixes": repeat("ghp_"),
    "gitlab prefixes": repeat("glpat-"),
    "anchors": repeat("_-JKSz"),
    "google prefixes": repeat("AIza"),
    "one digit run": repeat("7"),
    "digits and spaces": repeat("1 "),
    "digits and dashes": repeat("1-"),
    "card lookalikes": repeat("4111 1111 1111 1112 "),
    "ssn lookalikes": repeat("123-45-"),
    "grouped 3-3": repeat("123 456 "),
    "grouped 4-4": repeat("2345 6789 "),
    "nie lookalikes": repeat("X1234567 "),
    "country codes": repeat("DE12 "),
    "country codes glued": repeat("DE12"),
    "iban lookalikes": repeat("GB82 WEST 1234 5698 7654 31 "),
    "nino lookalikes": repeat("AB 12 34 "),
    "at signs": repeat("@"),
    "local@ repeated": repeat("a@"),
    "long domain": repeat("b.", head="a@"),
    "long local part": repeat("a", tail="@example.com"),
    "colons": repeat(":"),
    "digit colons": repeat("1:"),
    "hex colons": repeat("a1:"),
    "dotted digits": repeat("1.1."),
    "born and a digit": repeat("born 1"),
    "dob and a partial date": repeat("dob 1/1/"),
    "born on a month": repeat("born on March "),
    "+ and many digits": repeat("+1" + "1" * 40 + " "),
    "+ and groups": repeat("+1 "),
    "trunk prefixes": repeat("020 "),
    "parenthesised trunks": repeat("(01) "),
    "nanp prefixes": repeat("1-415-"),
    "eleven digits": repeat("12345678903 "),
    "nine digits and context": repeat("BSN NIF TFN SSN 123456782 "),
    "grouped 2-3-3-3": repeat("12 345 "),
    "dotted 2-2-2": repeat("85.07."),
    "nir lookalikes": repeat("1 85 05 2A "),
    "codice fiscale lookalikes": repeat("RSSMRA85T10A562 "),
    "curp lookalikes": repeat("GOAM850101HDF "),
    "nric lookalikes": repeat("S1234567 "),
    "hetu lookalikes": repeat("131052-308 "),
    "dashed 6-7": repeat("960121-"),
    "card words": repeat("card 5038 "),
    "phone words": repeat("phone: 1 "),
    "phone words and groups": repeat("tel (1) 2-"),
    "born in other languages": repeat("geboren am 1. "),
    "month names": repeat("né le 3 mars "),
    "cjk dates": repeat("出生日期1985年"),
    "iban dashes": repeat("DE89-3704-"),
}

#: the inputs aimed at each detector (every detector also gets base64)
AIMED: dict[str, tuple[str, ...]] = {
    "password": (
        "key repeated",
        "pass repeated",
        "token_ repeated",
        "long dotted name",
        "key= repeated",
        "password: repeated",
        "quoted key repeated",
        "url credentials repeated",
        "scheme then colons",
        "long word before ://",
    ),
    "private_key": ("PEM headers without END", "PEM header, long label", "PEM distinct labels"),
    "jwt": ("jwt lookalikes", "anchors"),
    "aws_access_key": ("AKIA repeated", "anchors"),
    "github_token": ("github prefixes", "anchors"),
    "gitlab_token": ("gitlab prefixes", "anchors"),
    "slack_token": ("slack prefixes", "colons"),
    "anthropic_key": ("sk- repeated",),
    "openai_key": ("sk- repeated", "anchors"),
    "stripe_key": ("anchors",),
    "google_api_key": ("google prefixes",),
    "payment_card": (
        "one digit run",
        "digits and spaces",
        "card lookalikes",
        "digits and dashes",
        "card words",
    ),
    "us_ssn": (
        "ssn lookalikes",
        "digits and dashes",
        "digits and spaces",
        "nine digits and context",
    ),
    "ca_sin": ("grouped 3-3", "digits and spaces", "nine digits and context"),
    "in_aadhaar": ("grouped 4-4", "digits and spaces", "one digit run"),
    "es_dni": ("nie lookalikes", "one digit run"),
    "iban": ("country codes", "country codes glued", "iban lookalikes", "iban dashes"),
    "uk_nino": ("nino lookalikes", "country codes"),
    "fr_nir": ("nir lookalikes", "digits and spaces", "one digit run"),
    "de_steuer_id": ("eleven digits", "grouped 2-3-3-3", "digits and spaces"),
    "it_codice_fiscale": ("codice fiscale lookalikes", "country codes glued"),
    "mx_curp": ("curp lookalikes", "country codes glued"),
    "sg_nric": ("nric lookalikes", "nie lookalikes"),
    "fi_hetu": ("hetu lookalikes", "digits and dashes"),
    "cn_resident_id": ("one digit run", "eleven digits"),
    "kr_rrn": ("dashed 6-7", "digits and dashes"),
    "za_id": ("one digit run", "digits and spaces"),
    "be_national_number": ("dotted 2-2-2", "dotted digits", "eleven digits"),
    "pl_pesel": ("eleven digits", "one digit run"),
    "no_fnr": ("eleven digits", "digits and spaces"),
    "tr_tc_kimlik": ("eleven digits", "one digit run"),
    "br_cpf": ("eleven digits", "dotted digits"),
    "se_personnummer": ("dashed 6-7", "digits and dashes", "one digit run"),
    "jp_my_number": ("grouped 4-4", "digits and dashes"),
    "nl_bsn": ("nine digits and context", "dotted digits"),
    "pt_nif": ("nine digits and context", "grouped 3-3"),
    "au_tfn": ("nine digits and context", "grouped 3-3"),
    "il_id": ("nine digits and context", "one digit run"),
    "email": ("at signs", "local@ repeated", "long domain", "long local part"),
    "ip_address": ("colons", "digit colons", "hex colons", "dotted digits"),
    "date_of_birth": (
        "born and a digit",
        "dob and a partial date",
        "born on a month",
        "born in other languages",
        "month names",
        "cjk dates",
    ),
    "phone": (
        "+ and many digits",
        "+ and groups",
        "trunk prefixes",
        "parenthesised trunks",
        "nanp prefixes",
        "digits and spaces",
        "phone words",
        "phone words and groups",
    ),
}

CASES = [
    (entity, name) for entity, names in AIMED.items() for name in (*names, "base64", "base64 lines")
]


#: written over before each timed run, so that both sizes start from cold caches
#: (a small input's data otherwise stays in the CPU's caches between runs, a
#: large one's does not, and the ratio would measure the caches)
_SCRATCH = bytearray(8 * 1024 * 1024)
_FILL = bytes(len(_SCRATCH))


def best_time(fn: Callable[[], object], runs: int) -> float:
    best = float("inf")
    for _ in range(runs):
        _SCRATCH[:] = _FILL
        started = time.thread_time()
        fn()
        best = min(best, time.thread_time() - started)
    return best


#: a linear pass that allocates like the detectors do (an object per token)
_TOKENS = re.compile(r"[A-Za-z]+|[0-9]+|\s+|.", re.DOTALL)


def reference(text: str) -> object:
    return [m.span() for m in _TOKENS.finditer(text)]


def scaling(find: Callable[[str], object], make: Make) -> tuple[float, float, float]:
    """The best (small, large) times over a few attempts, stopping at the first
    that passes, and the ratio allowed.

    The cyclic garbage collector is paused while timing: its pauses grow with
    the whole heap (the test process's), not with the input. The ratio allowed
    is :data:`RATIO`, stretched by at most :data:`MACHINE_SLACK` when a plain
    linear pass over the same inputs (:func:`reference`) scales worse than 10x
    on this machine right now (memory shared with other processes): that is
    the machine, not the detector. A quadratic detector costs 100x.
    """
    small, large = make(SMALL), make(SMALL * 10)
    best1 = best10 = ref1 = ref10 = float("inf")
    allowed = RATIO
    enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        for _ in range(ATTEMPTS):
            best1 = min(best1, best_time(lambda: find(small), 5))
            best10 = min(best10, best_time(lambda: find(large), 5))
            ref1 = min(ref1, best_time(lambda: reference(small), 5))
            ref10 = min(ref10, best_time(lambda: reference(large), 5))
            machine = (ref10 / max(ref1, 1e-9)) / 10
            allowed = RATIO * min(max(machine, 1.0), MACHINE_SLACK)
            if best10 <= allowed * max(best1, FLOOR_S):
                break
    finally:
        if enabled:
            gc.enable()
    return max(best1, FLOOR_S), best10, allowed


def test_every_detector_has_aimed_inputs() -> None:
    # ``unjudged`` is no text detector: the walk marks what it cannot read
    assert set(AIMED) == BUILTIN_ENTITIES - {UNJUDGED}
    assert set(AIMED) >= SECRET_ENTITIES


@pytest.mark.parametrize(("entity", "name"), CASES, ids=[f"{e}: {n}" for e, n in CASES])
def test_ten_times_the_input_costs_at_most_twelve_times_the_time(entity: str, name: str) -> None:
    scanner = Scanner()
    only = frozenset({entity})
    t1, t10, allowed = scaling(lambda text: scanner.find(text, only), INPUTS[name])
    assert t10 <= allowed * t1, f"{entity} on {name!r}: {t1 * 1e3:.2f} ms -> {t10 * 1e3:.2f} ms"


@pytest.mark.parametrize("name", sorted(INPUTS))
def test_the_whole_scan_is_linear_too(name: str) -> None:
    scanner = Scanner()
    t1, t10, allowed = scaling(scanner.find, INPUTS[name])
    assert t10 <= allowed * t1, f"{name!r}: {t1 * 1e3:.2f} ms -> {t10 * 1e3:.2f} ms"


def test_one_character_lower_cases_to_two() -> None:
    """:func:`lower_aligned`'s fast path relies on U+0130 being the only one."""
    wide = [c for c in range(sys.maxunicode + 1) if len(chr(c).lower()) != 1]
    assert wide == [0x130]
    text = "İstanbul KEY=x İ"
    assert lower_aligned(text) == "İstanbul key=x İ"
    assert len(lower_aligned(text)) == len(text)
