"""Rules prepared for evaluation: what ``decide`` can know before any request.

A rule's targets depend on the request only through the level of the data
sent, and there are four levels, so for each rule (and each alias with
targets) the targets that may receive each level, those excluded and, for the
``ordered`` strategy, the order to try them in are worked out once, when the
policy is built. Per request, ``decide`` picks the :class:`Choice` for the
level and computes what does depend on the request (costs, and the order for
the other strategies).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from gateway.levels import Level
from gateway.policy.predicates import Test
from gateway.policy.rules import Rule, RuleSet
from gateway.policy.strategies import Strategy, available_first
from gateway.targets import Target

_LEVELS = tuple(Level)
# choices are indexed by the level itself
assert [int(level) for level in _LEVELS] == list(range(len(_LEVELS)))


@dataclass(frozen=True, slots=True)
class Choice:
    """A list of targets seen from one level of data."""

    named: tuple[Target, ...]
    #: the named targets that may receive the level, in declared order
    eligible: tuple[Target, ...]
    #: names of the named targets that may not
    excluded: tuple[str, ...]
    #: names of ``eligible``, unavailable ones last: the ``ordered`` strategy's answer
    ordered: tuple[str, ...]


#: one :class:`Choice` per level, indexed by the level
Choices = tuple[Choice, ...]


def choices(targets: Mapping[str, Target], names: tuple[str, ...]) -> Choices:
    """The choices of ``names``; none (``()``) if one is not a target, which only a
    policy with errors has, and the loader never returns one."""
    if any(n not in targets for n in names):
        return ()
    named = tuple(targets[n] for n in names)
    out = []
    for level in _LEVELS:
        eligible = tuple(t for t in named if t.may_receive(level))
        excluded = tuple(t.name for t in named if not t.may_receive(level))
        ordered = tuple(t.name for t in available_first(eligible))
        out.append(Choice(named, eligible, excluded, ordered))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class Step:
    """One rule as ``decide`` evaluates it."""

    rule: Rule
    #: the rule's condition, without the words
    test: Test
    use_alias: bool
    #: the strategy needs no facts: the targets are ``Choice.ordered``
    fixed_order: bool
    #: ``spill``: the declared order too while no load is known (nothing to spill from)
    spill: bool
    #: for a rule with targets of its own; empty for ``alias: true`` and deny rules
    choices: Choices


@dataclass(frozen=True, slots=True)
class Prepared:
    """Everything :meth:`~gateway.policy.compiled.CompiledPolicy.decide` prepares at load."""

    #: rule set name -> its rules and their steps, in order
    rule_sets: Mapping[str, tuple[tuple[Rule, ...], tuple[Step, ...]]]
    #: alias name -> the choices of its targets, for aliases with targets
    aliases: Mapping[str, Choices]
    #: the aliases with targets of their own (what ``alias: true`` rules need)
    routable: frozenset[str]


def prepare(
    rule_sets: Mapping[str, RuleSet],
    targets: Mapping[str, Target],
    aliases: Mapping[str, tuple[str, ...]],
) -> Prepared:
    """Prepare ``rule_sets``; ``aliases`` maps each alias to its own targets (maybe none)."""
    prepared = {}
    for name, rule_set in rule_sets.items():
        steps = tuple(
            Step(
                rule=rule,
                test=rule.when.test,
                use_alias=rule.use_alias,
                fixed_order=rule.strategy is Strategy.ORDERED,
                spill=rule.strategy is Strategy.SPILL,
                choices=choices(targets, rule.targets),
            )
            for rule in rule_set.rules
        )
        prepared[name] = (rule_set.rules, steps)
    routable = frozenset(a for a, names in aliases.items() if names)
    alias_choices = {a: choices(targets, aliases[a]) for a in routable}
    return Prepared(MappingProxyType(prepared), MappingProxyType(alias_choices), routable)
