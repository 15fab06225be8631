"""``gateway facts eval FILE.jsonl``: the detectors and the task classifier on labelled data.

Exit codes: 0 the report was printed; 1 the file, one of its lines (the error
names it) or the policy is invalid, and nothing is reported; 2 a usage error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, TextIO

import orjson

from gateway.judging.build import FactsBuilder
from gateway.judging.ner import ner_plugins
from gateway.judging.prices import PriceBook
from gateway.policy.facts_eval import EvalInputError, evaluate, render
from gateway.policy.loader import load_policy
from gateway.policy.problems import PolicyError
from gateway.settings import Settings


def add_facts_parser(subparsers: Any) -> None:
    facts = subparsers.add_parser(
        "facts", help="measure the detectors and the task classifier on labelled data"
    )
    commands = facts.add_subparsers(dest="facts_command", required=True, metavar="COMMAND")
    ev = commands.add_parser(
        "eval",
        help="precision and recall per entity and per task on a labelled JSONL file",
        description="Each line: {'text'|'messages'|'body': ..., 'entities': [...], 'task': ...}. "
        "Prints counts, offsets and labels only, never text.",
    )
    ev.add_argument("file", type=Path, help="labelled JSONL ('-' reads stdin)")
    ev.add_argument(
        "--policy",
        type=Path,
        help="policy directory whose custom entities count too (default: GATEWAY_POLICIES "
        "or ./policies)",
    )
    ev.add_argument("--format", choices=("table", "json"), default="table")
    ev.add_argument(
        "--misses", type=int, default=20, metavar="N", help="how many misses to list (default 20)"
    )
    ev.set_defaults(func=eval_command)


def eval_command(args: argparse.Namespace, settings: Settings, out: TextIO = sys.stdout) -> int:
    path = args.policy if args.policy is not None else settings.policies
    try:
        policy = load_policy(
            path, settings.environ, prices=PriceBook.from_litellm(settings.prices_file)
        )
    except PolicyError as exc:
        print(exc.report(), file=out)
        return 1
    try:
        if str(args.file) == "-":
            lines = sys.stdin.buffer.read().split(b"\n")
        else:
            lines = args.file.read_bytes().split(b"\n")
    except OSError as exc:
        print(f"error: cannot read {args.file}: {exc.strerror}", file=out)
        return 1
    try:
        report = evaluate(lines, FactsBuilder(policy, scanner_plugins=ner_plugins(settings)))
    except EvalInputError as exc:
        print(f"error: {args.file}: {exc}", file=out)
        return 1
    limit = max(0, args.misses)
    if args.format == "json":
        print(orjson.dumps(report.as_json(limit), option=orjson.OPT_INDENT_2).decode(), file=out)
    else:
        print(render(report, limit), file=out)
    return 0
