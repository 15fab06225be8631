"""Run a real gateway (uvicorn, real sockets) in a background thread for tests."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn
import yaml

from gateway.app import create_app
from gateway.server import uvicorn_config
from gateway.services import Services, build_services
from gateway.settings import Settings
from tests.upstream_server import free_port

ROOT = Path(__file__).resolve().parents[1]


class GatewayServer:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings.with_overrides(
            port=settings.port if settings.port != 8080 else free_port()
        )
        self.url = f"http://127.0.0.1:{self.settings.port}"
        self.services: Services | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None

    def start(self) -> GatewayServer:
        self._thread = threading.Thread(target=self._run, name="gateway", daemon=True)
        self._thread.start()
        if not self._started.wait(20):
            raise RuntimeError("the gateway did not start in time")
        if self._error is not None:
            raise self._error
        return self

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:  # noqa: BLE001 - re-raised in the starting thread
            self._error = exc
            self._started.set()
        finally:
            loop.close()

    async def _serve(self) -> None:
        self.services = await build_services(self.settings)
        app = create_app(self.settings, self.services)
        config = uvicorn_config(
            app,
            self.settings,
            host="127.0.0.1",
            log_level="warning",
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        serving = asyncio.ensure_future(self._server.serve())
        while not self._server.started and not serving.done():  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
            await asyncio.sleep(0.01)
        self._started.set()
        try:
            await serving
        finally:
            await self.services.aclose()

    def call(self, coro: Any) -> Any:
        """Run a coroutine on the gateway's own loop (e.g. to inspect state)."""
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(15)


def upstream_target(model: str, **extra: Any) -> dict[str, Any]:
    """A policy target on the test upstream (``${UPSTREAM_URL}``); ``model`` picks
    the upstream's behaviour (see :mod:`tests.upstream_server`)."""
    spec: dict[str, Any] = {
        "kind": "open",
        "provider": "openai",
        "base_url": "${UPSTREAM_URL}",
        "model": model,
        "price": {"input_per_mtok": 0.1, "output_per_mtok": 0.2},
        "timeouts": {"connect": 1, "first_byte": 2, "total": 10},
        "retry": {"attempts": 1},
        "circuit": {"failures_to_open": 1000, "open_seconds": 60},
    }
    spec.update(extra)
    return spec


def write_policy(directory: Path, policy: dict[str, Any]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, section in policy.items():
        (directory / f"{name}.yaml").write_text(yaml.safe_dump({name: section}, sort_keys=False))
    return directory


class GatewayProcess:
    """A real `python -m gateway serve` subprocess on a free port."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        full_env = {
            **os.environ,
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "GATEWAY_LOG_LEVEL": "warning",
        }
        full_env.update(env or {})
        # never the repository's ./gateway-keys.json: a key left there would close every gateway
        full_env.setdefault("GATEWAY_KEYS_FILE", str(Path(tempfile.mkdtemp()) / "keys.json"))
        self.env = full_env
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve", "--port", str(self.port), *args],
            cwd=ROOT,
            env=full_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def wait_ready(self, timeout: float = 20) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"gateway exited: {self.proc.stderr.read() if self.proc.stderr else ''}"
                )
            try:
                if httpx.get(self.url + "/readyz", timeout=0.5).status_code == 200:
                    return time.perf_counter() - self.started
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise AssertionError("gateway not ready in time")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
