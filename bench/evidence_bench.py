"""What the evidence costs per request, in process: the audit record and the trace.

Run: ``python bench/evidence_bench.py [--rounds N] [--json]``. Medians (and p99)
in microseconds of:

* ``audit``: one decision record written with its outcome through
  :class:`gateway.observability.audit_log.AuditLog` (record built, canonical
  JSON, sha256 chain, flushed to a file in a temporary directory), without and
  with an HMAC key;
* ``trace``: one request's spans as the pipeline makes them —
  ``request_span``, the ``gateway.decide`` and ``gateway.cache`` children, one
  upstream attempt, and the request span's end with its attributes — with
  tracing off (the default: :data:`NO_SPAN`) and on (the OpenTelemetry SDK and
  its batch processor; the exporter here drops the batches, so the figure is
  what a request pays on the event loop, not the protobuf encoding and HTTP
  export, which run in the SDK's own thread).

Not a test: numbers depend on the machine and on its load.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import (  # noqa: E402
    BatchSpanProcessor,
    SpanExporter,
    SpanExportResult,
)

from gateway.observability.audit_log import AuditLog  # noqa: E402
from gateway.observability.record import Exchange  # noqa: E402
from gateway.observability.tracing import Tracer  # noqa: E402
from gateway.policy.decision_log import Outcome  # noqa: E402
from gateway.policy.reload import PolicyHolder  # noqa: E402


class _Drop(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def _summary(fn: Callable[[], object], rounds: int) -> dict[str, float]:
    for _ in range(min(500, rounds)):
        fn()
    samples = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1e6)
    samples.sort()
    return {
        "p50_us": round(statistics.median(samples), 2),
        "p99_us": round(samples[int(0.99 * (len(samples) - 1))], 2),
    }


def _exchange() -> Exchange:
    ex = Exchange("req_0123456789abcdef0123456789abcdef", "chat")
    ex.alias, ex.rule, ex.action = "auto", "open-first-tasks", "route"
    ex.target, ex.kind, ex.attempts = "local", "open", 1
    ex.level, ex.sent_level, ex.task = "confidential", "confidential", "chat"
    ex.prompt_tokens, ex.completion_tokens, ex.cost_usd = 120, 70, 0.0
    return ex


def audit_costs(holder: PolicyHolder, rounds: int) -> dict[str, dict[str, float]]:
    builder, policy = holder.current.facts, holder.current.policy
    body = {
        "model": "auto",
        "messages": [{"role": "user", "content": "Mail bob@example.com the notes " * 20}],
        "metadata": {"ticket": "T-1", "app": "crm"},
    }
    facts = builder.build(
        endpoint="chat", body=body, headers={"x-app": "crm", "x-gateway-task": "chat"}
    )
    decision = policy.decide(facts)
    outcome = Outcome("success", 200, "local", "open", 1, "miss", 0.0, 0.004, 120, 70)
    out: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, key in (("chain", None), ("chain+hmac", b"bench-key")):
            log = AuditLog(Path(tmp) / f"{name}.jsonl", hmac_key=key, max_bytes=1 << 40)

            def write(log: AuditLog = log) -> None:
                log.writer(facts, decision, request_id="req_1", ts=1.0, rule_set="default")(outcome)

            out[f"audit record ({name})"] = _summary(write, rounds)
            log.close()
    return out


def trace_costs(holder: PolicyHolder, rounds: int) -> dict[str, dict[str, float]]:
    target = next(iter(holder.current.policy.targets.values()))
    headers = {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(_Drop(), max_queue_size=1 << 16))
    out: dict[str, dict[str, float]] = {
        "trace (the Exchange alone, subtract)": _summary(_exchange, rounds)
    }
    for name, tracer, hdrs in (
        ("off", Tracer(), {}),
        ("off, client traceparent", Tracer(), headers),
        ("on", Tracer(provider), headers),
    ):

        def one(tracer: Tracer = tracer, hdrs: dict[str, str] = hdrs) -> None:
            ex = _exchange()
            span = tracer.request_span(ex.request_id, "chat", hdrs)
            with span.child("gateway.decide"):
                pass
            with span.child("gateway.cache"):
                pass
            with span.attempt(target, 1):
                pass
            span.end(ex)

        out[f"trace ({name})"] = _summary(one, rounds)
    provider.shutdown()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    holder = PolicyHolder(REPO / "policies", {})
    results: dict[str, Any] = {"load_before": os.getloadavg()[0]}
    results.update(audit_costs(holder, args.rounds))
    results.update(trace_costs(holder, args.rounds))
    results["load_after"] = os.getloadavg()[0]
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"load average before/after: {results['load_before']:.2f} / {results['load_after']:.2f}")
    for name, row in results.items():
        if isinstance(row, dict):
            print(f"  {name:<36} p50 {row['p50_us']:>8.2f} us   p99 {row['p99_us']:>8.2f} us")


if __name__ == "__main__":
    main()
