"""POST a body to an HTTP(S) URL over a keep-alive pool: the request side.

A :class:`Request` is prepared once per URL and fixed headers (the head's
bytes, the origin); each call adds its own headers and ``Content-Length`` and
writes head and body in one ``transport.write``. The client sends no
``Accept-Encoding`` (answers come uncompressed; gzip and deflate are decoded
all the same when a server compresses anyway), no ``User-Agent`` and no
``Connection`` header (HTTP/1.1 keep-alive is the default).

A request that fails on a reused connection before any byte of the answer
came (the server had closed the idle connection: uvicorn does after 5 s) is
sent once more on a fresh connection; never when a byte of the answer came,
nor when the connection was fresh.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterable
from urllib.parse import quote, urlsplit

from gateway.targets import Timeouts
from gateway.upstream.http1.connection import Connection, Response
from gateway.upstream.http1.errors import InvalidRequest, StaleConnection
from gateway.upstream.http1.pool import Pool

_FORBIDDEN_IN_NAME = frozenset(' \t\r\n:"(),/;<=>?@[\\]{}')
#: characters a request target may carry as they are (RFC 3986), '%' for existing escapes
_SAFE_IN_TARGET = "/%:@!$&'()*+,;=?-._~"


class Request:
    """A POST (or, for probes, a ``GET``) to one URL with fixed headers,
    prepared once and sent many times.

    Raises :class:`InvalidRequest` for a URL that is not ``http``/``https``
    with a host, or a header that cannot be sent as it is."""

    __slots__ = ("head", "host", "origin", "port", "tls")

    def __init__(
        self, url: str, headers: Iterable[tuple[str, str]] = (), *, method: str = "POST"
    ) -> None:
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise InvalidRequest("invalid URL") from None
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https"):
            raise InvalidRequest(f"unsupported URL scheme {scheme!r} (http or https)")
        if not parts.hostname:
            raise InvalidRequest("the URL has no host")
        if parts.username is not None or parts.password is not None:
            raise InvalidRequest("credentials in the URL are not supported; send a header")
        self.tls = scheme == "https"
        self.host = parts.hostname
        default = 443 if self.tls else 80
        self.port = port or default
        self.origin = f"{scheme}://{self.host}:{self.port}"
        authority = f"[{self.host}]" if ":" in self.host else self.host
        if self.port != default:
            authority += f":{self.port}"
        target = quote(parts.path or "/", safe=_SAFE_IN_TARGET)
        if parts.query:
            target += "?" + quote(parts.query, safe=_SAFE_IN_TARGET)
        if method not in ("POST", "GET"):
            raise InvalidRequest(f"unsupported method {method!r} (POST or GET)")
        lines = [f"{method} {target} HTTP/1.1\r\nHost: {authority}\r\n"]
        lines.extend(header_line(name, value) for name, value in headers)
        self.head = _latin1("".join(lines))

    def encode(self, body: bytes, headers: Iterable[tuple[str, str]]) -> bytes:
        """The whole request: head, this call's headers, Content-Length, body."""
        extra = "".join([header_line(name, value) for name, value in headers])
        return b"%s%sContent-Length: %d\r\n\r\n%s" % (self.head, _latin1(extra), len(body), body)


def header_line(name: str, value: str) -> str:
    """``name: value\\r\\n``; refuses what would break the request (never quoting the value)."""
    if not name or not _FORBIDDEN_IN_NAME.isdisjoint(name) or not name.isascii():
        raise InvalidRequest(f"invalid header name {name!r}")
    if "\r" in value or "\n" in value or "\0" in value:
        raise InvalidRequest(f"header {name} has a line break or NUL in its value")
    return f"{name}: {value}\r\n"


def _latin1(text: str) -> bytes:
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        raise InvalidRequest("a header or the URL has characters outside latin-1") from None


class Client:
    """HTTP/1.1 POSTs over a bounded keep-alive pool (see :mod:`.pool`).

    ``ssl_context`` defaults to ``ssl.create_default_context()`` (the system's
    CA store, certificate and host name checked), made at the first HTTPS
    connection.
    """

    def __init__(
        self,
        *,
        limit: int = 512,
        keepalive_s: float = 15.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._pool = Pool(limit=limit, keepalive_s=keepalive_s, ssl_context=ssl_context)

    @property
    def connections(self) -> int:
        """Connections open or opening."""
        return self._pool.size

    async def fetch(
        self,
        request: Request,
        body: bytes,
        timeouts: Timeouts,
        headers: Iterable[tuple[str, str]] = (),
    ) -> Response:
        """The whole answer: ``status``, ``headers`` and ``body`` (decoded).

        Raises :mod:`.errors` subclasses; an HTTP error status is an answer,
        not an error."""
        return await self._exchange(request, body, timeouts, headers, False)

    async def stream(
        self,
        request: Request,
        body: bytes,
        timeouts: Timeouts,
        headers: Iterable[tuple[str, str]] = (),
    ) -> Response:
        """The answer's head; iterate over the response for the body's chunks as
        they arrive, and ``close()`` it when done (early: the connection is closed).

        ``timeouts.first_byte`` also bounds each wait for the next chunk."""
        return await self._exchange(request, body, timeouts, headers, True)

    async def aclose(self) -> None:
        await self._pool.aclose()

    async def _exchange(
        self,
        request: Request,
        body: bytes,
        timeouts: Timeouts,
        headers: Iterable[tuple[str, str]],
        streamed: bool,
    ) -> Response:
        data = request.encode(body, headers)
        deadline = asyncio.get_running_loop().time() + timeouts.total
        pool = self._pool
        conn = pool.take(request.origin)
        if conn is None:
            conn = await pool.acquire(request, timeouts.connect, deadline)
        response = await _send(conn, data, timeouts.first_byte, deadline, streamed)
        error = response._error
        if isinstance(error, StaleConnection):
            conn = await pool.acquire(request, timeouts.connect, deadline, fresh=True)
            response = await _send(conn, data, timeouts.first_byte, deadline, streamed)
            error = response._error
        if error is not None and not (streamed and response.status):
            raise error
        return response


async def _send(
    conn: Connection, data: bytes, first_byte: float, deadline: float, streamed: bool
) -> Response:
    response = Response(conn, streamed)
    conn.send(response, data, first_byte, deadline)
    if streamed:
        while not response.status and response._error is None:
            await response.wait()
    else:
        while not response._done:
            await response.wait()
    return response
