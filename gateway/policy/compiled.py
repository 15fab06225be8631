"""The compiled policy and its pure ``decide``.

:class:`CompiledPolicy` is immutable once built by :func:`gateway.policy.loader.load_policy`.
:meth:`CompiledPolicy.decide` evaluates one rule set's rules in order (first
match wins) and returns a :class:`Decision` with a trace. It reads nothing but
its arguments and the compiled policy: no I/O, no clock, no randomness
(``weighted`` uses ``facts.draw``).

What does not depend on the request is prepared when the policy is built
(:mod:`gateway.policy.prepared`), and the trace's words are built only when it is
read (:mod:`gateway.policy.trace`).

Sensitivity (invariant 1 in docs/invariants.md): the level of the data that
leaves is the highest level among the entities *not* redacted by the rule, the
declared level, and any part of ``facts.sensitivity.level`` those two do not
explain. A target is eligible only if that level is within its
``max_sensitivity``; when none is, the decision is a DENY naming why (fail
closed).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from gateway.errors import PolicyDenied
from gateway.levels import Level
from gateway.policy.model import (
    Action,
    CacheSpec,
    Decision,
    Facts,
    RedactSpec,
    Sensitivity,
)
from gateway.policy.prepared import Prepared, Step, prepare
from gateway.policy.problems import Problem
from gateway.policy.rules import Rule, RuleSet
from gateway.policy.strategies import order
from gateway.policy.trace import Trace
from gateway.targets import Target

_NOTHING: frozenset[str] = frozenset()

ALL_ENDPOINTS = ("chat", "completions", "embeddings")


@dataclass(frozen=True, slots=True)
class Alias:
    """A model name published on ``/v1/models``; ``targets`` empty means rules decide."""

    name: str
    targets: tuple[str, ...] = ()
    endpoints: tuple[str, ...] = ALL_ENDPOINTS
    description: str | None = None


@dataclass(frozen=True, slots=True)
class Declassify:
    """Who may declare a level *below* the detected one (``x-data-classification``)."""

    teams: frozenset[str] = frozenset()
    keys: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class CompiledPolicy:
    targets: Mapping[str, Target]
    aliases: Mapping[str, Alias]
    rule_sets: Mapping[str, RuleSet]
    entity_levels: Mapping[str, Level]
    custom_entities: Mapping[str, str]
    warnings: tuple[Problem, ...]
    files: tuple[Path, ...]
    fingerprint: str
    teams: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    declassify: Declassify = Declassify()
    default_cache: CacheSpec = CacheSpec()
    default_baseline: str | None = None
    expected_completion_tokens: int = 256
    #: level of a request in which nothing was found
    default_level: Level = Level.PUBLIC
    #: what ``decide`` prepares from the fields above (built in ``__post_init__``)
    _prepared: Prepared = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        aliases = {name: alias.targets for name, alias in self.aliases.items()}
        object.__setattr__(self, "_prepared", prepare(self.rule_sets, self.targets, aliases))

    # --- who uses which rules ---------------------------------------------------

    def rule_set_for(self, team: str | None, key_policy: str | None) -> str:
        """The rule set for a key: its own ``policy``, else its team's, else ``default``.

        A key or team naming a rule set this policy does not define is refused
        (:class:`~gateway.errors.PolicyDenied`) rather than given the default
        rules, which may be laxer.
        """
        if key_policy:
            if key_policy not in self.rule_sets:
                raise PolicyDenied(
                    f"this key's policy '{key_policy}' is not defined by the loaded policy"
                )
            return key_policy
        if team is not None and team in self.teams:
            return self.teams[team]
        return "default"

    # --- sensitivity ------------------------------------------------------------

    def entity_level(self, entity: str) -> Level:
        """The level of an entity type; unknown types count as restricted (fail closed)."""
        return self.entity_levels.get(entity, Level.RESTRICTED)

    def may_declassify(self, team: str | None, key_id: str | None = None) -> bool:
        return (team is not None and team in self.declassify.teams) or (
            key_id is not None and key_id in self.declassify.keys
        )

    def sensitivity(
        self,
        entities: Iterable[str],
        declared: Level | None,
        team: str | None,
        key_id: str | None = None,
    ) -> Sensitivity:
        """The max of the entities' levels and the policy's default level; a declared level
        raises it, and lowers it only for a team or key the policy lets declassify."""
        names = tuple(sorted(set(entities)))
        detected = max((self.entity_level(e) for e in names), default=self.default_level)
        detected = max(detected, self.default_level)
        if declared is None:
            return Sensitivity(detected, names)
        if declared < detected and self.may_declassify(team, key_id):
            return Sensitivity(declared, names)
        return Sensitivity(max(detected, declared), names)

    # --- evaluation -------------------------------------------------------------

    def rules(self) -> list[str]:
        """Every rule name of every rule set (bounded, for metric labels)."""
        names: list[str] = []
        for rule_set in self.rule_sets.values():
            names.extend(r.name for r in rule_set.rules if r.name not in names)
        return names

    def decide(self, facts: Facts, rule_set: str = "default") -> Decision:
        """Evaluate ``rule_set`` on ``facts``: first matching rule wins. Pure.

        The decision's trace is built from the facts when it is first read.
        """
        rules, steps = self._prepared.rule_sets[rule_set]
        routable = self._prepared.routable
        considered = 0
        for step in steps:
            considered += 1
            if step.test(facts) and (not step.use_alias or facts.alias in routable):
                return self._apply(step, facts, Trace(rules, considered, True, facts, routable))
        return Decision(
            rule="<none>",
            action=Action.DENY,
            level=facts.sensitivity.level,
            deny_message=f"no rule of rule set '{rule_set}' matched this request",
            trace=Trace(rules, considered, False, facts, routable),
        )

    def _apply(self, step: Step, facts: Facts, trace: Trace) -> Decision:
        rule = step.rule
        if rule.action is Action.DENY:
            return Decision(
                rule=rule.name,
                action=Action.DENY,
                level=facts.sensitivity.level,
                deny_message=rule.deny_message or f"denied by rule '{rule.name}'",
                trace=trace,
            )
        redact = self._redaction(rule, facts) if rule.redact is not None else None
        level = self.leaving_level(facts, redact.entities if redact is not None else _NOTHING)
        choices = self._prepared.aliases[facts.alias] if step.use_alias else step.choices
        choice = choices[level]
        if not choice.eligible:
            limits = ", ".join(f"{t.name} (max {t.max_sensitivity.label})" for t in choice.named)
            return Decision(
                rule=rule.name,
                action=Action.DENY,
                level=level,
                excluded=choice.excluded,
                deny_message=(
                    f"rule '{rule.name}': no target may receive {level.label} data "
                    f"(its targets: {limits}); refusing rather than sending it"
                ),
                trace=trace,
            )
        completion = (
            facts.max_tokens if facts.max_tokens is not None else self.expected_completion_tokens
        )
        prompt = facts.prompt_tokens
        costs = {t.name: t.prices.cost(prompt, completion) for t in choice.eligible}
        spilled_from = None
        if step.fixed_order or (step.spill and not facts.load):
            targets = choice.ordered
        else:
            targets = tuple(t.name for t in order(rule.strategy, choice.eligible, facts, costs))
            if step.spill and targets[0] != choice.ordered[0]:
                spilled_from = choice.ordered[0]
        worst = {t.name: worst_cost(t, prompt, facts.max_tokens) for t in choice.eligible}
        stepped_down = False
        remaining = facts.budget_remaining_usd
        if rule.step_down and remaining is not None and worst[targets[0]] > remaining:
            covered = sorted((n for n in targets if worst[n] <= remaining), key=worst.__getitem__)
            if covered:
                targets, stepped_down = tuple(covered), True
        return Decision(
            rule=rule.name,
            action=Action.ROUTE,
            targets=targets,
            level=level,
            excluded=choice.excluded,
            redact=redact,
            cache=rule.cache or self.default_cache,
            limits=rule.limits,
            baseline=rule.baseline or self.default_baseline,
            estimated_cost_usd=MappingProxyType(costs),
            reserve_usd=max(worst[n] for n in targets),
            soft_cap=rule.step_down,
            stepped_down=stepped_down,
            trace=trace,
            spill=step.spill,
            spilled_from=spilled_from,
        )

    @staticmethod
    def _redaction(rule: Rule, facts: Facts) -> RedactSpec | None:
        if rule.redact is None:
            return None
        found = frozenset(facts.sensitivity.entities)
        chosen = found if rule.redact.entities is None else found & rule.redact.entities
        return RedactSpec(chosen, rule.redact.restore) if chosen else None

    def leaving_level(self, facts: Facts, redacted: frozenset[str]) -> Level:
        """The level of what is sent once ``redacted`` entity types are replaced."""
        declared = facts.declared_level if facts.declared_level is not None else Level.PUBLIC
        if not facts.sensitivity.entities:
            # nothing found, nothing redacted: what was detected or declared leaves
            return max(declared, self.default_level, facts.sensitivity.level)
        levels = {
            e: facts.entity_levels.get(e, self.entity_level(e)) for e in facts.sensitivity.entities
        }
        explained = max([declared, self.default_level, *levels.values()])
        kept = max(
            [declared, self.default_level, *(lvl for e, lvl in levels.items() if e not in redacted)]
        )
        # a level the entities and the declaration do not explain cannot be redacted away
        if facts.sensitivity.level > explained:
            kept = max(kept, facts.sensitivity.level)
        return kept if redacted else max(kept, facts.sensitivity.level)


#: the output a request without ``max_tokens`` may reach on a target whose
#: limit nobody knows (neither the policy nor litellm's map)
UNKNOWN_OUTPUT_LIMIT = 4096


def worst_cost(target: Target, prompt_tokens: int, max_tokens: int | None) -> float:
    """What one request may cost at most on ``target``: its prompt plus
    ``max_tokens`` of output, or the target's output limit when unset."""
    if not (target.prices.input_per_mtok or target.prices.output_per_mtok):
        return 0.0
    output = max_tokens or target.max_output_tokens or UNKNOWN_OUTPUT_LIMIT
    return target.prices.cost(prompt_tokens, output)
