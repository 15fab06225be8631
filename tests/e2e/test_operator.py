"""What an operator sees of a real `gateway serve`: the start-up block, and reloads
(a refusal logged once, the recovery logged, /readyz degraded in between)."""

from __future__ import annotations

import shutil
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.harness import GatewayProcess
from tests.upstream_server import free_port

ROOT = Path(__file__).resolve().parents[2]


class Output:
    """Collects a process's stderr lines as they come."""

    def __init__(self, process: GatewayProcess) -> None:
        self.lines: list[str] = []
        assert process.proc.stderr is not None
        stream = process.proc.stderr
        self._thread = threading.Thread(target=lambda: self.lines.extend(stream), daemon=True)
        self._thread.start()

    def wait_for(self, text: str, timeout_s: float = 20) -> list[str]:
        deadline = time.monotonic() + timeout_s
        while not any(text in line for line in self.lines):
            assert time.monotonic() < deadline, f"{text!r} never logged:\n{''.join(self.lines)}"
            time.sleep(0.05)
        return list(self.lines)

    def count(self, text: str) -> int:
        return sum(text in line for line in self.lines)


@pytest.fixture
def policies(tmp_path: Path) -> Path:
    target = tmp_path / "policies"
    shutil.copytree(ROOT / "policies", target)
    return target


@pytest.fixture
def live(policies: Path) -> Iterator[tuple[GatewayProcess, Output, str]]:
    open_model = f"http://127.0.0.1:{free_port()}/v1"
    env = {
        "GATEWAY_LOG_LEVEL": "info",
        "OPEN_MODEL_BASE_URL": open_model,
        "OPENAI_API_KEY": "",
        "ANTHROPIC_API_KEY": "",
        "GATEWAY_ADMIN_KEY": "",
        "GATEWAY_RELOAD_INTERVAL_S": "0.2",
    }
    process = GatewayProcess("--policies", str(policies), env=env)
    output = Output(process)
    try:
        yield process, output, open_model
    finally:
        process.stop()


def test_start_up_says_what_will_happen(live: tuple[GatewayProcess, Output, str]) -> None:
    process, output, open_model = live
    lines = output.wait_for("auth: ")
    block = "".join(line for line in lines if '"gateway.startup"' in line)
    assert f"listening on http://127.0.0.1:{process.port} (live, " in block
    assert "policy " in block and "fingerprint " in block and " rules" in block
    # each target: kind, where, model, level, prices, availability and why
    assert (
        f"target local: open, openai-compatible at {open_model}, "
        "model meta-llama/Llama-3.1-8B-Instruct, up to restricted, " in block
    )
    assert f"UNAVAILABLE: connection refused at {open_model}" in block
    assert "target anthropic-sonnet: proprietary, litellm/anthropic" in block
    assert "ANTHROPIC_API_KEY" in block
    assert "state: in memory" in block
    assert "auth: open (no keys configured; source: file " in block
    assert "NO API KEYS ARE CONFIGURED" in block and "no GATEWAY_ADMIN_KEY" in block
    # once: the block is the only place the start says a target is down
    assert output.count("is down: connection refused") == 0
    startup = [line for line in lines if '"gateway.startup"' in line]
    assert len(startup) < 25, "one short block"


def test_reloads_refused_once_recovered_and_ready_says_so(
    live: tuple[GatewayProcess, Output, str], policies: Path
) -> None:
    process, output, _ = live
    output.wait_for("auth: ")
    aliases = policies / "aliases.yaml"
    good = aliases.read_text()
    assert httpx.get(process.url + "/readyz").json()["policy"]["last_reload_error"] is None

    aliases.write_text("aliases:\n  broken: {targets: [no-such-target]}\n")
    output.wait_for("policy reload refused")
    process.proc.send_signal(signal.SIGHUP)  # a SIGHUP on the same bad files: once more
    time.sleep(0.5)
    ready = httpx.get(process.url + "/readyz").json()
    assert ready["status"] != "ok"
    assert any("policy reload was refused" in problem for problem in ready["problems"])
    assert "no-such-target" in ready["policy"]["last_reload_error"]
    # each attempt is logged once (the watcher's and the SIGHUP's: two attempts, two lines)
    assert output.count("policy reload refused") == 2
    assert output.count("reload failed") == 0

    aliases.write_text(good)  # put back as it was: the policy in force never changed
    lines = output.wait_for("policy reload recovered")
    ready = httpx.get(process.url + "/readyz").json()
    assert ready["policy"]["last_reload_error"] is None
    assert not any("reload" in problem for problem in ready["problems"])
    assert sum("policy reload recovered" in line for line in lines) == 1
