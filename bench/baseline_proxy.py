"""The bare pass-through the gateway is compared with.

Run: ``python bench/baseline_proxy.py --port 9200 --upstream http://127.0.0.1:9100``.

A raw ASGI app (no framework) served by uvicorn on uvloop + httptools, with one
aiohttp ``ClientSession``: it reads the request body, POSTs it unchanged to
the same path on the upstream and relays status, content type and body back;
an event stream is relayed chunk by chunk as it arrives. It parses nothing
and decides nothing, so "gateway minus baseline" is the cost of everything
the gateway does on top of proxying (policy, facts, limits, cache, metrics,
logging, FastAPI/Starlette).
"""

from __future__ import annotations

import argparse
from typing import Any

import aiohttp
import uvicorn

Scope = dict[str, Any]
Message = dict[str, Any]


async def read_body(receive: Any) -> bytes:
    body = bytearray()
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return bytes(body)


class PassThrough:
    def __init__(self, upstream: str) -> None:
        self._upstream = upstream.rstrip("/")
        self._session: aiohttp.ClientSession | None = None

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        assert self._session is not None
        async with self._session.post(
            self._upstream + scope["path"],
            data=body,
            headers={"content-type": "application/json"},
        ) as response:
            content_type = response.headers.get("content-type", "application/json")
            await send(
                {
                    "type": "http.response.start",
                    "status": response.status,
                    "headers": [(b"content-type", content_type.encode())],
                }
            )
            if content_type.startswith("text/event-stream"):
                async for chunk in response.content.iter_any():
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                await send({"type": "http.response.body", "body": b""})
            else:
                await send({"type": "http.response.body", "body": await response.read()})

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._session = aiohttp.ClientSession(
                    connector=aiohttp.TCPConnector(limit=512, limit_per_host=0),
                    skip_auto_headers=("User-Agent",),
                )
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._session is not None:
                    await self._session.close()
                await send({"type": "lifespan.shutdown.complete"})
                return


class LeanPassThrough:
    """The same pass-through on the gateway's own HTTP client
    (:mod:`gateway.upstream.http1`) instead of aiohttp: what a bare proxy
    costs with the cheapest client this project has (``--client http1``)."""

    def __init__(self, upstream: str) -> None:
        from gateway.targets import Timeouts
        from gateway.upstream.http1 import Client, Request

        self._upstream = upstream.rstrip("/")
        self._client = Client()
        self._requests: dict[str, Request] = {}
        self._make = Request
        self._timeouts = Timeouts()

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        path = scope["path"]
        request = self._requests.get(path)
        if request is None:
            request = self._requests[path] = self._make(
                self._upstream + path, [("content-type", "application/json")]
            )
        response = await self._client.stream(request, body, self._timeouts)
        content_type = response.header(b"content-type") or "application/json"
        await send(
            {
                "type": "http.response.start",
                "status": response.status,
                "headers": [(b"content-type", content_type.encode())],
            }
        )
        if content_type.startswith("text/event-stream"):
            async for chunk in response:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        else:
            await send({"type": "http.response.body", "body": await response.read()})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="e.g. http://127.0.0.1:9100")
    parser.add_argument(
        "--client",
        choices=("aiohttp", "http1"),
        default="aiohttp",
        help="aiohttp (the baseline the targets name) or the gateway's own client",
    )
    args = parser.parse_args()
    app = PassThrough(args.upstream) if args.client == "aiohttp" else LeanPassThrough(args.upstream)
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_level="warning",
        server_header=False,
        date_header=False,
    )


if __name__ == "__main__":
    main()
