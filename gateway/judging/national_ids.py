"""National identity numbers of 25 countries, each held to its published check.

Every format is tried only at a digit run of its shape (its length and the
character after it), so prose pays a dict-free length test per
digit run. A match must stand alone (nothing alphanumeric glued to either side)
and pass its country's check (:mod:`gateway.judging.id_checks`). Where the
format alone is weak — a bare run of 9 digits passes a mod-11 check one time in
eleven — the finding also needs a context word in the local language within a
few words before or after it (``"BSN"``, ``"NIF"``, ``"Steuer-ID"``,
``"マイナンバー"``); without a check or context a bare digit run is never flagged.

Entities: ``us_ssn``, ``uk_nino`` (formats only: neither has a check digit),
``ca_sin``, ``es_dni`` (DNI and NIE), ``in_aadhaar``, ``fr_nir``,
``de_steuer_id``, ``it_codice_fiscale``, ``nl_bsn``, ``be_national_number``,
``pl_pesel``, ``se_personnummer``, ``fi_hetu``, ``no_fnr``, ``pt_nif``,
``br_cpf``, ``mx_curp``, ``cn_resident_id``, ``jp_my_number``, ``kr_rrn``,
``au_tfn``, ``sg_nric``, ``za_id``, ``il_id``, ``tr_tc_kimlik``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from gateway.judging import id_checks as c
from gateway.judging.anchors import CARD_WORDS, anchored, free_left, only_digits
from gateway.judging.checksums import luhn_valid, verhoeff_valid
from gateway.judging.id_format import Detect, IdFormat, detector, never, separated, words
from gateway.judging.probe import Finding, Probe


def _steuer_strong(match: str, compact: str) -> bool:
    return len(match) != len(compact) or c.de_steuer_id(compact, strict=True)


def _kr_strong(match: str, compact: str) -> bool:
    return "-" in match or c.kr_rrn(compact)


def _se_strong(match: str, compact: str) -> bool:
    return len(match) != len(compact) or len(compact) == 12


def _ssn_bare(compact: str) -> bool:
    area, group, serial = compact[:3], compact[3:5], compact[5:]
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


#: words that say a bare digit run is some other number (a card, an order, a phone)
_OTHER_NUMBER = re.compile(
    CARD_WORDS.pattern
    + r"|(?<![a-z])(?:order|invoice|tracking|ticket|isbn|ean|sku|transaction|txn|serial"
    r"|phone|tel|mobile|fax|call|whatsapp)(?![a-z])|电话|手机|電話"
)
_NRIC = re.compile(r"[stfgm][0-9]{7}[a-z]", re.IGNORECASE)
_CF = "[0-9lmnpqrstuv]"
_CODICE_FISCALE = re.compile(
    rf"[a-z]{{6}}{_CF}{{2}}[abcdehlmprst]{_CF}{{2}}[a-z]{_CF}{{3}}[a-z]", re.IGNORECASE
)
FORMATS: tuple[IdFormat, ...] = (
    IdFormat(
        "fr_nir",
        re.compile(r"[12] ?[0-9]{2} ?[0-9]{2} ?(?:[0-9]{2}|2[ABab]) ?[0-9]{3} ?[0-9]{3} ?[0-9]{2}"),
        ((13, "*"), (15, "*"), (1, " "), (6, "ABab")),
        c.fr_nir,
    ),
    IdFormat(
        "de_steuer_id",
        re.compile(r"[1-9][0-9](?: ?[0-9]{3}){3}"),
        ((11, "*"), (2, " ")),
        lambda s: c.de_steuer_id(s, strict=False),
        _steuer_strong,
        words(
            "steuer-id",
            "steuerid",
            "steuer-idnr",
            "idnr",
            "id-nr",
            "steuer",
            "identifikationsnummer",
            "tax id",
            "tin",
        ),
    ),
    # the first digit run of a codice fiscale: the year's, or (its digits
    # replaced by letters, "omocodia") the day's or the town's
    *(
        IdFormat(
            "it_codice_fiscale",
            _CODICE_FISCALE,
            tuple((length, "*") for length in range(1, longest + 1)),
            c.it_codice_fiscale,
            back=back,
        )
        for back, longest in ((6, 2), (7, 1), (9, 2), (10, 1), (12, 3), (13, 2), (14, 1))
    ),
    IdFormat(
        "mx_curp",
        re.compile(
            r"[a-z][aeioux][a-z]{2}[0-9]{6}[hmx][a-z]{2}[b-df-hj-np-tv-z]{3}[0-9a-z][0-9]", re.I
        ),
        ((6, "*"),),
        c.mx_curp,
        back=4,
    ),
    IdFormat("sg_nric", _NRIC, ((7, "*"),), c.sg_nric, back=1),
    # the format alone, when the text says what it is
    IdFormat(
        "sg_nric",
        _NRIC,
        ((7, "*"),),
        lambda s: True,
        never,
        words("nric", "fin", "ic number", "identity card", "身份证"),
        back=1,
    ),
    IdFormat(
        "fi_hetu",
        re.compile(r"[0-9]{6}[-+a-fu-y][0-9]{3}[0-9a-y]", re.I),
        ((6, "*"),),
        c.fi_hetu,
        raw=True,
    ),
    IdFormat(
        "cn_resident_id",
        re.compile(r"[1-9][0-9]{16}[0-9Xx]"),
        ((17, "*"), (18, "*")),
        c.cn_resident_id,
        veto=_OTHER_NUMBER,
    ),
    IdFormat(
        "kr_rrn",
        re.compile(r"[0-9]{6}-?[0-9]{7}"),
        ((13, "*"), (6, "-")),
        c.kr_rrn_date,
        _kr_strong,
        words("주민등록번호", "주민번호", "rrn", "resident registration"),
    ),
    IdFormat(
        "za_id",
        re.compile(r"[0-9]{6} ?[0-9]{4} ?[0-9]{3}"),
        ((13, "*"), (6, " ")),
        c.za_id,
        veto=_OTHER_NUMBER,
    ),
    IdFormat(
        "be_national_number",
        re.compile(r"[0-9]{2}\.?[0-9]{2}\.?[0-9]{2}[- ]?[0-9]{3}\.?[0-9]{2}"),
        ((11, "*"), (2, "."), (6, "- ")),
        c.be_national_number,
        veto=_OTHER_NUMBER,
    ),
    IdFormat("pl_pesel", re.compile(r"[0-9]{11}"), ((11, "*"),), c.pl_pesel, veto=_OTHER_NUMBER),
    IdFormat(
        "no_fnr",
        re.compile(r"[0-9]{6} ?[0-9]{5}"),
        ((11, "*"), (6, " ")),
        c.no_fnr,
        veto=_OTHER_NUMBER,
    ),
    IdFormat(
        "tr_tc_kimlik",
        re.compile(r"[1-9][0-9]{10}"),
        ((11, "*"),),
        c.tr_tc_kimlik,
        veto=_OTHER_NUMBER,
    ),
    IdFormat(
        "br_cpf",
        re.compile(r"[0-9]{3}\.[0-9]{3}\.[0-9]{3}-[0-9]{2}|[0-9]{11}"),
        ((11, "*"), (3, ".")),
        c.br_cpf,
        separated,
        words("cpf", "cadastro de pessoas"),
    ),
    IdFormat(
        "se_personnummer",
        re.compile(r"(?:[0-9]{2})?[0-9]{6}[-+ ]?[0-9]{4}"),
        ((10, "*"), (12, "*"), (6, "-+ "), (8, "-+ ")),
        c.se_personnummer,
        _se_strong,
        words("personnummer", "personnr", "samordningsnummer", "person number"),
    ),
    IdFormat(
        "jp_my_number",
        re.compile(r"[0-9]{4}[ -]?[0-9]{4}[ -]?[0-9]{4}"),
        ((12, "*"), (4, " -")),
        c.jp_my_number,
        never,
        words("マイナンバー", "個人番号", "my number", "mynumber", "individual number"),
    ),
    IdFormat(
        "nl_bsn",
        re.compile(r"[0-9]{4}\.[0-9]{2}\.[0-9]{3}|[0-9]{9}"),
        ((9, "*"), (4, ".")),
        c.nl_bsn,
        never,
        words(
            "bsn",
            "burgerservicenummer",
            "sofinummer",
            "sofi-nummer",
            "sofi nummer",
            "citizen service number",
            "persoonsnummer",
        ),
    ),
    IdFormat(
        "pt_nif",
        re.compile(r"[0-9]{3} ?[0-9]{3} ?[0-9]{3}"),
        ((9, "*"), (3, " ")),
        c.pt_nif,
        never,
        words(
            "nif",
            "nipc",
            "contribuinte",
            "número fiscal",
            "numero fiscal",
            "identificação fiscal",
            "identificacao fiscal",
        ),
    ),
    IdFormat(
        "au_tfn",
        re.compile(r"[0-9]{3} ?[0-9]{3} ?[0-9]{2,3}"),
        ((8, "*"), (9, "*"), (3, " ")),
        c.au_tfn,
        separated,
        words("tfn", "tax file number", "tax file no"),
    ),
    IdFormat(
        "il_id",
        re.compile(r"[0-9]{9}"),
        ((9, "*"),),
        c.il_id,
        never,
        words("teudat zehut", "תעודת זהות", "ת.ז", 'ת"ז', "מספר זהות", "israeli id"),
    ),
    IdFormat(
        "us_ssn",
        re.compile(r"[0-9]{9}"),
        ((9, "*"),),
        _ssn_bare,
        never,
        words("ssn", "social security", "seguro social"),
    ),
    IdFormat(
        "ca_sin",
        re.compile(r"[0-9]{9}"),
        ((9, "*"),),
        luhn_valid,
        never,
        words("sin", "social insurance", "nas", "assurance sociale"),
    ),
    IdFormat(
        "in_aadhaar",
        re.compile(r"[2-9][0-9]{11}"),
        ((12, "*"),),
        verhoeff_valid,
    ),
)


# --- the formats with a shape of their own (separators, letters) ------------------

_SSN = re.compile(
    r"(?!000|666|9)[0-9]{3}([-. ])(?!00)[0-9]{2}\1(?!0000)[0-9]{4}(?![0-9]|[-.][0-9])"
)
us_ssn = anchored(
    "us_ssn", _SSN, lambda s: True, lambda n, sep: n == 3 and sep in " -.", whole=True
)

_SIN = re.compile(r"[1-79][0-9]{2}([ -])[0-9]{3}\1[0-9]{3}(?![0-9]|[-.][0-9])")
ca_sin = anchored(
    "ca_sin",
    _SIN,
    lambda s: luhn_valid(only_digits(s)),
    lambda n, sep: n == 3 and sep in " -",
    whole=True,
)

_AADHAAR = re.compile(r"[2-9][0-9]{3}([ -])[0-9]{4}\1[0-9]{4}(?![0-9]|[-.][0-9])")
in_aadhaar = anchored(
    "in_aadhaar",
    _AADHAAR,
    lambda s: verhoeff_valid(only_digits(s)),
    lambda n, sep: n == 4 and sep in " -",
    whole=True,
)

_DNI_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE"


def _dni_valid(s: str) -> bool:
    s = s.upper()
    body = s[:-1].replace("-", "")
    head = "XYZ".find(body[0])
    number = int(str(head) + body[1:] if head >= 0 else body)
    return _DNI_LETTERS[number % 23] == s[-1]


_DNI = re.compile(r"[0-9]{8}-?[A-Za-z](?![A-Za-z0-9])")
_NIE = re.compile(r"[XYZxyz][0-9]{7}-?[A-Za-z](?![A-Za-z0-9])")
es_dni_numbers = anchored("es_dni", _DNI, _dni_valid, lambda n, sep: n == 8)


_DNI_SHORT = re.compile(r"[0-9]{7}-[A-Za-z](?![A-Za-z0-9])")


def es_nie(probe: Probe) -> Iterator[Finding]:
    """Spanish NIE: X/Y/Z, 7 digits, the mod-23 letter (either case); and a DNI
    written without its leading zero, hyphenated (``1111111-G``)."""
    text = probe.text
    for run_start, run_end in probe.runs:
        if run_end - run_start != 7:
            continue
        start = run_start - 1
        if start >= 0 and text[start] in "XYZxyz":
            if not free_left(text, start):
                continue
            m = _NIE.match(text, start)
        elif free_left(text, run_start):
            start = run_start
            m = _DNI_SHORT.match(text, start)
        else:
            continue
        if m is not None and _dni_valid(m.group()):
            yield Finding("es_dni", start, m.end())


def es_dni(probe: Probe) -> Iterator[Finding]:
    yield from es_dni_numbers(probe)
    yield from es_nie(probe)


_NINO = re.compile(
    r"(?!BG|GB|KN|NK|NT|TN|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]"
    r" ?[0-9]{2} ?[0-9]{2} ?[0-9]{2} ?[A-D](?![A-Za-z0-9])",
    re.IGNORECASE,
)


def uk_nino(probe: Probe) -> Iterator[Finding]:
    """UK National Insurance number: two letters HMRC allows, 6 digits (maybe in
    pairs), A-D; either case, maybe a space after the letters."""
    text = probe.text
    for run_start, run_end in probe.runs:
        if run_end - run_start not in (2, 6):
            continue
        start = run_start - 2
        if start > 0 and text[start + 1] == " ":
            start -= 1
        if start < 0 or not free_left(text, start):
            continue
        m = _NINO.match(text, start)
        if m is not None and (run_end - run_start == 6 or text[run_end] == " "):
            yield Finding("uk_nino", start, m.end())


#: every :data:`FORMATS` entity
FORMAT_ENTITIES: frozenset[str] = frozenset(f.entity for f in FORMATS)
#: all of :data:`FORMATS` in one pass over the digit runs (its findings are of
#: several entities: :class:`~gateway.judging.sensitivity.Scanner` filters them)
formats = detector(*FORMATS)
#: entity -> the detectors that read :attr:`Probe.runs` (all digit runs)
ON_RUNS: tuple[tuple[str, Detect], ...] = (("es_dni", es_nie), ("uk_nino", uk_nino))
#: the detectors that read :attr:`Probe.starts`
ON_STARTS: tuple[tuple[str, Detect], ...] = (
    ("us_ssn", us_ssn),
    ("ca_sin", ca_sin),
    ("es_dni", es_dni_numbers),
    ("in_aadhaar", in_aadhaar),
)
#: the detectors that read :attr:`Probe.lettered`
ON_LETTERED: tuple[tuple[str, Detect], ...] = ()


def all_detectors() -> dict[str, list[Detect]]:
    """Every national-id detector, by entity (the reference list :func:`Scanner.find_all_detectors` runs)."""
    out: dict[str, list[Detect]] = {}
    for entity in sorted(FORMAT_ENTITIES):
        out[entity] = [detector(*(f for f in FORMATS if f.entity == entity))]
    for name, detect in (*ON_RUNS, *ON_STARTS, *ON_LETTERED):
        out.setdefault(name, []).append(detect)
    return out
