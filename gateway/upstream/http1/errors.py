"""The HTTP client's failures, by what went wrong rather than by where.

The provider maps them onto :mod:`gateway.errors` with the target's name;
these never carry header values (an upstream key must not end up in a log).
"""

from __future__ import annotations


class HTTPClientError(Exception):
    """Base of every failure the client raises."""


class InvalidRequest(HTTPClientError):
    """The URL or a header cannot be sent (bad scheme, line break in a value...)."""


class ConnectFailed(HTTPClientError):
    """No connection: refused, DNS failure, TLS handshake or certificate refused."""


class RequestTimeout(HTTPClientError):
    """``phase`` says which bound was hit: ``connect``, ``first_byte`` or ``total``."""

    def __init__(self, phase: str) -> None:
        super().__init__(f"{phase} timeout")
        self.phase = phase


class Disconnected(HTTPClientError):
    """The server closed or reset the connection before the answer was complete."""


class StaleConnection(Disconnected):
    """A reused keep-alive connection ended before any byte of the answer came:
    the server had closed it while idle, so the request is safe to send again."""


class BadResponse(HTTPClientError):
    """The answer is not HTTP/1.x the client can read (or an unknown content-encoding)."""
