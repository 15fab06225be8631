"""Local first, spill only what may leave: the shipped policy at twice the open model's capacity.

Run: ``python bench/spill_bench.py [--capacity 8] [--work-ms 400] [--load 2.0]
[--duration 20] [--sensitive 0.2] [--max-wait-ms 2000] [--json]``.

What it starts:

* an **open model** (aiohttp, in this process): room for ``--capacity``
  requests at once, each taking ``--work-ms``; more wait there, as vLLM queues
  them, and its ``/metrics`` exports vLLM's ``vllm:num_requests_running`` /
  ``_waiting`` / ``vllm:kv_cache_usage_perc``. Its capacity is
  ``capacity / work`` requests per second;
* a **proprietary API** speaking OpenAI's wire format (50 ms per answer), which
  records every prompt it receives;
* ``gateway serve`` with the shipped ``policies/``, ``OPEN_MODEL_MAX_IN_FLIGHT``
  set to the open model's capacity, ``OPEN_MODEL_MAX_WAIT_MS`` and
  ``OPEN_MODEL_METRICS_URL``.

Then an open-loop load (arrivals at a fixed rate, whatever the answers do) of
``--load`` times the open model's capacity for ``--duration`` seconds: chat
requests, a ``--sensitive`` share of them carrying an e-mail address
(confidential: the shipped policy keeps it local). Reported:

* **local utilisation**: the open model's mean running requests / capacity,
  sampled every 10 ms from the first saturation to the end of arrivals (target ≥ 90 %);
* **spill engaged**: from the open model's first saturation to the first
  answer spilled to the proprietary API (target ≤ 1 s);
* **queue waits**: the confidential requests' latency, p50 / p99 / max (bounded
  by ``max_wait_ms`` plus one answer), and how many were refused (429);
* **sensitive requests that left**: prompts with the e-mail address the
  proprietary API received (target 0);
* the clean requests kept local and spilled, and their latency.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))

from procs import free_port, start, wait_http  # noqa: E402

EMAIL = "jane.doe@example.com"


class OpenModel:
    """A vLLM-like server: ``capacity`` requests run at once, the rest wait."""

    def __init__(self, capacity: int, work_s: float) -> None:
        self.capacity = capacity
        self.work_s = work_s
        self.running = 0
        self.waiting = 0
        self.served = 0
        self._slots = asyncio.Semaphore(capacity)

    async def chat(self, request: web.Request) -> web.Response:
        await request.read()
        self.waiting += 1
        async with self._slots:
            self.waiting -= 1
            self.running += 1
            try:
                await asyncio.sleep(self.work_s)
            finally:
                self.running -= 1
        self.served += 1
        return web.json_response(_answer("local"))

    async def metrics(self, request: web.Request) -> web.Response:
        labels = 'model_name="bench",engine="0"'
        return web.Response(
            text=(
                f"vllm:num_requests_running{{{labels}}} {float(self.running)}\n"
                f"vllm:num_requests_waiting{{{labels}}} {float(self.waiting)}\n"
                f"vllm:kv_cache_usage_perc{{{labels}}} {self.running / self.capacity}\n"
            ),
            content_type="text/plain",
        )


class Proprietary:
    """OpenAI's wire format, 50 ms per answer; keeps every prompt it received."""

    def __init__(self) -> None:
        self.prompts: list[str] = []

    async def chat(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.prompts.append(json.dumps(body["messages"]))
        await asyncio.sleep(0.05)
        return web.json_response(_answer(body.get("model", "gpt-4o-mini")))


def _answer(model: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "ok"},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 12, "completion_tokens": 1, "total_tokens": 13},
    }


async def _serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}"


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    model = OpenModel(args.capacity, args.work_ms / 1000)
    cloud = Proprietary()
    open_app = web.Application()
    open_app.router.add_post("/v1/chat/completions", model.chat)
    open_app.router.add_get("/metrics", model.metrics)
    cloud_app = web.Application()
    cloud_app.router.add_post("/v1/chat/completions", cloud.chat)
    open_runner, open_url = await _serve(open_app)
    cloud_runner, cloud_url = await _serve(cloud_app)
    port = free_port()
    env = {
        **{
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("GATEWAY_", "OPEN", "ANTHROPIC_"))
        },
        "GATEWAY_PORT": str(port),
        "GATEWAY_POLICIES": str(REPO / "policies"),
        "GATEWAY_LOG_LEVEL": "warning",
        "GATEWAY_RELOAD_INTERVAL_S": "0",
        "GATEWAY_LOAD_INTERVAL_S": "0.5",
        "OPEN_MODEL_BASE_URL": f"{open_url}/v1",
        "OPEN_MODEL_METRICS_URL": f"{open_url}/metrics",
        "OPEN_MODEL_MAX_IN_FLIGHT": str(args.capacity),
        "OPEN_MODEL_MAX_WAIT_MS": str(args.max_wait_ms),
        "OPENAI_BASE_URL": f"{cloud_url}/v1",
        "OPENAI_API_KEY": "sk-bench-0000000000000000",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    }
    gateway = start(
        "gateway", [sys.executable, "-m", "gateway", "serve"], cpus=None, env=env, cwd=REPO
    )
    base = f"http://127.0.0.1:{port}"
    try:
        await asyncio.to_thread(wait_http, gateway, base + "/readyz")
        return await _drive(args, base, model, cloud)
    finally:
        gateway.stop()
        await open_runner.cleanup()
        await cloud_runner.cleanup()


async def _drive(
    args: argparse.Namespace, base: str, model: OpenModel, cloud: Proprietary
) -> dict[str, Any]:
    capacity_rps = args.capacity / (args.work_ms / 1000)
    rate = capacity_rps * args.load
    total = int(rate * args.duration)
    every = max(1, round(1 / args.sensitive)) if args.sensitive > 0 else 0
    results: list[dict[str, Any]] = []
    samples: list[tuple[float, int]] = []
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(base, connector=connector) as session:

        async def one(i: int, sensitive: bool) -> None:
            text = f"reword this for {EMAIL}, item {i}" if sensitive else f"a fun fact, item {i}"
            sent = time.perf_counter()
            async with session.post(
                "/v1/chat/completions",
                json={"model": "auto", "messages": [{"role": "user", "content": text}]},
                headers={"x-gateway-task": "chat"},
            ) as response:
                await response.read()
                results.append(
                    {
                        "sent": sent,
                        "done": time.perf_counter(),
                        "status": response.status,
                        "sensitive": sensitive,
                        "target": response.headers.get("x-gateway-target"),
                        "spill": response.headers.get("x-gateway-spill"),
                    }
                )

        stop = asyncio.Event()

        async def sample() -> None:
            while not stop.is_set():
                samples.append((time.perf_counter(), model.running))
                await asyncio.sleep(0.01)

        sampler = asyncio.create_task(sample())
        started = time.perf_counter()
        tasks = []
        for i in range(total):
            delay = started + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i, bool(every) and i % every == every - 1)))
        arrivals_end = time.perf_counter()
        await asyncio.gather(*tasks)
        stop.set()
        await sampler
    return _report(args, rate, started, arrivals_end, results, samples, cloud)


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _report(
    args: argparse.Namespace,
    rate: float,
    started: float,
    arrivals_end: float,
    results: list[dict[str, Any]],
    samples: list[tuple[float, int]],
    cloud: Proprietary,
) -> dict[str, Any]:
    saturated_at = next((t for t, running in samples if running >= args.capacity), None)
    window = [
        r for t, r in samples if saturated_at is not None and saturated_at <= t <= arrivals_end
    ]
    utilisation = statistics.fmean(window) / args.capacity if window else 0.0
    spilled = [r for r in results if r["spill"]]
    first_spill = min((r["done"] for r in spilled), default=None)
    engage_s = (
        first_spill - saturated_at if first_spill is not None and saturated_at is not None else None
    )
    clean = [r for r in results if not r["sensitive"]]
    sensitive = [r for r in results if r["sensitive"]]
    waits = [(r["done"] - r["sent"]) * 1000 for r in sensitive]
    leaked = sum(EMAIL in prompt for prompt in cloud.prompts)
    figures = {
        "open_model": {
            "capacity": args.capacity,
            "work_ms": args.work_ms,
            "capacity_rps": args.capacity / (args.work_ms / 1000),
        },
        "offered_rps": rate,
        "requests": len(results),
        "duration_s": arrivals_end - started,
        "local_utilisation": utilisation,
        "saturated_after_s": None if saturated_at is None else saturated_at - started,
        "spill_engaged_s": engage_s,
        "clean": {
            "requests": len(clean),
            "kept_local": sum(r["target"] == "local" for r in clean),
            "spilled": sum(bool(r["spill"]) for r in clean),
            "errors": sum(r["status"] != 200 for r in clean),
            "p50_ms": _pct([(r["done"] - r["sent"]) * 1000 for r in clean], 0.5),
            "p99_ms": _pct([(r["done"] - r["sent"]) * 1000 for r in clean], 0.99),
        },
        "sensitive": {
            "requests": len(sensitive),
            "served_local": sum(r["status"] == 200 and r["target"] == "local" for r in sensitive),
            "refused_429": sum(r["status"] == 429 for r in sensitive),
            "other_status": sum(r["status"] not in (200, 429) for r in sensitive),
            "latency_p50_ms": _pct(waits, 0.5),
            "latency_p99_ms": _pct(waits, 0.99),
            "latency_max_ms": max(waits, default=float("nan")),
            "bound_ms": args.max_wait_ms + args.work_ms,
            "left_the_gateway": leaked,
        },
        "proprietary_requests": len(cloud.prompts),
    }
    figures["targets"] = {
        "local_utilisation >= 0.90": utilisation >= 0.90,
        # nothing clean to spill: not applicable
        "spill engaged within 1 s": not clean or (engage_s is not None and engage_s <= 1.0),
        "sensitive waits bounded": figures["sensitive"]["latency_max_ms"]
        <= args.max_wait_ms + args.work_ms + 250,
        "zero sensitive requests left": leaked == 0
        and all(r["target"] in ("local", None) for r in sensitive),
    }
    return figures


def _print(f: dict[str, Any]) -> None:
    m, c, s = f["open_model"], f["clean"], f["sensitive"]
    print(
        f"open model: {m['capacity']} at once x {m['work_ms']:g} ms = {m['capacity_rps']:.0f} req/s;"
        f" offered {f['offered_rps']:.0f} req/s for {f['duration_s']:.1f} s ({f['requests']} requests)"
    )
    print(f"  local utilisation         {f['local_utilisation']:.1%} (from first saturation)")
    print(f"  saturated after           {f['saturated_after_s']:.3f} s")
    engaged = f["spill_engaged_s"]
    print(
        f"  spill engaged             {'never' if engaged is None else f'{engaged:.3f} s'} after saturation"
    )
    print(
        f"  clean: {c['requests']}, kept local {c['kept_local']}, spilled {c['spilled']},"
        f" errors {c['errors']}, p50 {c['p50_ms']:.0f} ms, p99 {c['p99_ms']:.0f} ms"
    )
    print(
        f"  sensitive: {s['requests']}, served locally {s['served_local']}, refused 429 {s['refused_429']},"
        f" other {s['other_status']}; latency p50 {s['latency_p50_ms']:.0f} ms, p99"
        f" {s['latency_p99_ms']:.0f} ms, max {s['latency_max_ms']:.0f} ms (bound {s['bound_ms']:g} ms)"
    )
    print(f"  sensitive requests that reached the proprietary API: {s['left_the_gateway']}")
    for target, ok in f["targets"].items():
        print(f"  [{'ok' if ok else 'MISSED'}] {target}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--capacity", type=int, default=8)
    parser.add_argument("--work-ms", type=float, default=400.0)
    parser.add_argument("--load", type=float, default=2.0, help="offered load / open capacity")
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument(
        "--sensitive", type=float, default=0.2, help="share of confidential requests"
    )
    parser.add_argument("--max-wait-ms", type=float, default=2000.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    figures = asyncio.run(bench(args))
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        _print(figures)
    return 0 if all(figures["targets"].values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
