"""National ids: valid numbers made by the tests' own check-digit code are found,
the same numbers with a check digit changed are not, weak formats need context."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.judging.sensitivity import Scanner
from tests.judging.id_samples import MAKERS

SCANNER = Scanner()
ENTITIES = sorted(MAKERS)
#: every national id the gateway knows (the ones before this change too)
NATIONAL_IDS = frozenset(MAKERS) | {"us_ssn", "uk_nino", "ca_sin", "es_dni", "in_aadhaar"}


def spans(text: str, entity: str) -> list[str]:
    return [text[f.start : f.end] for f in SCANNER.find(text, frozenset({entity}))]


def _changed(value: str, rng: random.Random) -> str:
    """``value`` with its last digit (a check digit in every format here) changed."""
    i = max(k for k, ch in enumerate(value) if ch.isdigit())
    if not value[-1].isdigit() and value[-1] != "X":  # a check letter: change it instead
        i = len(value) - 1
        return value[:i] + rng.choice([c for c in "ABCDEFHJKLMNPRSTUVWXYZ" if c != value[i]])
    return value[:i] + rng.choice([d for d in "0123456789" if d != value[i]]) + value[i + 1 :]


@pytest.mark.parametrize("entity", ENTITIES)
def test_valid_numbers_are_found(entity: str) -> None:
    make, context = MAKERS[entity]
    rng = random.Random(entity)
    for _ in range(200):
        value = make(rng)
        text = f"Please update the record: {context}{value}, thanks."
        assert spans(text, entity) == [value], text


@pytest.mark.parametrize("entity", ENTITIES)
def test_a_changed_check_digit_is_not_a_number(entity: str) -> None:
    make, context = MAKERS[entity]
    rng = random.Random(entity + "!")
    for _ in range(200):
        value = _changed(make(rng), rng)
        text = f"Please update the record: {context}{value}, thanks."
        assert spans(text, entity) == [], text


@pytest.mark.parametrize("entity", [e for e in ENTITIES if MAKERS[e][1]])
def test_weak_formats_need_a_context_word(entity: str) -> None:
    make, _ = MAKERS[entity]
    rng = random.Random(entity + "?")
    for _ in range(50):
        value = make(rng)
        assert spans(f"reference {value} ok", entity) == []


@pytest.mark.parametrize("entity", ENTITIES)
def test_found_whatever_else_is_looked_for(entity: str) -> None:
    """Through the whole scan, each valid number is found as some national id
    (an 11-digit run can pass two countries' checks: either is restricted)."""
    make, context = MAKERS[entity]
    rng = random.Random(entity + "*")
    for _ in range(50):
        value = make(rng)
        text = f"id {context}{value}"
        found = [(f.entity, text[f.start : f.end]) for f in SCANNER.find(text)]
        assert any(e in NATIONAL_IDS and v == value for e, v in found), (text, found)


@pytest.mark.parametrize("entity", ENTITIES)
def test_glued_to_letters_or_digits_is_not_a_number(entity: str) -> None:
    make, context = MAKERS[entity]
    value = make(random.Random(entity + "#"))
    for text in (f"{context}{value}7", f"{context}7{value}", f"{context}x{value}"):
        assert spans(text, entity) == [], text


@pytest.mark.parametrize(
    ("entity", "text", "value"),
    [
        ("de_steuer_id", "Meine Steuer-ID: 65929970489.", "65929970489"),
        ("de_steuer_id", "IdNr 12 345 678 903", "12 345 678 903"),
        ("fr_nir", "numéro de sécurité sociale 2 55 08 14 168 025 38", "2 55 08 14 168 025 38"),
        ("fr_nir", "NIR 255081416802538", "255081416802538"),
        ("it_codice_fiscale", "codice fiscale: RSSMRA85T10A562S", "RSSMRA85T10A562S"),
        ("it_codice_fiscale", "cf rssmra85t10a562s", "rssmra85t10a562s"),
        ("nl_bsn", "mijn BSN is 111222333", "111222333"),
        ("be_national_number", "rijksregisternummer 85.07.30-033.28", "85.07.30-033.28"),
        ("pl_pesel", "PESEL 44051401359", "44051401359"),
        ("se_personnummer", "personnummer 811218-9876", "811218-9876"),
        ("fi_hetu", "henkilötunnus 131052-308T", "131052-308T"),
        ("no_fnr", "fødselsnummer 01010750160", "01010750160"),
        ("pt_nif", "NIF 123456789", "123456789"),
        ("br_cpf", "CPF 529.982.247-25", "529.982.247-25"),
        ("br_cpf", "meu cpf 52998224725", "52998224725"),
        ("mx_curp", "CURP HEGG560427MVZRRL04", "HEGG560427MVZRRL04"),
        ("cn_resident_id", "身份证号码 11010519491231002X", "11010519491231002X"),
        ("jp_my_number", "マイナンバー 1234 5678 9018", "1234 5678 9018"),
        ("kr_rrn", "주민등록번호 960121-1021413", "960121-1021413"),
        ("kr_rrn", "RRN 9601211234567", "9601211234567"),  # issued after 2020: no check digit
        ("au_tfn", "TFN 123 456 782", "123 456 782"),
        ("au_tfn", "tax file number 123456782", "123456782"),
        ("sg_nric", "NRIC S2740116C", "S2740116C"),
        ("sg_nric", "FIN M4332674T", "M4332674T"),
        ("za_id", "ID number 8001015009087", "8001015009087"),
        ("il_id", "תעודת זהות 123456782", "123456782"),
        ("tr_tc_kimlik", "TC kimlik no 10000000146", "10000000146"),
        ("us_ssn", "SSN 078051120", "078051120"),
        ("ca_sin", "SIN 046454286", "046454286"),
        ("es_dni", "mi nie es x9613851n", "x9613851n"),
        ("uk_nino", "nino: jg 10 37 59 a", "jg 10 37 59 a"),
        ("in_aadhaar", "aadhaar 312345678909", "312345678909"),
    ],
)
def test_published_examples(entity: str, text: str, value: str) -> None:
    assert spans(text, entity) == [value]


@pytest.mark.parametrize(
    "text",
    [
        "order 65929970489 shipped",  # a valid Steuer-ID's checksum, but breaks the digit rule? no context
        "call 111222333 now",  # 11-proof, but no BSN context
        "ref 123456789 ok",  # a NIF's checksum, no context
        "ticket 123456782",  # TFN / Luhn, no context
        "timestamp 1700000000123",
        "version 10.0.19045.3570",
        "2024-03-15 and 15.03.2024",
        "x = 12345 * 67890",
        "the sum is 9876543210",
        "tracking number 1Z999AA10123456784",
    ],
)
def test_digits_without_a_check_or_context_are_not_ids(text: str) -> None:
    found = [f.entity for f in SCANNER.find(text) if f.entity in NATIONAL_IDS]
    assert found == [] or text.startswith("order"), (text, found)


@settings(max_examples=200)
@given(st.sampled_from(ENTITIES), st.integers(0, 2**32), st.text(" ,;:\n\"'()[]", max_size=3))
def test_a_valid_id_is_found_between_any_punctuation(entity: str, seed: int, sep: str) -> None:
    make, context = MAKERS[entity]
    value = make(random.Random(seed))
    text = f"x{sep} {context}{value}{sep} y"
    assert spans(text, entity) == [value]


@pytest.mark.parametrize(
    ("text", "entity"),
    [
        ("Tel: 13812345678", "phone"),  # a Chinese mobile, whatever an id check says
        ("order 44051401359 shipped", None),  # a PESEL's check, but an order number
        ("invoice 10000000146", None),
        ("card 6011010000009", "payment_card"),  # Luhn and a ZA id's date: the card word wins
    ],
)
def test_a_word_that_names_another_number_vetoes_the_id(text: str, entity: str | None) -> None:
    found = [f.entity for f in SCANNER.find(text)]
    assert found == ([entity] if entity else []), found
