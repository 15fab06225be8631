"""Passwords written in prose and in commands, in many languages.

Three detectors, each finding the value only (entity ``password``), each
started by needles in the lower-cased text so prose without them costs one
substring search per needle:

- :func:`prose_passwords`: a credential word (``password``, ``Passwort``,
  ``mot de passe``, ``contraseña``, ``senha``, ``пароль``, ``密码``,
  ``パスワード``, ``비밀번호``, ``hasło``, ``şifre``… see :data:`WORDS`), a few
  connecting words or signs (``is``, ``ist``, ``est``, ``es``, ``:``, ``是``,
  ``は``…), then a value that looks like a password: quoted, or with a digit or
  a symbol, six characters or more (a PIN: four to eight digits after ``PIN``).
  "Reset your password", "the password field" have no such value.
- :func:`credential_pairs`: ``admin / Lantern1995$``, ``root:Winter2024!`` — a
  well-known account name or a credentials word, then a separator and a value
  that looks like a password.
- :func:`command_passwords`: the password arguments of commands: ``mysql
  -pSECRET``, ``sshpass -p``, ``curl -u user:pass``, ``redis-cli -a``,
  ``docker login -p``, ``htpasswd -b file user pass``, ``ldapsearch -w``,
  ``smbclient -U user%pass``, ``sqlcmd -P``, ``xfreerdp /p:``, ``openssl -passin
  pass:``, and ``--password VALUE`` after any command.

Values judged placeholders (:func:`gateway.judging.placeholders.is_placeholder`
in its password mode: references, fillers, documentation words) never count.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from gateway.judging.placeholders import is_password_placeholder
from gateway.judging.probe import Finding, Probe

#: credential words, lower-case. English and shared stems first (``pass``, ``pwd``:
#: the assignments' needles too); the rest of :data:`ASCII_WORDS`, then
#: :data:`OTHER_WORDS`, looked for only in text that is not ASCII.
ASCII_WORDS = ("pass", "pwd", "kennwort", "senha", "wachtwoord", "parol")
OTHER_WORDS = (
    "contrasena", "haslo", "sifre", "contraseña", "hasło", "şifre", "lösenord", "jelszó", "mật khẩu", "пароль", "κωδικός",
    "密码", "密碼", "口令", "パスワード", "暗証番号", "비밀번호", "패스워드", "암호", "סיסמה",
    "كلمة المرور", "كلمة السر", "पासवर्ड", "รหัสผ่าน",
)  # fmt: skip
#: the words a ``pass`` occurrence may begin (``passport``, ``passenger`` are no credential words)
_PASS_WORDS = re.compile(r"pass(?:word|wort|wd|phrase|code|ord|e\b|\b|:|=)", re.IGNORECASE)
#: what may stand between a credential word and its value
_CONNECT = re.compile(
    r"(?:[^\S\n]*(?:[:=\uff1a\uff1d>→\-\u2013—]+|(?:is|was|ist|lautet|war|est|es|era|è|é|e|är|er|on|jest|je|to"
    r"|это|для|je|ist jetzt|is now|now|set to|of|for|für|pour|para|per|van|voor|do|da|de|del|du"
    r"|the|my|our|mein|meine|unser|notre|mon|ma|mi|nuestra|la|le|il|el|o|a|der|die|das|den|dem"
    r"|wifi|wi-fi|wlan|router|admin|root|account|konto|compte|cuenta|conta|user|new|neue|neues"
    r"|nouveau|nuevo|nueva|nova|novo|temporary|default|standard|sudo|db|database)(?![^\W_])"
    r"|(?<=[\u3000-\u9fff\uac00-\ud7af])[는은이가을를는:は、是为為\uff1aが를]))"
    r"{0,6}[^\S\n]*",
    re.IGNORECASE,
)
_QUOTED = re.compile(r"[\"'«“„\u201a`]([^\"'»”“`\n]{4,64})[\"'»”“`]")
_VALUE_CHARS = r"[^\s\"'`<>()\[\]{}\uff0c。、\uff1b\uff1a\uff01\uff1f「」『』\uff08\uff09\u3000-\u9fff\uac00-\ud7af]"
_VALUE = re.compile(_VALUE_CHARS + r"{4,64}")
_TRAILING = ".,;:)"
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}\Z")
_NOT_VALUES = frozenset(
    {"required", "optional", "reset", "field", "manager", "protected", "hash", "hashes",
     "hashed", "policy", "change", "changed", "forgotten", "forgot", "expired", "strength",
     "length", "characters", "zurücksetzen", "vergessen", "oublié", "olvidada", "incorrect",
     "incorrecto", "wrong", "falsch", "invalid", "ungültig", "recovery", "prompt"}
)  # fmt: skip
_WORD_CHAR = re.compile(r"[^\W_]")


def _looks_like_password(value: str, quoted: bool) -> bool:
    if value.lower() in _NOT_VALUES or is_password_placeholder(value):
        return False
    if value.startswith(("http://", "https://", "/", "-", "$", "%", "\\")) or _EMAIL.match(value):
        return False
    # markup and key syntax, not values: ",passwordLabel:", "#add-password", "value=", "a/b"
    if value[0] in ",.;:&=#([{" or value[-1] in "=:<>([{@" or "/" in value:
        return False
    if quoted:
        return len(value) >= 4
    core = value.rstrip("?!.,;:")
    # a word and its punctuation ("vergessen?", "geändert?") or key syntax ("a=$B")
    if len(value) < 6 or core.isalpha() or "=" in value:
        return False
    has_digit = any(c.isdigit() for c in value)
    has_symbol = any(not c.isalnum() for c in value)
    has_letter = any(c.isalpha() for c in value)
    if not (has_digit or has_symbol):
        return False
    # "1,000", "2024-01-05", "3.14": numbers and dates are not passwords
    return (
        has_letter
        or (has_digit and has_symbol and not re.fullmatch(r"[\d.,:/\-]+", value))
        or (value.isdigit() and len(value) >= 6)
    )


def _value_at(text: str, pos: int) -> tuple[int, int] | None:
    """The span of the password-like value at ``pos`` (quoted or not), if any."""
    m = _QUOTED.match(text, pos)
    if m is not None:
        value = m.group(1)
        return m.span(1) if _looks_like_password(value, True) else None
    m = _VALUE.match(text, pos)
    if m is None:
        return None
    start, end = m.span()
    while end > start and text[end - 1] in _TRAILING:
        end -= 1
    return (start, end) if _looks_like_password(text[start:end], False) else None


def _word_end(lower: str, i: int, word: str) -> int:
    """Where the credential word at ``i`` ends, or -1 when it is part of another word."""
    end = i + len(word)
    if word == "pass":
        m = _PASS_WORDS.match(lower, i)
        if m is None:
            return -1
        end = m.end() if m.group()[-1] not in ":=" else m.end() - 1
    if not word[0].isascii():
        return end
    # on its own, or ending a compound ("Router-Passwort", "db_password", "wifipassword")
    n = len(lower)
    while end < n and lower[end] == "s" and end - i < len(word) + 1:
        return -1  # "passwords", "senhas": talk about passwords
    if word != "pass":
        # inflections: lösenordet, parola, hasła, şifreniz (not after "pass": "passwords")
        k = end
        while k < n and k - end < 3 and lower[k].isalpha():
            k += 1
        end = k
    if end < n and lower[end].isalpha():
        return -1
    return end


def prose_passwords(probe: Probe) -> Iterator[Finding]:
    lower = probe.lower
    text = probe.text
    last = -1
    for word in ASCII_WORDS if probe.ascii else (*ASCII_WORDS, *OTHER_WORDS):
        for i in probe.finds(word):
            if i < last:
                continue
            end = _word_end(lower, i, word)
            if end < 0:
                continue
            pos = _CONNECT.match(text, end)
            span = _value_at(text, pos.end() if pos else end)
            if span is not None and span[0] > last:
                last = span[1]
                yield Finding("password", *span)
    yield from _pins(probe)


_PIN_BEFORE = re.compile(
    r"PIN(?:[ \-]?(?:code|Code|number|Nummer|nummer))?[^\S\n]*(?:[:=]|is|ist|est|es|lautet)?[^\S\n]*\Z"
)


def _pins(probe: Probe) -> Iterator[Finding]:
    """Four to eight digits right after ``PIN`` (``PIN: 4821``, ``PIN-Code 730119``)."""
    if not probe.has_digits:
        return
    text = probe.text
    for start, end in probe.runs:
        if 4 <= end - start <= 8 and "PIN" in text[max(0, start - 20) : start]:
            if end < len(text) and text[end].isalnum():
                continue
            if (
                _PIN_BEFORE.search(text, max(0, start - 20), start)
                and len(set(text[start:end])) > 1
            ):
                yield Finding("password", start, end)


#: account names a ``name / password`` or ``name:password`` pair starts with
_ACCOUNTS = frozenset(
    {"admin", "administrator", "root", "user", "username", "login", "guest", "postgres",
     "ubuntu", "operator", "support", "sa", "pi", "oracle", "mysql", "test", "demo", "ec2-user",
     "utilisateur", "usuario", "benutzer", "nutzer"}
)  # fmt: skip
#: credentials words a ``name / password`` pair follows within a line
_CONTEXT = re.compile(
    r"cred|login|log in|logon|sign[ \-]?in|account|konto|compte|cuenta|zugangsdaten|anmeldedaten"
    r"|identifiant|credencial|credenzial|benutzer|usuario|utilisateur|user",
    re.IGNORECASE,
)
_NAME_BEFORE = re.compile(r"(?<![A-Za-z0-9_.@\-])([A-Za-z0-9_.@\-]{2,40})[^\S\n]*\Z")
_CONTEXT_SPAN = 80


def credential_pairs(probe: Probe) -> Iterator[Finding]:
    """``admin / Lantern1995$``, ``root:Winter2024!``, and after a credentials word,
    ``jsmith / Winter2024!``: found from each separator (``/``, ``|``, ``:``)."""
    text = probe.text
    marks = probe.marks
    if not (47 in marks or 58 in marks or 124 in marks):  # '/', ':', '|'
        return
    separators = [*probe.positions("/"), *probe.positions("|")]
    if 58 in probe.marks:  # ':' pairs are glued: "root:Winter2024!" (not "Note: the")
        separators.extend(
            i
            for i in probe.tight(":")
            if i and text[i - 1 : i + 2].isprintable() and " " not in text[i - 1 : i + 2]
        )
    if not separators:
        return
    last = -1
    for i in sorted(separators):
        if i <= last or text[i + 1 : i + 3] == "//":
            continue
        after = i + 1
        while after < len(text) and text[after] in " \t":
            after += 1
        if after >= len(text) or text[after].isspace():
            continue
        name = _NAME_BEFORE.search(text, max(0, i - 48), i)
        if name is None:
            continue
        span = _value_at(text, after)
        if span is None or not _strong(text[span[0] : span[1]]):
            continue
        if name.group(1).lower() not in _ACCOUNTS:
            line = text.rfind("\n", max(0, name.start() - _CONTEXT_SPAN), name.start()) + 1
            low = max(line, name.start() - _CONTEXT_SPAN)
            if not _CONTEXT.search(text, low, name.start()):
                continue
        last = span[1]
        yield Finding("password", *span)


def _strong(value: str) -> bool:
    """A pair's value needs letters and digits or symbols (not a path or a word)."""
    return "/" not in value and any(c.isalpha() for c in value) and not value.isalpha()


_WORD = re.compile(r"\"[^\"\n]*\"|'[^'\n]*'|[^\s\"']+")
_LINE_MAX = 400
_COMMAND = re.compile(
    r"(?:^|[\s;&|(`$/\\\"'])(mysql\w*|mariadb\w*|sshpass|redis-cli|mongo\w*|docker(?= +login)"
    r"|podman(?= +login)|curl|wget"
    r"|htpasswd|ldap\w+|smbclient|sqlcmd|bcp|xfreerdp|rdesktop|openssl|psexec(?:64)?(?:\.exe)?)(?![\w\-])",
    re.IGNORECASE,
)
#: per command: flags whose next word is the password
_NEXT = {
    "sshpass": ("-p",), "redis-cli": ("-a", "--pass"), "mongo": ("-p", "--password"),
    "docker": ("-p", "--password"), "podman": ("-p", "--password"), "ldap": ("-w",),
    "sqlcmd": ("-P",), "bcp": ("-P",), "rdesktop": ("-p",), "mysql": (), "mariadb": (),
    "psexec": ("-p",),
}  # fmt: skip
#: per command: flags glued to their value (``-pSECRET``)
_GLUED = {"mysql": "-p", "mariadb": "-p", "sshpass": "-p"}


def _family(command: str) -> str:
    command = command.lower()
    for family in ("mysql", "mariadb", "mongo", "ldap", "psexec"):
        if command.startswith(family):
            return family
    return command


def command_passwords(probe: Probe) -> Iterator[Finding]:
    """Password arguments of commands, found from each flag (`` -x``, `` --x``, ``/p:``)."""
    text = probe.text
    marks = probe.marks
    if 45 not in marks and 47 not in marks:  # '-', '/'
        return
    last = -1
    commands: dict[int, tuple[str, int] | None] = {}  # line start -> (command, its end)
    flags = [
        i
        for i in probe.positions("-")
        if i and text[i - 1] in " \t" and text[i + 1 : i + 2].isalnum()
    ]
    flags.extend(i for i in probe.positions("/") if text.startswith("/p:", i))
    for i in flags:
        if i < last:
            continue
        line = text.rfind("\n", max(0, i - _LINE_MAX), i) + 1
        # a command continued over lines ending with a backslash
        while line >= 2 and text[line - 2] == "\\" and i - line < _LINE_MAX:
            line = text.rfind("\n", max(0, i - _LINE_MAX), line - 1) + 1
        if line not in commands:
            m = _COMMAND.search(text, line - 1 if line else 0, i)  # the newline before counts
            commands[line] = None if m is None else (_family(m.group(1)), m.end())
        found = commands[line]
        for span in _flag_values(text, i, found[0] if found else ""):
            if span[0] > last and _command_value_ok(text[span[0] : span[1]]):
                last = span[1]
                yield Finding("password", *span)


def _command_value_ok(value: str) -> bool:
    return (
        len(value) >= 3
        and not value.startswith(("$", "-", "<", "%"))
        and not value.endswith(">")
        and not is_password_placeholder(value)
    )


def _word_at(text: str, pos: int) -> tuple[str, int, int] | None:
    """The shell word at ``pos`` (quotes removed): (word, start, end)."""
    while pos < len(text) and text[pos] in " \t":
        pos += 1
    m = _WORD.match(text, pos)
    if m is None:
        return None
    word = m.group()
    if word[0] in "\"'" and len(word) >= 2:
        return word[1:-1], m.start() + 1, m.end() - 1
    return word, m.start(), m.end()


def _flag_values(text: str, i: int, command: str) -> Iterator[tuple[int, int]]:
    here = _word_at(text, i)
    if here is None:
        return
    flag, _, end = here
    if flag in ("--password", "--passwd", "--pass") or flag in _NEXT.get(command, ()):
        value = _word_at(text, end)
        if value is not None:
            yield value[1], value[2]
        return
    glued = _GLUED.get(command)
    if glued and flag.startswith(glued) and len(flag) > len(glued) and not flag.startswith("--"):
        start = i + len(glued)
        if text[start : start + 1] in "\"'":
            start += 1
        yield start, end - (1 if text[end - 1 : end] in "\"'" else 0)
    elif command in ("curl", "wget") and (flag in ("-u", "--user") or flag.startswith("-u")):
        value = _word_at(text, end) if flag in ("-u", "--user") else (flag[2:], i + 2, end)
        if value is not None and value[0].find(":") > 0:
            yield value[1] + value[0].find(":") + 1, value[2]
    elif command == "smbclient" and flag == "-U":
        value = _word_at(text, end)
        if value is not None and value[0].find("%") > 0:
            yield value[1] + value[0].find("%") + 1, value[2]
    elif command == "openssl" and flag.startswith("-pass"):
        value = _word_at(text, end)
        if value is not None and value[0].startswith("pass:"):
            yield value[1] + 5, value[2]
    elif command == "xfreerdp" and flag.startswith("/p:") and len(flag) > 3:
        yield i + 3, end
    elif command == "htpasswd" and flag.startswith("-") and "b" in flag:
        pos = end
        positional: list[tuple[str, int, int]] = []
        while len(positional) < 3:
            word = _word_at(text, pos)
            if word is None or word[1] >= len(text) or text[word[1] - 1 : word[1]] == "\n":
                break
            if not word[0].startswith("-"):
                positional.append(word)
            pos = word[2]
        if len(positional) == 3:
            yield positional[2][1], positional[2][2]
