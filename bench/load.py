"""Closed-loop HTTP load: wrk when installed, else a Python aiohttp generator.

:func:`run_load` drives ``connections`` keep-alive connections, each sending the
next POST as soon as the previous answer is complete, for ``duration_s``
seconds (or, with the Python generator, until ``stop_after`` answers), and returns a :class:`LoadResult`.
Latency is the time to the *complete* answer (for a stream: to the last
byte). The generator runs in its own process, pinned to ``cpus`` when given.

wrk is driven through a generated Lua script (POST body, headers, a JSON
summary line from ``done``). The fallback — ``python bench/load.py --url …``
— is the same closed loop in asyncio + aiohttp; it is slower than wrk, so
at high concurrency it can itself be the bottleneck (the report says which
generator was used).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

_MARK = "LOADRESULT "


@dataclass(frozen=True, slots=True)
class LoadResult:
    generator: str
    connections: int
    requests: int
    duration_s: float
    errors: int
    rps: float
    p50_ms: float
    p99_ms: float
    mean_ms: float

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def generator_name() -> str:
    return "wrk" if shutil.which("wrk") else "python-aiohttp"


def run_load(
    url: str,
    body: bytes,
    *,
    connections: int,
    duration_s: float,
    headers: dict[str, str] | None = None,
    stop_after: int = 0,
    cpus: set[int] | None = None,
) -> LoadResult:
    """Run one closed-loop load cell and return its figures."""
    headers = {"content-type": "application/json", **(headers or {})}
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        # wrk's main thread sleeps the whole duration even after every thread
        # stopped, so counted runs (stop_after) use the Python generator
        if shutil.which("wrk") and not stop_after:
            script = Path(tmp) / "post.lua"
            script.write_text(_lua(body, headers, connections))
            cmd = [
                "wrk",
                "-t1",
                f"-c{connections}",
                f"-d{max(1, round(duration_s))}s",
                "--timeout",
                "30s",
                "-s",
                str(script),
                url,
            ]
        else:
            body_file = Path(tmp) / "body.json"
            body_file.write_bytes(body)
            cmd = [
                sys.executable,
                str(Path(__file__).resolve()),
                "--url",
                url,
                "--body-file",
                str(body_file),
                "--connections",
                str(connections),
                "--duration",
                str(duration_s),
                "--stop-after",
                str(stop_after),
                *[a for k, v in headers.items() for a in ("--header", f"{k}: {v}")],
            ]
        out = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            check=True,
            preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None,
        ).stdout
    line = next((x for x in out.splitlines() if x.startswith(_MARK)), None)
    if line is None:
        raise RuntimeError(f"load generator printed no result:\n{out}")
    return LoadResult(**json.loads(line[len(_MARK) :]))


def _lua(body: bytes, headers: dict[str, str], connections: int) -> str:
    def quote(text: str) -> str:
        return "[==[" + text + "]==]"

    lines = ['wrk.method = "POST"', f"wrk.body = {quote(body.decode())}"]
    lines += [f"wrk.headers[ {quote(k)} ] = {quote(v)}" for k, v in headers.items()]
    lines += [
        "function done(summary, latency, requests)",
        "  local e = summary.errors",
        "  local errors = e.connect + e.read + e.write + e.timeout + e.status",
        "  local secs = summary.duration / 1e6",
        f'  io.write(string.format("{_MARK}{{\\"generator\\":\\"wrk\\",\\"connections\\":%d,'
        '\\"requests\\":%d,\\"duration_s\\":%.4f,\\"errors\\":%d,\\"rps\\":%.2f,'
        '\\"p50_ms\\":%.4f,\\"p99_ms\\":%.4f,\\"mean_ms\\":%.4f}\\n",',
        f"    {connections}, summary.requests, secs, errors, summary.requests / secs,",
        "    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.mean / 1000))",
        "end",
    ]
    return "\n".join(lines) + "\n"


# -- the Python fallback generator (its own process) ---------------------------


async def _python_load(
    url: str,
    body: bytes,
    headers: dict[str, str],
    connections: int,
    duration_s: float,
    stop_after: int,
) -> LoadResult:
    import aiohttp

    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + duration_s
    connector = aiohttp.TCPConnector(limit=connections, limit_per_host=0)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < deadline and not (
                stop_after and len(latencies) >= stop_after
            ):
                started = time.perf_counter()
                try:
                    async with session.post(url, data=body, headers=headers) as response:
                        await response.read()
                        ok = response.status < 400
                except aiohttp.ClientError:
                    ok = False
                latencies.append(time.perf_counter() - started)
                errors += 0 if ok else 1

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.perf_counter() - began
    ordered = sorted(latencies) or [0.0]

    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000

    return LoadResult(
        generator="python-aiohttp",
        connections=connections,
        requests=len(latencies),
        duration_s=elapsed,
        errors=errors,
        rps=len(latencies) / elapsed,
        p50_ms=pct(50),
        p99_ms=pct(99),
        mean_ms=statistics.fmean(ordered) * 1000,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="closed-loop POST load (wrk fallback)")
    parser.add_argument("--url", required=True)
    parser.add_argument("--body-file", required=True)
    parser.add_argument("--connections", type=int, default=1)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--stop-after", type=int, default=0)
    parser.add_argument("--header", action="append", default=[])
    args = parser.parse_args()
    headers = dict(h.split(": ", 1) for h in args.header)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    result = asyncio.run(
        _python_load(
            args.url,
            Path(args.body_file).read_bytes(),
            headers,
            args.connections,
            args.duration,
            args.stop_after,
        )
    )
    print(_MARK + json.dumps(result.to_dict()), flush=True)


if __name__ == "__main__":
    main()
