"""What will happen, said once at start: one short block of log lines.

:func:`announce` logs, on the ``gateway.startup`` logger, where the gateway
listens, the policy (directory, files, fingerprint), each target (kind,
provider, model, the highest level it may receive, availability and why,
prices), the state backend, the auth mode (open, or how many keys and teams
and where they live: the keys file or Redis), and the warnings an operator
should read before the first request (the policy's own warnings, open mode,
no admin key, state in one process only). It waits a moment (at most
``probe_wait_s``) for the first round of target probes so that availability
is known rather than guessed; a target still being probed says so. Keys
are counted page by page (SSCAN with Redis) for at most ``KEY_COUNT_WAIT_S``:
past it, the line says the count is not known rather than delay start-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from gateway import __version__
from gateway.services import Services
from gateway.state.base import StateUnavailable
from gateway.state.key_file import FileKeyStore
from gateway.targets import ProviderType, Target
from gateway.upstream.probe import ProbeState

log = logging.getLogger("gateway.startup")

#: how long the summary waits for the first probe round
PROBE_WAIT_S = 1.5
#: how long the summary may spend counting keys
KEY_COUNT_WAIT_S = 0.5


def _where(target: Target) -> str:
    if target.provider is ProviderType.SIMULATED:
        return "simulated"
    if target.provider is ProviderType.LITELLM:
        where = f"litellm/{target.litellm_provider}" if target.litellm_provider else "litellm"
        return f"{where} at {target.base_url}" if target.base_url else where
    return f"openai-compatible at {target.base_url}"


def _prices(target: Target) -> str:
    prices = target.prices
    text = f"${prices.input_per_mtok:g}/${prices.output_per_mtok:g} per Mtok in/out"
    # the price's provenance, when the policy loader records one
    source = getattr(target, "price_source", None)
    return f"{text} ({source})" if source else text


def target_line(services: Services, target: Target) -> str:
    health = services.target_health(target)
    probe = health["probe"]
    if not health["available"]:
        state = f"UNAVAILABLE: {health['reason']}"
    elif probe["state"] == ProbeState.UNKNOWN:
        state = "available as far as known (still being probed)"
    else:
        state = f"available ({probe['detail']})"
    return (
        f"target {target.name}: {target.kind.value}, {_where(target)}, model {target.model}, "
        f"up to {target.max_sensitivity.label}, {_prices(target)}; {state}"
    )


def _key_source(services: Services) -> str:
    keys = services.state.keys
    if isinstance(keys, FileKeyStore):
        return f"file {keys.path}"
    if services.state.backend == "memory":
        return "memory (this process only)"
    return services.state.backend


async def auth_line(services: Services, has_keys: bool, *, wait_s: float = KEY_COUNT_WAIT_S) -> str:
    """``auth: keys (N keys, M teams; source: …)`` or ``auth: open (…)``."""
    source = _key_source(services)
    if not has_keys:
        return f"auth: open (no keys configured; source: {source}; see the warning below)"
    usable, other, teams, seen = 0, 0, set(), set()
    now, deadline = time.time(), time.monotonic() + wait_s
    try:
        async with asyncio.timeout(wait_s):
            async for page in services.state.keys.key_pages():
                if time.monotonic() > deadline:  # pages that came without a wait
                    raise TimeoutError
                for record in page:
                    if record.key_id in seen:  # SSCAN may return a member twice
                        continue
                    seen.add(record.key_id)
                    if record.usable(now):
                        usable += 1
                        teams.add(record.team)
                    else:
                        other += 1
    except TimeoutError:
        return f"auth: keys (count not known within {wait_s:g} s; source: {source})"
    except StateUnavailable:
        return f"auth: keys (count unavailable: the state backend failed; source: {source})"
    unusable = f", {other} revoked or expired" if other else ""
    return (
        f"auth: keys ({usable} {'key' if usable == 1 else 'keys'}, "
        f"{len(teams)} {'team' if len(teams) == 1 else 'teams'}{unusable}; source: {source})"
    )


async def announce(services: Services, *, probe_wait_s: float = PROBE_WAIT_S) -> list[str]:
    """Log the start-up block (and return its lines, for tests)."""
    settings = services.settings
    if services.settings.probe_interval_s > 0:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(probe_wait_s):
                await services.prober.first_round.wait()
    policy = services.policy.policy
    mode = "DEMO: simulated backends" if settings.demo else "live"
    loop = (
        "uvloop" if type(asyncio.get_running_loop()).__module__.startswith("uvloop") else "asyncio"
    )
    lines = [
        f"gateway {__version__} listening on http://{settings.host}:{settings.port} ({mode}, {loop})",
        f"policy {services.policy.path} ({len(policy.files)} files, fingerprint "
        f"{policy.fingerprint[:12]}): {len(policy.aliases)} aliases, {len(policy.rules())} rules",
    ]
    lines.extend(target_line(services, target) for target in policy.targets.values())
    state = services.state.backend
    if state == "memory":
        lines.append("state: in memory (this process only; GATEWAY_REDIS_URL shares it)")
    else:
        ok = await services.state.ping()
        lines.append(f"state: {state} ({'answering' if ok else 'NOT ANSWERING'})")
    has_keys = await services.auth.has_keys()
    lines.append(await auth_line(services, has_keys))
    warnings = [" ".join(str(problem).split()) for problem in policy.warnings]
    if not has_keys:
        warnings.append(
            "NO API KEYS ARE CONFIGURED: the gateway is OPEN to anyone who can reach it. "
            "Create keys with `gateway keys create --team NAME`."
        )
    if not settings.admin_key:
        warnings.append("no GATEWAY_ADMIN_KEY: /gateway/spend and /gateway/console are closed")
    if settings.probe_interval_s <= 0:
        warnings.append(
            "target probes are off (GATEWAY_PROBE_INTERVAL_S=0): /readyz cannot see a target down"
        )
    services.prober.announced = True
    for line in lines:
        log.info("%s", line)
    for warning in warnings:
        log.warning("%s", warning)
    return lines + [f"warning: {w}" for w in warnings]
