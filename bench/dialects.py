"""The Responses and Messages endpoints against chat completions and the bare pass-through.

Run: ``python bench/dialects.py [--duration 5] [--connections 1 10]``.

Starts the same processes as ``bench/run.py`` (the local upstream, the bare
pass-through, ``gateway serve`` with the shipped policies) and measures, cell
by cell, streaming and not: the pass-through on ``/v1/chat/completions``, and the
gateway on ``/v1/chat/completions``, ``/v1/responses`` and ``/v1/messages`` (the
same prompt; the two translated endpoints reach the same upstream chat
endpoint), then ``/v1/responses`` forwarded natively (a second gateway with
``OPEN_MODEL_RESPONSES=native``) against the pass-through on the upstream's own
``/v1/responses``. Prints requests/s, p50/p99, each gateway row's share of its
pass-through's throughput and, at concurrency 1, the p50 it adds.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from run import PROMPT, Bench, Plan, body, layout  # noqa: E402


def responses_body(stream: bool) -> bytes:
    data: dict[str, Any] = {"model": "auto", "input": PROMPT}
    if stream:
        data["stream"] = True
    return json.dumps(data).encode()


def messages_body(stream: bool) -> bytes:
    data: dict[str, Any] = {
        "model": "auto",
        "max_tokens": 256,
        "messages": [{"role": "user", "content": PROMPT}],
    }
    if stream:
        data["stream"] = True
    return json.dumps(data).encode()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--connections", type=int, nargs="+", default=[1, 10])
    args = parser.parse_args()
    plan = Plan(
        duration_s=args.duration,
        warmup_s=1.0,
        memory_a=0,
        memory_b=0,
        mode="dialects",
        profile=False,
    )
    with ExitStack() as stack, tempfile.TemporaryDirectory() as logs:
        bench = Bench(plan, layout(), stack, Path(logs))
        upstream = bench.upstream()
        base, base_url, _ = bench.baseline(upstream)
        gw, gw_url, _ = bench.gateway("gateway", upstream)
        native, native_url, _ = bench.gateway(
            "gateway-native", upstream, extra_env={"OPEN_MODEL_RESPONSES": "native"}
        )
        print(
            "| mode | conc. | server | endpoint | req/s | p50 ms | p99 ms "
            "| of pass-through | added p50 ms |"
        )
        print("|---|---:|---|---|---:|---:|---:|---:|---:|")
        for connections in args.connections:
            for stream in (False, True):
                mode = "stream" if stream else "whole"
                cells = (
                    ("baseline", base, base_url, "/v1/chat/completions", body(stream=stream)),
                    ("gateway", gw, gw_url, "/v1/chat/completions", body(stream=stream)),
                    ("gateway", gw, gw_url, "/v1/responses", responses_body(stream)),
                    ("gateway", gw, gw_url, "/v1/messages", messages_body(stream)),
                    ("baseline", base, base_url, "/v1/responses", responses_body(stream)),
                    ("gateway-native", native, native_url, "/v1/responses", responses_body(stream)),
                )
                reference: dict[str, float] = {}
                for server, child, url, path, payload in cells:
                    row = bench.measure(url, payload, connections, server=child, path=path)
                    if server == "baseline":
                        reference = {"rps": row["rps"], "p50": row["p50_ms"]}
                    share = f"{row['rps'] / reference['rps']:.0%}" if reference["rps"] else "-"
                    added = (
                        f"{row['p50_ms'] - reference['p50']:.2f}"
                        if connections == 1 and server != "baseline"
                        else ""
                    )
                    print(
                        f"| {mode} | {connections} | {server} | `{path}` | {row['rps']:,.0f} "
                        f"| {row['p50_ms']:.2f} | {row['p99_ms']:.2f} | {share} | {added} |",
                        flush=True,
                    )
                    if row["errors"]:
                        print(f"  ({row['errors']} errors)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
