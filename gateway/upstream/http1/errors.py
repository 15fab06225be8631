"""The HTTP client's failures, by what went wrong rather than by where.

The provider maps them onto :mod:`gateway.errors` with the target's name;
these never carry header values (an upstream key must not end up in a log).
"""

from __future__ import annotations

import socket
import ssl


class HTTPClientError(Exception):
    """Base of every failure the client raises."""


class InvalidRequest(HTTPClientError):
    """The URL or a header cannot be sent (bad scheme, line break in a value...)."""


class ConnectFailed(HTTPClientError):
    """No connection: refused, DNS failure, TLS handshake or certificate refused.

    The message says why in words an operator can act on (see :func:`connect_failure`)."""


def connect_failure(exc: OSError) -> str:
    """Why a connection could not be made, in words: ``connection refused``,
    ``host name not found``, ``TLS handshake failed (...)``..."""
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, socket.gaierror):
        return "host name not found"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate refused ({exc.reason}: {exc.verify_message})"
    if isinstance(exc, ssl.SSLError):
        return f"TLS handshake failed ({exc.reason or exc})"
    if isinstance(exc, ConnectionResetError):
        return "connection reset"
    return (exc.strerror or str(exc) or type(exc).__name__).lower()


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
