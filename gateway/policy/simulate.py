"""Replay a decision log through a policy: what would change, and what it would cost.

Without a second policy, the logged decisions are compared with ``policy``'s.
With ``against``, ``policy``'s decisions are compared with ``against``'s (the
candidate). Costs are the first target's estimate (what the request would cost
if the first choice answers). The sensitivity invariant (invariant 1 in
docs/invariants.md) is re-checked on every new decision: each target may
receive the level sent, and that level is at least the level of every entity
not redacted and of the declared level.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from gateway.policy.compiled import CompiledPolicy
from gateway.policy.decision_log import BadRecord, LoggedDecision
from gateway.policy.model import Action, Decision, Facts


@dataclass
class SimulationReport:
    total: int = 0
    bad_lines: list[str] = field(default_factory=list)
    rule_counts: Counter[str] = field(default_factory=Counter)
    #: (from, to) -> count, where each side is "rule -> first target" (or "rule: deny")
    changes: Counter[tuple[str, str]] = field(default_factory=Counter)
    cost_before_usd: float = 0.0
    cost_after_usd: float = 0.0
    violations: list[str] = field(default_factory=list)

    @property
    def changed(self) -> int:
        return sum(self.changes.values())

    def render(self) -> str:
        lines = [f"requests replayed: {self.total}"]
        if self.bad_lines:
            lines.append(f"unreadable lines: {len(self.bad_lines)} (first: {self.bad_lines[0]})")
        lines.append("decisions by rule:")
        lines.extend(f"  {count:>8}  {rule}" for rule, count in self.rule_counts.most_common())
        lines.append(f"decisions that change: {self.changed}")
        lines.extend(
            f"  {count:>8}  {old}  =>  {new}" for (old, new), count in self.changes.most_common()
        )
        lines.append(f"estimated cost before: ${self.cost_before_usd:.6f}")
        lines.append(f"estimated cost after:  ${self.cost_after_usd:.6f}")
        if self.violations:
            lines.append(f"SENSITIVITY INVARIANT VIOLATED: {len(self.violations)}")
            lines.extend(f"  {v}" for v in self.violations[:20])
        else:
            lines.append("sensitivity invariant: holds for every decision")
        return "\n".join(lines)


def _summary(rule: str, action: Action, targets: tuple[str, ...]) -> str:
    if action is Action.DENY or not targets:
        return f"{rule}: deny"
    return f"{rule} -> {targets[0]}"


def _first_cost(targets: tuple[str, ...], costs: dict[str, float] | object) -> float:
    if not targets or not isinstance(costs, dict):
        return 0.0
    return float(costs.get(targets[0], 0.0))


def _key_policy(reference: CompiledPolicy, logged: LoggedDecision) -> str | None:
    """The key's own rule set, if the logged one came from the key rather than its team.

    The log names the rule set used, not why: a rule set other than what the
    reference policy's team mapping gives is taken to be the key's own
    ``policy`` (which no policy file can change); otherwise the rule set
    follows each policy's ``teams:`` mapping.
    """
    if logged.rule_set == reference.rule_set_for(logged.facts.team, None):
        return None
    return logged.rule_set


def _decide(
    policy: CompiledPolicy, logged: LoggedDecision, key_policy: str | None
) -> tuple[str, Decision | None]:
    """The decision ``policy`` makes, or ``None`` (a deny) when it lacks the key's rule set."""
    if key_policy is not None and key_policy not in policy.rule_sets:
        return f"rule set '{key_policy}' undefined: deny", None
    rule_set = policy.rule_set_for(logged.facts.team, key_policy)
    return "", policy.decide(logged.facts, rule_set)


def check_invariant(policy: CompiledPolicy, facts: Facts, decision: Decision) -> str | None:
    """``None`` when ``decision`` keeps the sensitivity invariant, else what breaks it."""
    redacted = decision.redact.entities if decision.redact is not None else frozenset()
    floor = policy.leaving_level(facts, frozenset(redacted))
    if decision.level < floor:
        return f"rule {decision.rule}: sends at {decision.level.label}, data is {floor.label}"
    for name in decision.targets:
        target = policy.targets[name]
        if not target.may_receive(decision.level):
            return (
                f"rule {decision.rule}: target {name} (max {target.max_sensitivity.label}) "
                f"given {decision.level.label} data"
            )
    return None


def simulate(
    records: Iterable[LoggedDecision | BadRecord],
    policy: CompiledPolicy,
    against: CompiledPolicy | None = None,
) -> SimulationReport:
    """Replay ``records``; every target counts as available (see :func:`all_available`), so
    the result does not depend on which API keys are set where it runs."""
    report = SimulationReport()
    policy = all_available(policy)
    judge = all_available(against) if against is not None else policy
    for item in records:
        if isinstance(item, BadRecord):
            report.bad_lines.append(str(item))
            continue
        report.total += 1
        facts = item.facts
        key_policy = _key_policy(policy, item)
        if against is None:
            before = _summary(item.rule, item.action, item.targets)
            report.cost_before_usd += _first_cost(item.targets, dict(item.estimated_cost_usd))
        else:
            refused, old = _decide(policy, item, key_policy)
            before = refused
            if old is not None:
                before = _summary(old.rule, old.action, old.targets)
                report.cost_before_usd += _first_cost(old.targets, dict(old.estimated_cost_usd))
        refused, new = _decide(judge, item, key_policy)
        if new is None:
            report.rule_counts[refused] += 1
            if before != refused:
                report.changes[(before, refused)] += 1
            continue
        after = _summary(new.rule, new.action, new.targets)
        report.rule_counts[new.rule] += 1
        report.cost_after_usd += _first_cost(new.targets, dict(new.estimated_cost_usd))
        if before != after:
            report.changes[(before, after)] += 1
        violation = check_invariant(judge, facts, new)
        if violation is not None:
            report.violations.append(violation)
    return report


def all_available(policy: CompiledPolicy) -> CompiledPolicy:
    """``policy`` with no target marked unavailable (for environment-independent results)."""
    targets = {n: replace(t, unavailable_reason=None) for n, t in policy.targets.items()}
    return replace(policy, targets=MappingProxyType(targets))
