"""The stored form of a :class:`CachedResponse`, shared by both cache backends.

Layout (all integers big-endian)::

    b"GWC1" | u32 header length | header (JSON) | body bytes | chunk bytes ...

The JSON header holds the small fields and the lengths of the body (``-1``
for none) and of each stream chunk, so chunks are stored raw, without JSON
escaping. :func:`decode` checks the magic and that the lengths add up
exactly; anything else is corrupt and decodes to None (logged on the
``gateway.state`` logger), never an exception.
"""

from __future__ import annotations

import logging
import struct

import orjson

from gateway.state.base import CachedResponse

logger = logging.getLogger("gateway.state")

MAGIC = b"GWC1"
_HEADER_LEN = struct.Struct(">I")
_PREFIX = len(MAGIC) + _HEADER_LEN.size


def encode(entry: CachedResponse) -> bytes:
    header = orjson.dumps(
        {
            "t": entry.target,
            "l": entry.level,
            "p": entry.prompt_tokens,
            "c": entry.completion_tokens,
            "a": entry.created_at,
            "b": -1 if entry.body is None else len(entry.body),
            "n": [len(chunk) for chunk in entry.chunks],
        }
    )
    parts = [MAGIC, _HEADER_LEN.pack(len(header)), header]
    if entry.body is not None:
        parts.append(entry.body)
    parts.extend(entry.chunks)
    return b"".join(parts)


class _Corrupt(ValueError):
    pass


def _int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Corrupt(f"expected an integer, got {type(value).__name__}")
    return value


def _parse(raw: bytes) -> CachedResponse:
    if raw[: len(MAGIC)] != MAGIC or len(raw) < _PREFIX:
        raise _Corrupt("bad magic")
    (header_len,) = _HEADER_LEN.unpack_from(raw, len(MAGIC))
    start = _PREFIX + header_len
    if start > len(raw):
        raise _Corrupt("header runs past the end")
    header = orjson.loads(raw[_PREFIX:start])
    if not isinstance(header, dict):
        raise _Corrupt("header is not an object")
    target = header.get("t")
    created_at = header.get("a")
    lengths = header.get("n")
    if not isinstance(target, str) or not isinstance(lengths, list):
        raise _Corrupt("header misses target or chunk lengths")
    if isinstance(created_at, bool) or not isinstance(created_at, int | float):
        raise _Corrupt("created_at is not a number")
    body_len = _int(header.get("b"))
    chunk_lens = [_int(n) for n in lengths]
    if body_len < -1 or any(n < 0 for n in chunk_lens):
        raise _Corrupt("negative length")
    if start + max(body_len, 0) + sum(chunk_lens) != len(raw):
        raise _Corrupt("lengths do not add up")
    body: bytes | None = None
    pos = start
    if body_len >= 0:
        body = raw[pos : pos + body_len]
        pos += body_len
    chunks = []
    for n in chunk_lens:
        chunks.append(raw[pos : pos + n])
        pos += n
    return CachedResponse(
        target=target,
        level=_int(header.get("l")),
        body=body,
        chunks=tuple(chunks),
        prompt_tokens=_int(header.get("p")),
        completion_tokens=_int(header.get("c")),
        created_at=float(created_at),
    )


def decode(raw: bytes, *, where: str) -> CachedResponse | None:
    """The entry stored as ``raw``, or None (logged) when it is corrupt."""
    try:
        return _parse(raw)
    except (_Corrupt, orjson.JSONDecodeError, struct.error) as exc:
        logger.warning("corrupt cache entry at %s treated as a miss: %s", where, exc)
        return None
