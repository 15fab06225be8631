"""Prometheus metrics: the gateway's own registry, bounded label sets.

Every label value comes from a fixed set: the policy's aliases, rules and
targets, the known teams (capped), or a closed vocabulary (outcomes, reasons,
levels, entities, tasks). Anything else becomes ``other``, so a client sending
unknown models or teams can never create new series.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from gateway.errors import FAILURE_REASONS
from gateway.levels import LEVEL_NAMES
from gateway.observability.series import Counter, Gauge, Histogram

OTHER = "other"
NONE = "none"
MAX_TEAMS = 500

# Sub-millisecond gateway overhead up to minute-long streams in one bucket set.
LATENCY_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
    0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
)  # fmt: skip
OVERHEAD_BUCKETS = (
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5,
)  # fmt: skip

CACHE_RESULTS = frozenset({"hit", "miss", "bypass"})
DESTINATIONS = ("open", "proprietary", "denied", "none")
DECISION_ACTIONS = ("route", "deny", "redact")
LIMIT_SCOPES = ("key", "team", "rule")
LIMIT_KINDS = ("rpm", "tpm", "streams", "budget")
STATE_OPERATIONS = (
    "cache_get",
    "cache_set",
    "keys",
    "teams",
    "limits",
    "ledger",
    "conversations",
    "capacity",
)


class Metrics:
    """All gateway metrics, registered on a registry of their own."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self._aliases: frozenset[str] = frozenset()
        self._rules: frozenset[str] = frozenset()
        self._targets: frozenset[str] = frozenset()
        self._entities: frozenset[str] = frozenset()
        self._tasks: frozenset[str] = frozenset()
        self._teams: set[str] = set()

        self.requests = Counter(
            "gateway_requests_total",
            "Requests answered, by endpoint, alias, rule, target, target kind, outcome and cache result.",
            ["endpoint", "alias", "rule", "target", "kind", "outcome", "cache"],
            registry=r,
        )
        self.request_duration = Histogram(
            "gateway_request_duration_seconds",
            "Total time from request received to response finished (last byte for streams).",
            ["endpoint", "kind"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.ttft = Histogram(
            "gateway_time_to_first_token_seconds",
            "Time from request received to the first streamed chunk sent.",
            ["target", "kind"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.upstream_duration = Histogram(
            "gateway_upstream_duration_seconds",
            "Time spent waiting on the upstream that answered.",
            ["target", "kind"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.overhead = Histogram(
            "gateway_overhead_seconds",
            "The gateway's own time: total minus upstream time.",
            ["endpoint"],
            buckets=OVERHEAD_BUCKETS,
            registry=r,
        )
        self.tokens = Counter(
            "gateway_tokens_total",
            "Tokens counted from upstream usage, by direction (prompt|completion).",
            ["team", "target", "kind", "direction"],
            registry=r,
        )
        self.cost = Counter(
            "gateway_cost_usd_total",
            "Spend in USD from actual usage.",
            ["team", "target", "kind"],
            registry=r,
        )
        self.baseline_cost = Counter(
            "gateway_baseline_cost_usd_total",
            "What the same usage would have cost on the rule's baseline target.",
            ["team"],
            registry=r,
        )
        self.savings = Counter(
            "gateway_savings_usd_total",
            "Baseline cost minus actual cost.",
            ["team"],
            registry=r,
        )
        self.cache = Counter(
            "gateway_cache_requests_total",
            "Cache lookups by result (hit|miss|bypass).",
            ["result"],
            registry=r,
        )
        self.fallbacks = Counter(
            "gateway_fallbacks_total",
            "Moves from a failed target to the next one, by failed target and reason.",
            ["target", "reason"],
            registry=r,
        )
        self.retries = Counter(
            "gateway_retries_total",
            "Retries on the same target, by reason.",
            ["target", "reason"],
            registry=r,
        )
        self.decisions = Counter(
            "gateway_decisions_total",
            "Policy decisions by rule and action (route|deny|redact).",
            ["rule", "action"],
            registry=r,
        )
        self.sensitive_requests = Counter(
            "gateway_sensitive_requests_total",
            "Requests by detected sensitivity level and where they went (open|proprietary|denied|none).",
            ["level", "destination"],
            registry=r,
        )
        self.entities = Counter(
            "gateway_sensitive_entities_total",
            "Detected entities by type (names only, never values).",
            ["entity"],
            registry=r,
        )
        self.redactions = Counter(
            "gateway_redactions_total",
            "Entities replaced by placeholders before a request left, by entity type.",
            ["entity"],
            registry=r,
        )
        self.tasks = Counter(
            "gateway_tasks_total",
            "Requests by task label.",
            ["task"],
            registry=r,
        )
        self.upstream_errors = Counter(
            "gateway_upstream_errors_total",
            "Upstream failures by target and kind of error.",
            ["target", "reason"],
            registry=r,
        )
        self.circuit_state = Gauge(
            "gateway_circuit_state",
            "Circuit breaker state per target: 0 closed, 1 half-open, 2 open.",
            ["target"],
            registry=r,
        )
        self.target_up = Gauge(
            "gateway_target_available",
            "1 when a target is configured, its circuit is not open and its last probe found it up.",
            ["target", "kind", "max_sensitivity"],
            registry=r,
        )
        self.rate_limited = Counter(
            "gateway_rate_limited_total",
            "Requests refused by a gateway limit, by scope (key|team) and limit (rpm|tpm|streams|budget).",
            ["scope", "limit"],
            registry=r,
        )
        self.budget_remaining = Gauge(
            "gateway_budget_remaining_usd",
            "Remaining budget per team in the current period.",
            ["team"],
            registry=r,
        )
        self.budget_limit = Gauge(
            "gateway_budget_limit_usd",
            "Budget per team in the current period.",
            ["team"],
            registry=r,
        )
        self.policy_reloads = Counter(
            "gateway_policy_reloads_total",
            "Policy loads and reloads by result (success|failure).",
            ["result"],
            registry=r,
        )
        self.policy_reload_failing = Gauge(
            "gateway_policy_reload_failing",
            "1 while the policy files on disk are refused (the last reload failed and the last "
            "good policy is in force), 0 once a policy loads.",
            registry=r,
        )
        self.policy_info = Gauge(
            "gateway_policy_loaded_timestamp_seconds",
            "When the policy in force was loaded.",
            registry=r,
        )
        self.active_streams = Gauge(
            "gateway_active_streams",
            "Streams open to clients now.",
            registry=r,
        )
        self.state_errors = Counter(
            "gateway_state_errors_total",
            "Failed shared-state (Redis) operations by operation.",
            ["operation"],
            registry=r,
        )
        self.state_up = Gauge(
            "gateway_state_backend_up",
            "1 when the shared-state backend (Redis, or memory) answers.",
            ["backend"],
            registry=r,
        )
        # -- live capacity (targets with a declared capacity or a metrics_url) --
        self.spills = Counter(
            "gateway_spills_total",
            "Requests passed over a target at capacity and served by a later one, by both targets.",
            ["from_target", "to_target"],
            registry=r,
        )
        self.capacity_refusals = Counter(
            "gateway_capacity_refusals_total",
            "Requests refused with 429 because every target they may go to was at capacity "
            "(queue full or wait over), by the level of their data.",
            ["level"],
            registry=r,
        )
        self.target_in_flight = Gauge(
            "gateway_target_in_flight",
            "Requests in flight to a target with a declared capacity, at this replica.",
            ["target"],
            registry=r,
        )
        self.target_max_in_flight = Gauge(
            "gateway_target_max_in_flight",
            "A target's declared per-replica max_in_flight (0: none declared).",
            ["target"],
            registry=r,
        )
        self.target_utilisation = Gauge(
            "gateway_target_utilisation",
            "Highest known fraction of a target's capacity in use (in flight / max, shared, "
            "KV cache); NaN when unknown.",
            ["target"],
            registry=r,
        )
        self.queue_depth = Gauge(
            "gateway_target_queue_depth",
            "Requests waiting for a slot at a target at capacity, at this replica.",
            ["target"],
            registry=r,
        )
        self.queue_wait = Histogram(
            "gateway_target_queue_wait_seconds",
            "How long requests waited for a slot at a target with a capacity (0 when none was needed).",
            ["target"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.server_requests = Gauge(
            "gateway_target_server_requests",
            "Requests the target's server reports in its own /metrics (running|waiting); NaN when unknown.",
            ["target", "state"],
            registry=r,
        )

    def policy_loaded(self, *, ok: bool, changed: bool = True) -> None:
        """Record a load or reload attempt: counted when it failed or changed the policy;
        ``gateway_policy_reload_failing`` follows every attempt (files put back as they
        were load nothing new, yet are no longer refused)."""
        if changed or not ok:
            self.policy_reloads.labels("success" if ok else "failure").inc()
        self.policy_reload_failing.set(0 if ok else 1)

    # -- bounded label sets -------------------------------------------------

    def bind_policy(
        self,
        *,
        aliases: Iterable[str],
        rules: Iterable[str],
        targets: Iterable[str],
        entities: Iterable[str],
        tasks: Iterable[str],
    ) -> None:
        """Fix the label sets to the policy in force (called at each load)."""
        self._aliases = frozenset(aliases)
        self._rules = frozenset(rules)
        self._targets = frozenset(targets)
        self._entities = frozenset(entities)
        self._tasks = frozenset(tasks)
        self._zero_known_series()

    def _zero_known_series(self) -> None:
        """Create every known series of the event counters at 0.

        Prometheus cannot see the first event of a series that appears at 1
        (``rate``/``increase`` need two samples): for a rare event such as a
        denial, a leak-shaped request or a circuit opening, that would be the
        whole event. The traffic counters (requests, tokens, cost) start at
        their first event as usual: their label sets are too large to pre-create.
        """
        for level in LEVEL_NAMES:
            for destination in DESTINATIONS:
                self.sensitive_requests.labels(level, destination)
        for entity in self._entities:
            self.entities.labels(entity)
            self.redactions.labels(entity)
        for rule in self._rules:
            for action in DECISION_ACTIONS:
                self.decisions.labels(rule, action)
        for task in self._tasks:
            self.tasks.labels(task)
        for result in CACHE_RESULTS:
            self.cache.labels(result)
        for scope in LIMIT_SCOPES:
            for kind in LIMIT_KINDS:
                self.rate_limited.labels(scope, kind)
        for target in self._targets:
            for reason in FAILURE_REASONS:
                self.fallbacks.labels(target, reason)
                self.retries.labels(target, reason)
                self.upstream_errors.labels(target, reason)
        for result in ("success", "failure"):
            self.policy_reloads.labels(result)
        for operation in STATE_OPERATIONS:
            self.state_errors.labels(operation)
        for level in LEVEL_NAMES:
            self.capacity_refusals.labels(level)

    def alias(self, value: str | None) -> str:
        return _bounded(value, self._aliases)

    def rule(self, value: str | None) -> str:
        return _bounded(value, self._rules)

    def target(self, value: str | None) -> str:
        return _bounded(value, self._targets)

    def entity(self, value: str) -> str:
        return _bounded(value, self._entities)

    def task(self, value: str | None) -> str:
        return _bounded(value, self._tasks)

    def team(self, value: str | None) -> str:
        if not value:
            return NONE
        if value in self._teams:
            return value
        if len(self._teams) < MAX_TEAMS:
            self._teams.add(value)
            return value
        return OTHER

    # -- exposition ---------------------------------------------------------

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def _bounded(value: str | None, allowed: frozenset[str]) -> str:
    if not value:
        return NONE
    return value if value in allowed else OTHER
