"""Typed reads of :class:`~gateway.policy.source.Node` values that report problems.

Every read either returns a value of the expected type or records a problem
(naming file, line, the current rule, and a fix) and returns ``None``, so one
pass over the files reports every mistake at once instead of the first.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from typing import Any

from gateway.levels import LEVEL_NAMES, Level
from gateway.policy.problems import Problem, Severity, suggest
from gateway.policy.source import Node


def describe(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    return f"{type(value).__name__} {value!r}"


class Reader:
    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        self.rule: str | None = None

    @contextmanager
    def in_rule(self, name: str | None) -> Iterator[None]:
        outer, self.rule = self.rule, name
        try:
            yield
        finally:
            self.rule = outer

    def error(
        self, node: Node, message: str, fix: str | None = None, *, line: int | None = None
    ) -> None:
        self.problems.append(Problem(node.file, line or node.line, self.rule, message, fix))

    def warn(
        self, node: Node, message: str, fix: str | None = None, *, line: int | None = None
    ) -> None:
        self.problems.append(
            Problem(node.file, line or node.line, self.rule, message, fix, Severity.WARNING)
        )

    # --- structure -----------------------------------------------------------

    def mapping(
        self,
        node: Node,
        what: str,
        allowed: Collection[str],
        *,
        required: Collection[str] = (),
    ) -> dict[str, Node] | None:
        """The mapping's entries; unknown keys and missing required keys are errors."""
        if not node.is_mapping:
            self.error(node, f"{what} must be a mapping, got {describe(node.value)}")
            return None
        entries: dict[str, Node] = node.value
        for key, value in entries.items():
            if key not in allowed:
                self.error(
                    value,
                    f"unknown key '{key}' in {what}",
                    suggest(key, allowed),
                    line=node.key_lines.get(key),
                )
        for key in required:
            if key not in entries:
                self.error(node, f"{what} needs '{key}'", f"add '{key}:' to {what}")
        return {k: v for k, v in entries.items() if k in allowed}

    def named_mapping(self, node: Node, what: str) -> dict[str, Node] | None:
        """A mapping of free names (targets, aliases, ...) to their definitions."""
        if node.value is None:
            return {}
        if not node.is_mapping:
            self.error(node, f"{what} must be a mapping of names, got {describe(node.value)}")
            return None
        return dict(node.value)

    def sequence(self, node: Node, what: str) -> list[Node] | None:
        if not node.is_sequence:
            self.error(node, f"{what} must be a list, got {describe(node.value)}")
            return None
        items: list[Node] = node.value
        return items

    # --- scalars -------------------------------------------------------------

    def _env_ok(self, node: Node, what: str) -> bool:
        if not node.missing:
            return True
        name = node.missing[0]
        self.error(
            node,
            f"environment variable {name} is not set (used in {what})",
            f"set {name}, or give a default: ${{{name}:-value}}",
        )
        return False

    def string(self, node: Node, what: str, *, allow_unset_env: bool = False) -> str | None:
        if not allow_unset_env and not self._env_ok(node, what):
            return None
        if not isinstance(node.value, str):
            self.error(node, f"{what} must be a string, got {describe(node.value)}", "quote it")
            return None
        return node.value

    def number(
        self,
        node: Node,
        what: str,
        *,
        minimum: float | None = None,
        maximum: float | None = None,
        exclusive_minimum: bool = False,
    ) -> float | None:
        if not self._env_ok(node, what):
            return None
        value = node.value
        if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
            self.error(node, f"{what} must be a number, got {describe(value)}")
            return None
        low_bad = minimum is not None and (
            value <= minimum if exclusive_minimum else value < minimum
        )
        if low_bad or (maximum is not None and value > maximum):
            bound = ">" if exclusive_minimum else ">="
            limits = []
            if minimum is not None:
                limits.append(f"{bound} {minimum:g}")
            if maximum is not None:
                limits.append(f"<= {maximum:g}")
            self.error(node, f"{what} must be {' and '.join(limits)}, got {value:g}")
            return None
        return float(value)

    def integer(self, node: Node, what: str, *, minimum: int | None = None) -> int | None:
        if not self._env_ok(node, what):
            return None
        value = node.value
        if isinstance(value, bool) or not isinstance(value, int):
            self.error(node, f"{what} must be a whole number, got {describe(value)}")
            return None
        if minimum is not None and value < minimum:
            self.error(node, f"{what} must be >= {minimum}, got {value}")
            return None
        return value

    def boolean(self, node: Node, what: str) -> bool | None:
        if not self._env_ok(node, what):
            return None
        if not isinstance(node.value, bool):
            self.error(node, f"{what} must be true or false, got {describe(node.value)}")
            return None
        return node.value

    def choice(self, node: Node, what: str, choices: Collection[str]) -> str | None:
        value = self.string(node, what)
        if value is None:
            return None
        if value not in choices:
            self.error(node, f"{what}: unknown value '{value}'", suggest(value, choices))
            return None
        return value

    def level(self, node: Node, what: str) -> Level | None:
        value = self.choice(node, what, LEVEL_NAMES)
        return Level.parse(value) if value is not None else None

    def names(self, node: Node, what: str) -> list[str] | None:
        """A list of strings (a single string is accepted as a list of one)."""
        if isinstance(node.value, str):
            value = self.string(node, what)
            return [value] if value is not None else None
        items = self.sequence(node, what)
        if items is None:
            return None
        out: list[str] = []
        ok = True
        for item in items:
            value = self.string(item, f"an entry of {what}")
            if value is None:
                ok = False
            else:
                out.append(value)
        return out if ok else None
