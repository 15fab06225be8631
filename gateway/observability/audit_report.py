"""What went where: the decision log summed over a time window.

Sections (the same in every format):

* ``requests``: requests by team and rule;
* ``data``: requests holding each entity kind, with the kind's level, by where
  the data went;
* ``levels``: requests by the level detected, the level sent, and where they went;
* ``spend``: cost, baseline cost and savings by team (from the recorded outcomes);
* ``restricted_to_proprietary``: the requests whose *sent* data was
  ``restricted`` — the level after redaction, or an entity of that level left
  in clear — and that a proprietary target answered. Zero is the proof an
  auditor asks for.

Where data went (``destination``): ``open``; ``proprietary_redacted`` (a
proprietary target answered and this entity kind, or for ``levels`` some kind,
was replaced by placeholders first); ``proprietary_as_judged`` (a proprietary
target answered the data as it was judged: nothing of it needed redacting at
that level); ``denied`` (by a rule, or no target was eligible);
``refused_capacity`` (a bounded queue or spill refused it); ``refused_limits``
(rate limit or budget); ``not_served`` (no target answered: upstream errors,
client errors, cancellations before an answer); ``unknown`` (a record
written before outcomes were recorded).
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from gateway.levels import Level
from gateway.policy.decision_log import BadRecord, read_records

_CAPACITY = frozenset({"capacity", "queue_full", "overloaded"})
_LIMITS = frozenset({"rate_limited", "budget_exceeded"})
_CSV_COLUMNS = (
    "team",
    "rule",
    "entity",
    "level",
    "sent_level",
    "destination",
    "requests",
    "count",
    "cost_usd",
    "baseline_usd",
    "savings_usd",
)


def _served_kind(rec: Mapping[str, Any]) -> str:
    """Where the request went, before telling redacted from as-judged."""
    outcome = rec.get("outcome")
    if rec.get("action") == "deny":
        return "denied"
    if not isinstance(outcome, dict):
        return "unknown"
    result = outcome.get("outcome")
    if result == "denied":
        return "denied"
    if result in _CAPACITY:
        return "refused_capacity"
    if result in _LIMITS:
        return "refused_limits"
    kind = outcome.get("kind")
    if kind in ("open", "proprietary"):
        return str(kind)
    return "not_served"


def destination(rec: Mapping[str, Any], entity: str | None = None) -> str:
    """Where the request's data (or one entity kind of it) went."""
    kind = _served_kind(rec)
    if kind != "proprietary":
        return kind
    redacted = set(rec.get("redacted") or ())
    if entity is not None:
        return "proprietary_redacted" if entity in redacted else "proprietary_as_judged"
    found = set(rec.get("entities") or ())
    return "proprietary_redacted" if found & redacted else "proprietary_as_judged"


def restricted_sent(rec: Mapping[str, Any]) -> bool:
    """Restricted data left in what was sent (after redaction)."""
    if rec.get("sent_level") == Level.RESTRICTED.label:
        return True
    redacted = set(rec.get("redacted") or ())
    levels = rec.get("entity_levels") or {}
    return any(
        level == Level.RESTRICTED.label and entity not in redacted
        for entity, level in levels.items()
    )


@dataclass
class Report:
    since: float | None = None
    until: float | None = None
    team: str | None = None
    total: int = 0
    bad_lines: list[str] = field(default_factory=list)
    by_team_rule: Counter[tuple[str, str]] = field(default_factory=Counter)
    by_entity: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    #: findings (not requests) of each entity kind, by level and destination
    found_by_entity: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    by_level: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    spend: dict[str, dict[str, float]] = field(default_factory=dict)
    restricted_to_proprietary: list[str] = field(default_factory=list)

    def add(self, rec: Mapping[str, Any]) -> None:
        self.total += 1
        team = str(rec.get("team") or "anonymous")
        self.by_team_rule[(team, str(rec.get("rule")))] += 1
        levels = rec.get("entity_levels") or {}
        counts = rec.get("entity_counts")
        counts = counts if isinstance(counts, dict) else {}
        for entity in rec.get("entities") or ():
            level = str(levels.get(entity, rec.get("level")))
            key = (str(entity), level, destination(rec, entity))
            self.by_entity[key] += 1
            # records written before counts were kept: one finding per request
            found = counts.get(entity, 1)
            self.found_by_entity[key] += found if isinstance(found, int) and found > 0 else 1
        where = destination(rec)
        self.by_level[(str(rec.get("level")), str(rec.get("sent_level")), where)] += 1
        outcome = rec.get("outcome")
        if isinstance(outcome, dict):
            row = self.spend.setdefault(
                team, {"cost_usd": 0.0, "baseline_usd": 0.0, "savings_usd": 0.0}
            )
            cost = float(outcome.get("cost_usd") or 0.0)
            baseline = float(outcome.get("baseline_usd") or cost)
            row["cost_usd"] += cost
            row["baseline_usd"] += baseline
            row["savings_usd"] += max(0.0, baseline - cost)
        if where.startswith("proprietary") and restricted_sent(rec):
            self.restricted_to_proprietary.append(str(rec.get("request_id")))

    def sections(self) -> dict[str, list[dict[str, Any]]]:
        return {
            "requests": [
                {"team": team, "rule": rule, "requests": n}
                for (team, rule), n in sorted(self.by_team_rule.items())
            ],
            "data": [
                {
                    "entity": entity,
                    "level": level,
                    "destination": where,
                    "requests": n,
                    "count": self.found_by_entity[(entity, level, where)],
                }
                for (entity, level, where), n in sorted(self.by_entity.items())
            ],
            "entities": self._entity_totals(),
            "levels": [
                {"level": level, "sent_level": sent, "destination": where, "requests": n}
                for (level, sent, where), n in sorted(self.by_level.items())
            ],
            "spend": [
                {"team": team, **{k: round(v, 8) for k, v in row.items()}}
                for team, row in sorted(self.spend.items())
            ],
            "restricted_to_proprietary": [
                {"requests": len(self.restricted_to_proprietary)},
            ],
        }

    def _entity_totals(self) -> list[dict[str, Any]]:
        """Per entity kind: requests that held it and findings in all."""
        requests: Counter[str] = Counter()
        found: Counter[str] = Counter()
        for (entity, level, where), n in self.by_entity.items():
            requests[entity] += n
            found[entity] += self.found_by_entity[(entity, level, where)]
        return [
            {"entity": entity, "requests": requests[entity], "count": found[entity]}
            for entity in sorted(requests)
        ]

    def to_json(self) -> str:
        out: dict[str, Any] = {
            "window": {"since": self.since, "until": self.until, "team": self.team},
            "total": self.total,
            "unreadable_lines": len(self.bad_lines),
            **self.sections(),
        }
        out["restricted_to_proprietary"] = {
            "requests": len(self.restricted_to_proprietary),
            "request_ids": self.restricted_to_proprietary[:100],
        }
        return orjson.dumps(out, option=orjson.OPT_INDENT_2).decode()

    def to_csv(self) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["section", *_CSV_COLUMNS])
        for name, rows in self.sections().items():
            for row in rows:
                writer.writerow([name, *(row.get(column, "") for column in _CSV_COLUMNS)])
        return buffer.getvalue()

    def to_table(self) -> str:
        lines = [f"requests: {self.total}" + (f" (team {self.team})" if self.team else "")]
        if self.bad_lines:
            lines.append(f"unreadable lines: {len(self.bad_lines)} (first: {self.bad_lines[0]})")
        sections = self.sections()
        lines.append("\nrequests by team and rule:")
        lines.extend(
            f"  {r['requests']:>8}  {r['team']:<20} {r['rule']}" for r in sections["requests"]
        )
        lines.append("\ndata by entity kind, level and destination (requests, findings):")
        lines.extend(
            f"  {r['requests']:>8} {r['count']:>8}  {r['entity']:<20} {r['level']:<13} "
            f"{r['destination']}"
            for r in sections["data"]
        )
        lines.append("\nentity kinds in all (requests, findings):")
        lines.extend(
            f"  {r['requests']:>8} {r['count']:>8}  {r['entity']}" for r in sections["entities"]
        )
        lines.append("\nrequests by level detected, level sent and destination:")
        lines.extend(
            f"  {r['requests']:>8}  {r['level']:<13} {r['sent_level']:<13} {r['destination']}"
            for r in sections["levels"]
        )
        lines.append("\nspend by team (USD):")
        lines.extend(
            f"  {r['team']:<20} cost {r['cost_usd']:.6f}  baseline {r['baseline_usd']:.6f}  "
            f"saved {r['savings_usd']:.6f}"
            for r in sections["spend"]
        )
        count = len(self.restricted_to_proprietary)
        lines.append(
            f"\nrestricted data answered by a proprietary target: {count} request(s)"
            + (f" (first: {', '.join(self.restricted_to_proprietary[:5])})" if count else "")
        )
        return "\n".join(lines)


def build_report(
    paths: Iterable[Path],
    *,
    since: float | None = None,
    until: float | None = None,
    team: str | None = None,
) -> Report:
    """Sum the decision records of ``paths`` with ``since <= ts < until`` (and ``team``)."""
    report = Report(since=since, until=until, team=team)
    for path in paths:
        for _, rec in read_records(path):
            if isinstance(rec, BadRecord):
                report.bad_lines.append(str(rec))
                continue
            ts = rec.get("ts")
            if not isinstance(ts, int | float):
                report.bad_lines.append(f"{path}: a record without ts")
                continue
            if (since is not None and ts < since) or (until is not None and ts >= until):
                continue
            if team is not None and rec.get("team") != team:
                continue
            report.add(rec)
    return report
