"""The built-in web console at ``/gateway/console``: something to look at.

One server-rendered page (``console.html``, package data; no build step, no
network): the targets with their availability and why, the loaded policy as
readable tables (aliases; each rule set's rules with when, action and
targets), an explain playground (the page's script calls
``POST /gateway/explain``), spend and savings per team (the script calls
``GET /gateway/spend``) and the last decisions of this replica (facts only,
never text: :mod:`gateway.observability.recent`).

Admin only (:mod:`gateway.api.admin`): the admin key as a bearer header, or
the session cookie the login form sets. Without ``GATEWAY_ADMIN_KEY`` the
console is closed and says how to open it.

Routes: ``GET /gateway/console`` (the page, or the login form),
``POST /gateway/console/login`` (form field ``key``),
``POST /gateway/console/logout``, ``GET /gateway/console/decisions`` (JSON).
"""

from __future__ import annotations

import hmac
import time
from html import escape
from importlib.resources import files
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from gateway.api.admin_auth import closed_cookie, is_admin, require_admin, session_cookie
from gateway.api.render import json_response
from gateway.errors import PayloadTooLarge
from gateway.policy.compiled import CompiledPolicy
from gateway.policy.rules import Rule
from gateway.services import Services
from gateway.targets import ProviderType

PATH = "/gateway/console"
#: the login form's body is one short field
_LOGIN_MAX_BYTES = 4096
_HTML_HEADERS = {
    "cache-control": "no-store",
    # the page's own inline style and script, nothing from anywhere else
    "content-security-policy": (
        "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}

_LOGIN = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Gateway console: log in</title>
<style>body{{font:14px system-ui,sans-serif;background:#f5f7fb;color:#1d2330;display:grid;
place-items:center;height:100vh;margin:0}}form{{background:#fff;border:1px solid #d9dee8;
border-radius:6px;padding:24px;min-width:320px}}h1{{font-size:18px;margin:0 0 12px}}
input,button{{font:inherit;padding:6px 8px;width:100%;margin:6px 0}}button{{background:#2b5fd9;
color:#fff;border:0;border-radius:4px}}.error{{color:#b3261e}}</style></head>
<body><form method="post" action="/gateway/console/login" id="login">
<h1>Gateway console</h1>{message}
<label>Admin key (GATEWAY_ADMIN_KEY)<input type="password" name="key" autocomplete="off" autofocus></label>
<button type="submit">Log in</button></form></body></html>"""

_CLOSED = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Gateway console</title></head>
<body style="font:14px system-ui,sans-serif;padding:24px"><h1>Gateway console</h1>
<p>The console is closed: set <code>GATEWAY_ADMIN_KEY</code> and restart the gateway.</p>
</body></html>"""


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def _html(body: str, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return HTMLResponse(body, status_code=status, headers={**_HTML_HEADERS, **(headers or {})})


def _login_page(message: str = "", status: int = 401) -> Response:
    shown = f'<p class="error" id="login-error">{escape(message)}</p>' if message else ""
    return _html(_LOGIN.format(message=shown), status)


async def console(request: Request) -> Response:
    services = _services(request)
    if not services.settings.admin_key:
        return _html(_CLOSED, 403)
    if not is_admin(request, services):
        return _login_page()
    return _html(await render_page(services))


async def login(request: Request) -> Response:
    services = _services(request)
    key = services.settings.admin_key
    if not key:
        return _html(_CLOSED, 403)
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > _LOGIN_MAX_BYTES:
            raise PayloadTooLarge(f"The login form is over {_LOGIN_MAX_BYTES} bytes.")
    presented = parse_qs(raw.decode("utf-8", "replace")).get("key", [""])[0].strip()
    if not hmac.compare_digest(presented.encode(), key.encode()):
        return _login_page("That is not the admin key.")
    secure = request.url.scheme == "https"
    response = RedirectResponse(PATH, status_code=303)
    response.headers["set-cookie"] = session_cookie(key, secure=secure)
    return response


async def logout(request: Request) -> Response:
    response = RedirectResponse(PATH, status_code=303)
    response.headers["set-cookie"] = closed_cookie()
    return response


async def decisions(request: Request) -> Response:
    services = _services(request)
    require_admin(request, services)
    return json_response({"object": "list", "data": services.recent.newest_first()})


# -- the page ---------------------------------------------------------------------


def _cell(value: Any, css: str = "") -> str:
    attr = f' class="{css}"' if css else ""
    return f"<td{attr}>{escape(str(value))}</td>"


def _pills(items: Any) -> str:
    return "".join(f'<span class="pill">{escape(str(i))}</span>' for i in items) or "-"


def _table(table_id: str, head: list[str], rows: list[str]) -> str:
    heads = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = "".join(rows) or f'<tr><td colspan="{len(head)}" class="muted">none</td></tr>'
    return f'<table id="{table_id}"><thead><tr>{heads}</tr></thead><tbody>{body}</tbody></table>'


def _targets(services: Services, policy: CompiledPolicy) -> str:
    rows = []
    for target in policy.targets.values():
        health = services.target_health(target)
        if target.provider is ProviderType.SIMULATED:
            where = "simulated"
        else:
            where = target.base_url or f"litellm/{target.litellm_provider}"
        if health["available"]:
            state = '<td class="ok">available</td>'
        else:
            state = f'<td class="bad">unavailable: {escape(str(health["reason"]))}</td>'
        probe = health["probe"]
        rows.append(
            "<tr>"
            + _cell(target.name)
            + _cell(target.kind.value)
            + _cell(target.model, "mono")
            + _cell(target.max_sensitivity.label)
            + _cell(where, "mono")
            + _cell(
                f"${target.prices.input_per_mtok:g} / ${target.prices.output_per_mtok:g}", "num"
            )
            + state
            + _cell(probe["detail"] or probe["state"], "muted")
            + "</tr>"
        )
    head = [
        "target",
        "kind",
        "model",
        "max sensitivity",
        "where",
        "$/Mtok in/out",
        "state",
        "probe",
    ]
    return _table("targets-table", head, rows)


def _action(rule: Rule) -> str:
    action = rule.action.value
    if rule.redact is not None:
        which = (
            "every entity"
            if rule.redact.entities is None
            else ", ".join(sorted(rule.redact.entities))
        )
        action += f" (redact {which}{', restore' if rule.redact.restore else ''})"
    if rule.deny_message:
        action += f": {rule.deny_message}"
    return action


def _rule_targets(rule: Rule) -> str:
    if rule.use_alias:
        return "the requested alias's targets"
    if not rule.targets:
        return "-"
    strategy = rule.strategy.value
    return ("" if strategy == "ordered" else f"{strategy}: ") + ", ".join(rule.targets)


def _policy(policy: CompiledPolicy) -> str:
    aliases = [
        "<tr>"
        + _cell(alias.name, "mono")
        + f"<td>{_pills(alias.targets)}</td>"
        + _cell(alias.description or "", "muted")
        + "</tr>"
        for alias in policy.aliases.values()
    ]
    parts = [
        "<h3>Aliases (the models clients may ask for)</h3>",
        _table("aliases-table", ["alias", "targets", "description"], aliases),
    ]
    teams: dict[str, list[str]] = {}
    for team, set_name in policy.teams.items():
        teams.setdefault(set_name, []).append(team)
    for name, rule_set in policy.rule_sets.items():
        used_by = teams.get(name)
        who = f" (teams: {', '.join(sorted(used_by))})" if used_by else ""
        parts.append(f"<h3>Rule set {escape(name)}{escape(who)}: first match wins</h3>")
        rows = [
            "<tr>"
            + _cell(number, "num")
            + _cell(rule.name, "mono")
            + _cell(rule.when.text, "mono")
            + _cell(_action(rule))
            + _cell(_rule_targets(rule))
            + _cell(f"{rule.file.name}:{rule.line}" if rule.file and rule.line else "", "muted")
            + "</tr>"
            for number, rule in enumerate(rule_set.rules, 1)
        ]
        parts.append(
            _table(f"rules-{name}", ["#", "rule", "when", "action", "targets", "where"], rows)
        )
    return "\n".join(parts)


def _decisions(entries: list[dict[str, Any]]) -> str:
    rows = []
    for entry in entries:
        stamp = time.strftime("%H:%M:%S", time.localtime(entry["ts"]))
        cost = sum(entry["estimated_cost_usd"].values())
        rows.append(
            "<tr>"
            + _cell(stamp, "mono")
            + _cell(entry["team"] or "-")
            + _cell(f"{entry['endpoint']} {entry['alias']}", "mono")
            + _cell(entry["level"])
            + f"<td>{_pills(entry['entities'])}</td>"
            + _cell(entry["task"])
            + _cell(entry["rule"], "mono")
            + _cell(entry["action"])
            + f"<td>{_pills(entry['targets'])}</td>"
            + _cell(entry["prompt_tokens"], "num")
            + _cell(f"${cost:.6f}", "num")
            + "</tr>"
        )
    head = ["time", "team", "request", "level", "entities", "task", "rule", "action", "targets"]
    return _table("decisions-table", [*head, "tokens", "est. cost"], rows)


async def render_page(services: Services) -> str:
    """The console page for the policy in force, now."""
    policy = services.policy.policy
    ready, _ = await services.readiness()
    mode = "demo (simulated backends)" if services.settings.demo else "live"
    header = (
        f"{mode} · policy {policy.fingerprint[:12]} from {services.policy.path} · "
        f"state {services.state.backend} · status {ready['status']}"
    )
    problems = ""
    if ready["problems"]:
        items = "".join(f"<li>{escape(p)}</li>" for p in ready["problems"])
        problems = (
            f'<section id="problems"><h2>Problems</h2><ul class="problems">{items}</ul></section>'
        )
    page = files("gateway.api").joinpath("console.html").read_text(encoding="utf-8")
    for marker, html in (
        ("header", escape(header)),
        ("problems", problems),
        ("targets", _targets(services, policy)),
        ("policy", _policy(policy)),
        ("decisions", _decisions(services.recent.newest_first())),
    ):
        page = page.replace(f"<!--{marker}-->", html, 1)
    return page
