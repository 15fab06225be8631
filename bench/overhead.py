"""In-process costs of the gateway's per-request bookkeeping and decision, no network.

Run: ``python bench/overhead.py [--rounds N]``. Prints (and with ``--json``
emits) medians of:

* ``gateway.observability.record.finish`` on a representative finished non-streaming
  exchange — metrics only (access log below INFO), and metrics plus the
  info-level access line written to ``/dev/null`` (formatting and handler
  cost, not disk);
* facts + decide for chat prompts of 1, 4, 16 and 64 KB of ordinary prose,
  through ``PolicyHolder(Path("policies"), {})``: ``.current.facts.build(...)``
  then ``.current.policy.decide(...)``, each timed separately and together.

Not a test: numbers depend on the machine and on its load.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from facts_bench import prose  # noqa: E402

from gateway.judging.build import FactsBuilder  # noqa: E402
from gateway.observability.metrics import Metrics  # noqa: E402
from gateway.observability.record import Exchange, access_log, finish  # noqa: E402
from gateway.policy.compiled import CompiledPolicy  # noqa: E402
from gateway.policy.model import Facts  # noqa: E402
from gateway.policy.reload import PolicyHolder  # noqa: E402


def _samples_us(fn: Callable[[], object], rounds: int) -> list[float]:
    for _ in range(min(200, rounds)):
        fn()
    out = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1e6)
    return out


def _summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_us": statistics.median(ordered),
        "p99_us": ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))],
    }


def _exchange() -> Exchange:
    """A finished non-streaming chat request routed to the open target."""
    ex = Exchange("req_0123456789abcdef0123456789abcdef", "chat")
    ex.alias, ex.rule, ex.action = "auto", "open-first-tasks", "route"
    ex.target, ex.kind, ex.attempts = "local", "open", 1
    ex.level, ex.task, ex.stream = "public", "chat", False
    ex.prompt_tokens, ex.completion_tokens, ex.cost_usd = 12, 7, 0.0
    ex.upstream_s = 0.0004
    return ex


def finish_costs(holder: PolicyHolder, rounds: int) -> dict[str, dict[str, float]]:
    metrics = Metrics()
    policy = holder.current.policy
    metrics.bind_policy(
        aliases=policy.aliases,
        rules=policy.rules(),
        targets=policy.targets,
        entities=holder.current.facts.scanner.entities,
        tasks=("chat",),
    )
    ex = _exchange()
    saved = (access_log.level, access_log.propagate, list(access_log.handlers))
    try:
        access_log.propagate = False
        access_log.handlers.clear()
        access_log.setLevel(logging.WARNING)
        metrics_only = _summary(_samples_us(lambda: finish(ex, metrics), rounds))
        with open(os.devnull, "w") as sink:
            handler = logging.StreamHandler(sink)
            handler.setFormatter(logging.Formatter("%(message)s"))
            access_log.addHandler(handler)
            access_log.setLevel(logging.INFO)
            with_log = _summary(_samples_us(lambda: finish(ex, metrics), rounds))
    finally:
        access_log.setLevel(saved[0])
        access_log.propagate = saved[1]
        access_log.handlers[:] = saved[2]
    return {"metrics_only": metrics_only, "metrics_and_access_log": with_log}


def decide_costs(holder: PolicyHolder, rounds: int) -> list[dict[str, Any]]:
    snapshot = holder.current
    builder, policy = snapshot.facts, snapshot.policy
    rule_set = policy.rule_set_for(None, None)
    headers = {"content-type": "application/json", "authorization": "Bearer sk-bench"}
    rows = []
    for kb in (1, 4, 16, 64):
        body = {
            "model": "auto",
            "messages": [
                {"role": "system", "content": "You are a helpful assistant."},
                {"role": "user", "content": prose(kb * 1024, kb, with_entities=False)},
            ],
        }

        rows.append(_one_size(kb, body, builder, policy, rule_set, headers, max(50, rounds // kb)))
    return rows


def _one_size(
    kb: int,
    body: dict[str, Any],
    builder: FactsBuilder,
    policy: CompiledPolicy,
    rule_set: str,
    headers: dict[str, str],
    rounds: int,
) -> dict[str, Any]:
    def build() -> Facts:
        return builder.build(endpoint="chat", body=body, headers=headers)

    facts = build()

    def decide() -> object:
        return policy.decide(facts, rule_set)

    def both() -> object:
        return policy.decide(build(), rule_set)

    return {
        "kb": kb,
        "facts_p50_us": statistics.median(_samples_us(build, rounds)),
        "decide_p50_us": statistics.median(_samples_us(decide, rounds)),
        "facts_and_decide_p50_us": statistics.median(_samples_us(both, rounds)),
        "task": facts.task,
        "level": facts.sensitivity.level.label,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20_000)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    holder = PolicyHolder(REPO / "policies", {})
    finish_rows = finish_costs(holder, args.rounds)
    decide_rows = decide_costs(holder, args.rounds // 10)
    if args.json:
        print(json.dumps({"finish": finish_rows, "facts_decide": decide_rows}, indent=2))
        return
    print("exchange.finish (one finished non-streaming chat request)")
    for name, row in finish_rows.items():
        print(f"  {name:24} p50 {row['p50_us']:7.1f} µs   p99 {row['p99_us']:7.1f} µs")
    print("facts.build + policy.decide (shipped policies, ordinary prose, no entities)")
    print(f"  {'size':>6} {'facts µs':>10} {'decide µs':>10} {'both µs':>10}  task/level")
    for row in decide_rows:
        print(
            f"  {row['kb']:>4}KB {row['facts_p50_us']:>10.1f} {row['decide_p50_us']:>10.1f}"
            f" {row['facts_and_decide_p50_us']:>10.1f}  {row['task']}/{row['level']}"
        )


if __name__ == "__main__":
    main()
