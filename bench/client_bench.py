"""The upstream HTTP client alone: aiohttp's (the gateway's former one) against
the gateway's own HTTP/1.1 client (``gateway.upstream.http1``).

Run: ``python bench/client_bench.py [--requests 5000] [--rounds 3] [--concurrency 10]
[--instructions]``.

Both clients POST the same small chat body to ``bench/upstream_server.py`` (its
own process, pinned to another CPU when there are two) from one uvloop event
loop, set up as the provider sets them up (aiohttp: one session, 512-connection
pool, auto-decompression, a ``ClientTimeout``; http1: ``Client(limit=512)`` and
a prepared ``Request``). Each request reads the whole answer: a small JSON
completion, or a 22-event stream to its end.

* By default, in this process: ``--requests`` requests one after the other,
  then the same number with ``--concurrency`` in flight, per client and
  answer kind. Reported per request: this process's CPU time
  (``time.process_time``, what a busy gateway pays) and wall time. Clients
  alternate round by round so that drift in the machine's load hits both; the
  round with the least CPU is shown.
* ``--instructions``: the client's instructions per request under
  ``valgrind --tool=callgrind`` (repeatable on a noisy VM): a worker process
  sends N and then 3N requests at ``--concurrency``; the difference of the
  two totals divided by 2N is the cost of a request, start-up and imports
  cancelled out. Event loop, syscalls' user side and the client: everything
  the process does per request.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import orjson
import uvloop

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(REPO))

from procs import cpu_count, free_port, start, wait_port  # noqa: E402

from gateway.targets import Timeouts  # noqa: E402
from gateway.upstream.http1 import Client, Request  # noqa: E402

BODY = orjson.dumps(
    {"model": "bench-model", "messages": [{"role": "user", "content": "Say hello in one line."}]}
)
STREAM_BODY = orjson.dumps(
    {
        "model": "bench-model",
        "stream": True,
        "messages": [{"role": "user", "content": "Say hello in one line."}],
    }
)
HEADERS = {"content-type": "application/json", "authorization": "Bearer sk-bench"}

Call = Callable[[bool], Awaitable[int]]


async def aiohttp_calls(url: str) -> tuple[Call, Callable[[], Awaitable[None]]]:
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=512, limit_per_host=0, keepalive_timeout=30),
        auto_decompress=True,
        skip_auto_headers=("User-Agent",),
    )
    timeout = aiohttp.ClientTimeout(total=600, sock_connect=5, sock_read=60)

    async def call(stream: bool) -> int:
        headers = {**HEADERS, "x-request-id": "req-1"}
        body = STREAM_BODY if stream else BODY
        async with session.post(url, data=body, headers=headers, timeout=timeout) as response:
            if stream:
                size = 0
                async for chunk in response.content.iter_any():
                    size += len(chunk)
                return size
            return len(await response.read())

    return call, session.close


async def http1_calls(url: str) -> tuple[Call, Callable[[], Awaitable[None]]]:
    client = Client(limit=512)
    request = Request(url, HEADERS.items())
    timeouts = Timeouts(connect=5, first_byte=60, total=600)

    async def call(stream: bool) -> int:
        extra = (("x-request-id", "req-1"),)
        if stream:
            response = await client.stream(request, STREAM_BODY, timeouts, extra)
            try:
                size = 0
                async for chunk in response:
                    size += len(chunk)
                return size
            finally:
                response.close()
        return len((await client.fetch(request, BODY, timeouts, extra)).body)

    return call, client.aclose


async def measure(call: Call, stream: bool, requests: int, concurrency: int) -> tuple[float, float]:
    """(CPU µs, wall µs) per request."""
    remaining = requests

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            if await call(stream) <= 0:
                raise RuntimeError("empty answer")

    for _ in range(min(200, requests)):  # warm: connections open, code paths hot
        await call(stream)
    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return cpu / requests * 1e6, wall / requests * 1e6


async def run(url: str, requests: int, rounds: int, concurrency: int) -> None:
    makers = {"aiohttp": aiohttp_calls, "http1": http1_calls}
    best: dict[tuple[str, str, int], tuple[float, float]] = {}
    for _ in range(rounds):
        for name, make in makers.items():
            call, close = await make(url)
            try:
                for stream in (False, True):
                    for conc in (1, concurrency):
                        figures = await measure(call, stream, requests, conc)
                        key = (name, "stream" if stream else "whole", conc)
                        if key not in best or figures[0] < best[key][0]:
                            best[key] = figures
            finally:
                await close()
    print(f"{requests} requests per cell, best of {rounds} rounds; µs per request")
    print(f"{'answer':8s} {'conc.':>5s} {'aiohttp cpu':>12s} {'http1 cpu':>10s} {'ratio':>6s}"
          f" {'aiohttp wall':>13s} {'http1 wall':>11s}")  # fmt: skip
    for mode in ("whole", "stream"):
        for conc in (1, concurrency):
            a_cpu, a_wall = best[("aiohttp", mode, conc)]
            h_cpu, h_wall = best[("http1", mode, conc)]
            print(
                f"{mode:8s} {conc:5d} {a_cpu:12.0f} {h_cpu:10.0f} {h_cpu / a_cpu:6.0%}"
                f" {a_wall:13.0f} {h_wall:11.0f}"
            )


def worker(client: str, stream: bool, requests: int, port: int, concurrency: int) -> None:
    """One callgrind subject: ``requests`` requests, nothing else measured here."""

    async def go() -> None:
        make = http1_calls if client == "http1" else aiohttp_calls
        call, close = await make(f"http://127.0.0.1:{port}/v1/chat/completions")
        remaining = requests

        async def one_by_one() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                await call(stream)

        try:
            await asyncio.gather(*(one_by_one() for _ in range(concurrency)))
        finally:
            await close()

    uvloop.run(go())


_TOTAL = re.compile(rb"^(?:summary|totals):\s+(\d+)", re.M)


def instructions(
    client: str, stream: bool, requests: int, port: int, concurrency: int, tmp: Path
) -> float:
    totals = []
    for count in (requests, 3 * requests):
        out = tmp / f"{client}-{stream}-{count}.callgrind"
        subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={out}",
                "--dump-instr=no",
                sys.executable,
                __file__,
                "--worker",
                client,
                "stream" if stream else "whole",
                "--requests",
                str(count),
                "--port",
                str(port),
                "--concurrency",
                str(concurrency),
            ],
            check=True,
            capture_output=True,
        )
        found = _TOTAL.search(out.read_bytes())
        if found is None:
            raise RuntimeError(f"no total in {out}")
        totals.append(int(found.group(1)))
    return (totals[1] - totals[0]) / (2 * requests)


def report_instructions(requests: int, port: int, concurrency: int) -> None:
    if not shutil.which("valgrind"):
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    print(f"instructions per request under callgrind, concurrency {concurrency}")
    print(f"{'answer':8s} {'aiohttp':>10s} {'http1':>10s} {'ratio':>6s}")
    with tempfile.TemporaryDirectory(prefix="bench-client-") as name:
        for stream in (False, True):
            figures = [
                instructions(client, stream, requests, port, concurrency, Path(name))
                for client in ("aiohttp", "http1")
            ]
            print(
                f"{'stream' if stream else 'whole':8s} {figures[0] / 1000:9.0f}k"
                f" {figures[1] / 1000:9.0f}k {figures[1] / figures[0]:6.0%}"
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--instructions", action="store_true")
    parser.add_argument("--worker", nargs=2, metavar=("CLIENT", "ANSWER"), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(
            args.worker[0], args.worker[1] == "stream", args.requests, args.port, args.concurrency
        )
        return 0
    port = free_port()
    two = cpu_count() >= 2
    if two:
        os.sched_setaffinity(0, {0})  # inherited by the callgrind workers
    upstream = start(
        "upstream",
        [sys.executable, str(BENCH / "upstream_server.py"), "--port", str(port)],
        cpus={1} if two else None,
    )
    try:
        wait_port(upstream, port)
        if args.instructions:
            report_instructions(min(args.requests, 1000), port, args.concurrency)
            return 0
        uvloop.install()
        asyncio.run(
            run(
                f"http://127.0.0.1:{port}/v1/chat/completions",
                args.requests,
                args.rounds,
                args.concurrency,
            )
        )
    finally:
        upstream.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
