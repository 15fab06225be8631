"""Load a policy directory: compose every ``*.yaml`` file, validate strictly, compile.

Files in a directory compose: their sections are merged, and a name defined
twice (a target, an alias, a rule set, a team, an entity) is an error naming
both places. The default rule set (``rules:``) lives in one file. Every
problem is collected in one pass; any error raises :class:`PolicyError`,
warnings ride along on the compiled policy.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType

from gateway.judging.prices import PriceBook
from gateway.judging.sensitivity import BUILTIN_ENTITIES, NER_ENTITIES, SECRET_ENTITIES
from gateway.judging.task import TASKS
from gateway.levels import Level
from gateway.policy.compiled import ALL_ENDPOINTS, Alias, CompiledPolicy, Declassify
from gateway.policy.conditions import ConditionParser, Vocabulary
from gateway.policy.model import CacheSpec
from gateway.policy.problems import PolicyError, Problem, Severity, suggest
from gateway.policy.read import Reader
from gateway.policy.rules import RuleParser, RuleSet, read_cache
from gateway.policy.source import Node, read_file
from gateway.policy.target_spec import TargetDefaults, read_defaults, read_target
from gateway.targets import Target

TOP_KEYS = (
    "targets",
    "aliases",
    "entities",
    "sensitivity",
    "defaults",
    "rules",
    "policies",
    "teams",
)
_NAMED = ("targets", "aliases", "entities", "policies", "teams")
_MERGED = ("sensitivity", "defaults")
DEFAULT_KEYS = ("expected_completion_tokens", "cache", "baseline", "timeouts", "retry", "circuit")
SENSITIVITY_KEYS = ("entities", "default_level", "declassify")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/-]*$")


def policy_files(path: Path) -> list[Path]:
    """The files a policy path stands for: the file itself, or a directory's ``*.yaml``/``*.yml``."""
    if path.is_file():
        return [path]
    return sorted(p for p in path.iterdir() if p.is_file() and p.suffix in (".yaml", ".yml"))


@dataclass
class _Merged:
    named: dict[str, dict[str, Node]] = field(default_factory=lambda: {k: {} for k in _NAMED})
    merged: dict[str, dict[str, Node]] = field(default_factory=lambda: {k: {} for k in _MERGED})
    merged_lines: dict[tuple[str, str], tuple[Path, int]] = field(default_factory=dict)
    rules: Node | None = None


def load_policy(
    path: Path, environ: Mapping[str, str], *, prices: PriceBook | None = None
) -> CompiledPolicy:
    """Compile the policy at ``path`` (a directory or one file); raises :class:`PolicyError`."""
    problems: list[Problem] = []
    if not path.exists():
        raise PolicyError(
            [
                Problem(
                    path,
                    None,
                    None,
                    "no such file or directory",
                    "point GATEWAY_POLICIES (or the DIR argument) at a policy directory",
                )
            ]
        )
    files = policy_files(path)
    if not files:
        raise PolicyError(
            [
                Problem(
                    path,
                    None,
                    None,
                    "no *.yaml policy files here",
                    "add a policy file, e.g. copy the shipped policies/",
                )
            ]
        )
    digest = hashlib.sha256()
    reader = Reader(problems)
    merged = _Merged()
    unreadable = False
    for file in files:
        # an unreadable file is reported by read_file, just below
        with contextlib.suppress(OSError):
            digest.update(file.name.encode() + b"\0" + file.read_bytes() + b"\0")
        root = read_file(file, environ, problems)
        if root is not None:
            _merge(reader, root, merged)
        else:
            unreadable = True
    if unreadable:
        # what the broken file defines is unknown: checking the rest would only cascade
        raise PolicyError(problems)
    incomplete = _incomplete(path, merged)
    if incomplete is not None:
        # every rule would name an unknown target: one clear error instead of a cascade
        problems.append(incomplete)
        raise PolicyError(problems)
    policy = _compile(reader, merged, prices)
    if any(p.severity is Severity.ERROR for p in problems) or policy is None:
        raise PolicyError(problems)
    warnings = tuple(p for p in problems if p.severity is Severity.WARNING)
    return _finish(policy, warnings, tuple(files), digest.hexdigest())


def _incomplete(path: Path, merged: _Merged) -> Problem | None:
    """One clear error for a policy without targets, or for one file of a policy directory
    checked on its own (else every rule would report each of its targets as unknown)."""
    missing = []
    if not merged.named["targets"]:
        missing.append("no targets")
    if merged.rules is None and not merged.named["policies"]:
        missing.append("no rules")
    siblings = [p for p in policy_files(path.parent) if p != path] if path.is_file() else []
    if missing and siblings:
        return Problem(
            path,
            None,
            None,
            f"{path.name} has {' and '.join(missing)}: it is one file of the policy in "
            f"{path.parent}/ (with {', '.join(p.name for p in siblings)})",
            f"check the whole directory: gateway policy check {path.parent}",
        )
    if not merged.named["targets"]:
        return Problem(
            path,
            None,
            None,
            "no targets are declared: a policy needs at least one target to route to",
            "add a 'targets:' section (see policies/targets.yaml)",
        )
    return None


def _finish(
    policy: CompiledPolicy, warnings: tuple[Problem, ...], files: tuple[Path, ...], fp: str
) -> CompiledPolicy:
    return replace(policy, warnings=warnings, files=files, fingerprint=fp)


def _merge(reader: Reader, root: Node, out: _Merged) -> None:
    if root.value is None:
        return
    sections = reader.mapping(root, f"the top level of {root.file.name}", TOP_KEYS)
    for section, node in (sections or {}).items():
        if section == "rules":
            if out.rules is not None:
                reader.error(
                    node,
                    f"'rules:' is defined in {out.rules.file.name} (line {out.rules.line}) and here",
                    "keep the default rule set in one file; put other rule sets under policies:",
                )
            else:
                out.rules = node
            continue
        entries = reader.named_mapping(node, f"'{section}'")
        for name, value in (entries or {}).items():
            line = node.key_lines.get(name, value.line)
            if section in _NAMED:
                seen = out.named[section].get(name)
                if seen is not None:
                    reader.error(
                        value,
                        f"{section[:-1] if section != 'policies' else 'policy'} '{name}' is defined twice "
                        f"(also in {seen.file.name}, near line {seen.line})",
                        "rename or remove one of them",
                        line=line,
                    )
                    continue
                if not _NAME.match(name):
                    reader.error(
                        value,
                        f"'{name}' is not a valid name in {section}",
                        "use letters, digits and - _ . : /",
                        line=line,
                    )
                    continue
                out.named[section][name] = value
            else:
                where = out.merged_lines.get((section, name))
                if where is not None:
                    reader.error(
                        value,
                        f"{section}.{name} is set twice (also in {where[0].name}:{where[1]})",
                        "set it in one file only",
                        line=line,
                    )
                    continue
                out.merged_lines[(section, name)] = (value.file, line)
                out.merged[section][name] = value


def _compile(reader: Reader, m: _Merged, prices: PriceBook | None) -> CompiledPolicy | None:
    defaults = m.merged["defaults"]
    sens = m.merged["sensitivity"]
    for key, node in defaults.items():
        if key not in DEFAULT_KEYS:
            reader.error(node, f"unknown key '{key}' in defaults", suggest(key, DEFAULT_KEYS))
    for key, node in sens.items():
        if key not in SENSITIVITY_KEYS:
            reader.error(
                node, f"unknown key '{key}' in sensitivity", suggest(key, SENSITIVITY_KEYS)
            )

    expected = 256
    if "expected_completion_tokens" in defaults:
        expected = (
            reader.integer(
                defaults["expected_completion_tokens"],
                "defaults.expected_completion_tokens",
                minimum=1,
            )
            or 256
        )
    cache = CacheSpec()
    if "cache" in defaults:
        cache = read_cache(reader, defaults["cache"], "defaults.cache", cache) or cache
    target_defaults = read_defaults(reader, defaults) if defaults else TargetDefaults()

    custom, levels = _entities(reader, m.named["entities"], sens.get("entities"))
    known_entities = frozenset(BUILTIN_ENTITIES) | NER_ENTITIES | frozenset(custom)
    default_level = Level.PUBLIC
    if "default_level" in sens:
        default_level = (
            reader.level(sens["default_level"], "sensitivity.default_level") or Level.PUBLIC
        )
    declassify = _declassify(reader, sens.get("declassify"))

    targets: dict[str, Target] = {}
    for name, node in m.named["targets"].items():
        target = read_target(reader, name, node, target_defaults, prices)
        if target is not None:
            targets[name] = target
    target_names = frozenset(m.named["targets"])  # declared, even if invalid: avoid cascades
    aliases = _aliases(reader, m.named["aliases"], target_names)

    vocab = Vocabulary(
        tasks=frozenset(TASKS),
        entities=known_entities,
        aliases=frozenset(aliases) | frozenset(m.named["aliases"]),
        prices=MappingProxyType({n: t.prices for n, t in targets.items()}),
        expected_completion_tokens=expected,
    )
    parser = RuleParser(reader, ConditionParser(reader, vocab), target_names, known_entities, cache)
    rule_sets: dict[str, RuleSet] = {}
    if m.rules is not None:
        rule_sets["default"] = parser.rule_set("default", m.rules)
    for name, node in m.named["policies"].items():
        entries = reader.mapping(
            node, f"policy '{name}'", ("rules", "description"), required=("rules",)
        )
        if name == "default" and "default" in rule_sets:
            reader.error(
                node,
                "policy 'default' is also defined by the top-level 'rules:'",
                "keep one of them",
            )
            continue
        if entries is not None and "rules" in entries:
            rule_sets[name] = parser.rule_set(name, entries["rules"])
    if "default" not in rule_sets:
        anchor = next(iter(m.named["targets"].values()), None)
        reader.problems.append(
            Problem(
                anchor.file if anchor else None,
                None,
                None,
                "no default rule set",
                "add a top-level 'rules:' list",
            )
        )
    teams = _teams(reader, m.named["teams"], frozenset(m.named["policies"]) | {"default"})

    baseline = None
    if "baseline" in defaults:
        baseline = parser.target_name(defaults["baseline"], "defaults.baseline")
    return CompiledPolicy(
        targets=MappingProxyType(targets),
        aliases=MappingProxyType(aliases),
        rule_sets=MappingProxyType(rule_sets),
        entity_levels=MappingProxyType(levels),
        custom_entities=MappingProxyType(custom),
        warnings=(),
        files=(),
        fingerprint="",
        teams=MappingProxyType(teams),
        declassify=declassify,
        default_cache=cache,
        default_baseline=baseline,
        expected_completion_tokens=expected,
        default_level=default_level,
    )


def _entities(
    reader: Reader, custom_nodes: Mapping[str, Node], levels_node: Node | None
) -> tuple[dict[str, str], dict[str, Level]]:
    levels: dict[str, Level] = {
        e: (Level.RESTRICTED if e in SECRET_ENTITIES else Level.CONFIDENTIAL)
        for e in BUILTIN_ENTITIES | NER_ENTITIES
    }
    custom: dict[str, str] = {}
    custom_level_set: set[str] = set()
    for name, node in custom_nodes.items():
        what = f"entity '{name}'"
        if name in BUILTIN_ENTITIES or name in NER_ENTITIES:
            reader.error(
                node,
                f"{what} is built in",
                f"set its level under sensitivity.entities: {{{name}: <level>}}",
            )
            continue
        entries = reader.mapping(
            node, what, ("pattern", "level", "description"), required=("pattern",)
        )
        if entries is None or "pattern" not in entries:
            continue
        pattern = reader.string(entries["pattern"], f"{what}: pattern")
        if pattern is None:
            continue
        try:
            re.compile(pattern)
        except re.error as exc:
            reader.error(
                entries["pattern"],
                f"{what}: invalid regular expression: {exc}",
                "fix the pattern (Python re syntax; single-quote it in YAML)",
            )
            continue
        custom[name] = pattern
        levels[name] = Level.CONFIDENTIAL
        if "level" in entries:
            level = reader.level(entries["level"], f"{what}: level")
            if level is not None:
                levels[name] = level
                custom_level_set.add(name)
        if "description" in entries:
            reader.string(entries["description"], f"{what}: description")
    if levels_node is not None:
        for name, node in (reader.named_mapping(levels_node, "sensitivity.entities") or {}).items():
            if name not in levels:
                reader.error(
                    node,
                    f"unknown entity '{name}' in sensitivity.entities",
                    f"{suggest(name, levels)} (or declare it under entities: with a pattern)",
                )
                continue
            if name in custom_level_set:
                reader.error(
                    node,
                    f"the level of entity '{name}' is set twice",
                    "keep its level under entities:",
                )
                continue
            level = reader.level(node, f"sensitivity.entities.{name}")
            if level is not None:
                levels[name] = level
    return custom, levels


def _declassify(reader: Reader, node: Node | None) -> Declassify:
    if node is None:
        return Declassify()
    entries = reader.mapping(node, "sensitivity.declassify", ("teams", "keys"))
    if entries is None:
        return Declassify()
    teams = reader.names(entries["teams"], "declassify.teams") if "teams" in entries else []
    keys = reader.names(entries["keys"], "declassify.keys") if "keys" in entries else []
    return Declassify(frozenset(teams or ()), frozenset(keys or ()))


def _aliases(
    reader: Reader, nodes: Mapping[str, Node], targets: frozenset[str]
) -> dict[str, Alias]:
    aliases: dict[str, Alias] = {}
    for name, node in nodes.items():
        what = f"alias '{name}'"
        if node.value is None:
            aliases[name] = Alias(name)
            continue
        entries = reader.mapping(node, what, ("targets", "endpoints", "description"))
        if entries is None:
            continue
        names: list[str] = []
        if "targets" in entries:
            names = reader.names(entries["targets"], f"{what}: targets") or []
            for target in names:
                if target not in targets:
                    reader.error(
                        entries["targets"],
                        f"unknown target '{target}' in {what}",
                        f"{suggest(target, targets)} (or declare target '{target}' under targets:)",
                    )
        endpoints: tuple[str, ...] = ALL_ENDPOINTS
        if "endpoints" in entries:
            listed = reader.names(entries["endpoints"], f"{what}: endpoints") or []
            for endpoint in listed:
                if endpoint not in ALL_ENDPOINTS:
                    reader.error(
                        entries["endpoints"],
                        f"unknown endpoint '{endpoint}' in {what}",
                        suggest(endpoint, ALL_ENDPOINTS),
                    )
            endpoints = tuple(listed)
        description = (
            reader.string(entries["description"], f"{what}: description")
            if "description" in entries
            else None
        )
        aliases[name] = Alias(name, tuple(names), endpoints, description)
    if "auto" not in aliases:
        aliases["auto"] = Alias("auto", description="the policy's rules decide")
    return aliases


def _teams(reader: Reader, nodes: Mapping[str, Node], rule_sets: frozenset[str]) -> dict[str, str]:
    teams: dict[str, str] = {}
    for name, node in nodes.items():
        entries = reader.mapping(node, f"team '{name}'", ("policy", "description"))
        if entries is None:
            continue
        if "description" in entries:
            reader.string(entries["description"], f"team '{name}': description")
        if "policy" not in entries:
            continue
        policy = reader.string(entries["policy"], f"team '{name}': policy")
        if policy is None:
            continue
        if policy not in rule_sets:
            reader.error(
                entries["policy"],
                f"team '{name}' uses unknown policy '{policy}'",
                f"{suggest(policy, rule_sets)} (or define it under policies:)",
            )
            continue
        teams[name] = policy
    return teams
