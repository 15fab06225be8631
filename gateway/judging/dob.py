"""Dates of birth: a date shortly after a birth keyword, in 18 languages.

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

Anchored at dates, not keywords (see :func:`date_of_birth`); the non-ASCII
keywords are looked for only in texts that are not ASCII.
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
    "|ocak|şubat|subat|mart|nisan|mayıs|haziran|temmuz|ağustos|eylül|ekim|kasım|aralık"  # noqa: RUF001
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
MONTHS = frozenset(_MONTHS.split("|"))
_LONGEST_KEYWORD = max(len(k) for k, _ in _ASCII_KEYWORDS + _OTHER_KEYWORDS)
_DAY_SUFFIX = re.compile(r"(?:st|nd|rd|th|er|º|°)?\.?,?(?: of| de| di)? ")
_WORD = re.compile(r"[^\W\d_]+")
_WORD_BEFORE = re.compile(r"[^\W\d_]{3,12}\.?\Z")


def date_of_birth(probe: Probe) -> Iterator[Finding]:
    """A date starting within :data:`WINDOW` characters after a keyword.

    Anchored at the date, not the keyword: each digit run is looked at once
    (could a date start here or at the month's name before it?), the date
    pattern is tried only where one could, and the keywords are looked for
    only in the few characters before a real date. Prose pays a few cheap
    tests per digit run, whatever the number of keywords.
    """
    if not probe.has_digits:  # every date has digits
        return
    text = probe.text
    lower = probe.lower
    keywords = _ASCII_KEYWORDS if text.isascii() else _ASCII_KEYWORDS + _OTHER_KEYWORDS
    end = 0
    for run_start, run_end in probe.runs:
        if run_start < end:
            continue
        start = _date_start(text, lower, run_start, run_end)
        if start < 0:
            continue
        m = DATE.match(text, start)
        if m is not None and _keyword_before(lower, start, keywords):
            end = m.end()
            yield Finding("date_of_birth", start, end)


def _date_start(text: str, lower: str, run_start: int, run_end: int) -> int:
    """Where a date holding the digit run could start, or -1."""
    n = len(text)
    length = run_end - run_start
    after = text[run_end] if run_end < n else ""
    if length <= 2 and after in "./-" and after:
        return run_start
    if length == 4 and after and (after in "./-年년" or text.startswith((" 年", " 년"), run_end)):
        return run_start
    if length <= 2:  # a day, then a month's name: "3 May", "12. März", "3 de mayo"
        suffix = _DAY_SUFFIX.match(lower, run_end)
        if suffix is not None:
            word = _WORD.match(lower, suffix.end())
            if word is not None and word.group() in MONTHS:
                return run_start
    if (
        length <= 2
        and run_start >= 4
        and text[run_start - 1] == " "
        and (lower[run_start - 2].isalpha() or lower[run_start - 2] == ".")
    ):  # a month's name, then a day: "May 3"
        word = _WORD_BEFORE.search(lower, max(0, run_start - 15), run_start - 1)
        if (
            word is not None
            and word.group().rstrip(".") in MONTHS
            and (word.start() == 0 or not lower[word.start() - 1].isalpha())
        ):
            return word.start()
    return -1


def _keyword_before(lower: str, start: int, keywords: tuple[tuple[str, bool], ...]) -> bool:
    """A keyword ends at most :data:`WINDOW` characters before ``start``."""
    low = max(0, start - WINDOW - 1 - _LONGEST_KEYWORD)
    for keyword, whole in keywords:
        i = lower.rfind(keyword, low, start)
        if (
            i >= 0
            and i + len(keyword) >= start - WINDOW - 1
            and _bounded(lower, i, i + len(keyword), whole)
        ):
            return True
    return False


def _bounded(lower: str, i: int, after: int, whole: bool) -> bool:
    """The keyword is a word of its own ("born", not "stubborn"; "dob", not "adobe")."""
    if i and lower[i - 1].isalpha() and lower[i].isascii():
        return False
    return not whole or after >= len(lower) or not lower[after].isalpha()
