"""The decision trace, built when it is read rather than for every request.

:meth:`~gateway.policy.compiled.CompiledPolicy.decide` tests each rule with
its word-free ``test``. The trace (every rule considered, and why each one
before the match did not match) is read only by ``policy explain``,
``/gateway/explain`` and the policy test cases, so :class:`Trace` keeps what
it needs and builds the steps, with each condition's ``check``, the first time
it is read. Facts are immutable, so those are the steps ``decide`` would have
built as it went.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import overload

from gateway.policy.model import Facts, TraceStep
from gateway.policy.rules import Rule


def alias_why_not(alias: str) -> str:
    """Why an ``alias: true`` rule whose condition holds is skipped."""
    return f"model '{alias}' names no targets of its own"


class Trace(Sequence[TraceStep]):
    """The rules ``decide`` considered, in order: a read-only tuple of
    :class:`TraceStep` that compares, hashes and prints as that tuple."""

    __slots__ = ("_aliases", "_considered", "_facts", "_matched", "_rules", "_steps")

    def __init__(
        self,
        rules: tuple[Rule, ...],
        considered: int,
        matched: bool,
        facts: Facts,
        aliases: frozenset[str],
    ) -> None:
        """``rules[:considered]`` were tested, and the last of them matched if ``matched``;
        ``aliases`` are the aliases with targets of their own."""
        self._rules = rules
        self._considered = considered
        self._matched = matched
        self._facts = facts
        self._aliases = aliases
        self._steps: tuple[TraceStep, ...] | None = None

    @property
    def steps(self) -> tuple[TraceStep, ...]:
        steps = self._steps
        if steps is None:
            steps = self._steps = self._build()
        return steps

    def _build(self) -> tuple[TraceStep, ...]:
        facts = self._facts
        skipped = self._considered - 1 if self._matched else self._considered
        steps: list[TraceStep] = []
        for rule in self._rules[:skipped]:
            why = rule.when.check(facts)
            if why is None and rule.use_alias and facts.alias not in self._aliases:
                why = alias_why_not(facts.alias)
            if why is None:
                # decide found this rule not matching; the facts have not changed since
                raise RuntimeError(f"rule '{rule.name}' matches on a second look")
            steps.append(TraceStep(rule.name, False, why))
        if self._matched:
            rule = self._rules[skipped]
            steps.append(TraceStep(rule.name, True, rule.when.text))
        return tuple(steps)

    def __len__(self) -> int:
        return len(self.steps)

    @overload
    def __getitem__(self, index: int) -> TraceStep: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[TraceStep, ...]: ...

    def __getitem__(self, index: int | slice) -> TraceStep | tuple[TraceStep, ...]:
        return self.steps[index]

    def __iter__(self) -> Iterator[TraceStep]:
        return iter(self.steps)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Trace):
            return self.steps == other.steps
        if isinstance(other, tuple):
            return self.steps == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.steps)

    def __repr__(self) -> str:
        return repr(self.steps)
