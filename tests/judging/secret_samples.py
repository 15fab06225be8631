"""Synthetic tokens of every secret format, built here (never real secrets).

:func:`sample` draws a string from a rule's own pattern (and the text its
``before`` needs), with a seeded generator, retrying seeds until the scanner's
other checks (placeholders, ``valid``) accept it; :func:`github_token` and
:func:`npm_token` compute their CRC32 checksums as the providers do. The per-rule
tests then check the find, the boundaries, the redaction and the placeholder
judgement of each format in text around it.
"""

from __future__ import annotations

import base64
import json
import random
import re
import zlib
from re import _constants as sre_c  # type: ignore[attr-defined]
from re import _parser as sre_parse  # type: ignore[attr-defined]
from typing import Any

from gateway.judging.secret_checks import base62
from gateway.judging.secret_rule import SecretRule
from gateway.judging.sensitivity import Scanner

ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_PRINTABLE = [chr(c) for c in range(33, 127)]
SCANNER = Scanner()


def _class_chars(items: Any) -> list[str]:
    chars: set[str] = set()
    negate = False
    for op, av in items:
        if op is sre_c.NEGATE:
            negate = True
        elif op is sre_c.LITERAL:
            chars.add(chr(av))
        elif op is sre_c.RANGE:
            chars.update(chr(c) for c in range(av[0], av[1] + 1) if c < 0x250)
        elif op is sre_c.CATEGORY:
            if av is sre_c.CATEGORY_DIGIT:
                chars.update("0123456789")
            elif av is sre_c.CATEGORY_WORD:
                chars.update(ALNUM + "_")
            elif av is sre_c.CATEGORY_SPACE:
                chars.add(" ")
    if negate:
        return [c for c in ALNUM if c not in chars]
    return sorted(chars)


def _gen(items: Any, rng: random.Random, out: list[str]) -> None:
    for op, av in items:
        if op is sre_c.LITERAL:
            out.append(chr(av))
        elif op is sre_c.NOT_LITERAL:
            out.append(rng.choice([c for c in ALNUM if ord(c) != av]))
        elif op is sre_c.IN:
            out.append(rng.choice(_class_chars(av)))
        elif op is sre_c.ANY:
            out.append(rng.choice(ALNUM))
        elif op in (sre_c.MAX_REPEAT, sre_c.MIN_REPEAT, getattr(sre_c, "POSSESSIVE_REPEAT", None)):
            low, high, sub = av
            high = low + 6 if high is sre_c.MAXREPEAT or high > low + 6 else high
            for _ in range(
                rng.randint(low, high) if low == 0 else low + rng.randint(0, min(4, high - low))
            ):
                _gen(sub, rng, out)
        elif op is sre_c.SUBPATTERN:
            _gen(av[-1], rng, out)
        elif op is sre_c.BRANCH:
            _gen(rng.choice(av[1]), rng, out)
        elif op is sre_c.CATEGORY:
            out.append(rng.choice(_class_chars([(op, av)])))
        # assertions (AT, ASSERT, ASSERT_NOT) generate nothing


def draw(pattern: re.Pattern[str], rng: random.Random) -> str:
    out: list[str] = []
    _gen(sre_parse.parse(pattern.pattern, pattern.flags), rng, out)
    return "".join(out)


def _b64(obj: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


def github_token(prefix: str, rng: random.Random) -> str:
    body = "".join(rng.choice(ALNUM) for _ in range(30))
    return prefix + body + base62(zlib.crc32(body.encode()), 6)


def _b64_pem(rng: random.Random) -> str:
    body = "".join(rng.choice(ALNUM) for _ in range(64))
    pem = f"-----BEGIN RSA PRIVATE KEY-----\nMIIEow{body}\n-----END RSA PRIVATE KEY-----\n"
    return base64.b64encode(pem.encode()).decode()


_SPECIAL = {
    "jwt": lambda rng: (
        f"{_b64({'alg': 'HS256', 'typ': 'JWT'})}.{_b64({'sub': str(rng.random())})}."
        + "".join(rng.choice(ALNUM) for _ in range(43))
    ),
    "private_key": lambda rng: (
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEow"
        + "".join(rng.choice(ALNUM) for _ in range(60))
        + "\n-----END RSA PRIVATE KEY-----"
    ),
}


def sample(rule: SecretRule, seed: int = 0) -> str:
    """A token of ``rule``'s format that the scanner finds as ``rule.entity``."""
    for attempt in range(200):
        rng = random.Random(f"{rule.name}/{seed}/{attempt}")
        if rule.entity in _SPECIAL and rule.prefixes[0] in ("eyJ", "-----BEGIN"):
            token = _SPECIAL[rule.entity](rng)
        elif rule.prefixes[0] == "LS0tLS1CRUdJTi":
            token = _b64_pem(rng)
        elif rule.prefixes[0] == "xoxa-":
            digits = "123456789"
            token = "xoxb-{}-{}-{}".format(
                "".join(rng.choice(digits) for _ in range(12)),
                "".join(rng.choice(digits) for _ in range(13)),
                "".join(rng.choice(ALNUM) for _ in range(24)),
            )
        else:
            token = (draw(rule.before, rng) if rule.before is not None else "") + draw(
                rule.pattern, rng
            )
        text = f"here it is: {token} thanks"
        if [(f.entity, text[f.start : f.end]) for f in SCANNER.find(text)] == [
            (rule.entity, token)
        ]:
            return token
    raise AssertionError(f"no sample of {rule.name!r} is found")
