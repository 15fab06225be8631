"""``gateway policy check|test|explain|simulate``: the policy tools on the command line.

:func:`add_policy_parser` registers the sub-commands; each sets
``func(args, settings) -> int`` (the exit code). Nothing here calls upstream.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, TextIO

import orjson

from gateway.errors import GatewayError
from gateway.judging.build import FactsBuilder
from gateway.judging.prices import PriceBook
from gateway.policy.cases import case_files, run_cases
from gateway.policy.compiled import CompiledPolicy
from gateway.policy.decision_log import load_from_dict, read_log
from gateway.policy.explain import explain_request, explanation
from gateway.policy.loader import load_policy
from gateway.policy.model import EMPTY_LOAD
from gateway.policy.problems import PolicyError
from gateway.policy.simulate import simulate
from gateway.settings import Settings


def add_policy_parser(subparsers: Any) -> None:
    policy = subparsers.add_parser(
        "policy", help="check, test, explain and simulate routing policies"
    )
    commands = policy.add_subparsers(dest="policy_command", required=True, metavar="COMMAND")

    check = commands.add_parser("check", help="validate a policy directory (exit 1 on errors)")
    check.add_argument(
        "dir",
        nargs="?",
        type=Path,
        help="policy directory (default: GATEWAY_POLICIES or ./policies)",
    )
    check.set_defaults(func=check_command)

    test = commands.add_parser("test", help="run the policy's test cases (DIR/tests/*.yaml)")
    test.add_argument("dir", nargs="?", type=Path, help="policy directory")
    test.set_defaults(func=test_command)

    explain = commands.add_parser(
        "explain", help="print the decision for a request body, calling nothing upstream"
    )
    explain.add_argument("request", type=Path, help="a JSON request body ('-' reads stdin)")
    explain.add_argument("--dir", type=Path, help="policy directory")
    explain.add_argument(
        "--header", action="append", default=[], metavar="K:V", help="a request header (repeatable)"
    )
    explain.add_argument("--team", help="the caller's team")
    explain.add_argument("--key-policy", help="the caller's key policy (a named rule set)")
    explain.add_argument(
        "--endpoint", choices=("chat", "completions", "embeddings"), help="default: from the body"
    )
    explain.add_argument(
        "--load",
        type=Path,
        help='live load to decide with, JSON: {"local": {"in_flight": 8, "max_in_flight": 8}}',
    )
    explain.set_defaults(func=explain_command)

    sim = commands.add_parser("simulate", help="replay a decision log through a policy")
    sim.add_argument("--log", type=Path, required=True, help="decision log (JSONL)")
    sim.add_argument("--dir", type=Path, help="policy directory (the current policy)")
    sim.add_argument(
        "--against", type=Path, help="a candidate policy directory to compare with --dir"
    )
    sim.set_defaults(func=simulate_command)


def _dir(args: argparse.Namespace, settings: Settings) -> Path:
    value = getattr(args, "dir", None)
    return value if value is not None else settings.policies


def _load(path: Path, settings: Settings, err: TextIO) -> CompiledPolicy | None:
    try:
        return load_policy(
            path, settings.environ, prices=PriceBook.from_litellm(settings.prices_file)
        )
    except PolicyError as exc:
        print(exc.report(), file=err)
        return None


def check_command(args: argparse.Namespace, settings: Settings, out: TextIO = sys.stdout) -> int:
    path = _dir(args, settings)
    policy = _load(path, settings, out)
    if policy is None:
        return 1
    for warning in policy.warnings:
        print(warning, file=out)
    rules = sum(len(rs.rules) for rs in policy.rule_sets.values())
    unavailable = [
        f"{t.name} ({t.unavailable_reason})"
        for t in policy.targets.values()
        if t.unavailable_reason
    ]
    print(
        f"ok: {path}: {len(policy.files)} files, {len(policy.targets)} targets, "
        f"{len(policy.aliases)} aliases, {rules} rules in {len(policy.rule_sets)} rule sets, "
        f"{len(policy.warnings)} warnings",
        file=out,
    )
    if unavailable:
        print("unavailable targets: " + ", ".join(unavailable), file=out)
    return 0


def test_command(args: argparse.Namespace, settings: Settings, out: TextIO = sys.stdout) -> int:
    path = _dir(args, settings)
    policy = _load(path, settings, out)
    if policy is None:
        return 1
    files = case_files(path)
    if not files:
        print(
            f"error: no test cases for {path}: add YAML files with 'cases:' under "
            f"{path / 'tests' if path.is_dir() else path.parent / 'tests'}",
            file=out,
        )
        return 1
    report = run_cases(path, FactsBuilder(policy), settings.environ)
    for result in report.results:
        if result.ok:
            print(f"PASS {result.name}", file=out)
        else:
            print(f"FAIL {result.name} ({result.file}:{result.line})\n{result.message}", file=out)
    if report.problems:
        # after the results, beside the summary: an invalid case is never silently skipped
        print(f"INVALID: {len(report.problems)} problems in the case files (not run):", file=out)
        for problem in report.problems:
            print(problem, file=out)
    passed = sum(r.ok for r in report.results)
    summary = f"{passed} passed, {len(report.results) - passed} failed"
    if report.problems:
        summary += f", {len(report.problems)} invalid"
    print(summary, file=out)
    if not report.results and not report.problems:
        print(f"error: the case files in {files[0].parent} hold no cases", file=out)
        return 1
    return 0 if report.ok else 1


def explain_command(args: argparse.Namespace, settings: Settings, out: TextIO = sys.stdout) -> int:
    policy = _load(_dir(args, settings), settings, out)
    if policy is None:
        return 1
    try:
        raw = sys.stdin.buffer.read() if str(args.request) == "-" else args.request.read_bytes()
        body = orjson.loads(raw)
    except (OSError, orjson.JSONDecodeError) as exc:
        print(f"cannot read request {args.request}: {exc}", file=out)
        return 1
    if not isinstance(body, dict):
        print(f"{args.request}: a request body must be a JSON object", file=out)
        return 1
    headers: dict[str, str] = {}
    for item in args.header:
        name, sep, value = item.partition(":")
        if not sep or not name.strip():
            print(f"--header {item!r}: write NAME:VALUE", file=out)
            return 1
        headers[name.strip().lower()] = value.strip()
    endpoint = args.endpoint or (
        "embeddings" if "input" in body else "completions" if "prompt" in body else "chat"
    )
    load = EMPTY_LOAD
    if args.load is not None:
        try:
            load = load_from_dict(orjson.loads(args.load.read_bytes()))
        except (OSError, orjson.JSONDecodeError, TypeError, ValueError) as exc:
            print(f"cannot read load {args.load}: {exc}", file=out)
            return 1
    try:
        facts, decision = explain_request(
            FactsBuilder(policy),
            body=body,
            headers=headers,
            endpoint=endpoint,
            team=args.team,
            key_policy=args.key_policy,
            load=load,
        )
    except GatewayError as exc:
        print(f"request refused ({exc.http_status}): {exc.message}", file=out)
        return 1
    print(orjson.dumps(explanation(facts, decision), option=orjson.OPT_INDENT_2).decode(), file=out)
    return 0


def simulate_command(args: argparse.Namespace, settings: Settings, out: TextIO = sys.stdout) -> int:
    policy = _load(_dir(args, settings), settings, out)
    if policy is None:
        return 1
    against = None
    if args.against is not None:
        against = _load(args.against, settings, out)
        if against is None:
            return 1
    try:
        report = simulate(read_log(args.log), policy, against)
    except OSError as exc:
        print(f"cannot read {args.log}: {exc}", file=out)
        return 1
    print(report.render(), file=out)
    return 1 if report.violations else 0
