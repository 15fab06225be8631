"""The decision log: one JSON line per request, facts and decision, never prompt text.

Each line holds who asked (key id, team), the request's shape, the
sensitivity level and entity *types* (never values), the task, the decision
(rule, action, targets, costs) and every other fact a policy may decide on, so
that :func:`facts_from_record` rebuilds the :class:`Facts` and
``policy simulate`` can re-decide the request under another policy.

Headers are logged only when their name starts with ``x-`` and does not look
like a credential (``key``, ``token``, ``secret``, ``auth``, ``cookie``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import IO, Any

import orjson

from gateway.levels import Level
from gateway.policy.model import Action, Decision, Facts, Sensitivity

_CREDENTIAL_WORDS = ("key", "token", "secret", "auth", "cookie", "password")


def loggable_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {
        name: value
        for name, value in headers.items()
        if name.startswith("x-") and not any(word in name for word in _CREDENTIAL_WORDS)
    }


def record(
    facts: Facts, decision: Decision, *, request_id: str, ts: float, rule_set: str = "default"
) -> dict[str, Any]:
    """The log line for one request, as a dict."""
    return {
        "ts": ts,
        "request_id": request_id,
        "endpoint": facts.endpoint,
        "alias": facts.alias,
        "team": facts.team,
        "key_id": facts.key_id,
        "rule_set": rule_set,
        "level": facts.sensitivity.level.label,
        "entities": list(facts.sensitivity.entities),
        "entity_levels": {e: lvl.label for e, lvl in facts.entity_levels.items()},
        "declared_level": facts.declared_level.label if facts.declared_level is not None else None,
        "task": facts.task,
        "prompt_tokens": facts.prompt_tokens,
        "max_tokens": facts.max_tokens,
        "stream": facts.stream,
        "tools": facts.has_tools,
        "metadata": dict(facts.metadata),
        "headers": loggable_headers(facts.headers),
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


class DecisionLog:
    """Appends records to a JSONL file; safe to share between threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[bytes] = path.open("ab")
        self._lock = threading.Lock()

    def write(
        self,
        facts: Facts,
        decision: Decision,
        *,
        request_id: str,
        ts: float,
        rule_set: str = "default",
    ) -> None:
        line = (
            orjson.dumps(record(facts, decision, request_id=request_id, ts=ts, rule_set=rule_set))
            + b"\n"
        )
        with self._lock:
            self._file.write(line)
            self._file.flush()

    def close(self) -> None:
        with self._lock:
            self._file.close()

    def __enter__(self) -> DecisionLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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


def facts_from_record(rec: Mapping[str, Any]) -> Facts:
    """Rebuild the facts of a logged request; raises :class:`BadRecord`."""
    try:
        entity_levels = {e: Level.parse(v) for e, v in (rec.get("entity_levels") or {}).items()}
        declared = rec.get("declared_level")
        return Facts(
            endpoint=str(rec["endpoint"]),
            alias=str(rec["alias"]),
            sensitivity=Sensitivity(Level.parse(rec["level"]), tuple(rec.get("entities") or ())),
            task=str(rec["task"]),
            prompt_tokens=int(rec["prompt_tokens"]),
            stream=bool(rec.get("stream", False)),
            has_tools=bool(rec.get("tools", False)),
            max_tokens=rec.get("max_tokens"),
            key_id=rec.get("key_id"),
            team=rec.get("team"),
            metadata=MappingProxyType(dict(rec.get("metadata") or {})),
            headers=MappingProxyType(dict(rec.get("headers") or {})),
            budget_usd=rec.get("budget_usd"),
            budget_remaining_usd=rec.get("budget_remaining_usd"),
            target_latency_ms=MappingProxyType(dict(rec.get("target_latency_ms") or {})),
            draw=float(rec.get("draw", 0.0)),
            entity_levels=MappingProxyType(entity_levels),
            declared_level=Level.parse(declared) if declared else None,
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise BadRecord(f"not a decision record: {exc}") from None


def read_log(path: Path) -> Iterator[LoggedDecision | BadRecord]:
    """Every line of a decision log: a :class:`LoggedDecision`, or a :class:`BadRecord` saying why not."""
    with path.open("rb") as file:
        for number, line in enumerate(file, 1):
            if not line.strip():
                continue
            try:
                rec = orjson.loads(line)
                if not isinstance(rec, dict):
                    raise BadRecord("not a JSON object")
                facts = facts_from_record(rec)
                yield LoggedDecision(
                    facts=facts,
                    rule_set=str(rec.get("rule_set") or "default"),
                    rule=str(rec["rule"]),
                    action=Action(rec["action"]),
                    targets=tuple(rec.get("targets") or ()),
                    level=Level.parse(rec.get("sent_level") or rec["level"]),
                    estimated_cost_usd=MappingProxyType(dict(rec.get("estimated_cost_usd") or {})),
                )
            except (orjson.JSONDecodeError, BadRecord, KeyError, ValueError) as exc:
                yield BadRecord(f"{path}:{number}: {exc}")
