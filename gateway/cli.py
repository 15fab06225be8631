"""The ``gateway`` command: serve, policy tools, facts eval, keys and spend."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

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
        keys_file=getattr(args, "keys_file", None),
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

    from gateway.policy.facts_commands import add_facts_parser

    add_facts_parser(commands)

    from gateway.quota.keys_cli import add_keys_parser

    add_keys_parser(commands)

    spend = commands.add_parser("spend", help="report spend per team, key and target")
    spend.add_argument("--period", choices=["day", "month"], default="month")
    spend.add_argument("--redis-url", help="shared state (GATEWAY_REDIS_URL)")
    spend.add_argument(
        "--url",
        help="ask a running gateway (its /gateway/spend, with GATEWAY_ADMIN_KEY) instead of "
        "Redis: the way to see an embedded gateway's in-memory spend",
    )
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


def _spend(args: argparse.Namespace, settings: Settings) -> int:
    from gateway.quota.keys_cli import spend_command

    return spend_command(args, settings)


if __name__ == "__main__":
    raise SystemExit(main())
