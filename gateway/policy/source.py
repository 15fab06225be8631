"""Policy files as trees of :class:`Node` that remember their file and line.

YAML is *composed* (not just loaded) so that every value keeps the line it
came from; error messages point there. Plain scalars are interpolated
(``${VAR}``) before their type is resolved, so ``port: ${PORT:-8000}`` is an
int; quoted scalars stay strings. Duplicate keys in one mapping are errors
(YAML would silently keep the last one).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gateway.policy.interpolate import InterpolationSyntaxError, interpolate
from gateway.policy.problems import Problem


@dataclass(slots=True)
class Node:
    """A YAML value with its origin.

    ``value`` is ``dict[str, Node]`` for a mapping, ``list[Node]`` for a
    sequence, else a scalar (str, int, float, bool or None).
    """

    value: Any
    file: Path
    line: int
    #: for mappings: the line of each key
    key_lines: dict[str, int] = field(default_factory=dict)
    #: environment variables this scalar named that were unset, with no default
    missing: tuple[str, ...] = ()
    #: environment variables this scalar named at all
    env_names: tuple[str, ...] = ()

    @property
    def is_mapping(self) -> bool:
        return isinstance(self.value, dict)

    @property
    def is_sequence(self) -> bool:
        return isinstance(self.value, list)

    def plain(self) -> Any:
        """The value with all nodes stripped (for messages and tests)."""
        if isinstance(self.value, dict):
            return {k: v.plain() for k, v in self.value.items()}
        if isinstance(self.value, list):
            return [v.plain() for v in self.value]
        return self.value


class _Composer:
    def __init__(self, path: Path, environ: Mapping[str, str], problems: list[Problem]) -> None:
        self.path = path
        self.environ = environ
        self.problems = problems

    def error(self, line: int, message: str, fix: str | None = None) -> None:
        self.problems.append(Problem(self.path, line, None, message, fix))

    def convert(self, node: yaml.Node, loader: yaml.SafeLoader) -> Node:
        line = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            loader.flatten_mapping(node)  # resolves YAML merge keys (<<)
            values: dict[str, Node] = {}
            key_lines: dict[str, int] = {}
            for key_node, value_node in node.value:
                key_line = key_node.start_mark.line + 1
                if not isinstance(key_node, yaml.ScalarNode):
                    self.error(key_line, "a key must be a plain name, not a list or mapping")
                    continue
                key = str(key_node.value)
                if key in values:
                    self.error(
                        key_line,
                        f"key '{key}' appears twice in the same mapping (first on line {key_lines[key]})",
                        "remove one of them",
                    )
                    continue
                key_lines[key] = key_line
                values[key] = self.convert(value_node, loader)
            return Node(values, self.path, line, key_lines)
        if isinstance(node, yaml.SequenceNode):
            return Node([self.convert(item, loader) for item in node.value], self.path, line)
        assert isinstance(node, yaml.ScalarNode)
        return self.scalar(node, loader, line)

    def scalar(self, node: yaml.ScalarNode, loader: yaml.SafeLoader, line: int) -> Node:
        raw = node.value
        if "$" not in raw or node.tag not in ("tag:yaml.org,2002:str",):
            return Node(loader.construct_object(node), self.path, line)
        try:
            result = interpolate(raw, self.environ)
        except InterpolationSyntaxError as exc:
            self.error(line, str(exc), "write ${NAME} or ${NAME:-default}; $$ is a literal $")
            return Node(raw, self.path, line)
        value: Any = result.text
        if node.style is None and result.text:
            # a plain scalar: resolve its type after substitution (ints, floats, bools)
            tag = loader.resolve(yaml.ScalarNode, result.text, (True, False))  # type: ignore[no-untyped-call]
            if tag != "tag:yaml.org,2002:str":
                value = loader.construct_object(yaml.ScalarNode(tag, result.text))
        return Node(value, self.path, line, missing=result.missing, env_names=result.names)


def read_file(path: Path, environ: Mapping[str, str], problems: list[Problem]) -> Node | None:
    """Compose one YAML file; syntax errors become problems and give ``None``."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(Problem(path, None, None, f"cannot read file: {exc}"))
        return None
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return Node({}, path, 1)
        return _Composer(path, environ, problems).convert(root, loader)
    except yaml.MarkedYAMLError as exc:
        problems.append(syntax_problem(path, text, exc))
        return None
    except yaml.YAMLError as exc:
        problems.append(Problem(path, None, None, f"invalid YAML: {exc}", "fix the YAML syntax"))
        return None
    finally:
        loader.dispose()


def syntax_problem(path: Path, text: str, exc: yaml.MarkedYAMLError) -> Problem:
    """A YAML syntax error as a problem: line and column, what the parser expected, and where
    the construct it was reading began, with the offending line quoted and a caret under it."""
    mark = exc.problem_mark or exc.context_mark
    if mark is None:
        return Problem(path, None, None, f"invalid YAML: {exc}", "fix the YAML syntax")
    what = exc.problem or "invalid syntax"
    message = f"invalid YAML at line {mark.line + 1}, column {mark.column + 1}: {what}"
    context = exc.context_mark
    if exc.context and context is not None and context is not mark:
        message += (
            f" ({exc.context.removeprefix('while ')} that began at line {context.line + 1}, "
            f"column {context.column + 1})"
        )
    lines = text.splitlines()
    quoted = ""
    if mark.line < len(lines):
        line = lines[mark.line]
        quoted = f"\n        {line}\n        {' ' * mark.column}^"
    return Problem(path, mark.line + 1, None, message, _syntax_hint(what, exc.context) + quoted)


def _syntax_hint(problem: str, context: str | None) -> str:
    if "'\\t'" in problem:
        return "indent with spaces: YAML does not allow tabs"
    if "mapping values are not allowed" in problem:
        return "quote a value that contains ': ', or fix the indentation of this key"
    if "flow sequence" in (context or ""):
        return "close the [ ... ] list that began there, or separate its items with ','"
    if "flow mapping" in (context or ""):
        return "close the { ... } mapping that began there, or separate its entries with ','"
    if "quoted scalar" in (context or ""):
        return "close the quoted string that began there"
    if "block" in problem or "block" in (context or ""):
        return "line this entry up with the others at its level (same indentation, same kind: all '- item' or all 'key: value')"
    return "fix the YAML syntax at the caret"
