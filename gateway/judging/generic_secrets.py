"""A token of high entropy right after a key-like name or a credential word.

The generic detector (entity ``generic_secret``) for secrets without a known
prefix: ``my Datadog API key is 3f9a…``, ``Authorization: Bearer 9dK…``,
``the token: Zq81…``, ``clé API : …``. A needle (:data:`ASCII_NEEDLES`:
``key``, ``token``, ``secret``, ``bearer``, ``authorization``; in other
scripts :data:`OTHER_NEEDLES`) starts it; a few connecting words or signs may follow; then the
first token is judged:

- 16 to 256 characters of ``[A-Za-z0-9+/=_\\-.~]``, with letters and at least
  two digits;
- entropy: at least ``min(3.5, log2(length) - 0.7)`` bits per character; a
  lower-case hex token needs 24+ characters and 3.0 bits;
- not a plain hex hash named as one (``sha``, ``hash``, ``commit``,
  ``checksum``, ``digest``, ``md5``, ``etag``, ``fingerprint`` within the 40
  characters before), not a UUID, not a base64 image, not a URL or a path,
  not an identifier of words (``user_name_2``, ``2024-01-05``), not a
  placeholder.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator

from gateway.judging.placeholders import entropy, is_placeholder, is_published_sample
from gateway.judging.probe import Finding, Probe

#: ASCII needles (``key``, ``token``, ``secret``: the assignments' needles too)
ASCII_NEEDLES = ("key", "token", "secret", "bearer", "authorization", "credential")
#: looked for only in text that is not ASCII
OTHER_NEEDLES = (
    "schlüssel", "clé", "ключ", "токен", "密钥", "令牌", "キー", "トークン", "토큰", "키",
)  # fmt: skip
_NAME_TAIL = re.compile(r"[A-Za-z0-9_\-.]{0,40}")
_SIGNS = frozenset(":=>\"'`,([{\uff1a")
_CONNECT_WORDS = frozenset(
    {"is", "ist", "est", "es", "lautet", "è", "é", "of", "for", "für", "api", "id", "bearer",
     "basic", "token", "key", "secret", "value", "here", "the", "my", "our", "this", "de", "du",
     "la", "le", "el", "der", "die", "das"}
)  # fmt: skip
_PARTICLES = frozenset("는은이가:は、是为為\uff1aが")
#: a connecting word is short: the bound keeps a long run of letters from costing its length
_LETTERS = re.compile(r"[^\W\d_]{1,8}(?![^\W\d_])")
_CONNECT_MAX = 5


def _after_connectors(text: str, pos: int) -> int:
    """Where the value starts after up to five connecting words or runs of signs
    (``is``, ``:``, ``="``, ``API``, ``是``) following a key-like word."""
    n = len(text)
    for _ in range(_CONNECT_MAX):
        while pos < n and text[pos] in " \t":
            pos += 1
        if pos >= n:
            break
        ch = text[pos]
        if ch in _SIGNS:
            while pos < n and text[pos] in _SIGNS:
                pos += 1
        elif ch in _PARTICLES and pos and "\u3000" <= text[pos - 1] <= "\ud7af":
            pos += 1
        elif ch.isalpha():
            word = _LETTERS.match(text, pos)
            if word is None or word.group().lower() not in _CONNECT_WORDS:
                break
            pos = word.end()
        else:
            break
    while pos < n and text[pos] in " \t":
        pos += 1
    return pos


_TOKEN = re.compile(r"[A-Za-z0-9+/=_\-.~]{16,256}(?![A-Za-z0-9+/=_\-.~])")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z")
_HASH_WORDS = re.compile(
    r"sha|hash|commit|checksum|digest|md5|etag|fingerprint|revision|nonce|salt|uuid|guid",
    re.IGNORECASE,
)
_HEX = re.compile(r"[0-9a-fA-F]+\Z")
_WORDS_ONLY = re.compile(r"(?:[A-Za-z]+|[0-9]{1,8})(?:[_\-.](?:[A-Za-z]+|[0-9]{1,8}))+\Z")
#: words with version digits joined by separators: Ed25519.BlindKeySignatures, cmp2-qat-12
_IDENTIFIER = re.compile(r"(?:[A-Za-z]+[0-9]*|[0-9]+)(?:[_\-.](?:[A-Za-z]+[0-9]*|[0-9]+))+\Z")
_HOST_OR_FILE = re.compile(
    r"\.(?:com|net|org|io|dev|app|cloud|local|internal|pem|key|crt|json|ya?ml|txt|jpe?g|png"
    r"|gif|svg|html?|js|ts|py|go|rs|java|zip|gz|tar|csv|xml|md|log)\Z",
    re.IGNORECASE,
)
_IMAGE = ("iVBORw0KGgo", "/9j/", "R0lGOD", "UklGR", "PHN2Zy")
_BEFORE = 40


def secret_like(token: str) -> bool:
    """Whether ``token`` reads as a random secret (the entropy gate of the module doc)."""
    digits = sum(c.isdigit() for c in token)
    letters = sum(c.isalpha() for c in token)
    if digits < 2 or letters < 2 or token.startswith(_IMAGE) or "://" in token:
        return False
    if is_published_sample(token):
        return False
    if token.startswith(("/", "./", "~/")) or (token.count("/") >= 3 and "+" not in token):
        return False
    if _UUID.match(token) or _WORDS_ONLY.match(token) or _IDENTIFIER.match(token):
        return False
    if token[0] in "-." or _HOST_OR_FILE.search(token):
        return False
    h = entropy(token)
    if _HEX.match(token):
        return len(token) >= 24 and h >= 3.0 and not is_placeholder(token)
    return h >= min(3.5, math.log2(len(token)) - 0.7) and not is_placeholder(token)


def generic_secrets(probe: Probe) -> Iterator[Finding]:
    text = probe.text
    last = -1
    for needle in ASCII_NEEDLES if probe.ascii else (*ASCII_NEEDLES, *OTHER_NEEDLES):
        for i in probe.finds(needle):
            if i < last:
                continue
            end = i + len(needle)
            if needle.isascii():
                end = _NAME_TAIL.match(text, end).end()  # type: ignore[union-attr]
            m = _TOKEN.match(text, _after_connectors(text, end))
            if m is not None and m.start() > last:
                token = m.group().rstrip(".")
                if secret_like(token) and not _HASH_WORDS.search(text, max(0, i - _BEFORE), end):
                    last = m.start() + len(token)
                    yield Finding("generic_secret", m.start(), last)
