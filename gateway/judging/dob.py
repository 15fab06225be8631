"""Dates of birth: a date shortly after a birth keyword, in 20 languages.

Keywords (lower case, each a word of its own where the script has words):
"DOB", "born", "date of birth", "birthday"; "geboren am", "Geburtsdatum";
"né le", "date de naissance"; "fecha de nacimiento", "nacido el"; "data di
nascita", "nato il"; "data de nascimento", "nascido em"; "geboortedatum";
"data urodzenia", "urodzony"; "дата рождения", "родился"; "doğum tarihi";
"födelsedatum", "född"; "fødselsdato", "født"; "syntymäaika"; "narozen";
"出生日期", "生日"; "生年月日", "誕生日"; "생년월일", "출생". The date starts
within :data:`WINDOW` characters after the keyword: numeric (``03/05/1985``,
``1985-05-03``, ``3.5.85``), with a month's name in one of those languages
(``12. März 1985``, ``3 de mayo de 1985``, ``May 3rd, 1985``, ``3 мая 1985``),
or CJK (``1985年5月3日``, ``1985년 5월 3일``).

The keywords are looked up with ``str.find`` (a fast search each), only in
texts with digits, and the non-ASCII ones only in texts that are not ASCII.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from gateway.judging.probe import Finding, Probe

#: keywords that need no letter right before them; ``True``: nor right after
_ASCII_KEYWORDS: tuple[tuple[str, bool], ...] = (
    ("birth", False),  # "birthday", "birthdate", "date of birth"
    ("born", True),
    ("dob", True),
    ("d.o.b", False),
    ("geboren", True),
    ("geburt", False),  # "Geburtsdatum", "Geburtstag"
    ("geb.", False),
    ("geboorte", False),  # "geboortedatum"
    ("naissance", True),
    ("nacimiento", True),
    ("nacido", True),
    ("nacida", True),
    ("nascita", True),
    ("nato il", True),
    ("nata il", True),
    ("nascimento", True),
    ("nascido", True),
    ("nascida", True),
    ("urodz", False),  # "urodzenia", "urodzony", "urodzona"
    ("fodelsedatum", True),
    ("fodd", True),
    ("fodsel", False),
    ("syntyma", False),
    ("syntynyt", True),
    ("narozen", False),
)
_OTHER_KEYWORDS: tuple[tuple[str, bool], ...] = (
    ("né le", True),
    ("née le", True),
    ("né(e) le", True),
    ("né en", True),
    ("рожд", False),  # "дата рождения", "рождён"
    ("родил", False),  # "родился", "родилась"
    ("doğum", False),
    ("födelse", False),
    ("född", True),
    ("fødsel", False),
    ("født", True),
    ("syntymä", False),
    ("出生", False),
    ("生日", False),
    ("生年月日", False),
    ("誕生日", False),
    ("生まれ", False),
    ("생년월일", False),
    ("생일", False),
    ("출생", False),
)

_MONTHS = (
    # en
    "jan|january|feb|february|mar|march|apr|april|may|jun|june|jul|july|aug|august"
    "|sep|sept|september|oct|october|nov|november|dec|december"
    # de, nl, sv, da, no
    "|januar|jänner|februar|märz|mai|juni|juli|oktober|dezember|januari|februari|maart|mei"
    "|augustus|augusti|mars|marts|maj|desember"
    # fr
    "|janvier|février|fevrier|avril|juin|juillet|août|aout|septembre|octobre|novembre"
    "|décembre|decembre"
    # es, it, pt
    "|enero|febrero|marzo|abril|mayo|junio|julio|agosto|septiembre|setiembre|octubre"
    "|noviembre|diciembre|gennaio|febbraio|aprile|maggio|giugno|luglio|settembre|ottobre"
    "|dicembre|janeiro|fevereiro|março|marco|maio|junho|julho|setembro|outubro|dezembro"
    # pl (genitive), ru (genitive), tr
    "|stycznia|lutego|marca|kwietnia|maja|czerwca|lipca|sierpnia|września|wrzesnia"
    "|października|pazdziernika|listopada|grudnia"
    "|января|февраля|марта|апреля|мая|июня|июля|августа|сентября|октября|ноября|декабря"
    "|ocak|şubat|subat|mart|nisan|mayıs|haziran|temmuz|ağustos|eylül|ekim|kasım|aralık"
)
_MONTH = rf"(?:{_MONTHS})\.?"
_DAY = r"[0-9]{1,2}(?:st|nd|rd|th|er|º|°)?\.?"
_YEAR = r"(?:1[89]|20)[0-9]{2}"
DATE = re.compile(
    r"(?:[0-9]{1,2}[./\-][0-9]{1,2}[./\-](?:[0-9]{4}|[0-9]{2})"
    r"|[0-9]{4}[./\-][0-9]{1,2}[./\-][0-9]{1,2}"
    rf"|{_DAY}(?: of| de| di)? {_MONTH},?(?: de| of)? {_YEAR}"
    rf"|{_MONTH} {_DAY},? {_YEAR}"
    r"|[0-9]{4} ?年 ?[0-9]{1,2} ?月 ?[0-9]{1,2} ?[日号]?"
    r"|[0-9]{4} ?년 ?[0-9]{1,2} ?월 ?[0-9]{1,2} ?일?"
    r")(?![0-9])",
    re.IGNORECASE,
)
#: how far after the keyword the date may start ("date of birth: ", "born on the ")
WINDOW = 24
#: where a date can start: a digit or a letter (a month's name)
_DATE_START = re.compile(r"[0-9]|(?<![^\W\d_])[^\W\d_]")


def date_of_birth(probe: Probe) -> Iterator[Finding]:
    """A date starting within :data:`WINDOW` characters after a keyword.

    The date pattern is tried only where a date can start (a digit, a word's
    first letter) in that window: thousands of "born"s cost a few cheap
    searches each.
    """
    if not probe.has_digits:  # every date has digits
        return
    lower = probe.lower
    text = probe.text
    keywords = _ASCII_KEYWORDS if text.isascii() else _ASCII_KEYWORDS + _OTHER_KEYWORDS
    found: list[Finding] = []
    for keyword, whole in keywords:
        i = lower.find(keyword)
        while i >= 0:
            after = i + len(keyword)
            if _bounded(lower, i, after, whole):
                date = _date_after(text, lower, after, after + WINDOW + 1)
                if date is not None:
                    found.append(Finding("date_of_birth", date.start(), date.end()))
            i = lower.find(keyword, after)
    if len(found) > 1:
        found.sort(key=lambda f: f.start)
        found = [f for k, f in enumerate(found) if k == 0 or f.start >= found[k - 1].end]
    yield from found


def _date_after(text: str, lower: str, pos: int, last: int) -> re.Match[str] | None:
    """The first date starting in ``[pos, last)``."""
    start = _DATE_START.search(lower, pos, last + 2)
    while start is not None and start.start() < last:
        m = DATE.match(text, start.start())
        if m is not None:
            return m
        start = _DATE_START.search(lower, start.start() + 1, last + 2)
    return None


def _bounded(lower: str, i: int, after: int, whole: bool) -> bool:
    """The keyword is a word of its own ("born", not "stubborn"; "dob", not "adobe")."""
    if i and lower[i - 1].isalpha() and lower[i].isascii():
        return False
    return not whole or after >= len(lower) or not lower[after].isalpha()
