"""A real Prometheus process for tests: Debian's ``prometheus`` binary on a free
loopback port, its config generated, its storage in a temporary directory."""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.servers import stop_process
from tests.upstream_server import free_port


def prometheus_binary(name: str) -> str:
    """The Debian ``prometheus``/``promtool`` binary; a failure (never a skip)
    says how to install it, since CI installs it."""
    found = shutil.which(name)
    if found is None:
        pytest.fail(
            f"{name} is not installed; the observability tests need a real Prometheus "
            "(Debian/Ubuntu: apt-get install prometheus)",
            pytrace=False,
        )
    return found


def prometheus_config(gateway_address: str, rule_files: list[Path]) -> dict[str, Any]:
    """Scrape the gateway every second and evaluate ``rule_files`` every second."""
    return {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(path) for path in rule_files],
        "scrape_configs": [
            {
                "job_name": "gateway",
                "metrics_path": "/metrics",
                "static_configs": [{"targets": [gateway_address]}],
            }
        ],
    }


@dataclass
class Prometheus:
    """One ``prometheus`` process on a free loopback port, storage in ``directory``."""

    directory: Path
    config: dict[str, Any]
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def config_file(self) -> Path:
        return self.directory / "prometheus.yml"

    def write_config(self) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(yaml.safe_dump(self.config, sort_keys=False))
        return self.config_file

    def start(self, timeout_s: float = 20.0) -> Prometheus:
        binary = prometheus_binary("prometheus")
        self.write_config()
        self.port = free_port()
        log = (self.directory / "prometheus.log").open("ab")
        self.process = subprocess.Popen(
            [
                binary,
                f"--config.file={self.config_file}",
                f"--storage.tsdb.path={self.directory / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                if httpx.get(f"{self.url}/-/ready", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"prometheus did not become ready:\n{self.log_tail()}")

    def log_tail(self) -> str:
        path = self.directory / "prometheus.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def query(self, expr: str, at: float | None = None) -> dict[str, Any]:
        """``/api/v1/query``; the whole JSON answer (errors included, never raised)."""
        params: dict[str, str] = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        response = httpx.get(f"{self.url}/api/v1/query", params=params, timeout=10)
        answer: dict[str, Any] = response.json()
        return answer

    def scrape_times(self, job: str = "gateway") -> list[float]:
        """When the last minute's successful scrapes of ``job`` happened."""
        answer = self.query(f'up{{job="{job}"}}[60s]')
        if answer.get("status") != "success" or not answer["data"]["result"]:
            return []
        return [float(ts) for ts, value in answer["data"]["result"][0]["values"] if value == "1"]

    def wait_for_scrapes(self, after: float, count: int, timeout_s: float = 20) -> float:
        """Wait for ``count`` successful scrapes after ``after``; the latest one's time."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            times = [t for t in self.scrape_times() if t > after]
            if len(times) >= count:
                return max(times)
            time.sleep(0.25)
        raise AssertionError(f"prometheus did not scrape {count} times:\n{self.log_tail()}")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None:
            stop_process(process)
