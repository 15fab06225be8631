"""Credentials in text: a secret assigned to a named key, a password in a URL.

``password`` findings cover the value only. The rules are documented in
:mod:`gateway.judging.sensitivity` with the other secrets. Two parts with their
own prerequisites, so a scan can skip either on its own: :func:`assignments`
(a key needle in the lower-cased text) and :func:`url_passwords` (``://`` and
``@`` in the text).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from gateway.judging.probe import Finding, Probe


def occurrences(text: str, needle: str) -> Iterator[int]:
    """Every index of ``needle`` in ``text``, overlapping occurrences included."""
    i = text.find(needle)
    while i >= 0:
        yield i
        i = text.find(needle, i + 1)


def letters_and_digits(value: str) -> bool:
    return any(ch.isdigit() for ch in value) and any(ch.isalpha() for ch in value)


#: lower-case needles that start a credential key name; the full key is checked below
_KEY_NEEDLES = ("pass", "pwd", "secret", "key", "token")
_KEY_NAME = re.compile(
    r"(?:[a-z0-9]+[_\-.])*"
    r"(?P<kind>password|passwd|passphrase|pwd|pass|secret|secret[_\-]?key|"
    r"api[_\-]?key|apikey|access[_\-]?key|private[_\-]?key|"
    r"(?:access|auth|api|bearer|refresh|client)?[_\-]?token|client[_\-]?secret)"
)
_ASSIGN = re.compile(
    r"[\"']?\s*(?P<op>:=|=>|=|:)\s*"
    r"(?:(?P<q>[\"'])(?P<qv>[^\"'\r\n]{1,200})(?P=q)|(?P<v>[^\s\"'`,;&)}\]]{1,200}))"
)
_PASSWORD_KINDS = frozenset({"password", "passwd", "passphrase", "pwd", "pass"})
_NOT_VALUES = frozenset(
    {"none", "null", "nil", "true", "false", "undefined", "string", "str", "required",
     "optional", "password", "secret", "token", "redacted", "hidden", "empty", "bool", "int"}
)  # fmt: skip
_REFERENCE = re.compile(
    r"[$%{<\[/]|(?:os|env|process|self|this|config|settings|request|args)\.|getenv|\("
)
_IDENT = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_-.")


def _credential_value_ok(kind: str, value: str, quoted: bool, op: str) -> bool:
    if value.lower() in _NOT_VALUES or len(set(value)) == 1:
        return False
    if _REFERENCE.match(value) or "(" in value:
        return False
    if kind in _PASSWORD_KINDS:
        if len(value) < 4:
            return False
        return quoted or op != ":" or not value.isalpha()
    return len(value) >= 8 and letters_and_digits(value)


def assignments(probe: Probe) -> Iterator[Finding]:
    lower = probe.lower
    needles = [n for n in _KEY_NEEDLES if n in lower]
    if not needles:
        return
    text = probe.text
    ends: set[int] = set()
    for needle in needles:
        for i in occurrences(lower, needle):
            end = i + len(needle)
            while end < len(lower) and lower[end] in _IDENT:
                end += 1
            start = i
            while start > 0 and lower[start - 1] in _IDENT:
                start -= 1
            if end in ends:  # the same key found through another needle
                continue
            ends.add(end)
            name = _KEY_NAME.fullmatch(lower, start, end)
            if name is None:
                continue
            m = _ASSIGN.match(text, end)
            if m is None:
                continue
            quoted = m.group("qv") is not None
            group = "qv" if quoted else "v"
            value = m.group(group)
            if _credential_value_ok(name.group("kind"), value, quoted, m.group("op")):
                yield Finding("password", m.start(group), m.end(group))


_URL_CREDENTIAL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/@]{1,64}:(?P<pw>[^\s/@]{1,128})@")


def url_passwords(probe: Probe) -> Iterator[Finding]:
    text = probe.text
    if "://" not in text or "@" not in text:
        return
    for i in occurrences(text, "://"):
        start = i
        while start > 0 and (text[start - 1].isalnum() or text[start - 1] in "+.-"):
            start -= 1
        m = _URL_CREDENTIAL.match(text, start)
        if m is not None and not m.group("pw").startswith("["):
            yield Finding("password", m.start("pw"), m.end("pw"))


def password(probe: Probe) -> Iterator[Finding]:
    yield from assignments(probe)
    yield from url_passwords(probe)
