"""The shared-state rows of ``bench/run.py``: the response cache and limits.

* cache — at concurrency 1, the same ``temperature: 0`` request repeated
  (``x-gateway-cache: hit``, checked first) against the ordinary request
  (``bypass``, goes upstream);
* limits — with Redis, two API keys created with ``gateway keys create`` in a
  fresh database: ``limited`` (rpm, tpm and a monthly team budget, all too high
  to refuse anything) and ``plain`` (no limits, no budget). The same uncached
  request at concurrency 1, alternately, cell by cell: the p50 difference is
  what rate limiting, the budget check and reservation, and spend accounting
  add to a request (the key lookup is the same for both).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

from procs import Child

if TYPE_CHECKING:
    from run import Bench

LIMITED = ["--rpm", "100000000", "--tpm", "100000000000", "--budget-usd", "100000000"]


def probe(url: str, payload: bytes, headers: dict[str, str] | None = None) -> dict[str, str]:
    """One request; its status must be 200. Returns the response headers."""
    request = urllib.request.Request(
        url + "/v1/chat/completions",
        data=payload,
        headers={"content-type": "application/json", **(headers or {})},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()
        if response.status != 200:
            raise RuntimeError(f"{url} answered {response.status}")
        return {k.lower(): v for k, v in response.headers.items()}


def cache_rows(bench: Bench, url: str, hit_body: bytes, plain_body: bytes) -> dict[str, Any]:
    probe(url, hit_body)  # fills the cache (the store happens after the answer)
    time.sleep(0.2)
    cache = probe(url, hit_body).get("x-gateway-cache")
    if cache != "hit":
        raise RuntimeError(
            f"expected a cache hit on the repeated temperature-0 request, got {cache}"
        )
    return {
        "hit": bench.measure(url, hit_body, 1),
        "uncached": bench.measure(url, plain_body, 1),
    }


def create_key(python: str, redis_url: str, team: str, *extra: str) -> str:
    """A new API key from ``gateway keys create`` (the CLI a user runs)."""
    script = Path(python).parent / "gateway"
    cmd = [str(script)] if script.exists() else [python, "-m", "gateway"]
    done = subprocess.run(
        [*cmd, "keys", "create", "--team", team, "--redis-url", redis_url, *extra],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"},
    )
    return done.stdout.strip().splitlines()[-1]


def limits_rows(
    bench: Bench, url: str, server: Child, keys: dict[str, str], payload: bytes, rounds: int
) -> dict[str, Any]:
    auth = {name: {"authorization": f"Bearer {key}"} for name, key in keys.items()}
    for name in keys:
        answer = probe(url, payload, auth[name])
        if name == "limited" and "x-ratelimit-limit-requests" not in answer:
            raise RuntimeError(f"the limited key got no rate-limit headers: {answer}")
    cells: dict[str, list[dict[str, Any]]] = {name: [] for name in keys}
    for _ in range(rounds):
        for name in keys:
            row = bench.measure(url, payload, 1, server=server, headers=auth[name])
            cells[name].append(row)
            print(
                f"limits {name:8} c=1 {row['rps']:7.0f} req/s  p50 {row['p50_ms']:.3f} ms",
                file=sys.stderr,
                flush=True,
            )
    best = {name: min(rows, key=lambda r: r["p50_ms"]) for name, rows in cells.items()}
    return {
        "cells": cells,
        "plain": best["plain"],
        "limited": best["limited"],
        "added_p50_ms": best["limited"]["p50_ms"] - best["plain"]["p50_ms"],
        "added_median_of_rounds_ms": _median(
            [
                lim["p50_ms"] - pl["p50_ms"]
                for lim, pl in zip(cells["limited"], cells["plain"], strict=True)
            ]
        ),
    }


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]
