"""The ``gateway`` command: serve, policy tools, keys and spend."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

import orjson

from gateway.settings import Settings


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    settings = Settings.from_env(
        policies=getattr(args, "policies", None),
        redis_url=getattr(args, "redis_url", None),
    )
    code: int = args.func(args, settings)
    return code


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gateway",
        description="Hybrid LLM routing gateway: an OpenAI-compatible proxy that routes by "
        "sensitivity, task, cost and budget.",
    )
    parser.add_argument("--version", action="version", version=f"gateway {_version()}")
    commands = parser.add_subparsers(title="commands")

    serve = commands.add_parser("serve", help="run the gateway")
    serve.add_argument("--host", help="bind address (GATEWAY_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (GATEWAY_PORT, default 8080)")
    serve.add_argument(
        "--policies", type=Path, help="policy directory (GATEWAY_POLICIES, default ./policies)"
    )
    serve.add_argument("--redis-url", help="shared state (GATEWAY_REDIS_URL); in memory when unset")
    serve.add_argument(
        "--demo",
        action="store_true",
        help="simulated open and proprietary backends: no keys, no GPU",
    )
    serve.set_defaults(func=_serve)

    from gateway.policy.commands import add_policy_parser

    add_policy_parser(commands)

    from gateway.observability.audit_commands import add_audit_parser

    add_audit_parser(commands)

    keys = commands.add_parser("keys", help="manage API keys").add_subparsers(title="keys commands")
    create = keys.add_parser("create", help="create a key for a team (printed once)")
    create.add_argument("--team", required=True)
    create.add_argument("--rpm", type=int, help="requests per minute for this key")
    create.add_argument("--tpm", type=int, help="tokens per minute for this key")
    create.add_argument("--max-streams", type=int, help="concurrent streams for this key")
    create.add_argument("--budget-usd", type=float, help="the team's budget per period")
    create.add_argument("--period", choices=["day", "month"], default="month")
    create.add_argument("--policy", help="named policy (rule set) for this key")
    create.add_argument("--redis-url", help="shared state (GATEWAY_REDIS_URL)")
    create.set_defaults(func=_keys_create)

    spend = commands.add_parser("spend", help="report spend per team, key and target")
    spend.add_argument("--period", choices=["day", "month"], default="month")
    spend.add_argument("--redis-url", help="shared state (GATEWAY_REDIS_URL)")
    spend.set_defaults(func=_spend)
    return parser


def _version() -> str:
    try:
        return metadata.version("hybrid-llm-gateway")
    except metadata.PackageNotFoundError:  # run from a source tree that is not installed
        return "unknown (not installed)"


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    from gateway.server import run

    settings = settings.with_overrides(
        host=args.host, port=args.port, demo=True if args.demo else None
    )
    return run(settings)


def _need_redis(settings: Settings) -> bool:
    if settings.redis_url:
        return True
    print(
        "error: keys and spend live in Redis: set GATEWAY_REDIS_URL (or pass --redis-url) "
        "to the Redis the gateway uses.",
        file=sys.stderr,
    )
    return False


def _keys_create(args: argparse.Namespace, settings: Settings) -> int:
    if not _need_redis(settings):
        return 1
    from gateway.quota.keys_admin import create_key

    key, record = asyncio.run(
        create_key(
            settings,
            team=args.team,
            rpm=args.rpm,
            tpm=args.tpm,
            max_streams=args.max_streams,
            budget_usd=args.budget_usd,
            period=args.period,
            policy=args.policy,
        )
    )
    print(key)
    print(
        f"key id {record.key_id} for team {record.team!r}; this is the only time the key is shown.",
        file=sys.stderr,
    )
    return 0


def _spend(args: argparse.Namespace, settings: Settings) -> int:
    if not _need_redis(settings):
        return 1
    from gateway.quota.keys_admin import spend_report

    report = asyncio.run(spend_report(settings, args.period))
    sys.stdout.write(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode() + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
