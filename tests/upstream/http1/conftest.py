"""The HTTP client's tests run on both event loops the gateway may use:
asyncio's own (tests, ``gateway serve`` without uvloop) and uvloop (production)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import pytest
import uvloop

from gateway.targets import Timeouts
from gateway.upstream.http1 import Client
from tests.upstream.http1.raw_server import RawServer, Script, serving

Serve = Callable[..., Awaitable[RawServer]]

QUICK = Timeouts(connect=2.0, first_byte=5.0, total=10.0)


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    return {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """Start a scripted server (closed at the end of the test)."""
    async with contextlib.AsyncExitStack() as stack:

        async def start(script: Script, **options: Any) -> RawServer:
            return await stack.enter_async_context(serving(script, **options))

        yield start


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    http = Client(limit=8, keepalive_s=15.0)
    yield http
    await http.aclose()
