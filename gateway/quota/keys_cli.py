"""``gateway keys create|list|show|revoke|rotate|update`` and ``gateway spend``.

The same operations as the admin HTTP API (:class:`gateway.quota.keys_admin.KeysAdmin`),
on the keys file without Redis (``GATEWAY_KEYS_FILE``, ``--keys-file``) or on
Redis with it (``GATEWAY_REDIS_URL``, ``--redis-url``). A new or rotated key
is printed once, alone on stdout (so that ``KEY=$(gateway keys create ...)``
works); everything else goes to stderr. Bad input exits 2 with the reason.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TextIO

import orjson

from gateway.settings import Settings


def _optional_int(text: str) -> int | None:
    if text.strip().lower() in ("none", "unlimited"):
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number (or 'none')") from None


def _optional_float(text: str) -> float | None:
    if text.strip().lower() == "none":
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number (or 'none')") from None


def _optional_text(text: str) -> str | None:
    return None if text.strip().lower() in ("none", "never") else text


def _state_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--redis-url", help="keys in Redis (GATEWAY_REDIS_URL)")
    parser.add_argument(
        "--keys-file",
        type=Path,
        help="without Redis: the keys file (GATEWAY_KEYS_FILE, default ./gateway-keys.json)",
    )


def _key_settings(parser: argparse.ArgumentParser, *, update: bool) -> None:
    unset = argparse.SUPPRESS if update else None
    hint = " ('none' clears it)" if update else ""
    parser.add_argument(
        "--rpm", type=_optional_int, default=unset, help="requests per minute" + hint
    )
    parser.add_argument("--tpm", type=_optional_int, default=unset, help="tokens per minute" + hint)
    parser.add_argument(
        "--max-streams", type=_optional_int, default=unset, help="concurrent streams" + hint
    )
    parser.add_argument(
        "--budget-usd",
        type=_optional_float,
        default=unset,
        help="the team's budget per period" + hint,
    )
    parser.add_argument(
        "--period",
        choices=["day", "month"],
        default=argparse.SUPPRESS if update else "month",
        help="budget period (default month)",
    )
    parser.add_argument("--policy", type=_optional_text, default=unset, help="named rule set")
    parser.add_argument(
        "--expires",
        type=_optional_text,
        default=unset,
        help="when the key stops working: 30d, 12h, 2027-01-31 ('never' clears it)",
    )
    parser.add_argument("--name", type=_optional_text, default=unset, help="a note: holder, use")


def add_keys_parser(commands: Any) -> None:
    keys = commands.add_parser("keys", help="manage API keys (keys file, or Redis)")
    sub = keys.add_subparsers(title="keys commands")

    create = sub.add_parser("create", help="create a key for a team (printed once)")
    create.add_argument("--team", required=True)
    _key_settings(create, update=False)
    _state_options(create)
    create.set_defaults(func=_run(_create))

    listing = sub.add_parser("list", help="list keys (never the keys themselves)")
    listing.add_argument("--team", help="only this team's keys")
    listing.add_argument("--json", action="store_true", help="JSON instead of a table")
    _state_options(listing)
    listing.set_defaults(func=_run(_list))

    for name, helptext, func in (
        ("show", "show one key's record", _show),
        ("revoke", "revoke a key (it stops working on every replica within seconds)", _revoke),
        ("rotate", "replace a key by a new one with the same settings (printed once)", _rotate),
    ):
        command = sub.add_parser(name, help=helptext)
        command.add_argument("key_id", help="the key's id (12 hex characters, see `keys list`)")
        _state_options(command)
        command.set_defaults(func=_run(func))

    update = sub.add_parser("update", help="change a key's limits, budget, team, expiry")
    update.add_argument("key_id")
    update.add_argument("--team", default=argparse.SUPPRESS, help="move the key to this team")
    _key_settings(update, update=True)
    _state_options(update)
    update.set_defaults(func=_run(_update))


Command = Callable[[Any, argparse.Namespace, TextIO], Awaitable[None]]


def _run(command: Command) -> Callable[[argparse.Namespace, Settings], int]:
    def run(args: argparse.Namespace, settings: Settings) -> int:
        from gateway.errors import GatewayError, InvalidRequest

        async def go() -> None:
            from gateway.quota.keys_admin import KeysAdmin, open_state

            state = await open_state(settings)
            try:
                await command(KeysAdmin(state.keys), args, sys.stdout)
            finally:
                await state.aclose()

        try:
            asyncio.run(go())
        except InvalidRequest as exc:
            print(f"error: {exc.message}", file=sys.stderr)
            return 2
        except GatewayError as exc:
            print(f"error: {exc.message}", file=sys.stderr)
            return 1
        return 0

    return run


def _fields(args: argparse.Namespace) -> dict[str, Any]:
    names = (
        "team",
        "rpm",
        "tpm",
        "max_streams",
        "budget_usd",
        "period",
        "policy",
        "expires",
        "name",
    )
    return {n: getattr(args, n) for n in names if hasattr(args, n)}


def _print_created(key: str, view: dict[str, Any], out: TextIO) -> None:
    out.write(key + "\n")
    print(
        f"key id {view['key_id']} for team {view['team']!r}; "
        "this is the only time the key is shown.",
        file=sys.stderr,
    )


async def _create(admin: Any, args: argparse.Namespace, out: TextIO) -> None:
    created = await admin.create(**_fields(args))
    _print_created(created.key, created.view, out)


async def _list(admin: Any, args: argparse.Namespace, out: TextIO) -> None:
    keys = await admin.list(team=args.team)
    if args.json:
        out.write(orjson.dumps(keys, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    columns = ("key_id", "team", "status", "rpm", "tpm", "max_streams", "budget_usd", "expires_at")
    rows = [columns] + [tuple("-" if k[c] is None else str(k[c]) for c in columns) for k in keys]
    widths = [max(len(row[i]) for row in rows) for i in range(len(columns))]
    for row in rows:
        out.write("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        out.write("\n")


async def _show(admin: Any, args: argparse.Namespace, out: TextIO) -> None:
    view = await admin.show(args.key_id)
    out.write(orjson.dumps(view, option=orjson.OPT_INDENT_2).decode() + "\n")


async def _revoke(admin: Any, args: argparse.Namespace, out: TextIO) -> None:
    view = await admin.revoke(args.key_id)
    print(f"key {view['key_id']} revoked", file=sys.stderr)


async def _rotate(admin: Any, args: argparse.Namespace, out: TextIO) -> None:
    created = await admin.rotate(args.key_id)
    _print_created(created.key, created.view, out)
    print(f"the old key {args.key_id} is revoked", file=sys.stderr)


async def _update(admin: Any, args: argparse.Namespace, out: TextIO) -> None:
    fields = _fields(args)
    if not fields:
        raise_usage("nothing to change: pass --rpm, --tpm, --budget-usd, --team, --expires, ...")
    view = await admin.update(args.key_id, **fields)
    out.write(orjson.dumps(view, option=orjson.OPT_INDENT_2).decode() + "\n")


def raise_usage(message: str) -> None:
    from gateway.errors import InvalidRequest

    raise InvalidRequest(message)


def spend_command(args: argparse.Namespace, settings: Settings) -> int:
    """Spend and savings per team, key and target: from a running gateway
    (``--url``), from Redis, or an error saying how to get them."""
    if args.url:
        return _spend_over_http(args.url, args.period, settings.admin_key)
    if not settings.redis_url:
        print(
            "error: without Redis, spend lives in the running gateway's memory: pass "
            "--url http://HOST:PORT (with GATEWAY_ADMIN_KEY set) to ask it, or set "
            "GATEWAY_REDIS_URL to the Redis the gateway uses.",
            file=sys.stderr,
        )
        return 1
    from gateway.quota.keys_admin import spend_report

    report = asyncio.run(spend_report(settings, args.period))
    sys.stdout.write(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode() + "\n")
    return 0


def _spend_over_http(url: str, period: str, admin_key: str | None) -> int:
    if not admin_key:
        print("error: set GATEWAY_ADMIN_KEY to the gateway's admin key.", file=sys.stderr)
        return 1
    request = urllib.request.Request(
        url.rstrip("/") + f"/gateway/spend?period={period}",
        headers={"authorization": f"Bearer {admin_key}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
    except urllib.error.HTTPError as exc:
        print(
            f"error: the gateway answered {exc.code}: {exc.read().decode(errors='replace')}",
            file=sys.stderr,
        )
        return 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"error: cannot reach {url}: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(orjson.dumps(orjson.loads(body), option=orjson.OPT_INDENT_2).decode() + "\n")
    return 0
