"""The decision record: one JSON object per request, facts and decisions, never values.

A record holds who asked (key id, team), the request's shape, the sensitivity
level and entity *kinds* (never the values found), the task, the decision
(rule, action, targets, estimated costs), every other fact a policy may decide
on, and — once the request has finished — its outcome (what answered, the
status, the cost and the baseline cost). :func:`facts_from_record` rebuilds
the :class:`Facts` so that ``policy simulate`` can re-decide the request under
another policy.

Privacy by construction: ``metadata`` and headers are recorded by *name*
only (``metadata_names``, ``header_names``), and only headers named ``x-*``
that do not look like credentials. Their values are never written, so a
replayed record sees each named metadata field and header with an empty
value: a rule that compares a metadata or header *value* cannot be replayed
exactly (one that asks whether a name is present can).

Bounded size: at most :data:`MAX_NAMES` names of each kind, each cut to
:data:`MAX_NAME_CHARS` characters (the count of names left out is recorded);
every other field is a number, a level, an entity kind, or a name the policy
itself defines (rule, target, alias, team), so a record stays under a few KB
whatever the request holds.

The chain (``seq``, ``prev``, ``hash``, ``hmac``) and the file's opening and
closing records are added by the writer, :mod:`gateway.observability.audit_log`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import orjson

from gateway.levels import Level
from gateway.policy.model import EMPTY_LOAD, Action, Decision, Facts, Sensitivity
from gateway.targets import TargetLoad

_CREDENTIAL_WORDS = ("key", "token", "secret", "auth", "cookie", "password")
#: names of each kind (metadata, headers) kept per record
MAX_NAMES = 32
#: characters kept of each name
MAX_NAME_CHARS = 64
#: the ``event`` of a decision record (the writer adds ``open`` and ``close``)
DECISION = "decision"


def loggable_header_names(headers: Iterable[str]) -> list[str]:
    """The ``x-*`` header names that do not look like credentials, sorted."""
    return sorted(
        name
        for name in headers
        if name.startswith("x-") and not any(word in name for word in _CREDENTIAL_WORDS)
    )


def _bounded_names(names: Iterable[str]) -> tuple[list[str], int]:
    """At most :data:`MAX_NAMES` names, each at most :data:`MAX_NAME_CHARS`
    characters, and how many were left out."""
    kept: list[str] = []
    left_out = 0
    for name in names:
        if len(kept) < MAX_NAMES:
            kept.append(name[:MAX_NAME_CHARS])
        else:
            left_out += 1
    return kept, left_out


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a request ended, for its record (plain values: no request objects)."""

    #: ``success``, ``denied``, ``rate_limited``, ``upstream_error``, ... (see
    #: :func:`gateway.observability.record.outcome_of`)
    outcome: str
    status: int
    #: the target that answered (None: nothing answered; ``cache`` hits name the
    #: target that answered first)
    target: str | None = None
    #: ``open`` or ``proprietary``: the kind of the target that answered
    kind: str | None = None
    attempts: int = 0
    cache: str = "bypass"
    cost_usd: float | None = None
    baseline_usd: float | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0


def record(
    facts: Facts,
    decision: Decision,
    *,
    request_id: str,
    ts: float,
    rule_set: str = "default",
    outcome: Outcome | None = None,
) -> dict[str, Any]:
    """The record of one request, as a dict (facts, decision, outcome; no values)."""
    metadata_names, metadata_left_out = _bounded_names(sorted(facts.metadata))
    header_names, headers_left_out = _bounded_names(loggable_header_names(facts.headers))
    rec: dict[str, Any] = {
        "event": DECISION,
        "ts": ts,
        "request_id": request_id,
        "endpoint": facts.endpoint,
        "alias": facts.alias[:MAX_NAME_CHARS],
        "team": facts.team,
        "key_id": facts.key_id,
        "rule_set": rule_set,
        "level": facts.sensitivity.level.label,
        "entities": list(facts.sensitivity.entities),
        "entity_counts": dict(facts.sensitivity.counts),
        "entity_levels": {e: lvl.label for e, lvl in facts.entity_levels.items()},
        "declared_level": facts.declared_level.label if facts.declared_level is not None else None,
        "task": facts.task,
        "prompt_tokens": facts.prompt_tokens,
        "max_tokens": facts.max_tokens,
        "stream": facts.stream,
        "tools": facts.has_tools,
        "metadata_names": metadata_names,
        "header_names": header_names,
        "budget_usd": facts.budget_usd,
        "budget_remaining_usd": facts.budget_remaining_usd,
        "target_latency_ms": dict(facts.target_latency_ms),
        "draw": facts.draw,
        "rule": decision.rule,
        "action": decision.action.value,
        "targets": list(decision.targets),
        "sent_level": decision.level.label,
        "excluded": list(decision.excluded),
        "redacted": sorted(decision.redact.entities) if decision.redact is not None else [],
        "estimated_cost_usd": dict(decision.estimated_cost_usd),
    }
    if facts.load:
        # the load facts the decision saw (numbers only), so a replay decides the same
        rec["load"] = {name: load.to_dict() for name, load in facts.load.items()}
    if metadata_left_out or headers_left_out:
        rec["names_left_out"] = {"metadata": metadata_left_out, "headers": headers_left_out}
    if outcome is not None:
        rec["outcome"] = {
            "outcome": outcome.outcome,
            "status": outcome.status,
            "target": outcome.target,
            "kind": outcome.kind,
            "attempts": outcome.attempts,
            "cache": outcome.cache,
            "cost_usd": outcome.cost_usd,
            "baseline_usd": outcome.baseline_usd,
            "prompt_tokens": outcome.prompt_tokens,
            "completion_tokens": outcome.completion_tokens,
        }
    return rec


@dataclass(frozen=True, slots=True)
class LoggedDecision:
    facts: Facts
    rule_set: str
    rule: str
    action: Action
    targets: tuple[str, ...]
    level: Level
    estimated_cost_usd: Mapping[str, float]


class BadRecord(ValueError):
    """A log line that is not a decision record."""


def _names(rec: Mapping[str, Any], names_field: str, legacy_field: str) -> dict[str, str]:
    # a value is never logged: each name replays with an empty value (logs written
    # before names-only records kept values under the legacy field: they are dropped too)
    names = rec.get(names_field)
    if names is None:
        names = list(rec.get(legacy_field) or {})
    return {str(name): "" for name in names}


def facts_from_record(rec: Mapping[str, Any]) -> Facts:
    """Rebuild the facts of a logged request; raises :class:`BadRecord`."""
    try:
        entity_levels = {e: Level.parse(v) for e, v in (rec.get("entity_levels") or {}).items()}
        declared = rec.get("declared_level")
        return Facts(
            endpoint=str(rec["endpoint"]),
            alias=str(rec["alias"]),
            sensitivity=Sensitivity(
                Level.parse(rec["level"]),
                tuple(rec.get("entities") or ()),
                tuple(
                    sorted((str(e), int(n)) for e, n in (rec.get("entity_counts") or {}).items())
                ),
            ),
            task=str(rec["task"]),
            prompt_tokens=int(rec["prompt_tokens"]),
            stream=bool(rec.get("stream", False)),
            has_tools=bool(rec.get("tools", False)),
            max_tokens=rec.get("max_tokens"),
            key_id=rec.get("key_id"),
            team=rec.get("team"),
            metadata=MappingProxyType(_names(rec, "metadata_names", "metadata")),
            headers=MappingProxyType(_names(rec, "header_names", "headers")),
            budget_usd=rec.get("budget_usd"),
            budget_remaining_usd=rec.get("budget_remaining_usd"),
            target_latency_ms=MappingProxyType(dict(rec.get("target_latency_ms") or {})),
            load=load_from_dict(rec.get("load")),
            draw=float(rec.get("draw", 0.0)),
            entity_levels=MappingProxyType(entity_levels),
            declared_level=Level.parse(declared) if declared else None,
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise BadRecord(f"not a decision record: {exc}") from None


_LOAD_INPUTS = (
    "in_flight",
    "max_in_flight",
    "shared_in_flight",
    "shared_max_in_flight",
    "queue_depth",
    "queue_wait_ms",
    "server",
    "server_running",
    "server_waiting",
    "kv_cache_usage",
)


def load_from_dict(raw: Any) -> Mapping[str, TargetLoad]:
    """Load facts from a record or a policy test case: target -> its readings
    (``utilisation`` and ``saturated`` are worked out again from them)."""
    if not raw:
        return EMPTY_LOAD
    if not isinstance(raw, Mapping):
        raise TypeError("load must be a mapping of target -> readings")
    out = {}
    for name, fields in raw.items():
        if not isinstance(fields, Mapping):
            raise TypeError(f"load of {name} must be a mapping of readings")
        unknown = set(fields) - {*_LOAD_INPUTS, "utilisation", "saturated"}
        if unknown:
            raise ValueError(f"unknown load reading(s) {sorted(unknown)} for {name}")
        readings = {k: fields[k] for k in _LOAD_INPUTS if k in fields}
        for key, value in readings.items():
            if value is None or (key == "server" and isinstance(value, str)):
                continue
            if key == "server" or isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"load reading {key} of {name} must be a number, got {value!r}")
            if value < 0:
                raise ValueError(f"load reading {key} of {name} must be >= 0, got {value!r}")
        out[str(name)] = TargetLoad.of(**readings)
    return MappingProxyType(out)


def decision_from_record(rec: Mapping[str, Any]) -> LoggedDecision:
    """The logged decision of a record; raises :class:`BadRecord`."""
    try:
        return LoggedDecision(
            facts=facts_from_record(rec),
            rule_set=str(rec.get("rule_set") or "default"),
            rule=str(rec["rule"]),
            action=Action(rec["action"]),
            targets=tuple(rec.get("targets") or ()),
            level=Level.parse(rec.get("sent_level") or rec["level"]),
            estimated_cost_usd=MappingProxyType(dict(rec.get("estimated_cost_usd") or {})),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise BadRecord(f"not a decision record: {exc}") from None


def read_records(path: Path) -> Iterator[tuple[int, dict[str, Any] | BadRecord]]:
    """Each decision record of a log file with its line number (the writer's
    opening and closing records are skipped), or a :class:`BadRecord`."""
    with path.open("rb") as file:
        for number, line in enumerate(file, 1):
            if not line.strip():
                continue
            try:
                rec = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                yield number, BadRecord(f"{path}:{number}: {exc}")
                continue
            if not isinstance(rec, dict):
                yield number, BadRecord(f"{path}:{number}: not a JSON object")
                continue
            if rec.get("event", DECISION) != DECISION:
                continue
            yield number, rec


def read_log(path: Path) -> Iterator[LoggedDecision | BadRecord]:
    """Every decision of a log: a :class:`LoggedDecision`, or a :class:`BadRecord` saying why not."""
    for number, rec in read_records(path):
        if isinstance(rec, BadRecord):
            yield rec
            continue
        try:
            yield decision_from_record(rec)
        except BadRecord as exc:
            yield BadRecord(f"{path}:{number}: {exc}")
