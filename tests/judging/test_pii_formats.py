"""IBANs of every country, phones in national formats, dates of birth in many languages."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.judging.checksums import IBAN_LENGTHS
from gateway.judging.sensitivity import Scanner

SCANNER = Scanner()


def found(text: str, entity: str | None = None) -> list[tuple[str, str]]:
    only = frozenset({entity}) if entity else None
    return [(f.entity, text[f.start : f.end]) for f in SCANNER.find(text, only)]


# --- IBAN ------------------------------------------------------------------------


def make_iban(country: str, bban: str) -> str:
    """The IBAN of ``bban`` (ISO 13616: check digits 98 - (BBAN + country + 00) mod 97)."""
    digits = "".join(str(int(ch, 36)) for ch in bban + country + "00")
    return f"{country}{98 - int(digits) % 97:02d}{bban}"


def grouped(iban: str, sep: str = " ") -> str:
    return sep.join(iban[i : i + 4] for i in range(0, len(iban), 4))


ibans = st.sampled_from(sorted(IBAN_LENGTHS)).flatmap(
    lambda country: st.text(
        alphabet="0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ",
        min_size=IBAN_LENGTHS[country] - 4,
        max_size=IBAN_LENGTHS[country] - 4,
    ).map(lambda bban: make_iban(country, bban))
)
written = st.sampled_from(("compact", "spaced", "lower", "dashed"))
prose = st.text(alphabet="abcdef xyz.,;:\n\"'[]{}()=", max_size=30)


def write(iban: str, how: str) -> str:
    return {
        "compact": iban,
        "spaced": grouped(iban),
        "lower": grouped(iban).lower(),
        "dashed": grouped(iban, "-"),
    }[how]


def _padded(before: str, value: str, after: str) -> str:
    """``before + value + after`` with a space where the prose would glue onto it."""
    if before and before[-1].isalnum():
        before += " "
    if after and after[0].isalnum():
        after = " " + after
    return before + value + after


@settings(max_examples=400)
@given(ibans, written, prose, prose)
def test_a_valid_iban_of_any_country_is_found_anywhere(
    iban: str, how: str, before: str, after: str
) -> None:
    value = write(iban, how)
    text = _padded(before, value, after)
    assert ("iban", value) in found(text, "iban"), text


@settings(max_examples=400)
@given(ibans, written, st.integers(0, 40), st.integers(1, 9), prose)
def test_an_iban_with_one_digit_changed_is_not_found(
    iban: str, how: str, where: int, delta: int, before: str
) -> None:
    digits = [i for i, ch in enumerate(iban) if ch.isdigit() and i >= 2]
    i = digits[where % len(digits)]
    changed = iban[:i] + str((int(iban[i]) + delta) % 10) + iban[i + 1 :]
    text = _padded(before, write(changed, how), " ok")
    assert found(text, "iban") == [], text


@pytest.mark.parametrize(
    "text",
    [
        '```json\n{"iban": "DE89370400440532013000"}\n```',
        "```yaml\nbank:\n  iban: DE89370400440532013000\n```",
        "name,iban\nJane,DE89370400440532013000\n",
        "IBAN:DE89370400440532013000",
        "iban de89 3704 0044 0532 0130 00",
        "NO9386011117947 and",
        "FR1420041010050500013M02606",
    ],
)
def test_iban_in_code_and_data(text: str) -> None:
    assert [e for e, _ in found(text)] == ["iban"], text


def test_every_registry_country_has_a_length() -> None:
    registry = "AD AE AL AT AZ BA BE BG BH BI BR BY CH CR CY CZ DE DJ DK DO EE EG ES FI FK FO FR GB GE GI GL GR GT HN HR HU IE IL IQ IS IT JO KW KZ LB LC LI LT LU LV LY MC MD ME MK MN MR MT MU NI NL NO OM PK PL PS PT QA RO RS RU SA SC SD SE SI SK SM SO ST SV TL TN TR UA VA VG XK YE"
    assert set(registry.split()) <= set(IBAN_LENGTHS)
    assert IBAN_LENGTHS["NO"] == 15 and IBAN_LENGTHS["LC"] == 32 and IBAN_LENGTHS["RU"] == 33


# --- phones --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("call +49 30 1234567 now", "+49 30 1234567"),
        ("+41 (0)44 668 18 00", "+41 (0)44 668 18 00"),
        ("+8613812345678", "+8613812345678"),
        ("My CN number is 13812345678", "13812345678"),
        ("Tel. 030 12345678", "030 12345678"),
        ("Telefon: 089/1234567", "089/1234567"),
        ("téléphone : 01 23 45 67 89", "01 23 45 67 89"),
        ("teléfono 912 345 678", "912 345 678"),
        ("telefone (11) 98456-5666", "(11) 98456-5666"),
        ("電話 03-1234-5678", "03-1234-5678"),
        ("电话\uff1a010 6552 9988", "010 6552 9988"),
        ("전화 02-312-3456", "02-312-3456"),
        ("Mobile: 432 03 163", "432 03 163"),
        ("Fax: 9498777106", "9498777106"),
        ("930.167.3943 fax", "930.167.3943"),
        ("My Japanese number is 090-1234-5678", "090-1234-5678"),
    ],
)
def test_phone_formats(text: str, value: str) -> None:
    assert ("phone", value) in found(text, "phone"), found(text, "phone")


@pytest.mark.parametrize(
    "text",
    [
        "phone: released 2020-06-20",
        "call on 12.03.2024",
        "tel 2019-2020 season",
        "order number 4155550100",
        "version 3.10.12",
        "calc 12 * 345 = 4140",
        "see ISBN 978-3-16-148410-0",
        "the call took 12 minutes",
        "build 20240115.3",
    ],
)
def test_not_phones(text: str) -> None:
    assert found(text, "phone") == [], found(text, "phone")


# --- dates of birth ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "date"),
    [
        ("DOB: 03/05/1985", "03/05/1985"),
        ("born on May 3rd, 1985", "May 3rd, 1985"),
        ("Geburtsdatum: 12.03.1985", "12.03.1985"),
        ("geboren am 12. März 1985", "12. März 1985"),
        ("née le 15 mars 1985", "15 mars 1985"),
        ("date de naissance : 15/03/1985", "15/03/1985"),
        ("fecha de nacimiento: 3 de mayo de 1985", "3 de mayo de 1985"),
        ("nato il 3 maggio 1985", "3 maggio 1985"),
        ("data de nascimento 03/05/1985", "03/05/1985"),
        ("geboortedatum 3 mei 1985", "3 mei 1985"),
        ("data urodzenia: 3 maja 1985", "3 maja 1985"),
        ("дата рождения 3 мая 1985", "3 мая 1985"),
        ("出生日期\uff1a1985年5月3日", "1985年5月3日"),
        ("生年月日 1985年5月3日", "1985年5月3日"),
        ("생년월일: 1985년 5월 3일", "1985년 5월 3일"),
        ("doğum tarihi 03.05.1985", "03.05.1985"),
        ("född 1985-05-03", "1985-05-03"),
    ],
)
def test_date_of_birth_languages(text: str, date: str) -> None:
    assert found(text, "date_of_birth") == [("date_of_birth", date)]


@pytest.mark.parametrize(
    "text",
    [
        "meeting on 03/05/1985",
        "born in 1985",
        "stubborn 12/12/2012",
        "the company was born 20 years ago, on 3 May",
        "Geburt der Idee: irgendwann",
        "生日快乐",
    ],
)
def test_dates_that_are_not_births(text: str) -> None:
    assert found(text, "date_of_birth") == []
