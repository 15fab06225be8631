"""Decoding of ``Content-Encoding: gzip`` and ``deflate`` answers.

The client never asks for compression (it sends no ``Accept-Encoding``), so
this only runs for servers that compress anyway. ``deflate`` is meant to be
zlib-wrapped (RFC 9110) but some servers send raw deflate: when the zlib
header check fails before any output, the bytes seen so far are decoded again
as raw deflate.
"""

from __future__ import annotations

import zlib

from gateway.upstream.http1.errors import BadResponse

_GZIP = 16 + zlib.MAX_WBITS
_ZLIB_OR_GZIP = 32 + zlib.MAX_WBITS
_RAW = -zlib.MAX_WBITS


class Inflater:
    __slots__ = ("_decoder", "_seen")

    def __init__(self, gzip: bool) -> None:
        self._decoder = zlib.decompressobj(_GZIP if gzip else _ZLIB_OR_GZIP)
        #: deflate input kept until the first output, to retry as raw deflate
        self._seen: bytes | None = None if gzip else b""

    def feed(self, data: bytes) -> bytes:
        try:
            out = self._decoder.decompress(data)
        except zlib.error:
            if self._seen is None:
                raise BadResponse("corrupt compressed body") from None
            self._decoder = zlib.decompressobj(_RAW)
            data, self._seen = self._seen + data, None
            try:
                return self._decoder.decompress(data)
            except zlib.error:
                raise BadResponse("corrupt compressed body") from None
        if self._seen is not None:
            self._seen = None if out else self._seen + data
        return out

    def flush(self) -> bytes:
        try:
            return self._decoder.flush()
        except zlib.error:
            raise BadResponse("corrupt compressed body") from None


def inflater(encoding: bytes) -> Inflater | None:
    """The decoder for a ``Content-Encoding`` value; ``None`` for identity.

    Raises :class:`BadResponse` for any other encoding."""
    value = encoding.strip().lower()
    if value in (b"gzip", b"x-gzip"):
        return Inflater(gzip=True)
    if value == b"deflate":
        return Inflater(gzip=False)
    if value in (b"", b"identity"):
        return None
    raise BadResponse(f"unsupported content-encoding {value.decode('latin-1')!r}")
