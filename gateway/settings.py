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


DEFAULT_KEYS_FILE = Path("gateway-keys.json")


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
    #: request bodies: deepest nesting (the body object is level 1) and longest arrays
    max_json_depth: int = 64
    max_messages: int = 2048
    max_content_parts: int = 1024
    max_tools: int = 128
    max_inputs: int = 2048
    #: connections: the most bytes of a request line and headers
    max_header_bytes: int = 64 * 1024
    #: from a request's first byte to the end of its headers
    header_timeout_s: float = 10.0
    #: a body may take this long plus one second per ``body_min_rate`` bytes
    body_timeout_s: float = 10.0
    body_min_rate: int = 32 * 1024
    #: how long a connection may sit idle between requests (or before its first)
    keepalive_timeout_s: float = 30.0
    #: open client connections per process; more are answered 503 and closed
    max_connections: int = 4096
    #: requests one key may have in flight at once, per replica (0: no limit)
    key_max_in_flight: int = 256
    #: bodies of at least this many bytes are judged in a worker thread, off the event loop
    judge_offloop_bytes: int = 64 * 1024
    #: how long judging one request may take; past it the request is treated as restricted
    judge_budget_ms: float = 1000.0
    #: worker threads that judge large bodies (requests beyond them wait, within the budget)
    judge_threads: int = 1
    demo: bool = False
    #: key that may call admin endpoints (``/gateway/spend``, ``/gateway/keys``, ``/gateway/console``)
    admin_key: str | None = field(default=None, repr=False)
    #: without Redis: the file that holds the API keys' hashes and records
    #: (``gateway keys create`` writes it; the gateway reloads it on change).
    #: From the environment it defaults to ``./gateway-keys.json``; None (a
    #: ``Settings`` built in code, as tests do) keeps keys in memory.
    keys_file: Path | None = None
    #: prices in litellm's cost-map format, over litellm's own map
    prices_file: Path | None = None
    log_level: str = "info"
    #: JSONL file for the decision log (facts and decisions, never values), hash-chained
    decision_log: Path | None = None
    #: key for the decision log's HMAC (written and verified with it); unset: hash chain only
    audit_hmac_key: str | None = field(default=None, repr=False)
    #: the decision log rotates when its file reaches this size
    audit_max_bytes: int = 64 * 1024 * 1024
    #: ... or this age (0: never by age)
    audit_rotate_s: float = 86_400.0
    #: OTLP/HTTP traces endpoint (``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``, or
    #: ``OTEL_EXPORTER_OTLP_ENDPOINT`` + ``/v1/traces``); None: tracing is off
    otel_traces_endpoint: str | None = None
    #: ``OTEL_SERVICE_NAME``
    otel_service_name: str = "llm-gateway"
    #: seconds between checks of the policy files for changes (0 disables)
    reload_interval_s: float = 2.0
    #: seconds between background probes of the targets (reachable, model listed); 0 disables
    probe_interval_s: float = 15.0
    #: how many recent decisions (facts only, no text) the console shows
    console_decisions: int = 100
    #: how long SIGTERM waits for open streams to finish
    drain_timeout_s: float = 30.0
    #: add a redacted excerpt of the prompt to a sample of access-log lines (operators opt in)
    log_redacted_samples: bool = False
    #: the fraction of requests sampled when ``log_redacted_samples`` is on
    log_sample_rate: float = 0.01
    #: how long a stored Response (``store: true``) can be retrieved and followed up
    responses_ttl_s: float = 7 * 86_400.0
    #: the optional NER plug-in for names and places: ``off`` or ``presidio``
    ner: str = "off"
    #: the spaCy pipeline package the NER plug-in loads (None: the first installed)
    ner_model: str | None = None
    #: the NER plug-in's confidence below which a finding is dropped
    ner_min_score: float = 0.5
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
            "GATEWAY_MAX_JSON_DEPTH": ("max_json_depth", int),
            "GATEWAY_MAX_MESSAGES": ("max_messages", int),
            "GATEWAY_MAX_CONTENT_PARTS": ("max_content_parts", int),
            "GATEWAY_MAX_TOOLS": ("max_tools", int),
            "GATEWAY_MAX_INPUTS": ("max_inputs", int),
            "GATEWAY_MAX_HEADER_BYTES": ("max_header_bytes", int),
            "GATEWAY_HEADER_TIMEOUT_S": ("header_timeout_s", float),
            "GATEWAY_BODY_TIMEOUT_S": ("body_timeout_s", float),
            "GATEWAY_BODY_MIN_RATE": ("body_min_rate", int),
            "GATEWAY_KEEPALIVE_TIMEOUT_S": ("keepalive_timeout_s", float),
            "GATEWAY_MAX_CONNECTIONS": ("max_connections", int),
            "GATEWAY_KEY_MAX_IN_FLIGHT": ("key_max_in_flight", int),
            "GATEWAY_JUDGE_OFFLOOP_BYTES": ("judge_offloop_bytes", int),
            "GATEWAY_JUDGE_BUDGET_MS": ("judge_budget_ms", float),
            "GATEWAY_JUDGE_THREADS": ("judge_threads", int),
            "GATEWAY_DEMO": ("demo", _bool),
            "GATEWAY_ADMIN_KEY": ("admin_key", str),
            "GATEWAY_KEYS_FILE": ("keys_file", Path),
            "GATEWAY_PRICES_FILE": ("prices_file", Path),
            "GATEWAY_LOG_LEVEL": ("log_level", str),
            "GATEWAY_DECISION_LOG": ("decision_log", Path),
            "GATEWAY_AUDIT_HMAC_KEY": ("audit_hmac_key", str),
            "GATEWAY_AUDIT_MAX_BYTES": ("audit_max_bytes", int),
            "GATEWAY_AUDIT_ROTATE_S": ("audit_rotate_s", float),
            "OTEL_SERVICE_NAME": ("otel_service_name", str),
            "GATEWAY_RELOAD_INTERVAL_S": ("reload_interval_s", float),
            "GATEWAY_DRAIN_TIMEOUT_S": ("drain_timeout_s", float),
            "GATEWAY_PROBE_INTERVAL_S": ("probe_interval_s", float),
            "GATEWAY_CONSOLE_DECISIONS": ("console_decisions", int),
            "GATEWAY_LOG_REDACTED_SAMPLES": ("log_redacted_samples", _bool),
            "GATEWAY_LOG_SAMPLE_RATE": ("log_sample_rate", float),
            "GATEWAY_RESPONSES_TTL_S": ("responses_ttl_s", float),
            "GATEWAY_NER": ("ner", _ner_mode),
            "GATEWAY_NER_MODEL": ("ner_model", str),
            "GATEWAY_NER_MIN_SCORE": ("ner_min_score", float),
        }
        for var, (name, parse) in readers.items():
            raw = env.get(var)
            if raw is None or raw == "":
                continue
            try:
                values[name] = parse(raw)
            except ValueError as exc:
                raise SystemExit(f"{var}={raw!r} is not valid: {exc}") from None
        endpoint = _otel_traces_endpoint(env)
        if endpoint is not None:
            values["otel_traces_endpoint"] = endpoint
        values.setdefault("keys_file", DEFAULT_KEYS_FILE)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def with_overrides(self, **overrides: Any) -> Settings:
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


def _ner_mode(value: str) -> str:
    mode = value.strip().lower()
    if mode not in ("off", "presidio"):
        raise ValueError("use off or presidio")
    return mode


def _otel_traces_endpoint(env: Mapping[str, str]) -> str | None:
    """Where traces go, by OpenTelemetry's own variables: off unless an OTLP
    endpoint is named, and off when ``OTEL_SDK_DISABLED`` is true or
    ``OTEL_TRACES_EXPORTER`` is ``none``. Only OTLP over HTTP (protobuf) is spoken."""
    if _bool(env.get("OTEL_SDK_DISABLED", "")) or env.get("OTEL_TRACES_EXPORTER") == "none":
        return None
    traces = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    if traces:
        return traces
    base = env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if base:
        return base.rstrip("/") + "/v1/traces"
    return None


def prepare_litellm_import() -> None:
    """Before litellm is imported: keep it from fetching its model cost map
    over the network at import time (it uses the copy it ships instead).

    The project's only write to the environment; an operator's own value wins."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
