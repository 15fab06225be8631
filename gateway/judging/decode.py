"""Cheap, exact decodings of encoded text, and what cannot be read as text.

:func:`decodings` finds the pieces of a text that are base64 (standard or
URL-safe) or hex and decode to printable UTF-8, and ``data:`` URIs of text
media types; the scanner reads the decoded text as well (a key sent as
``QUtJQV…`` is still a key). Everything else that is encoded stays as it is:
:func:`opaque_string` says when a whole string is a payload the gateway cannot
judge (binary base64, a ``data:`` URI of an image or audio, an image URL with a
query string), and :func:`decodings` reports a long base64 run inside a text
that decodes to nothing readable: both make the request ``unjudged``.

:func:`headless_private_keys` finds a private key's base64 body without its
``-----BEGIN`` line: DER that opens as a private key does (a SEQUENCE, then
version 0 or 1), which certificates and public keys never do.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator
from urllib.parse import unquote_to_bytes

from gateway.judging.probe import Finding

#: encoded pieces shorter than this are not worth decoding (and rarely are encodings)
MIN_ENCODED = 16
#: a run of base64 this long that decodes to no text is a binary payload
OPAQUE_RUN = 256
_TOKEN = re.compile(rf"[A-Za-z0-9+/_\-]{{{MIN_ENCODED},}}={{0,2}}")
_HEX = re.compile(r"[0-9A-Fa-f]+")
#: bounded pieces, so a text full of "data:" costs one pass
_DATA_URI = re.compile(
    r"data:(?P<type>[A-Za-z0-9.+\-]{1,64}/[A-Za-z0-9.+\-]{1,64})?"
    r"(?:;(?!base64[,;])[A-Za-z0-9=.+_\-]{0,64}){0,8}(?P<b64>;base64)?,"
    r"(?P<payload>[^\s\"'<>)\]}]*)",
    re.IGNORECASE,
)
_B64_TEXT = re.compile(r"[A-Za-z0-9+/=_\-\r\n]+")
_WHITESPACE = re.compile(r"[\t\n\r]+")
_TEXT_TYPES = ("text/", "application/json", "application/xml", "application/x-www-form-urlencoded")


def printable(decoded: bytes) -> str | None:
    """``decoded`` as text when it is UTF-8 of printable characters and whitespace."""
    try:
        text = decoded.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if not text or not _WHITESPACE.sub("", text).isprintable():
        return None
    return text


def _b64(token: str) -> bytes | None:
    body = token.rstrip("=")
    if len(body) % 4 == 1:
        return None
    padded = body + "=" * (-len(body) % 4)
    try:
        if "-" in body or "_" in body:
            return base64.urlsafe_b64decode(padded)
        return base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        return None


def decode_token(token: str) -> str | None:
    """The printable text ``token`` (hex or base64) encodes, if any."""
    if len(token) % 2 == 0 and _HEX.fullmatch(token) is not None:
        text = printable(binascii.unhexlify(token))
        if text is not None:
            return text
    raw = _b64(token)
    return printable(raw) if raw is not None else None


_B64_MASK = bytes(
    ord("a")
    if chr(b) in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/_-"
    else 32
    for b in range(256)
)


def encoded_runs(text: str, min_len: int = MIN_ENCODED) -> list[tuple[int, int]]:
    """``(start, end)`` of every run of base64/hex characters of ``min_len`` or more
    (with its ``=`` padding). ASCII text: one ``translate`` and a substring search
    say whether there is any; prose usually has none."""
    if text.isascii():
        mask = text.encode("ascii").translate(_B64_MASK)
        needle = b"a" * min_len
        at = mask.find(needle)
        if at < 0:
            return []
        runs = []
        n = len(mask)
        while at >= 0:
            end = mask.find(b" ", at)
            if end < 0:
                end = n
            stop = end
            while stop < n and stop - end < 2 and text[stop] == "=":
                stop += 1
            runs.append((at, stop))
            at = mask.find(needle, end)
        return runs
    return [m.span() for m in _TOKEN.finditer(text) if m.end() - m.start() >= min_len]


def decodings(text: str, opaque: list[Finding] | None = None) -> Iterator[tuple[int, int, str]]:
    """``(start, end, decoded)`` for each encoded piece of ``text`` that decodes to text.

    A run of :data:`OPAQUE_RUN` or more that decodes to no text (and is not hex,
    such as a long hash) is appended to ``opaque`` as an ``unjudged`` finding.
    """
    for start, end in encoded_runs(text):
        decoded = decode_token(text[start:end])
        if decoded is not None:
            yield start, end, decoded
        elif (
            opaque is not None
            and end - start >= OPAQUE_RUN
            and not _HEX.fullmatch(text, start, end)
        ):
            opaque.append(Finding("unjudged", start, end))
    if "ata:" in text or "ATA:" in text:
        for m in _DATA_URI.finditer(text):
            media = (m.group("type") or "text/plain").lower()
            if not media.startswith(_TEXT_TYPES):
                continue
            end = m.end()
            payload = m.group("payload")
            if m.group("b64"):
                raw = _b64(re.sub(r"\s+", "", payload))
                decoded = printable(raw) if raw is not None else None
            else:
                decoded = unquote_to_bytes(payload).decode("utf-8", "replace")
            if decoded:
                yield m.start(), end, decoded


def opaque_string(value: str, key: str | None) -> bool:
    """Whether ``value`` (under ``key``) is a payload the gateway cannot read as text."""
    head = value[:5].lower()
    if head == "data:":
        m = _DATA_URI.match(value)
        media = ((m.group("type") if m else None) or "text/plain").lower()
        if not media.startswith(_TEXT_TYPES):
            return True
        if m is not None and m.group("b64"):
            raw = _b64(re.sub(r"\s+", "", value[m.start("payload") :]))
            return raw is None or (bool(raw) and printable(raw) is None)
        return False
    if key in _URL_KEYS and (head.startswith("http") or "://" in value[:16]):
        return "?" in value or "#" in value
    if key in _BINARY_KEYS or (key == "data" and len(value) >= 64 and _B64_TEXT.fullmatch(value)):
        stripped = re.sub(r"\s+", "", value)
        if not stripped:
            return False
        raw = _b64(stripped)
        if raw is not None:
            return printable(raw) is None
        return key in _BINARY_KEYS
    return False


#: keys whose string is a link to content the gateway does not fetch
_URL_KEYS = frozenset({"url", "image_url", "file_url", "audio_url", "video_url", "document_url"})
#: keys whose string is an encoded payload
_BINARY_KEYS = frozenset(
    {"file_data", "b64_json", "image_data", "audio_data", "bytes", "image_bytes", "blob"}
)

_PEM_BODY = re.compile(r"M[A-Za-z0-9+/]{40,}(?:(?:\r?\n|\\r|\\n)+[A-Za-z0-9+/]{4,})*={0,2}")


def headless_private_keys(text: str) -> Iterator[Finding]:
    """Private-key bodies (base64 DER) that come without their BEGIN line."""
    if "M" not in text:
        return
    for m in _PEM_BODY.finditer(text):
        start = m.start()
        if start and (text[start - 1].isalnum() or text[start - 1] in "+/"):
            continue
        compact = re.sub(r"\\[rn]|\s", "", m.group())
        raw = _b64(compact[:24])
        if raw is not None and _der_private_key(raw):
            yield Finding("private_key", start, m.end())


def _der_private_key(der: bytes) -> bool:
    if len(der) < 8 or der[0] != 0x30:
        return False
    length = der[1]
    i = 2 + (length & 0x7F if length & 0x80 else 0)
    # version 0 (PKCS#1 RSA, PKCS#8) or 1 (SEC1 EC), then the key or its algorithm
    return der[i : i + 3] in (b"\x02\x01\x00", b"\x02\x01\x01")
