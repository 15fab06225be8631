"""The paths every probe, health check and scrape config uses are really served,
by the gateway started with the Dockerfile's own entrypoint and command."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time

import httpx

from tests.deploy.conftest import REPO, SERVED_PATHS
from tests.upstream_server import free_port


def _dockerfile_command() -> list[str]:
    text = (REPO / "Dockerfile").read_text()
    entrypoint = json.loads(re.search(r"^ENTRYPOINT (\[.*\])$", text, re.M).group(1))  # type: ignore[union-attr]
    command = json.loads(re.search(r"^CMD (\[.*\])$", text, re.M).group(1))  # type: ignore[union-attr]
    return [*entrypoint, *command]


def test_image_command_serves_every_probed_path() -> None:
    command = _dockerfile_command()
    assert command[:2] == ["gateway", "serve"]
    port = free_port()
    args = [a if a != "8080" else str(port) for a in command[2:]]
    args = [a if a != "0.0.0.0" else "127.0.0.1" for a in args]
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway", "serve", *args, "--demo"],
        cwd=REPO,
        env={
            "PATH": "/usr/bin:/bin",
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "GATEWAY_LOG_LEVEL": "warning",
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                httpx.get(base + "/healthz", timeout=0.5)
                break
            except httpx.TransportError:
                assert process.poll() is None, process.stderr.read() if process.stderr else b""
                time.sleep(0.05)
        for path in sorted(SERVED_PATHS):
            response = httpx.get(base + path, timeout=5)
            assert response.status_code == 200, (path, response.text)
        assert "gateway_requests_total" in httpx.get(base + "/metrics").text
    finally:
        process.terminate()
        process.wait(10)
        if process.stderr is not None:
            process.stderr.close()
