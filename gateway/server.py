"""Run the gateway: uvicorn on uvloop + httptools, one process per container.

Signals: SIGHUP reloads the policy (the last good one stays on failure);
SIGTERM stops accepting connections and lets open requests and streams
finish for up to ``drain_timeout_s`` (uvicorn's graceful shutdown), then exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from collections.abc import Iterator
from typing import Any

import uvicorn

from gateway.api.http_protocol import ConnectionLimits, protocol_class
from gateway.app import create_app
from gateway.observability.logs import configure_logging
from gateway.policy.problems import PolicyError
from gateway.services import build_services
from gateway.settings import Settings

log = logging.getLogger("gateway")


class _Server(uvicorn.Server):
    """uvicorn re-raises SIGTERM after its graceful shutdown, which would kill
    the process before the services are closed (pending spend records lost).
    Here SIGTERM/SIGINT only ask uvicorn to drain; the process then exits 0."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.handle_exit, sig, None)
        try:
            yield
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)


def uvicorn_config(app: Any, settings: Settings, **overrides: Any) -> uvicorn.Config:
    """How the gateway runs under uvicorn: httptools with the gateway's own
    protocol (one write per answer; header, body and idle clocks, header and
    connection limits: :mod:`gateway.api.http_protocol`). Tests run the app
    with this same configuration."""
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "loop": "none",
        "http": protocol_class(ConnectionLimits.of(settings)),
        "lifespan": "on",
        "access_log": False,
        # uvicorn's loggers propagate to the gateway's JSON lines (gateway.observability.logs)
        "log_config": None,
        "log_level": settings.log_level.lower(),
        "timeout_graceful_shutdown": int(settings.drain_timeout_s),
        # the protocol's own idle clock (GATEWAY_KEEPALIVE_TIMEOUT_S) closes idle connections
        "timeout_keep_alive": int(settings.keepalive_timeout_s),
        "server_header": False,
        "date_header": False,
        # client addresses are never logged or used: skip the per-request rewrite
        "proxy_headers": False,
    }
    options.update(overrides)
    return uvicorn.Config(app, **options)


def run(settings: Settings) -> int:
    configure_logging(settings.log_level)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    return asyncio.run(_serve(settings))


async def _serve(settings: Settings) -> int:
    try:
        services = await build_services(settings)
    except PolicyError as error:
        log.error("the policy in %s is invalid; not starting:\n%s", settings.policies, error)
        return 2
    app = create_app(settings, services)
    # Everything built so far (modules, the compiled policy, litellm's price
    # map) lives as long as the process: keep it out of every GC pass.
    gc.collect()
    gc.freeze()
    # A request's objects are freed by reference counting; the young-generation
    # collections the default threshold (700) triggers every request or two mostly
    # walk the live objects of requests in flight. 10x fewer of them: about 4 % of
    # the gateway's instructions per request (callgrind), no growth in RSS
    # (bench/run.py, memory rows).
    gc.set_threshold(7_000, 10, 10)
    server = _Server(uvicorn_config(app, settings))
    loop = asyncio.get_running_loop()
    if hasattr(signal, "SIGHUP"):
        loop.add_signal_handler(signal.SIGHUP, services.reload_now)
    # the start-up block (address, policy, targets, state, auth, warnings) is
    # logged by the app's lifespan: gateway.startup.announce
    try:
        await server.serve()
    finally:
        services.draining = True
        await services.aclose()
    return 0
