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

#: credential words, lower-case; non-ASCII ones are looked for only in non-ASCII text
WORDS = (
    "password", "passwd", "passphrase", "passcode", "passwort", "kennwort", "mot de passe",
    "mdp", "contraseña", "contrasena", "senha", "wachtwoord", "parola", "parolă", "hasło",
    "haslo", "şifre", "sifre", "lösenord", "losenord", "passord", "adgangskode", "salasana",
    "heslo", "jelszó", "jelszo", "mật khẩu", "kata sandi", "kata laluan", "пароль", "пароля",
    "κωδικός", "密码", "密碼", "口令", "パスワード", "暗証番号", "비밀번호", "패스워드", "암호",
    "סיסמה", "كلمة المرور", "كلمة السر", "पासवर्ड", "รหัสผ่าน",
)  # fmt: skip
_ASCII_WORDS = tuple(w for w in WORDS if w.isascii())
#: what may stand between a credential word and its value
_CONNECT = re.compile(
    r"(?:[^\S\n]*(?:[:=：＝>→\-–—]+|(?:is|was|ist|lautet|war|est|es|era|è|é|e|är|er|on|jest|je|to"
    r"|это|для|je|ist jetzt|is now|now|set to|of|for|für|pour|para|per|van|voor|do|da|de|del|du"
    r"|the|my|our|mein|meine|unser|notre|mon|ma|mi|nuestra|la|le|il|el|o|a|der|die|das|den|dem"
    r"|wifi|wi-fi|wlan|router|admin|root|account|konto|compte|cuenta|conta|user|new|neue|neues"
    r"|nouveau|nuevo|nueva|nova|novo|temporary|default|standard|sudo|db|database)(?![^\W_])"
    r"|(?<=[\u3000-\u9fff\uac00-\ud7af])[는은이가을를는:は、是为為：が를]|[\"'«»“”„‚]))"
    r"{0,6}[^\S\n]*",
    re.IGNORECASE,
)
_QUOTED = re.compile(r"[\"'«“„‚`]([^\"'»”“`\n]{4,64})[\"'»”“`]")
_VALUE_CHARS = r"[^\s\"'`<>()\[\]{}，。、；：！？「」『』（）\u3000-\u9fff\uac00-\ud7af]"
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
    if quoted:
        return len(value) >= 4
    if len(value) < 6:
        return False
    has_digit = any(c.isdigit() for c in value)
    has_symbol = any(not c.isalnum() for c in value)
    has_letter = any(c.isalpha() for c in value)
    if not (has_digit or has_symbol):
        return False
    # "1,000", "2024-01-05", "3.14": numbers and dates are not passwords
    return has_letter or (has_digit and has_symbol and not re.fullmatch(r"[\d.,:/\-]+", value)) or (
        value.isdigit() and len(value) >= 6
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


def _needles(probe: Probe, words: tuple[str, ...]) -> tuple[str, ...]:
    return words if not probe.text.isascii() else tuple(w for w in words if w.isascii())


def prose_passwords(probe: Probe) -> Iterator[Finding]:
    lower = probe.lower
    text = probe.text
    n = len(text)
    last = -1
    for word in _needles(probe, WORDS) if not text.isascii() else _ASCII_WORDS:
        i = lower.find(word)
        while i >= 0:
            end = i + len(word)
            latin = word[0].isascii()
            # a word on its own: not inside "passwords", "mypasswordfield"
            if latin and (
                (end < n and _WORD_CHAR.match(lower, end) and not lower[end].isdigit())
                or (i and lower[i - 1].isalpha() and word not in ("passwort", "kennwort"))
            ):
                i = lower.find(word, end)
                continue
            if latin and end < n and lower[end].isdigit():
                i = lower.find(word, end)
                continue
            pos = _CONNECT.match(text, end)
            span = _value_at(text, pos.end() if pos else end)
            if span is not None and span[0] > last:
                last = span[1]
                yield Finding("password", *span)
            i = lower.find(word, end)
    yield from _pins(probe)


_PIN = re.compile(
    r"PIN(?:[ \-]?(?:code|Code|number|Nummer|nummer))?(?![A-Za-z])[^\S\n]*(?:[:=]|is|ist|est|es|lautet)?"
    r"[^\S\n]*(?P<v>[0-9]{4,8})(?![0-9])"
)


def _pins(probe: Probe) -> Iterator[Finding]:
    text = probe.text
    i = text.find("PIN")
    while i >= 0:
        if not (i and text[i - 1].isalnum()):
            m = _PIN.match(text, i)
            if m is not None and len(set(m.group("v"))) > 1:
                yield Finding("password", m.start("v"), m.end("v"))
        i = text.find("PIN", i + 3)


#: account names and credentials words a ``name / password`` pair starts with
_PAIR_NEEDLES = (
    "admin", "root", "user", "login", "guest", "postgres", "ubuntu", "operator", "support",
    "utilisateur", "usuario", "benutzer",
)  # fmt: skip
#: credentials words a ``name / password`` pair follows within a line
_PAIR_CONTEXT = (
    "cred", "zugangsdaten", "anmeldedaten", "identifiant", "credencial", "credenzial",
    "logon", "sign-in", "sign in", "account", "konto", "compte", "cuenta",
)  # fmt: skip
_CONTEXT_PAIR = re.compile(r"(?<![^\s:(,])[A-Za-z0-9_.@\-]{2,40}[^\S\n]*[/|][^\S\n]*")
_CONTEXT_SPAN = 80
_PAIR = re.compile(
    r"[A-Za-z0-9_.\-]*(?:[^\S\n]*(?:[:=]|is|are|sind|sont|son)?[^\S\n]+[A-Za-z0-9_.@\-]{2,40})?"
    r"[^\S\n]*(?:/|\||:)[^\S\n]*"
)


def credential_pairs(probe: Probe) -> Iterator[Finding]:
    lower = probe.lower
    text = probe.text
    last = -1
    for needle in _PAIR_NEEDLES:
        i = lower.find(needle)
        while i >= 0:
            if not (i and lower[i - 1].isalnum()):
                m = _PAIR.match(text, i + len(needle))
                if m is not None and "://" not in text[i : m.end() + 2]:
                    span = _value_at(text, m.end())
                    if span is not None and span[0] > last and _strong(text[span[0] : span[1]]):
                        last = span[1]
                        yield Finding("password", *span)
            i = lower.find(needle, i + len(needle))
    for needle in _PAIR_CONTEXT:
        i = lower.find(needle)
        while i >= 0:
            end = i + len(needle)
            stop = text.find("\n", end, end + _CONTEXT_SPAN)
            m = _CONTEXT_PAIR.search(text, end, stop if stop >= 0 else end + _CONTEXT_SPAN)
            if m is not None:
                span = _value_at(text, m.end())
                if span is not None and span[0] > last and _strong(text[span[0] : span[1]]):
                    last = span[1]
                    yield Finding("password", *span)
            i = lower.find(needle, end)


def _strong(value: str) -> bool:
    """A pair's value needs letters and digits or symbols (not a path or a word)."""
    return "/" not in value and any(c.isalpha() for c in value) and not value.isalpha()


_COMMANDS = (
    "mysql", "mariadb", "sshpass", "redis-cli", "mongo", "docker login", "podman login",
    "curl", "htpasswd", "ldapsearch", "ldapadd", "ldapmodify", "ldapwhoami", "smbclient",
    "sqlcmd", "xfreerdp", "rdesktop", "openssl", "--pass",
)  # fmt: skip
_WORD = re.compile(r"\"[^\"\n]*\"|'[^'\n]*'|[^\s\"']+")
_LINE_MAX = 400


def _args(text: str, start: int) -> list[tuple[str, int, int]]:
    """The shell words of the line from ``start``: (word unquoted, start, end)."""
    stop = text.find("\n", start, start + _LINE_MAX)
    stop = min(len(text), start + _LINE_MAX) if stop < 0 else stop
    out = []
    for m in _WORD.finditer(text, start, stop):
        word = m.group()
        if word[0] in "\"'" and len(word) >= 2:
            out.append((word[1:-1], m.start() + 1, m.end() - 1))
        else:
            out.append((word, m.start(), m.end()))
    return out


#: per command: flags whose next word is the password, and glued-flag prefixes
_NEXT: dict[str, tuple[str, ...]] = {
    "mysql": ("--password",), "mariadb": ("--password",), "sshpass": ("-p",),
    "redis-cli": ("-a", "--pass"), "mongo": ("-p", "--password"), "docker login": ("-p", "--password"),
    "podman login": ("-p", "--password"), "ldapsearch": ("-w",), "ldapadd": ("-w",),
    "ldapmodify": ("-w",), "ldapwhoami": ("-w",), "sqlcmd": ("-P",), "rdesktop": ("-p",),
    "--pass": (),
}  # fmt: skip
_GLUED: dict[str, tuple[str, ...]] = {
    "mysql": ("-p",), "mariadb": ("-p",), "sshpass": ("-p",), "xfreerdp": ("/p:",),
}


def command_passwords(probe: Probe) -> Iterator[Finding]:
    lower = probe.lower
    text = probe.text
    last = -1
    for command in _COMMANDS:
        i = lower.find(command)
        while i >= 0:
            for span in _command_values(command, text, i):
                if span[0] > last and _command_value_ok(text[span[0] : span[1]]):
                    last = span[1]
                    yield Finding("password", *span)
            i = lower.find(command, i + len(command))


def _command_value_ok(value: str) -> bool:
    return len(value) >= 3 and not value.startswith(("$", "-", "<")) and not is_password_placeholder(value)


def _command_values(command: str, text: str, i: int) -> Iterator[tuple[int, int]]:
    if command == "--pass":
        m = re.compile(r"--pass(?:word|wd)?[ \t]+").match(text, i)
        if m is not None:
            args = _args(text, m.end())
            if args:
                yield args[0][1], args[0][2]
        return
    args = _args(text, i + len(command))
    nexts = _NEXT.get(command, ())
    glued = _GLUED.get(command, ())
    for k, (word, start, end) in enumerate(args):
        if word in nexts and k + 1 < len(args):
            yield args[k + 1][1], args[k + 1][2]
        for flag in glued:
            if word.startswith(flag) and len(word) > len(flag) and not word.startswith("--"):
                value_start = start + len(flag)
                if text[value_start : value_start + 1] in "\"'":
                    value_start += 1
                yield value_start, end - (1 if text[end - 1 : end] in "\"'" else 0)
        if command == "curl" and word in ("-u", "--user") and k + 1 < len(args):
            value, vs, ve = args[k + 1]
            colon = value.find(":")
            if colon > 0:
                yield vs + colon + 1, ve
        if command == "smbclient" and word == "-U" and k + 1 < len(args):
            value, vs, ve = args[k + 1]
            pct = value.find("%")
            if pct > 0:
                yield vs + pct + 1, ve
        if command == "openssl" and word.startswith("-pass") and k + 1 < len(args):
            value, vs, ve = args[k + 1]
            if value.startswith("pass:"):
                yield vs + 5, ve
    if command == "htpasswd":
        positional = [a for a in args if not a[0].startswith("-")]
        flags = "".join(a[0] for a in args if a[0].startswith("-"))
        if "b" in flags and len(positional) >= 3:
            yield positional[2][1], positional[2][2]
