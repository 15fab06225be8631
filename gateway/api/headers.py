"""Pure-ASGI middleware: every response carries ``x-request-id`` and
``x-gateway-cache``, including errors raised before the pipeline ran (body
too large, unknown route). The pipeline sets them itself where it answers;
this only fills in what is missing, so it costs one header scan per response.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.observability.record import CACHE_BYPASS, client_request_id, new_request_id

_REQUEST_ID = b"x-request-id"
_CACHE = b"x-gateway-cache"
_BYPASS = CACHE_BYPASS.encode()


class GatewayHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.setdefault("headers", [])
                names = {name.lower() for name, _ in headers}
                if _REQUEST_ID not in names:
                    given = next((v for k, v in scope["headers"] if k == _REQUEST_ID), b"")
                    echoed = client_request_id(given.decode("latin-1"))
                    headers.append((_REQUEST_ID, (echoed or new_request_id()).encode()))
                if _CACHE not in names:
                    headers.append((_CACHE, _BYPASS))
            await send(message)

        await self.app(scope, receive, send_with_headers)
