"""Checks that confirm a token's format beyond its shape: checksums and decodings.

A rule's check returns True when the token is certainly of its format (a
checksum that holds, a payload that decodes as the provider writes it); the
rule then skips the placeholder judgement, so a real token is found however
its random part happens to read.
"""

from __future__ import annotations

import base64
import binascii
import json
import zlib

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def base62(number: int, width: int) -> str:
    """``number`` in base 62 (digits, upper, lower), left-padded with ``0`` to ``width``."""
    out = []
    while number:
        number, r = divmod(number, 62)
        out.append(_BASE62[r])
    return "".join(reversed(out)).rjust(width, "0")


def crc32_base62_tail(token: str) -> bool:
    """GitHub's and npm's tokens: the last 6 characters are the CRC32 of the 30
    random ones before them, in base 62 (GitHub, "Behind GitHub's new
    authentication token formats", 2021; npm uses the same scheme)."""
    body = token[token.rfind("_") + 1 :]
    if len(body) != 36:
        return False
    return base62(zlib.crc32(body[:30].encode()), 6) == body[30:]


def _b64decode(data: str) -> bytes | None:
    try:
        return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))
    except (binascii.Error, ValueError):
        return None


def pypi_macaroon(token: str) -> bool:
    """A PyPI API token: ``pypi-`` and a base64url macaroon whose location is
    pypi.org or test.pypi.org (PyPI's docs on API tokens)."""
    raw = _b64decode(token[5:][:64])
    return raw is not None and (b"pypi.org" in raw[:32])


def base64_pem(token: str) -> bool:
    """A base64 text that decodes to a PEM private key's BEGIN line."""
    try:
        raw = base64.b64decode(token[:96] + "=" * (-min(len(token), 96) % 4))
    except (binascii.Error, ValueError):
        return False
    return raw.startswith(b"-----BEGIN") and b"PRIVATE KEY" in raw[:60]


def json_header(part: str, key: str) -> bool:
    """Whether base64url ``part`` decodes to a JSON object holding ``key``."""
    raw = _b64decode(part)
    if raw is None or key.encode() not in raw:
        return False
    try:
        decoded = json.loads(raw)
    except ValueError:
        return False
    return isinstance(decoded, dict) and key in decoded


def jwt_header(token: str) -> bool:
    """A JWT (RFC 7519): the first part is base64url JSON with ``alg``;
    ``alg: none`` tokens have an empty signature."""
    return json_header(token.split(".", 1)[0], "alg")
