"""Valid national ids made by the tests' own check-digit code (not the gateway's).

Each ``make_*`` takes a random generator and returns one valid number as it is
usually written; the check digits are computed here from each country's
published algorithm, independently of :mod:`gateway.judging.id_checks`.
"""

from __future__ import annotations

import random
from collections.abc import Callable


def _digits(rng: random.Random, n: int, first: str = "0123456789") -> str:
    return rng.choice(first) + "".join(rng.choice("0123456789") for _ in range(n - 1))


def _date(rng: random.Random) -> tuple[int, int, int]:
    return rng.randint(1930, 2015), rng.randint(1, 12), rng.randint(1, 28)


def luhn_digit(body: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return str((10 - total % 10) % 10)


def make_fr_nir(rng: random.Random) -> str:
    year, month, _ = _date(rng)
    body = f"{rng.choice('12')}{year % 100:02d}{month:02d}{rng.randint(1, 95):02d}{_digits(rng, 3)}{_digits(rng, 3)}"
    key = 97 - int(body) % 97
    return f"{body[0]} {body[1:3]} {body[3:5]} {body[5:7]} {body[7:10]} {body[10:13]} {key:02d}"


def make_de_steuer_id(rng: random.Random) -> str:
    while True:
        chosen = rng.sample("0123456789", 9)
        body = [*chosen, rng.choice(chosen)]
        rng.shuffle(body)
        if body[0] != "0":
            break
    product = 10
    for ch in body:
        total = (int(ch) + product) % 10 or 10
        product = total * 2 % 11
    return "".join(body) + str((11 - product) % 10)


_CF_ODD = dict(
    zip(
        "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ",
        [1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 1, 0, 5, 7, 9, 13, 15, 17, 19, 21,
         2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25, 24, 23],
        strict=True,
    )
)  # fmt: skip
_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def make_it_codice_fiscale(rng: random.Random) -> str:
    year, _, day = _date(rng)
    body = (
        "".join(rng.choice(_LETTERS) for _ in range(6))
        + f"{year % 100:02d}"
        + rng.choice("ABCDEHLMPRST")
        + f"{day + rng.choice((0, 40)):02d}"
        + rng.choice(_LETTERS)
        + _digits(rng, 3)
    )
    total = sum(
        _CF_ODD[ch] if i % 2 == 0 else (int(ch) if ch.isdigit() else ord(ch) - 65)
        for i, ch in enumerate(body)
    )
    return body + _LETTERS[total % 26]


def make_nl_bsn(rng: random.Random) -> str:
    while True:
        body = _digits(rng, 8, "123456789")
        check = sum(int(d) * w for d, w in zip(body, range(9, 1, -1), strict=True)) % 11
        if check < 10:
            return body + str(check)


def make_be_national_number(rng: random.Random) -> str:
    year, month, day = _date(rng)
    year = min(year, 1999)
    body = f"{year % 100:02d}{month:02d}{day:02d}{rng.randint(1, 997):03d}"
    check = 97 - int(body) % 97
    return f"{body[:2]}.{body[2:4]}.{body[4:6]}-{body[6:9]}.{check:02d}"


def make_pl_pesel(rng: random.Random) -> str:
    year, month, day = _date(rng)
    month += 20 if year >= 2000 else 0
    body = f"{year % 100:02d}{month:02d}{day:02d}{_digits(rng, 4)}"
    total = sum(int(d) * w for d, w in zip(body, (1, 3, 7, 9, 1, 3, 7, 9, 1, 3), strict=True))
    return body + str((10 - total % 10) % 10)


def make_se_personnummer(rng: random.Random) -> str:
    year, month, day = _date(rng)
    body = f"{year % 100:02d}{month:02d}{day:02d}{_digits(rng, 3)}"
    return f"{body[:6]}-{body[6:]}{luhn_digit(body)}"


def make_fi_hetu(rng: random.Random) -> str:
    year, month, day = _date(rng)
    sign = "-" if year < 2000 else "A"
    serial = f"{rng.randint(2, 899):03d}"
    number = int(f"{day:02d}{month:02d}{year % 100:02d}{serial}")
    return (
        f"{day:02d}{month:02d}{year % 100:02d}{sign}{serial}"
        + "0123456789ABCDEFHJKLMNPRSTUVWXY"[number % 31]
    )


def make_no_fnr(rng: random.Random) -> str:
    while True:
        year, month, day = _date(rng)
        body = [int(c) for c in f"{day:02d}{month:02d}{year % 100:02d}{_digits(rng, 3)}"]
        k1 = (
            11 - sum(d * w for d, w in zip(body, (3, 7, 6, 1, 8, 9, 4, 5, 2), strict=True)) % 11
        ) % 11
        if k1 == 10:
            continue
        body.append(k1)
        k2 = (
            11 - sum(d * w for d, w in zip(body, (5, 4, 3, 2, 7, 6, 5, 4, 3, 2), strict=True)) % 11
        ) % 11
        if k2 != 10:
            return "".join(map(str, body)) + str(k2)


def make_pt_nif(rng: random.Random) -> str:
    body = _digits(rng, 8, "1235689")
    rest = sum(int(d) * w for d, w in zip(body, range(9, 1, -1), strict=True)) % 11
    return body + str(0 if rest < 2 else 11 - rest)


def make_br_cpf(rng: random.Random) -> str:
    digits = [int(c) for c in _digits(rng, 9)]
    for n in (9, 10):
        total = sum(d * w for d, w in zip(digits, range(n + 1, 1, -1), strict=False))
        digits.append(total * 10 % 11 % 10)
    s = "".join(map(str, digits))
    return f"{s[:3]}.{s[3:6]}.{s[6:9]}-{s[9:]}"


def make_mx_curp(rng: random.Random) -> str:
    year, month, day = _date(rng)
    consonants = "BCDFGHJKLMNPQRSTVWXYZ"
    body = (
        rng.choice(_LETTERS) + rng.choice("AEIOU") + rng.choice(_LETTERS) + rng.choice(_LETTERS)
        + f"{year % 100:02d}{month:02d}{day:02d}" + rng.choice("HM") + rng.choice(("DF", "JC", "NL"))
        + "".join(rng.choice(consonants) for _ in range(3)) + rng.choice("0123456789A")
    )  # fmt: skip
    values = "0123456789ABCDEFGHIJKLMN&OPQRSTUVWXYZ"
    total = sum(values.index(ch) * (18 - i) for i, ch in enumerate(body))
    return body + str((10 - total % 10) % 10)


def make_cn_resident_id(rng: random.Random) -> str:
    year, month, day = _date(rng)
    body = f"{rng.randint(110000, 659000)}{year}{month:02d}{day:02d}{_digits(rng, 3)}"
    weights = [2 ** (17 - i) % 11 for i in range(17)]
    total = sum(int(d) * w for d, w in zip(body, weights, strict=True))
    return body + "10X98765432"[total % 11]


def make_jp_my_number(rng: random.Random) -> str:
    body = _digits(rng, 11)
    total = sum(int(body[10 - n]) * (n + 2 if n <= 5 else n - 4) for n in range(11))
    rest = total % 11
    s = body + str(0 if rest <= 1 else 11 - rest)
    return f"{s[:4]} {s[4:8]} {s[8:]}"


def make_kr_rrn(rng: random.Random) -> str:
    year, month, day = _date(rng)
    sex = rng.choice("12") if year < 2000 else rng.choice("34")
    body = f"{year % 100:02d}{month:02d}{day:02d}{sex}{_digits(rng, 5)}"
    total = sum(int(d) * w for d, w in zip(body, (2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5), strict=True))
    return f"{body}{(11 - total % 11) % 10}"  # bare: the hyphenated form needs no check


def make_au_tfn(rng: random.Random) -> str:
    while True:
        body = _digits(rng, 8, "123456789")
        check = sum(int(d) * w for d, w in zip(body, (1, 4, 3, 7, 5, 8, 6, 9), strict=True)) % 11
        if check < 10:
            s = body + str(check)
            return f"{s[:3]} {s[3:6]} {s[6:]}"


def make_sg_nric(rng: random.Random) -> str:
    series = rng.choice("STFG")
    body = _digits(rng, 7)
    total = sum(int(d) * w for d, w in zip(body, (2, 7, 6, 5, 4, 3, 2), strict=True))
    total += 4 if series in "TG" else 0
    letters = "JZIHGFEDCBA" if series in "ST" else "XWUTRQPNMLK"
    return series + body + letters[total % 11]


def make_za_id(rng: random.Random) -> str:
    year, month, day = _date(rng)
    body = f"{year % 100:02d}{month:02d}{day:02d}{_digits(rng, 4)}{rng.choice('01')}8"
    return body + luhn_digit(body)


def make_il_id(rng: random.Random) -> str:
    body = _digits(rng, 8, "0123")
    return body + luhn_digit(body)


def make_tr_tc_kimlik(rng: random.Random) -> str:
    d = [int(c) for c in _digits(rng, 9, "123456789")]
    d.append(((d[0] + d[2] + d[4] + d[6] + d[8]) * 7 - (d[1] + d[3] + d[5] + d[7])) % 10)
    d.append(sum(d) % 10)
    return "".join(map(str, d))


#: entity -> (maker, a context phrase written before it; "" when none is needed)
MAKERS: dict[str, tuple[Callable[[random.Random], str], str]] = {
    "fr_nir": (make_fr_nir, ""),
    "de_steuer_id": (make_de_steuer_id, ""),
    "it_codice_fiscale": (make_it_codice_fiscale, ""),
    "nl_bsn": (make_nl_bsn, "BSN: "),
    "be_national_number": (make_be_national_number, ""),
    "pl_pesel": (make_pl_pesel, ""),
    "se_personnummer": (make_se_personnummer, ""),
    "fi_hetu": (make_fi_hetu, ""),
    "no_fnr": (make_no_fnr, ""),
    "pt_nif": (make_pt_nif, "NIF "),
    "br_cpf": (make_br_cpf, ""),
    "mx_curp": (make_mx_curp, ""),
    "cn_resident_id": (make_cn_resident_id, ""),
    "jp_my_number": (make_jp_my_number, "マイナンバー: "),
    "kr_rrn": (make_kr_rrn, ""),
    "au_tfn": (make_au_tfn, ""),
    "sg_nric": (make_sg_nric, ""),
    "za_id": (make_za_id, ""),
    "il_id": (make_il_id, "teudat zehut "),
    "tr_tc_kimlik": (make_tr_tc_kimlik, ""),
}
