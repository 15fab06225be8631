"""Fixtures for the observability tests: a policy that exercises every path,
a real local upstream, and a real Prometheus process.

The policy's rules are chosen by a request header (``x-test-action``) or by
what the request carries (sensitive data, a pinned alias), so each test can
drive exactly the path it wants to see in the metrics or the access log.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from tests.harness import upstream_target
from tests.upstream_server import Upstream

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

CLOUD_KEY = "sk-observability-cloud-0123456789abcdef"
ADMIN_KEY = "admin-observability-0123456789"
#: picks a rule in :func:`observed_policy`
ACTION = "x-test-action"


def observed_policy() -> dict[str, Any]:
    """Targets, aliases and rules touching every metric the dashboards read:
    open and proprietary targets, fallback, retry, circuit breaker, cache,
    deny, redaction, a rule limit, restricted data kept on an open target."""

    target = upstream_target

    targets = {
        "open-a": target("echo"),
        "cloud": target(
            "echo",
            kind="proprietary",
            api_key="${CLOUD_KEY}",
            price={"input_per_mtok": 5, "output_per_mtok": 15},
        ),
        "failing": target(
            "status:500", retry={"attempts": 2, "backoff_base_s": 0.01, "backoff_max_s": 0.02}
        ),
        "flaky": target(
            "flaky:1", retry={"attempts": 2, "backoff_base_s": 0.01, "backoff_max_s": 0.02}
        ),
        "breaker": target("status:503", circuit={"failures_to_open": 2, "open_seconds": 600}),
        "drop": target("drop-mid-stream"),
        "embed": target("echo"),
        "refused": target("echo", base_url="http://127.0.0.1:1/v1"),
        # one request at a time, each taking 600 ms; its server's own load from /metrics
        "busy": target(
            "slow-first-byte:600",
            capacity={"max_in_flight": 1, "max_queue": 4, "max_wait_ms": 1500},
            metrics_url="${UPSTREAM_METRICS_URL}",
        ),
    }
    chat = ["chat", "completions"]
    aliases = {
        "auto": {"description": "the rules decide"},
        "cloud": {"targets": ["cloud"], "endpoints": chat},
        "fallback": {"targets": ["failing", "open-a"], "endpoints": chat},
        "flaky": {"targets": ["flaky"], "endpoints": chat},
        "breaker": {"targets": ["breaker", "open-a"], "endpoints": chat},
        "all-fail": {"targets": ["failing", "refused"], "endpoints": chat},
        "drop": {"targets": ["drop"], "endpoints": chat},
        "embed-model": {"targets": ["embed"], "endpoints": ["embeddings"]},
    }
    rules = [
        {
            "name": "deny-on-request",
            "when": {f"header.{ACTION}": "deny"},
            "deny": {"message": "denied for the observability test"},
        },
        {
            # clean requests overflow to the cloud; confidential ones wait, then are refused
            "name": "spill",
            "when": {f"header.{ACTION}": "spill"},
            "route": {"targets": ["busy", "cloud"], "strategy": "spill"},
        },
        {
            "name": "restricted-stays-open",
            "when": {"sensitivity": "restricted"},
            "route": {"targets": ["open-a"]},
        },
        {
            "name": "email-redacted-to-cloud",
            "when": {"sensitivity": "confidential"},
            "redact": {"entities": ["email"], "restore": True},
            "route": {"targets": ["cloud"]},
        },
        {
            "name": "limited",
            "when": {f"header.{ACTION}": "limited"},
            "limits": {"rpm": 2},
            "route": {"targets": ["open-a"]},
        },
        {
            "name": "cached",
            "when": {f"header.{ACTION}": "cache"},
            "cache": {"mode": "auto", "ttl_s": 600},
            "route": {"targets": ["open-a"]},
        },
        {"name": "pinned", "when": {"model": {"ne": "auto"}}, "route": {"alias": True}},
        {"name": "default", "route": {"targets": ["open-a"]}},
    ]
    return {
        "targets": targets,
        "aliases": aliases,
        "sensitivity": {
            "default_level": "public",
            "entities": {"email": "confidential", "us_ssn": "restricted"},
        },
        "defaults": {"cache": {"mode": "never"}, "baseline": "cloud"},
        "rules": rules,
    }


def policy_environ(upstream: Upstream) -> dict[str, str]:
    return {
        "UPSTREAM_URL": upstream.url,
        "UPSTREAM_METRICS_URL": upstream.url.removesuffix("/v1") + "/metrics",
        "CLOUD_KEY": CLOUD_KEY,
    }


def chat(text: str, model: str = "auto", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}], **extra}


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    server = Upstream().start()
    yield server
    server.stop()
