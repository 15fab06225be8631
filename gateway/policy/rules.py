"""Rules and rule sets: parsed from ``rules:`` / ``policies:`` and checked at load.

A rule has a unique ``name``, an optional ``when`` (omitted: always) and
exactly one action: ``route`` (a target list with a strategy, or
``alias: true`` for the requested alias's own targets) or ``deny``. ``redact``
goes with ``route`` only. ``cache``, ``limits``, ``baseline`` and
``over_budget`` are optional.

``over_budget: step_down`` makes a route rule a soft cap: a team whose
remaining budget cannot cover the request on the rule's first target is sent
to the cheapest of the rule's eligible targets the remaining budget does
cover (a free open model always qualifies), instead of being refused;
``over_budget: refuse`` (the default) refuses it with 429.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, replace
from pathlib import Path

from gateway.policy.conditions import ConditionParser
from gateway.policy.model import Action, CacheMode, CacheSpec, RuleLimits
from gateway.policy.predicates import Condition
from gateway.policy.problems import suggest
from gateway.policy.read import Reader, describe
from gateway.policy.source import Node
from gateway.policy.strategies import Strategy

RULE_KEYS = (
    "name",
    "description",
    "when",
    "route",
    "deny",
    "redact",
    "cache",
    "limits",
    "baseline",
    "over_budget",
)
OVER_BUDGET = ("refuse", "step_down")
ROUTE_KEYS = ("targets", "alias", "strategy")


@dataclass(frozen=True, slots=True)
class RedactRule:
    #: entity types to replace; ``None`` means every entity found
    entities: frozenset[str] | None
    restore: bool = False


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    when: Condition
    action: Action
    targets: tuple[str, ...] = ()
    #: route to the requested alias's own targets
    use_alias: bool = False
    strategy: Strategy = Strategy.ORDERED
    deny_message: str | None = None
    redact: RedactRule | None = None
    cache: CacheSpec | None = None
    limits: RuleLimits | None = None
    baseline: str | None = None
    #: step down to a cheaper target instead of refusing a team past its budget
    step_down: bool = False
    file: Path | None = None
    line: int | None = None


@dataclass(frozen=True, slots=True)
class RuleSet:
    name: str
    rules: tuple[Rule, ...]


class RuleParser:
    def __init__(
        self,
        reader: Reader,
        conditions: ConditionParser,
        targets: Collection[str],
        entities: Collection[str],
        default_cache: CacheSpec,
    ) -> None:
        self.r = reader
        self.conditions = conditions
        self.targets = targets
        self.entities = entities
        self.default_cache = default_cache

    def rule_set(self, name: str, node: Node) -> RuleSet:
        items = self.r.sequence(node, f"the rules of '{name}'")
        rules: list[Rule] = []
        seen: dict[str, int] = {}
        catch_all: Rule | None = None
        broken_catch_all = False  # a rule without 'when' that failed: already an error
        for item in items or []:
            rule = self.rule(item, f"{name}[{len(rules)}]")
            if rule is None:
                broken_catch_all |= item.is_mapping and "when" not in item.value
                continue
            if rule.name in seen:
                with self.r.in_rule(rule.name):
                    self.r.error(
                        item,
                        f"rule name '{rule.name}' is used twice in '{name}' (first on line {seen[rule.name]})",
                        "give every rule of a rule set its own name",
                    )
                continue
            seen[rule.name] = item.line
            if catch_all is not None:
                with self.r.in_rule(rule.name):
                    self.r.warn(
                        item,
                        f"rule '{rule.name}' can never match: rule '{catch_all.name}' above it matches every request",
                        "move it above the catch-all rule, or remove it",
                    )
            elif rule.when.always and not rule.use_alias:
                catch_all = rule
            rules.append(rule)
        if items is not None and catch_all is None and items and not broken_catch_all:
            self.r.warn(
                node,
                f"rule set '{name}' has no catch-all rule: a request no rule matches is denied",
                "end it with a rule without 'when'",
            )
        return RuleSet(name, tuple(rules))

    def rule(self, node: Node, fallback_name: str) -> Rule | None:
        name_node = node.value.get("name") if node.is_mapping else None
        name = (
            name_node.value if name_node is not None and isinstance(name_node.value, str) else None
        )
        with self.r.in_rule(name or fallback_name):
            return self._rule(node, name)

    def _rule(self, node: Node, name: str | None) -> Rule | None:
        entries = self.r.mapping(node, "a rule", RULE_KEYS, required=("name",))
        if entries is None or name is None:
            if entries is not None and "name" in entries:
                self.r.string(entries["name"], "the rule's name")
            return None
        before = len(self.r.problems)
        actions = [k for k in ("route", "deny") if k in entries]
        if len(actions) != 1:
            if actions:
                self.r.error(
                    node,
                    "a rule has exactly one action, this one has both 'route' and 'deny'",
                    "split it into two rules",
                )
            else:
                self.r.error(
                    node,
                    "a rule needs an action: 'route' or 'deny'",
                    "add route: {targets: [...]} or deny: {message: ...}",
                )
        if "description" in entries:
            self.r.string(entries["description"], "description")
        when = self.conditions.parse(entries.get("when"))
        rule = Rule(
            name=name,
            when=when or Condition("invalid", lambda _f: "invalid", lambda _f: False),
            action=Action.ROUTE,
            file=node.file,
            line=node.line,
        )
        fields: dict[str, object] = {}
        if "route" in entries:
            fields.update(self._route(entries["route"]))
        if "deny" in entries:
            fields["action"] = Action.DENY
            fields["deny_message"] = self._deny(entries["deny"])
            for extra in ("redact", "cache", "limits", "baseline", "over_budget"):
                if extra in entries:
                    self.r.error(
                        entries[extra],
                        f"'{extra}' has no meaning on a deny rule",
                        f"remove '{extra}'",
                    )
        if "redact" in entries and "route" in entries:
            fields["redact"] = self._redact(entries["redact"])
        if "cache" in entries:
            fields["cache"] = self._cache(entries["cache"], self.default_cache)
        if "limits" in entries:
            fields["limits"] = self._limits(entries["limits"])
        if "baseline" in entries:
            fields["baseline"] = self.target_name(entries["baseline"], "baseline")
        if "over_budget" in entries and "route" in entries:
            choice = self.r.choice(entries["over_budget"], "over_budget", list(OVER_BUDGET))
            fields["step_down"] = choice == "step_down"
        if when is None or any(p.severity.value == "error" for p in self.r.problems[before:]):
            return None
        return replace(rule, **fields)  # type: ignore[arg-type]

    def target_name(self, node: Node, what: str) -> str | None:
        value = self.r.string(node, what)
        if value is not None and value not in self.targets:
            self.r.error(
                node,
                f"unknown target '{value}' in {what}",
                f"{suggest(value, self.targets)} (or declare target '{value}' under targets:)",
            )
            return None
        return value

    def _route(self, node: Node) -> dict[str, object]:
        entries = self.r.mapping(node, "route", ROUTE_KEYS)
        if entries is None:
            return {}
        out: dict[str, object] = {}
        has_targets, has_alias = "targets" in entries, "alias" in entries
        if has_targets == has_alias:
            self.r.error(
                node,
                "route needs either 'targets' or 'alias: true'"
                if not has_targets
                else "route has both 'targets' and 'alias'; use one",
                "write route: {targets: [a, b]} or route: {alias: true}",
            )
        if has_alias:
            flag = self.r.boolean(entries["alias"], "route.alias")
            if flag is False:
                self.r.error(
                    entries["alias"],
                    "route.alias: false means nothing",
                    "write alias: true or list targets",
                )
            out["use_alias"] = True
        if has_targets:
            items = self.r.names(entries["targets"], "route.targets")
            if items is not None:
                if not items:
                    self.r.error(
                        entries["targets"], "route.targets is empty", "name at least one target"
                    )
                if len(set(items)) != len(items):
                    self.r.error(
                        entries["targets"],
                        "route.targets names a target twice",
                        "name each target once",
                    )
                for item in items:
                    if item not in self.targets:
                        self.r.error(
                            entries["targets"],
                            f"unknown target '{item}' in route.targets",
                            f"{suggest(item, self.targets)} (or declare target '{item}' under targets:)",
                        )
                out["targets"] = tuple(items)
        if "strategy" in entries:
            value = self.r.choice(
                entries["strategy"], "route.strategy", [s.value for s in Strategy]
            )
            if value is not None:
                out["strategy"] = Strategy(value)
        return out

    def _deny(self, node: Node) -> str | None:
        entries = self.r.mapping(node, "deny", ("message",), required=("message",))
        if entries is None or "message" not in entries:
            return None
        return self.r.string(entries["message"], "deny.message")

    def _redact(self, node: Node) -> RedactRule | None:
        entries = self.r.mapping(node, "redact", ("entities", "restore"), required=("entities",))
        if entries is None or "entities" not in entries:
            return None
        restore = (
            self.r.boolean(entries["restore"], "redact.restore") if "restore" in entries else False
        )
        which = entries["entities"]
        if which.value == "all":
            return RedactRule(None, bool(restore))
        names = self.r.names(which, "redact.entities")
        if names is None:
            return None
        for name in names:
            if name not in self.entities:
                self.r.error(
                    which,
                    f"unknown entity '{name}' in redact.entities",
                    f"{suggest(name, self.entities)} (or write entities: all)",
                )
        return RedactRule(frozenset(names), bool(restore))

    def _cache(self, node: Node, base: CacheSpec) -> CacheSpec | None:
        return read_cache(self.r, node, "cache", base)

    def _limits(self, node: Node) -> RuleLimits | None:
        entries = self.r.mapping(node, "limits", ("rpm", "tpm", "max_streams"))
        if entries is None:
            return None
        values = {k: self.r.integer(v, f"limits.{k}", minimum=1) for k, v in entries.items()}
        return RuleLimits(**values)


def read_cache(reader: Reader, node: Node, what: str, base: CacheSpec) -> CacheSpec | None:
    entries = reader.mapping(node, what, ("mode", "ttl_s", "shared"))
    if entries is None:
        return None
    mode, ttl, shared = base.mode, base.ttl_s, base.shared
    if "mode" in entries:
        value = reader.choice(entries["mode"], f"{what}.mode", [m.value for m in CacheMode])
        mode = CacheMode(value) if value is not None else mode
    if "ttl_s" in entries:
        number = reader.number(
            entries["ttl_s"], f"{what}.ttl_s", minimum=0.0, exclusive_minimum=True
        )
        ttl = number if number is not None else ttl
    if "shared" in entries:
        flag = reader.boolean(entries["shared"], f"{what}.shared")
        shared = flag if flag is not None else shared
    return CacheSpec(mode, ttl, shared)


__all__ = ["RULE_KEYS", "RedactRule", "Rule", "RuleParser", "RuleSet", "describe", "read_cache"]
