"""Check digits and embedded dates of national identity numbers, one function per country.

Each takes the number's letters and digits only, upper case (the caller strips
separators), and says whether it can be a real number: the check digit(s) of
the published algorithm and, where the number holds one, a calendar date.
Written from each country's public description of its number.
"""

from __future__ import annotations

from gateway.judging.checksums import luhn_valid


def _d(s: str) -> list[int]:
    return [ord(ch) - 48 for ch in s]


def _date_ok(month: int, day: int) -> bool:
    return 1 <= month <= 12 and 1 <= day <= 31


def fr_nir(s: str) -> bool:
    """France, NIR (sécurité sociale): sex (1 or 2), YY, MM, department (2A/2B),
    commune, order, then the key 97 - (number mod 97)."""
    if len(s) != 15 or s[0] not in "12":
        return False
    body = s[:13].replace("2A", "19", 1) if s[5:7] == "2A" else s[:13]
    if s[5:7] == "2B":
        body = s[:5] + "18" + s[7:13]
    if not body.isdigit() or not s[13:].isdigit():
        return False
    month = int(s[3:5])
    if not (1 <= month <= 12 or 20 <= month <= 42 or 50 <= month <= 99):
        return False
    return 97 - int(body) % 97 == int(s[13:])


def de_steuer_id(s: str, strict: bool = True) -> bool:
    """Germany, Steuer-Identifikationsnummer: 11 digits, no leading 0, ISO 7064
    MOD 11,10. ``strict``: also the rule that, of the first ten digits, exactly
    one occurs twice or three times."""
    if len(s) != 11 or not s.isdigit() or s[0] == "0":
        return False
    if strict:
        counts = sorted((s[:10].count(ch) for ch in set(s[:10])), reverse=True)
        if not (counts[0] in (2, 3) and counts[1:2] in ([1], [])):
            return False
    product = 10
    for d in _d(s[:10]):
        total = (d + product) % 10 or 10
        product = total * 2 % 11
    return (11 - product) % 10 == int(s[10])


_CF_ODD = dict(
    zip(
        "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ",
        (1, 0, 5, 7, 9, 13, 15, 17, 19, 21) * 2
        + (2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25, 24, 23),
        strict=True,
    )
)


def it_codice_fiscale(s: str) -> bool:
    """Italy, codice fiscale: 15 characters and a check letter (odd positions by
    a table, even ones by value, sum mod 26)."""
    if len(s) != 16:
        return False
    total = 0
    for i, ch in enumerate(s[:15]):
        if i % 2 == 0:
            total += _CF_ODD[ch]
        else:
            total += ord(ch) - 48 if ch.isdigit() else ord(ch) - 65
    return chr(65 + total % 26) == s[15]


def nl_bsn(s: str) -> bool:
    """Netherlands, BSN: the 11-proof (weights 9..2 and -1)."""
    if len(s) != 9 or not s.isdigit():
        return False
    digits = _d(s)
    total = sum(d * w for d, w in zip(digits[:8], range(9, 1, -1), strict=True)) - digits[8]
    return total % 11 == 0 and s != "000000000"


def be_national_number(s: str) -> bool:
    """Belgium, Rijksregisternummer: YYMMDD, serial, 97 - (n mod 97) (a 2 in front for 2000+)."""
    if len(s) != 11 or not s.isdigit():
        return False
    month, day = int(s[2:4]), int(s[4:6])
    if not (0 <= month <= 12 or 20 <= month <= 32 or 40 <= month <= 52) or day > 31:
        return False
    check = int(s[9:])
    return 97 - int(s[:9]) % 97 == check or 97 - int("2" + s[:9]) % 97 == check


def pl_pesel(s: str) -> bool:
    """Poland, PESEL: YYMMDD with the century in the month, weights 1-3-7-9."""
    if len(s) != 11 or not s.isdigit():
        return False
    digits = _d(s)
    month, day = int(s[2:4]) % 20, int(s[4:6])
    if not _date_ok(month, day) or int(s[2:4]) // 20 > 4:
        return False
    total = sum(d * w for d, w in zip(digits[:10], (1, 3, 7, 9) * 3, strict=False))
    return (10 - total % 10) % 10 == digits[10]


def se_personnummer(s: str) -> bool:
    """Sweden, personnummer / samordningsnummer: (YY)YYMMDD + 4, Luhn over the last 10."""
    if len(s) == 12:
        if s[:2] not in ("18", "19", "20"):
            return False
        s = s[2:]
    if len(s) != 10 or not s.isdigit():
        return False
    month, day = int(s[2:4]), int(s[4:6])
    if day > 60:
        day -= 60  # a coordination number
    return _date_ok(month, day) and luhn_valid(s)


_HETU_CHECK = "0123456789ABCDEFHJKLMNPRSTUVWXY"


def fi_hetu(s: str) -> bool:
    """Finland, henkilötunnus: DDMMYY, century sign, NNN, check character mod 31."""
    if len(s) != 11 or s[6] not in "+-ABCDEFYXWVU" or not (s[:6] + s[7:10]).isdigit():
        return False
    if not _date_ok(int(s[2:4]), int(s[:2])):
        return False
    return _HETU_CHECK[int(s[:6] + s[7:10]) % 31] == s[10]


def no_fnr(s: str) -> bool:
    """Norway, fødselsnummer / D-nummer: DDMMYY + 3 + two mod-11 check digits."""
    if len(s) != 11 or not s.isdigit():
        return False
    digits = _d(s)
    day, month = int(s[:2]) % 40, int(s[2:4]) % 40
    if not _date_ok(month, day):
        return False
    for n, weights in ((9, (3, 7, 6, 1, 8, 9, 4, 5, 2)), (10, (5, 4, 3, 2, 7, 6, 5, 4, 3, 2))):
        check = (11 - sum(d * w for d, w in zip(digits, weights, strict=False)) % 11) % 11
        if check == 10 or check != digits[n]:
            return False
    return True


def pt_nif(s: str) -> bool:
    """Portugal, NIF: 9 digits, weights 9..2, mod 11."""
    if len(s) != 9 or not s.isdigit() or s[0] not in "1235689":
        return False
    digits = _d(s)
    rest = sum(d * w for d, w in zip(digits[:8], range(9, 1, -1), strict=True)) % 11
    return (0 if rest < 2 else 11 - rest) == digits[8]


def br_cpf(s: str) -> bool:
    """Brazil, CPF: 9 digits and two mod-11 check digits; not one digit repeated."""
    if len(s) != 11 or not s.isdigit() or s == s[0] * 11:
        return False
    digits = _d(s)
    for n in (9, 10):
        total = sum(d * w for d, w in zip(digits[:n], range(n + 1, 1, -1), strict=True))
        if total * 10 % 11 % 10 != digits[n]:
            return False
    return True


_CURP_VALUES = {ch: i for i, ch in enumerate("0123456789ABCDEFGHIJKLMN&OPQRSTUVWXYZ")}


def mx_curp(s: str) -> bool:
    """Mexico, CURP: 17 characters (with a YYMMDD date) and a check digit."""
    if len(s) != 18 or not s[4:10].isdigit() or not s[17].isdigit():
        return False
    if not _date_ok(int(s[6:8]), int(s[8:10])):
        return False
    total = sum(_CURP_VALUES.get(ch, 0) * (18 - i) for i, ch in enumerate(s[:17]))
    return (10 - total % 10) % 10 == int(s[17])


_CN_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def cn_resident_id(s: str) -> bool:
    """China, resident identity card: region, YYYYMMDD, order, ISO 7064 MOD 11-2."""
    if len(s) != 18 or not s[:17].isdigit() or s[6:8] not in ("18", "19", "20"):
        return False
    if not _date_ok(int(s[10:12]), int(s[12:14])):
        return False
    total = sum(d * w for d, w in zip(_d(s[:17]), _CN_WEIGHTS, strict=True))
    return "10X98765432"[total % 11] == s[17]


def jp_my_number(s: str) -> bool:
    """Japan, individual number (マイナンバー): 11 digits and a mod-11 check digit."""
    if len(s) != 12 or not s.isdigit():
        return False
    digits = _d(s)
    total = sum(digits[10 - n] * (n + 2 if n < 6 else n - 4) for n in range(11))
    rest = total % 11
    return (0 if rest <= 1 else 11 - rest) == digits[11]


def kr_rrn_date(s: str) -> bool:
    """Korea, resident registration number: YYMMDD and a citizen's sex/century
    digit (1-4; foreigners' 5-8 are registration numbers of another kind)."""
    return len(s) == 13 and s.isdigit() and _date_ok(int(s[2:4]), int(s[4:6])) and s[6] in "1234"


def kr_rrn(s: str) -> bool:
    """:func:`kr_rrn_date` and the check digit of numbers issued before October 2020."""
    if not kr_rrn_date(s):
        return False
    total = sum(d * w for d, w in zip(_d(s[:12]), (2, 3, 4, 5, 6, 7, 8, 9) * 2, strict=False))
    return (11 - total % 11) % 10 == int(s[12])


def au_tfn(s: str) -> bool:
    """Australia, tax file number: 9 digits (8 for old ones), weighted sum mod 11."""
    weights = (1, 4, 3, 7, 5, 8, 6, 9, 10) if len(s) == 9 else (10, 7, 8, 4, 6, 3, 5, 1)
    if len(s) not in (8, 9) or not s.isdigit():
        return False
    return sum(d * w for d, w in zip(_d(s), weights, strict=True)) % 11 == 0


#: the check letters of NRIC/FIN series, and the offset each series adds to the sum
_SG_SERIES = {
    "S": ("JZIHGFEDCBA", 0),
    "T": ("JZIHGFEDCBA", 4),
    "F": ("XWUTRQPNMLK", 0),
    "G": ("XWUTRQPNMLK", 4),
    "M": ("XWUTRQPNJLK", 3),
}


def sg_nric(s: str) -> bool:
    """Singapore, NRIC/FIN: S/T/F/G/M, 7 digits, check letter (weights 2-7-6-5-4-3-2)."""
    series = _SG_SERIES.get(s[:1])
    if len(s) != 9 or series is None or not s[1:8].isdigit():
        return False
    letters, offset = series
    total = sum(d * w for d, w in zip(_d(s[1:8]), (2, 7, 6, 5, 4, 3, 2), strict=True))
    return letters[(total + offset) % 11] == s[8]


def za_id(s: str) -> bool:
    """South Africa, identity number: YYMMDD, 4, citizenship 0-2, 1, Luhn."""
    return (
        len(s) == 13
        and s.isdigit()
        and _date_ok(int(s[2:4]), int(s[4:6]))
        and s[10] in "012"
        and luhn_valid(s)
    )


def il_id(s: str) -> bool:
    """Israel, teudat zehut: 9 digits (shorter ones padded), Luhn-style weights 1-2."""
    return 5 <= len(s) <= 9 and s.isdigit() and luhn_valid(s.zfill(9)) and int(s) > 0


def tr_tc_kimlik(s: str) -> bool:
    """Türkiye, T.C. kimlik numarası: 11 digits, no leading 0, two check digits."""  # noqa: RUF002
    if len(s) != 11 or not s.isdigit() or s[0] == "0":
        return False
    d = _d(s)
    tenth = ((d[0] + d[2] + d[4] + d[6] + d[8]) * 7 - (d[1] + d[3] + d[5] + d[7])) % 10
    return tenth == d[9] and sum(d[:10]) % 10 == d[10]
