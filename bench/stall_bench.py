"""Does one client's pathological prompt stall everyone else? ``python bench/stall_bench.py``.

Starts ``bench/upstream_server.py`` and ``gateway serve`` (the shipped
policies, in-memory state, the open model pointed at the upstream), then
measures, for ``--seconds`` each, two phases:

1. quiet: a prober GETs ``/healthz`` every 20 ms and a normal client sends a
   short chat request every 50 ms;
2. flood: the same, while ``--flooders`` other clients post ``--size``-byte
   pathological prompts back to back (repeated credential keywords, one long
   base64 run, digits and spaces, colons, repeated country codes, ``+`` and
   long digit runs: the inputs that were quadratic or backtracked).

It prints p50/p99/max of ``/healthz`` and of the normal client in each
phase, and what the flood got (answers, their level: a prompt whose judging
ran past ``GATEWAY_JUDGE_BUDGET_MS`` is routed as restricted). Target: the
flood phase's ``/healthz`` p99 under 50 ms, and the normal client's p99 close
to the quiet phase's.

``--repo DIR`` runs the gateway of another checkout (its ``.venv``), e.g. the
main branch, for a before/after comparison; ``--env NAME=VALUE`` passes
settings (``GATEWAY_JUDGE_OFFLOOP_BYTES=1000000000`` judges every body on the
event loop). Every process is a child stopped by its pid.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import random
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))

from procs import free_port, start, wait_http, wait_port

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent


def pathological(size: int) -> list[str]:
    """One prompt of each adversarial kind, ``size`` characters each."""
    rng = random.Random(size)

    def rep(unit: str) -> str:
        return unit * (size // len(unit))

    return [
        rep("key"),
        base64.b64encode(rng.randbytes(size * 3 // 4)).decode(),
        rep("1 "),
        rep(":"),
        rep("DE12 "),
        rep("+1" + "1" * 40 + " "),
        rep("password:"),
        rep("-----BEGIN RSA PRIVATE KEY-----\n"),
    ]


def chat(text: str) -> bytes:
    return json.dumps(
        {"model": "auto", "messages": [{"role": "user", "content": text}], "max_tokens": 16}
    ).encode()


class Phase:
    def __init__(self) -> None:
        self.healthz: list[float] = []
        self.normal: list[float] = []
        self.normal_errors = 0
        self.flood: list[float] = []
        self.flood_status: Counter[str] = Counter()


async def prober(session: aiohttp.ClientSession, url: str, phase: Phase, stop: float) -> None:
    while time.perf_counter() < stop:
        started = time.perf_counter()
        async with session.get(url + "/healthz") as response:
            await response.read()
        phase.healthz.append(time.perf_counter() - started)
        await asyncio.sleep(0.02)


async def normal(session: aiohttp.ClientSession, url: str, phase: Phase, stop: float) -> None:
    body = chat("Summarise in one line: the meeting moved to Thursday at ten.")
    headers = {"content-type": "application/json"}
    while time.perf_counter() < stop:
        started = time.perf_counter()
        async with session.post(url + "/v1/chat/completions", data=body, headers=headers) as r:
            await r.read()
            if r.status != 200:
                phase.normal_errors += 1
        phase.normal.append(time.perf_counter() - started)
        await asyncio.sleep(0.05)


async def flooder(
    session: aiohttp.ClientSession, url: str, bodies: list[bytes], phase: Phase, stop: float
) -> None:
    headers = {"content-type": "application/json"}
    i = 0
    while time.perf_counter() < stop:
        body = bodies[i % len(bodies)]
        i += 1
        started = time.perf_counter()
        async with session.post(url + "/v1/chat/completions", data=body, headers=headers) as r:
            await r.read()
            target = r.headers.get("x-gateway-target", "-")
            phase.flood_status[f"{r.status} {target}"] += 1
        phase.flood.append(time.perf_counter() - started)


async def measure(url: str, seconds: float, flooders: int, size: int) -> dict[str, Phase]:
    bodies = [chat(text) for text in pathological(size)]
    timeout = aiohttp.ClientTimeout(total=600)
    phases = {"quiet": Phase(), "flood": Phase()}
    async with contextlib.AsyncExitStack() as stack:
        sessions = [
            await stack.enter_async_context(aiohttp.ClientSession(timeout=timeout))
            for _ in range(2 + flooders)
        ]
        for name, phase in phases.items():
            stop = time.perf_counter() + seconds
            tasks = [prober(sessions[0], url, phase, stop), normal(sessions[1], url, phase, stop)]
            if name == "flood":
                tasks += [
                    flooder(sessions[2 + k], url, bodies[k:] + bodies[:k], phase, stop)
                    for k in range(flooders)
                ]
            await asyncio.gather(*tasks)
    return phases


def figures(samples: list[float]) -> str:
    if not samples:
        return "no samples"
    ms = sorted(s * 1000 for s in samples)
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    return f"p50 {statistics.median(ms):7.1f} ms  p99 {p99:7.1f} ms  max {ms[-1]:7.1f} ms  (n={len(ms)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--flooders", type=int, default=2)
    parser.add_argument("--size", type=int, default=1_000_000, help="characters per flood prompt")
    parser.add_argument("--repo", type=Path, default=REPO, help="the checkout whose gateway runs")
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for the gateway")
    args = parser.parse_args()

    with contextlib.ExitStack() as stack:
        up_port = free_port()
        upstream = start(
            "upstream",
            [sys.executable, str(BENCH / "upstream_server.py"), "--port", str(up_port)],
            cpus=None,
        )
        stack.callback(upstream.stop)
        wait_port(upstream, up_port)
        port = free_port()
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("GATEWAY_", "OPENAI_", "ANTHROPIC_", "OPEN_MODEL_"))
        }
        env.update(
            GATEWAY_PORT=str(port),
            GATEWAY_HOST="127.0.0.1",
            GATEWAY_POLICIES=str(args.repo / "policies"),
            GATEWAY_LOG_LEVEL="warning",
            GATEWAY_MAX_BODY_BYTES=str(max(10 * 1024 * 1024, args.size * 2)),
            OPEN_MODEL_BASE_URL=f"http://127.0.0.1:{up_port}/v1",
            LITELLM_LOCAL_MODEL_COST_MAP="True",
        )
        env.update(dict(item.split("=", 1) for item in args.env))
        gateway = start(
            "gateway",
            [str(args.repo / ".venv" / "bin" / "gateway"), "serve"],
            cpus=None,
            env=env,
            cwd=args.repo,
            log_path=Path(os.environ.get("TMPDIR", "/tmp")) / f"stall-bench-gateway-{port}.log",
        )
        stack.callback(gateway.stop)
        url = f"http://127.0.0.1:{port}"
        wait_http(gateway, url + "/readyz", timeout_s=60)
        load = os.getloadavg()[0]
        phases = asyncio.run(measure(url, args.seconds, args.flooders, args.size))

    print(
        f"gateway of {args.repo}, {args.flooders} flooders x {args.size} chars, "
        f"{args.seconds:.0f} s per phase, load average {load:.1f} -> {os.getloadavg()[0]:.1f}"
    )
    for name, phase in phases.items():
        print(f"[{name}]")
        print(f"  /healthz      {figures(phase.healthz)}")
        print(f"  normal client {figures(phase.normal)}  errors {phase.normal_errors}")
        if phase.flood or phase.flood_status:
            print(f"  flood         {figures(phase.flood)}  {dict(phase.flood_status)}")


if __name__ == "__main__":
    main()
