"""``gateway audit verify|report LOG...``: the decision log for auditors.

``verify`` exits 1 when any record was edited, deleted, reordered or cut
(each problem names its file and line); ``report`` sums what went where over
a window. Both read files only: nothing here needs the gateway running.
"""

from __future__ import annotations

import argparse
import calendar
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from gateway.observability.audit_report import build_report
from gateway.observability.audit_verify import verify
from gateway.settings import Settings


def add_audit_parser(subparsers: Any) -> None:
    audit = subparsers.add_parser("audit", help="verify the decision log; report what went where")
    commands = audit.add_subparsers(dest="audit_command", required=True, metavar="COMMAND")

    check = commands.add_parser(
        "verify", help="check the decision log's hash chain (and HMAC); exit 1 on any problem"
    )
    check.add_argument("logs", nargs="+", type=Path, metavar="LOG", help="log files, any order")
    check.add_argument(
        "--live",
        action="store_true",
        help="the newest file is still being written: do not require its closing record",
    )
    check.set_defaults(func=verify_command)

    report = commands.add_parser("report", help="requests, data kinds and spend by destination")
    report.add_argument("logs", nargs="+", type=Path, metavar="LOG", help="log files")
    report.add_argument(
        "--since", type=_when, help="from this UTC time (2026-10-01, ISO 8601 or epoch)"
    )
    report.add_argument("--until", type=_when, help="up to (not including) this UTC time")
    report.add_argument("--team", help="only this team's requests")
    report.add_argument("--format", choices=("table", "json", "csv"), default="table")
    report.set_defaults(func=report_command)


def _when(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        pass
    text = value.strip().removesuffix("Z")
    for pattern in ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d"):
        try:
            return float(calendar.timegm(time.strptime(text, pattern)))
        except ValueError:
            continue
    raise argparse.ArgumentTypeError(
        f"{value!r}: write a UTC time as 2026-10-01 or 2026-10-01T12:00:00"
    )


def verify_command(args: argparse.Namespace, settings: Settings, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    key = settings.audit_hmac_key.encode() if settings.audit_hmac_key else None
    result = verify(args.logs, key=key, live=args.live)
    if key is None:
        result.notes.append("HMACs not checked: set GATEWAY_AUDIT_HMAC_KEY to check them")
    print(result.render(), file=out)
    return 0 if result.ok else 1


def report_command(args: argparse.Namespace, settings: Settings, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    missing = [str(p) for p in args.logs if not p.is_file()]
    if missing:
        print(f"error: no such log file: {', '.join(missing)}", file=sys.stderr)
        return 1
    report = build_report(args.logs, since=args.since, until=args.until, team=args.team)
    rendered = {"table": report.to_table, "json": report.to_json, "csv": report.to_csv}
    out.write(rendered[args.format]().rstrip("\n") + "\n")
    return 0
