"""Facts + decide on the shipped policy: median microseconds per request by prompt size.

    python bench/policy_bench.py [--runs N]

Budget: 4 KB <= 250 us median; 64 KB <= 4 ms (linear).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from gateway.judging.build import FactsBuilder
from gateway.judging.prices import PriceBook
from gateway.policy.loader import load_policy

POLICIES = Path(__file__).resolve().parents[1] / "policies"

PARAGRAPH = (
    "The quarterly review covered revenue, churn and the hiring plan for the platform team. "
    "Please summarise the action items, who owns each one, and the deadlines we agreed on; "
    "the previous summary missed the dependency between the billing migration and the audit. "
    "def rebalance(shards, weights):\n    return sorted(shards, key=lambda s: weights[s])\n"
)


def body(size: int) -> dict[str, object]:
    text = (PARAGRAPH * (size // len(PARAGRAPH) + 1))[: size - 40] + " contact: dana@example.org"
    return {
        "model": "auto",
        "messages": [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": text},
        ],
        "max_tokens": 256,
    }


def measure(builder: FactsBuilder, size: int, runs: int) -> float:
    request = body(size)
    headers = {"content-type": "application/json", "x-app": "bench"}
    policy = builder.policy
    for _ in range(20):
        policy.decide(builder.build(endpoint="chat", body=request, headers=headers))
    samples = []
    for _ in range(runs):
        start = time.perf_counter_ns()
        facts = builder.build(endpoint="chat", body=request, headers=headers, team="growth")
        policy.decide(facts, policy.rule_set_for("growth", None))
        samples.append(time.perf_counter_ns() - start)
    return statistics.median(samples) / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=400)
    args = parser.parse_args()
    policy = load_policy(POLICIES, {}, prices=PriceBook.from_litellm())
    builder = FactsBuilder(policy)
    facts = builder.build(endpoint="chat", body=body(4096), headers={})
    start = time.perf_counter_ns()
    for _ in range(10_000):
        policy.decide(facts)
    decide_us = (time.perf_counter_ns() - start) / 10_000 / 1000
    print(f"decide alone (4 KB facts): {decide_us:8.1f} us")
    for kb in (1, 4, 16, 64):
        runs = args.runs if kb <= 16 else max(50, args.runs // 4)
        print(
            f"facts + decide, {kb:>2} KB prompt: {measure(builder, kb * 1024, runs):8.1f} us median"
        )


if __name__ == "__main__":
    main()
