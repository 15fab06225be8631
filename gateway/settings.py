"""The one place that reads the environment.

Settings come from ``GATEWAY_*`` variables, overridden by command-line flags.
Policy files may also name variables (``${VAR}``); those are read here too and
handed to the policy loader as a mapping, so no other module touches
``os.environ``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any


class FailMode(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


def _bool(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True, slots=True)
class Settings:
    policies: Path = Path("policies")
    host: str = "127.0.0.1"
    port: int = 8080
    redis_url: str | None = None
    #: Redis: how long any one state operation may take before it is given up
    redis_timeout_s: float = 0.05
    #: what limits and budgets do when Redis is down: ``open`` admits, ``closed`` refuses
    limits_fail_mode: FailMode = FailMode.OPEN
    #: seconds of a replica's own traffic it may admit from a local lease of a
    #: rate limit or budget without asking Redis (see gateway.quota.leases); 0: every
    #: request is counted by itself
    limits_lease_s: float = 1.0
    #: with Redis: how long a replica may serve its own copy of a response-cache
    #: entry it recently read or wrote, without asking Redis (never past the
    #: entry's own expiry); 0: every cache read goes to Redis
    cache_near_s: float = 10.0
    max_body_bytes: int = 10 * 1024 * 1024
    #: bodies of at least this many bytes are judged in a worker thread, off the event loop
    judge_offloop_bytes: int = 64 * 1024
    #: how long judging one request may take; past it the request is treated as restricted
    judge_budget_ms: float = 1000.0
    #: worker threads that judge large bodies (requests beyond them wait, within the budget)
    judge_threads: int = 1
    demo: bool = False
    #: key that may call admin endpoints (``/gateway/spend``)
    admin_key: str | None = field(default=None, repr=False)
    log_level: str = "info"
    #: JSONL file for the decision log (facts and decisions, never prompt text)
    decision_log: Path | None = None
    #: seconds between checks of the policy files for changes (0 disables)
    reload_interval_s: float = 2.0
    #: how long SIGTERM waits for open streams to finish
    drain_timeout_s: float = 30.0
    #: add a redacted excerpt of the prompt to a sample of access-log lines (operators opt in)
    log_redacted_samples: bool = False
    #: the fraction of requests sampled when ``log_redacted_samples`` is on
    log_sample_rate: float = 0.01
    #: the environment policies may read with ``${VAR}``
    environ: Mapping[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        env = dict(os.environ if environ is None else environ)
        values: dict[str, Any] = {"environ": env}
        readers: dict[str, tuple[str, Any]] = {
            "GATEWAY_POLICIES": ("policies", Path),
            "GATEWAY_HOST": ("host", str),
            "GATEWAY_PORT": ("port", int),
            "GATEWAY_REDIS_URL": ("redis_url", str),
            "GATEWAY_REDIS_TIMEOUT_S": ("redis_timeout_s", float),
            "GATEWAY_LIMITS_FAIL_MODE": ("limits_fail_mode", FailMode),
            "GATEWAY_LIMITS_LEASE_S": ("limits_lease_s", float),
            "GATEWAY_CACHE_NEAR_S": ("cache_near_s", float),
            "GATEWAY_MAX_BODY_BYTES": ("max_body_bytes", int),
            "GATEWAY_JUDGE_OFFLOOP_BYTES": ("judge_offloop_bytes", int),
            "GATEWAY_JUDGE_BUDGET_MS": ("judge_budget_ms", float),
            "GATEWAY_JUDGE_THREADS": ("judge_threads", int),
            "GATEWAY_DEMO": ("demo", _bool),
            "GATEWAY_ADMIN_KEY": ("admin_key", str),
            "GATEWAY_LOG_LEVEL": ("log_level", str),
            "GATEWAY_DECISION_LOG": ("decision_log", Path),
            "GATEWAY_RELOAD_INTERVAL_S": ("reload_interval_s", float),
            "GATEWAY_DRAIN_TIMEOUT_S": ("drain_timeout_s", float),
            "GATEWAY_LOG_REDACTED_SAMPLES": ("log_redacted_samples", _bool),
            "GATEWAY_LOG_SAMPLE_RATE": ("log_sample_rate", float),
        }
        for var, (name, parse) in readers.items():
            raw = env.get(var)
            if raw is None or raw == "":
                continue
            try:
                values[name] = parse(raw)
            except ValueError as exc:
                raise SystemExit(f"{var}={raw!r} is not valid: {exc}") from None
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def with_overrides(self, **overrides: Any) -> Settings:
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


def prepare_litellm_import() -> None:
    """Before litellm is imported: keep it from fetching its model cost map
    over the network at import time (it uses the copy it ships instead).

    The project's only write to the environment; an operator's own value wins."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
