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

from gateway.judging.placeholders import (
    is_password_placeholder,
    is_placeholder,
    is_published_sample,
)
from gateway.judging.probe import Finding, Probe, match_end
from gateway.judging.prose_credentials import command_passwords, credential_pairs, prose_passwords


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
    # names glued to a password word: PGPASSWORD, dbpass, adminpwd, keystorepass
    r"(?P<glue>[a-z0-9]*?)"
    r"(?P<kind>password|passwd|passphrase|pwd|pass|secret|secret[_\-]?key|"
    r"api[_\-]?key|apikey|access[_\-]?key|private[_\-]?key|"
    r"(?:access|auth|api|bearer|refresh|client)?[_\-]?token|client[_\-]?secret)"
)
_ASSIGN = re.compile(
    r"\\?[\"']?\s*(?P<op>:=|=>|=|:)\s*"
    r"(?:(?P<q>\\?[\"'])(?P<qv>[^\"'\r\n\\]{1,200})(?P=q)|(?P<v>[^\s\"'`,;&)}\]\\]{1,200}))"
)
_PASSWORD_KINDS = frozenset({"password", "passwd", "passphrase", "pwd", "pass"})
_NOT_VALUES = frozenset(
    {"none", "null", "nil", "true", "false", "undefined", "string", "str", "required",
     "optional", "password", "secret", "token", "redacted", "hidden", "empty", "bool", "int"}
)  # fmt: skip
_REFERENCE = re.compile(
    r"[$%{<\[/]|(?:os|env|process|self|this|config|settings|request|args)\.|getenv|\("
)


def _credential_value_ok(kind: str, value: str, quoted: bool, op: str) -> bool:
    if value.lower() in _NOT_VALUES or is_password_placeholder(value):
        return False
    if is_published_sample(value):
        return False
    if _REFERENCE.match(value) or "(" in value:
        return False
    if kind in _PASSWORD_KINDS:
        if len(value) < 4:
            return False
        return quoted or op != ":" or not value.isalpha()
    if is_placeholder(value):
        return False  # keys and tokens: documentation fillers, sequences, low entropy
    if kind == "secret" and quoted and len(value) >= 8 and not value.isalnum():
        # secret: "development#product" (a shared secret in words and signs)
        return " " not in value and any(c.isalpha() for c in value)
    return len(value) >= 8 and letters_and_digits(value)


#: a maximal run of key-name characters
_IDENT_RUN = re.compile(r"[a-z0-9_\-.]*")
_SEPARATOR = re.compile(r"[_\-.]")
_NAME_MAX = 64
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_-.")


def assignments(probe: Probe) -> Iterator[Finding]:
    """Credentials assigned to a key name, in one pass per needle.

    Linear in the text: each run of key-name characters holding a needle is
    read once, however many needles it holds ("keykeykey..." is one run, not
    one per needle), and of a long run only the last :data:`_NAME_MAX`
    characters before the needle are walked back.
    """
    lower = probe.lower
    text = probe.text
    n = len(lower)
    done: set[int] = set()  # ends of the runs already read (through another needle)
    for needle in _KEY_NEEDLES:
        pos = 0
        size = len(needle)
        for i in probe.finds(needle):
            if i < pos:
                continue
            # a character loop for the usual short name; a regex finishes a long run
            end = i + size
            stop = end + _NAME_MAX
            if stop > n:
                stop = n
            while end < stop and lower[end] in _NAME_CHARS:
                end += 1
            if end == stop and end < n:
                end = match_end(_IDENT_RUN, lower, end)
            # only the last _NAME_MAX characters of a name are read (see _tail_start)
            low = i - _NAME_MAX
            if low < pos:
                low = pos
            start = i
            while start > low and lower[start - 1] in _NAME_CHARS:
                start -= 1
            while start < i and lower[start] in "-_.":  # --password=, _token
                start += 1
            pos = end
            if end not in done:
                done.add(end)
                if end - start > _NAME_MAX or (start and lower[start - 1] in _NAME_CHARS):
                    start = _tail_start(lower, start, end)
                name = _KEY_NAME.fullmatch(lower, start, end) if start >= 0 else None
                if name is not None and name.group("glue") and not _glued(text, name):
                    name = None
                if name is not None:
                    finding = _assigned(text, name.group("kind"), start, end)
                    if finding is not None:
                        yield finding


#: words a credential word may be glued to: PGPASSWORD, dbpass, adminpwd, jwtsecret
_GLUES = frozenset(
    {"pg", "db", "my", "admin", "user", "root", "sudo", "sa", "app", "smtp", "mail", "ftp",
     "ssh", "wifi", "wlan", "vnc", "rdp", "ldap", "redis", "mysql", "mongo", "sql", "master",
     "login", "new", "old", "default", "keystore", "truststore", "store", "bind", "proxy",
     "auth", "jwt", "client", "api", "bot", "webhook", "signing", "encryption", "session"}
)  # fmt: skip


def _glued(text: str, name: re.Match[str]) -> bool:
    """Whether a credential word glued to another (``pgpassword``) is a key name: the other
    is a known one, or the original spells the name in camel case (``PfxPassword``)."""
    if name.group("glue") in _GLUES:
        return True
    k = name.start("kind")
    return text[k].isupper() and (text[k - 1].islower() or text[k - 1].isdigit())


def _tail_start(lower: str, start: int, end: int) -> int:
    """Where the name of a long run starts: after its first separator among the
    last :data:`_NAME_MAX` characters (the kind is at the end; this bounds the
    name regex's backtracking), or -1 without one."""
    sep = _SEPARATOR.search(lower, max(start, end - _NAME_MAX), end)
    return -1 if sep is None else sep.end()


_CONFIG_VALUE = re.compile(r"[\"']\s+value\s*=\s*(?P<q>[\"'])(?P<v>[^\"'\r\n]{1,200})(?P=q)")
_XML_VALUE = re.compile(r">\s*(?P<v>[^<\s][^<\r\n]{0,199}?)\s*</")
_AWS_SECRET = re.compile(r"[A-Za-z0-9/+]{40}\Z")


def _assigned(text: str, kind: str, start: int, end: int) -> Finding | None:
    """The credential assigned right after a key name of ``kind`` (``text[start:end]``), if any:
    ``name=value``, ``name: value``, ``"name": "value"``, ``<name>value</name>``."""
    if start and text[start - 1] == "<" and text.startswith(">", end):
        xml = _XML_VALUE.match(text, end)
        if xml is None or not _credential_value_ok(kind, xml.group("v"), True, ">"):
            return None
        return Finding("password", xml.start("v"), xml.end("v"))
    config = _CONFIG_VALUE.match(text, end)
    if config is not None:  # <add key="SmtpPassword" value="..."/>
        value = config.group("v")
        if not _credential_value_ok(kind, value, True, "="):
            return None
        return Finding("password", config.start("v"), config.end("v"))
    m = _ASSIGN.match(text, end)
    if m is None:
        return None
    quoted = m.group("qv") is not None
    group = "qv" if quoted else "v"
    value = m.group(group)
    if not _credential_value_ok(kind, value, quoted, m.group("op")):
        return None
    name = text[start:end].lower()
    if _AWS_SECRET.match(value) and (
        "aws" in name or "secret_access" in name or "secretaccess" in name
    ):
        return Finding("aws_secret_key", m.start(group), m.end(group))
    return Finding("password", m.start(group), m.end(group))


_SCHEME_MAX = 32
_URL_NOT_PASSWORDS = _NOT_VALUES | {"pass", "pw", "pwd", "passwd", "p"}
_URL_CREDENTIAL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/@]{0,64}:(?P<pw>[^\s/@]{1,128})@")


def url_passwords(probe: Probe) -> Iterator[Finding]:
    text = probe.text
    if "://" not in text or "@" not in text:
        return
    for i in occurrences(text, "://"):
        start = i
        # a scheme is short: the bound keeps a long word before "://" from costing its length
        while (
            start > i - _SCHEME_MAX
            and start > 0
            and (text[start - 1].isalnum() or text[start - 1] in "+.-")
        ):
            start -= 1
        m = _URL_CREDENTIAL.match(text, start)
        if m is None:
            continue
        pw = m.group("pw")
        # "user:pass@", "user:password@", "${PW}": documentation, not a password
        if (
            not pw.startswith("[")
            and pw.lower() not in _URL_NOT_PASSWORDS
            and not (is_password_placeholder(pw))
        ):
            yield Finding("password", m.start("pw"), m.end("pw"))


def password(probe: Probe) -> Iterator[Finding]:
    """Every password detector: assignments, URLs, prose, pairs and commands."""
    yield from assignments(probe)
    yield from url_passwords(probe)
    yield from prose(probe)


def prose(probe: Probe) -> Iterator[Finding]:
    """The password detectors that need no mark (see :mod:`gateway.judging.prose_credentials`)."""
    yield from prose_passwords(probe)
    yield from credential_pairs(probe)
    yield from command_passwords(probe)
