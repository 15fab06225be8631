"""Child processes of a benchmark run: start pinned, wait until ready, measure, stop.

Every process started here is a direct child, stopped by its own pid (SIGTERM,
then SIGKILL after a grace period); nothing is killed by name.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def cpu_count() -> int:
    return len(os.sched_getaffinity(0))


@dataclass
class Child:
    name: str
    popen: subprocess.Popen[bytes]
    cpus: set[int] | None
    started_at: float
    log_path: Path | None = None
    _log: IO[bytes] | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def rss_mb(self) -> float:
        """Resident set size now (``VmRSS`` from ``/proc``), in MiB."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError(f"no VmRSS for {self.name} (pid {self.pid})")

    def cpu_s(self) -> float:
        """User + system CPU seconds the process has used so far (``/proc/PID/stat``)."""
        stat = Path(f"/proc/{self.pid}/stat").read_text()
        # the fields after the command name, which is in parentheses and may hold spaces
        fields = stat.rsplit(")", 1)[1].split()
        utime, stime = int(fields[11]), int(fields[12])
        return (utime + stime) / os.sysconf("SC_CLK_TCK")

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, grace_s: float = 5.0) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        if self._log is not None:
            self._log.close()


def start(
    name: str,
    cmd: Sequence[str],
    *,
    cpus: set[int] | None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    log_path: Path | None = None,
) -> Child:
    """Start ``cmd`` pinned to ``cpus`` (all CPUs when None); output goes to ``log_path``."""
    log = log_path.open("wb") if log_path is not None else None
    out = log if log is not None else subprocess.DEVNULL
    started = time.perf_counter()
    popen = subprocess.Popen(
        list(cmd),
        env=dict(env) if env is not None else None,
        cwd=cwd,
        stdout=out,
        stderr=out,
        preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None,
    )
    return Child(name, popen, cpus, started, log_path, log)


def wait_http(child: Child, url: str, *, timeout_s: float = 30.0) -> float:
    """Poll ``url`` until it answers 200; return seconds since the child started."""
    deadline = time.perf_counter() + timeout_s
    while time.perf_counter() < deadline:
        if not child.alive():
            raise RuntimeError(f"{child.name} exited with {child.popen.returncode}{_tail(child)}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return time.perf_counter() - child.started_at
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.01)
    raise RuntimeError(f"{child.name} not ready at {url} after {timeout_s}s{_tail(child)}")


def wait_port(child: Child, port: int, *, timeout_s: float = 30.0) -> float:
    """Wait until ``port`` accepts TCP connections; return seconds since start."""
    deadline = time.perf_counter() + timeout_s
    while time.perf_counter() < deadline:
        if not child.alive():
            raise RuntimeError(f"{child.name} exited with {child.popen.returncode}{_tail(child)}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return time.perf_counter() - child.started_at
        except OSError:
            time.sleep(0.01)
    raise RuntimeError(f"{child.name} not listening on {port} after {timeout_s}s{_tail(child)}")


def _tail(child: Child) -> str:
    if child.log_path is None or not child.log_path.exists():
        return ""
    text = child.log_path.read_text(errors="replace")[-2000:]
    return f"\n--- last output of {child.name} ---\n{text}"
