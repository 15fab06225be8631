"""The gateway benchmark: ``python bench/run.py [--quick]``.

In one go, on this machine, against one fast local upstream:

1. start bench/upstream_server.py, bench/baseline_proxy.py (a bare
   pass-through) and ``gateway serve`` (the shipped policies, in-memory state,
   log level warning), each in its own process, pinned (see ``--help``);
2. measure throughput and p50/p99 latency at concurrency 1, 10 and 50,
   streaming and not, for the baseline and the gateway, cell by cell,
   each after a warm-up;
3. profile the gateway with py-spy at concurrency 10, streaming and not
   (when py-spy is installed);
4. the cost of info-level access logs (a second gateway, logging to a file,
   measured alternately with the first);
5. RSS of a fresh gateway after N and 10·N requests;
6. the response-cache hit path against the uncached path, in memory and with
   a redis-server of its own (when redis-server is installed);
7. write bench/results/latest.md (printed too) and bench/results/latest.json.

Not a test: the figures depend on the machine and on whatever else runs on it
(the load average before and after is recorded).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))

from load import generator_name, run_load  # noqa: E402
from procs import Child, free_port, start, wait_http, wait_port  # noqa: E402
from pyspy import py_spy, start_record, summarise  # noqa: E402
from report import render  # noqa: E402
from state_rows import LIMITED, cache_rows, create_key, limits_rows, probe  # noqa: E402

PROMPT = "Hello! Could you tell me a fun fact about octopuses?"
CONCURRENCY = (1, 10, 50)


def body(*, stream: bool = False, temperature: float | None = None) -> bytes:
    data: dict[str, Any] = {"model": "auto", "messages": [{"role": "user", "content": PROMPT}]}
    if stream:
        data["stream"] = True
    if temperature is not None:
        data["temperature"] = temperature
    return json.dumps(data).encode()


@dataclass(frozen=True)
class Plan:
    duration_s: float
    warmup_s: float
    memory_a: int
    memory_b: int
    mode: str
    profile: bool
    #: the bare pass-through's HTTP client: aiohttp (the baseline the targets name) or http1
    baseline_client: str = "aiohttp"


@dataclass(frozen=True)
class Layout:
    """Which CPUs each process may use."""

    proxy: set[int] | None
    side: set[int] | None

    def describe(self) -> str:
        if self.proxy is None:
            return "none (fewer than 2 CPUs available)"
        return (
            f"proxy under test (gateway or baseline) on CPU {sorted(self.proxy)}; "
            f"upstream, load generator, redis-server and py-spy on CPU {sorted(self.side or set())}"
        )


def layout() -> Layout:
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return Layout(None, None)
    return Layout({cpus[0]}, set(cpus[1:]))


class Bench:
    def __init__(self, plan: Plan, pins: Layout, stack: ExitStack, logs: Path) -> None:
        self.plan = plan
        self.pins = pins
        self.stack = stack
        self.logs = logs
        self.python = sys.executable

    # -- processes ------------------------------------------------------------

    def _own(self, child: Child) -> Child:
        self.stack.callback(child.stop)
        return child

    def upstream(self) -> str:
        port = free_port()
        child = self._own(
            start(
                "upstream",
                [self.python, str(BENCH / "upstream_server.py"), "--port", str(port)],
                cpus=self.pins.side,
                log_path=self.logs / "upstream.log",
            )
        )
        wait_port(child, port)
        return f"http://127.0.0.1:{port}"

    def baseline(self, upstream: str) -> tuple[Child, str, float]:
        port = free_port()
        cmd = [
            self.python,
            str(BENCH / "baseline_proxy.py"),
            "--port",
            str(port),
            "--upstream",
            upstream,
            "--client",
            self.plan.baseline_client,
        ]
        child = self._own(
            start("baseline", cmd, cpus=self.pins.proxy, log_path=self.logs / "baseline.log")
        )
        return child, f"http://127.0.0.1:{port}", wait_port(child, port)

    def gateway(
        self,
        name: str,
        upstream: str,
        *,
        log_level: str = "warning",
        redis_url: str | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> tuple[Child, str, float]:
        port = free_port()
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(
                ("GATEWAY_", "OPENAI_", "ANTHROPIC_", "OPEN_MODEL_", "OPEN_EMBEDDING_")
            )
        }
        env.update(
            GATEWAY_PORT=str(port),
            GATEWAY_HOST="127.0.0.1",
            GATEWAY_POLICIES=str(REPO / "policies"),
            GATEWAY_LOG_LEVEL=log_level,
            OPEN_MODEL_BASE_URL=f"{upstream}/v1",
            LITELLM_LOCAL_MODEL_COST_MAP="True",
        )
        if redis_url:
            env["GATEWAY_REDIS_URL"] = redis_url
        env.update(extra_env or {})
        script = Path(self.python).parent / "gateway"
        cmd = [str(script), "serve"] if script.exists() else [self.python, "-m", "gateway", "serve"]
        child = self._own(
            start(
                name,
                cmd,
                cpus=self.pins.proxy,
                env=env,
                cwd=REPO,
                log_path=self.logs / f"{name}.log",
            )
        )
        url = f"http://127.0.0.1:{port}"
        return child, url, wait_http(child, url + "/readyz")

    def redis(self) -> str | None:
        binary = shutil.which("redis-server")
        if binary is None:
            return None
        port = free_port()
        cmd = [
            binary,
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--bind",
            "127.0.0.1",
        ]
        child = self._own(
            start("redis", cmd, cpus=self.pins.side, log_path=self.logs / "redis.log")
        )
        wait_port(child, port)
        return f"redis://127.0.0.1:{port}/0"

    # -- load -------------------------------------------------------------------

    def measure(
        self,
        url: str,
        payload: bytes,
        connections: int,
        *,
        warmup: bool = True,
        server: Child | None = None,
        headers: dict[str, str] | None = None,
        path: str = "/v1/chat/completions",
    ) -> dict[str, Any]:
        """One cell; with ``server``, also its CPU milliseconds per request."""
        target = url + path
        if warmup:
            run_load(
                target,
                payload,
                connections=connections,
                duration_s=self.plan.warmup_s,
                cpus=self.pins.side,
                headers=headers,
            )
        cpu_before = server.cpu_s() if server is not None else 0.0
        result = run_load(
            target,
            payload,
            connections=connections,
            duration_s=self.plan.duration_s,
            cpus=self.pins.side,
            headers=headers,
        )
        row = result.to_dict()
        if server is not None and result.requests:
            row["cpu_ms_per_request"] = (server.cpu_s() - cpu_before) * 1000 / result.requests
        return row

    def send(self, url: str, connections: int, count: int) -> None:
        run_load(
            url + "/v1/chat/completions",
            body(),
            connections=connections,
            duration_s=600,
            stop_after=count,
            cpus=self.pins.side,
        )


def main() -> int:
    parser = argparse.ArgumentParser(description="gateway vs bare pass-through benchmark")
    parser.add_argument("--quick", action="store_true", help="3 s cells, 2k/20k memory requests")
    parser.add_argument("--duration", type=float, help="seconds per measured cell")
    parser.add_argument("--no-profile", action="store_true", help="skip the py-spy profile")
    parser.add_argument("--out", type=Path, default=BENCH / "results")
    parser.add_argument(
        "--baseline-client",
        choices=("aiohttp", "http1"),
        default="aiohttp",
        help="the pass-through's HTTP client: aiohttp (the targets' baseline) or the gateway's own",
    )
    args = parser.parse_args()
    # SIGTERM unwinds like Ctrl-C, so the ExitStack stops every child process
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    plan = Plan(
        duration_s=args.duration or (3.0 if args.quick else 10.0),
        warmup_s=1.0 if args.quick else 2.0,
        memory_a=2_000 if args.quick else 10_000,
        memory_b=20_000 if args.quick else 100_000,
        mode="quick" if args.quick else "full",
        profile=not args.no_profile,
        baseline_client=args.baseline_client,
    )
    args.out.mkdir(parents=True, exist_ok=True)
    logs = args.out / "logs"
    logs.mkdir(exist_ok=True)
    pins = layout()
    print(f"pinning: {pins.describe()}", flush=True)
    results: dict[str, Any] = {"meta": _meta(plan, pins), "startup": {}, "matrix": []}
    with ExitStack() as stack:
        bench = Bench(plan, pins, stack, logs)
        _run(bench, results, args.out)
    results["meta"]["load_after"] = _loadavg()
    (args.out / "latest.json").write_text(json.dumps(results, indent=2) + "\n")
    markdown = render(results)
    (args.out / "latest.md").write_text(markdown)
    print(markdown)
    return 0


def _run(bench: Bench, results: dict[str, Any], out: Path) -> None:
    plan = bench.plan
    upstream = bench.upstream()
    base, base_url, base_s = bench.baseline(upstream)
    gw, gw_url, gw_s = bench.gateway("gateway", upstream)
    results["startup"].update({"baseline": base_s, "gateway": gw_s})
    print(f"gateway ready in {gw_s:.2f} s; baseline listening in {base_s:.2f} s", flush=True)
    probe(base_url, body())
    headers = probe(gw_url, body())
    probe(gw_url, body(stream=True))
    results["meta"]["rule"] = headers.get("x-gateway-rule")
    results["meta"]["target"] = headers.get("x-gateway-target")
    if headers.get("x-gateway-target") != "local":
        raise RuntimeError(f"the gateway did not route to the open target: {headers}")

    for connections in CONCURRENCY:
        for mode in ("whole", "stream"):
            payload = body(stream=mode == "stream")
            for server, child, url in (("baseline", base, base_url), ("gateway", gw, gw_url)):
                row = {
                    "server": server,
                    "mode": mode,
                    **bench.measure(url, payload, connections, server=child),
                }
                results["matrix"].append(row)
                print(
                    f"{server:8} {mode:6} c={connections:<3} {row['rps']:9.0f} req/s"
                    f"  p50 {row['p50_ms']:.2f} ms  p99 {row['p99_ms']:.2f} ms  errors {row['errors']}"
                    f"  CPU {row.get('cpu_ms_per_request', 0):.3f} ms/req",
                    flush=True,
                )

    results["profile"] = {
        mode: _profile(bench, gw, gw_url, out, mode)
        if plan.profile
        else {"skipped": "--no-profile"}
        for mode in ("whole", "stream")
    }
    # the two log levels are measured cell by cell, alternately, so that a
    # change in the machine's load between them does not pass for logging cost
    info, info_url, info_s = bench.gateway("gateway-info", upstream, log_level="info")
    results["startup"]["gateway-info"] = info_s
    results["logging"] = []
    for connections in CONCURRENCY:
        warning = bench.measure(gw_url, body(), connections, server=gw)
        row = bench.measure(info_url, body(), connections, server=info)
        results["logging"].append({"connections": connections, "warning": warning, "info": row})
        print(
            f"log level c={connections:<3} warning {warning['rps']:7.0f} req/s"
            f"  info {row['rps']:7.0f} req/s",
            flush=True,
        )
    info.stop()
    gw.stop()

    fresh, fresh_url, fresh_s = bench.gateway("gateway-memory", upstream)
    results["startup"]["gateway-memory"] = fresh_s
    results["memory"] = _memory(bench, fresh, fresh_url)
    print(f"memory: {results['memory']}", flush=True)
    results["cache"] = {"memory": cache_rows(bench, fresh_url, body(temperature=0), body())}
    fresh.stop()

    redis_url = bench.redis()
    if redis_url is None:
        results["cache"]["redis"] = {"skipped": "redis-server is not installed"}
        results["limits"] = {"skipped": "redis-server is not installed"}
    else:
        rgw, rgw_url, rgw_s = bench.gateway("gateway-redis", upstream, redis_url=redis_url)
        results["startup"]["gateway-redis"] = rgw_s
        results["cache"]["redis"] = cache_rows(bench, rgw_url, body(temperature=0), body())
        rgw.stop()
        # keys in a database of their own: the gateway above stays in open mode
        keys_url = redis_url.rsplit("/", 1)[0] + "/1"
        keys = {
            "plain": create_key(bench.python, keys_url, "plain"),
            "limited": create_key(bench.python, keys_url, "limited", *LIMITED),
        }
        lgw, lgw_url, _ = bench.gateway("gateway-limits", upstream, redis_url=keys_url)
        rounds = 3 if plan.mode == "quick" else 5
        results["limits"] = limits_rows(bench, lgw_url, lgw, keys, body(), rounds)
        lgw.stop()
        print(f"limits: added p50 {results['limits']['added_p50_ms']:.3f} ms", flush=True)
    print(f"cache: {json.dumps(results['cache'])}", flush=True)


def _profile(bench: Bench, gw: Child, url: str, out: Path, mode: str) -> dict[str, Any]:
    """py-spy samples of the gateway under load at concurrency 10 (figures not in the table)."""
    if py_spy() is None:
        return {"skipped": "py-spy is not installed (pip install py-spy)"}
    raw = out / f"profile-c10-{mode}.txt"
    seconds = bench.plan.duration_s
    recorder = start_record(gw.pid, raw, seconds, cpus=bench.pins.side)
    load = bench.measure(url, body(stream=mode == "stream"), 10, warmup=False)
    _, err = recorder.communicate(timeout=seconds + 60)
    if recorder.returncode != 0 or not raw.exists():
        return {"skipped": f"py-spy failed: {err.decode(errors='replace')[-500:]}"}
    summary = summarise(raw)
    summary["file"] = str(raw)
    summary["load_while_sampling"] = load
    return summary


def _memory(bench: Bench, gw: Child, url: str) -> dict[str, Any]:
    plan = bench.plan
    at_start = gw.rss_mb()
    bench.send(url, 10, plan.memory_a)
    rss_a = gw.rss_mb()
    bench.send(url, 10, plan.memory_b - plan.memory_a)
    rss_b = gw.rss_mb()
    return {
        "rss_start_mb": at_start,
        "requests_a": plan.memory_a,
        "rss_a_mb": rss_a,
        "requests_b": plan.memory_b,
        "rss_b_mb": rss_b,
        "ratio": rss_b / rss_a,
    }


def _meta(plan: Plan, pins: Layout) -> dict[str, Any]:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", "gateway", "policies"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    if commit and dirty:
        # other work in progress in the checkout is part of what was measured
        commit += " + uncommitted changes in gateway/ or policies/"
    return {
        "mode": plan.mode,
        "duration_s": plan.duration_s,
        "warmup_s": plan.warmup_s,
        "concurrency": list(CONCURRENCY),
        "generator": generator_name(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "commit": commit or "unknown",
        "pinning": pins.describe(),
        "baseline_client": plan.baseline_client,
        "load_before": _loadavg(),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


if __name__ == "__main__":
    sys.exit(main())
