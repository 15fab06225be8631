"""A lean asyncio HTTP/1.1 client for the upstream hot path.

Built for one job: POST a JSON body to an OpenAI-compatible server (vLLM,
Ollama, llama.cpp, TGI, SGLang, OpenAI over HTTPS) and read the answer whole
or as a stream, with a bounded keep-alive pool, per-call timeouts and
cancellation that closes the connection (which is what stops generation
upstream). It replaces aiohttp's client, which cost about a third of the
gateway's CPU per request (see README, "The upstream HTTP client").

* :mod:`.client` — :class:`Request` (prepared once per URL), :class:`Client`
* :mod:`.pool` — keep-alive connections per origin, bounded, LIFO
* :mod:`.connection` — the asyncio protocol and httptools' parser; :class:`Response`
* :mod:`.inflate` — gzip / deflate bodies
* :mod:`.errors` — what can fail
"""

from gateway.upstream.http1.client import Client, Request
from gateway.upstream.http1.connection import Response
from gateway.upstream.http1.errors import (
    BadResponse,
    ConnectFailed,
    Disconnected,
    HTTPClientError,
    InvalidRequest,
    RequestTimeout,
    StaleConnection,
)

__all__ = [
    "BadResponse",
    "Client",
    "ConnectFailed",
    "Disconnected",
    "HTTPClientError",
    "InvalidRequest",
    "Request",
    "RequestTimeout",
    "Response",
    "StaleConnection",
]
