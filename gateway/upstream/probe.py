"""Background probes: is each target reachable, and does it serve its model?

:class:`Prober` asks every OpenAI-compatible target ``GET {base_url}/models``
(with the target's own headers and key) every ``interval_s``, over the
gateway's own HTTP client, and keeps the last :class:`Health` of each.
Readiness and the start-up summary read it; routing does not (the circuit
breakers judge targets from real traffic), so a probe can never send a
request anywhere nor hold one up.

What a probe concludes, in words an operator can act on:

* the model is in the server's list                    -> ``up``
* the server lists other models                        -> ``down``: "model 'x' not listed by the
  server (it lists: a, b)"
* 404/405 (the server has no model list)               -> ``up``, reachable, the model unchecked
* 401/403                                              -> ``down``: the credentials were refused
* another HTTP error, a timeout, no connection         -> ``down``: "connection refused at
  http://localhost:8000/v1", "no answer within 5 s from ..."
* simulated targets are ``up`` (in-process); litellm targets are ``not_probed``
  (litellm speaks each vendor's own API); a target whose key is unset is
  ``down`` with that reason, and is never called.

Targets that share a base URL and credentials (several models of one
server) cost one request per round.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import orjson

from gateway.targets import ProviderType, Target, Timeouts
from gateway.upstream.http1 import (
    Client,
    ConnectFailed,
    HTTPClientError,
    InvalidRequest,
    Request,
    RequestTimeout,
)

log = logging.getLogger("gateway.upstream")

#: the longest a probe waits for an answer (a probe must not take a round's length)
PROBE_TIMEOUT_S = 5.0
#: how many model names an error message quotes
_LISTED_IN_MESSAGE = 8


class ProbeState(StrEnum):
    UNKNOWN = "unknown"  # not probed yet
    UP = "up"
    DOWN = "down"
    NOT_PROBED = "not_probed"


@dataclass(frozen=True, slots=True)
class Health:
    """The last probe of one target. ``detail`` says what was found, in words."""

    state: ProbeState
    detail: str | None = None
    #: wall-clock time of the probe
    checked_at: float | None = None

    @property
    def down(self) -> bool:
        return self.state is ProbeState.DOWN

    def to_dict(self) -> dict[str, Any]:
        return {"state": self.state.value, "detail": self.detail, "checked_at": self.checked_at}


@dataclass(frozen=True, slots=True)
class _Listing:
    """What one ``GET /models`` gave: the model ids, or why there are none."""

    models: tuple[str, ...] | None
    #: a failure (the target is down) when set
    error: str | None = None
    #: the server has no model list: reachable, the model cannot be checked
    unlisted: bool = False


def _key(target: Target) -> tuple[str, str, str | None, str | None]:
    return (target.name, target.model, target.base_url, target.unavailable_reason)


def _listing_key(target: Target) -> tuple[str, str | None, tuple[tuple[str, str], ...]]:
    return (target.base_url or "", target.api_key, target.headers)


def _not_probed(target: Target) -> Health | None:
    """The health of a target that is not called to know it, or ``None``."""
    if target.unavailable_reason is not None:
        return Health(ProbeState.DOWN, target.unavailable_reason, time.time())
    if target.provider is ProviderType.SIMULATED:
        return Health(ProbeState.UP, "simulated (in-process)", time.time())
    if target.provider is ProviderType.LITELLM:
        via = (
            f"litellm provider {target.litellm_provider}" if target.litellm_provider else "litellm"
        )
        return Health(ProbeState.NOT_PROBED, f"not probed ({via})", None)
    if not target.base_url:
        return Health(ProbeState.DOWN, "no base_url", time.time())
    return None


def _served(model: str, listed: tuple[str, ...]) -> bool:
    # Ollama lists "llama3:latest" for a model asked for as "llama3"
    return model in listed or f"{model}:latest" in listed


def _verdict(target: Target, listing: _Listing) -> Health:
    now = time.time()
    if listing.error is not None:
        return Health(ProbeState.DOWN, listing.error, now)
    if listing.unlisted or listing.models is None:
        return Health(ProbeState.UP, "reachable; the server does not list its models", now)
    if _served(target.model, listing.models):
        return Health(ProbeState.UP, f"model {target.model!r} listed", now)
    shown = ", ".join(listing.models[:_LISTED_IN_MESSAGE]) or "nothing"
    if len(listing.models) > _LISTED_IN_MESSAGE:
        shown += f", ... ({len(listing.models)} in all)"
    return Health(
        ProbeState.DOWN, f"model {target.model!r} not listed by the server (it lists: {shown})", now
    )


def _models(body: bytes) -> tuple[str, ...] | None:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    entries = data.get("data") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        return None
    return tuple(str(entry["id"]) for entry in entries if isinstance(entry, dict) and "id" in entry)


class Prober:
    """Probes targets in the background and remembers the last health of each."""

    def __init__(self, *, client: Client | None = None, timeout_s: float = PROBE_TIMEOUT_S) -> None:
        self._client = client or Client(limit=16, keepalive_s=60.0)
        self._timeout_s = timeout_s
        self._health: dict[str, tuple[tuple[str, str, str | None, str | None], Health]] = {}
        #: set once the first round of :meth:`run` is done (the start-up summary waits a little)
        self.first_round = asyncio.Event()
        #: until the start-up summary is logged, a target's first result is left to it
        #: (logged there, with the rest); after, a late first result is logged here
        self.announced = False

    def health(self, target: Target) -> Health:
        """The last health of ``target`` (``unknown`` until its first probe)."""
        entry = self._health.get(target.name)
        if entry is not None and entry[0] == _key(target):
            return entry[1]
        return _not_probed(target) or Health(ProbeState.UNKNOWN)

    async def probe_all(self, targets: Iterable[Target]) -> dict[str, Health]:
        """Probe each target once (concurrently); remember and return the results."""
        targets = list(targets)
        keys: list[tuple[str, str | None, tuple[tuple[str, str], ...]]] = []
        firsts: list[Target] = []
        for target in targets:
            if _not_probed(target) is None and _listing_key(target) not in keys:
                keys.append(_listing_key(target))
                firsts.append(target)
        # gather: cancelling the round cancels every probe in it
        listings = dict(zip(keys, await asyncio.gather(*map(self._list, firsts)), strict=True))
        results: dict[str, Health] = {}
        for target in targets:
            fixed = _not_probed(target)
            if fixed is not None:
                self._health[target.name] = (_key(target), fixed)
                health = fixed
            else:
                health = _verdict(target, listings[_listing_key(target)])
                self._remember(target, health)
            results[target.name] = health
        return results

    def _remember(self, target: Target, health: Health) -> None:
        """Keep ``health``; log a target going down (or failing differently) and coming back."""
        previous = self._health.get(target.name)
        before = previous[1] if previous is not None and previous[0] == _key(target) else None
        self._health[target.name] = (_key(target), health)
        if before is None and not self.announced:
            return
        if health.down and (before is None or before.detail != health.detail):
            log.warning("target %s is down: %s", target.name, health.detail)
        elif before is not None and before.down and health.state is ProbeState.UP:
            log.info("target %s is up again: %s", target.name, health.detail)

    async def _list(self, target: Target) -> _Listing:
        base = (target.base_url or "").rstrip("/")
        url = f"{base}/models"
        headers = [("accept", "application/json")]
        if target.api_key:
            headers.append(("authorization", f"Bearer {target.api_key}"))
        headers.extend(target.headers)
        timeouts = Timeouts(
            connect=min(target.timeouts.connect, self._timeout_s),
            first_byte=self._timeout_s,
            total=self._timeout_s,
        )
        try:
            request = Request(url, headers, method="GET")
            response = await self._client.fetch(request, b"", timeouts)
        except InvalidRequest as exc:
            return _Listing(None, f"cannot be called: {exc}")
        except ConnectFailed as exc:
            return _Listing(None, f"{exc} at {target.base_url}")
        except RequestTimeout as exc:
            wait = timeouts.connect if exc.phase == "connect" else self._timeout_s
            what = "no connection" if exc.phase == "connect" else "no answer"
            return _Listing(None, f"{what} within {wait:g} s from {target.base_url}")
        except HTTPClientError as exc:
            return _Listing(None, f"{type(exc).__name__}: {exc} from {url}")
        status = response.status
        if status in (404, 405):
            return _Listing(None, unlisted=True)
        if status in (401, 403):
            return _Listing(
                None, f"the server refused the gateway's credentials (HTTP {status} from {url})"
            )
        if status >= 400:
            return _Listing(None, f"HTTP {status} from GET {url}")
        models = _models(response.body)
        if models is None:
            return _Listing(None, unlisted=True)
        return _Listing(models)

    async def run(self, targets: Callable[[], Iterable[Target]], interval_s: float) -> None:
        """Probe ``targets()`` (the policy in force) now and then every ``interval_s``,
        until cancelled."""
        while True:
            try:
                await self.probe_all(targets())
            except Exception:  # a bug here must not stop the probes for good (logged)
                log.exception("target probes failed; trying again in %g s", interval_s)
            self.first_round.set()
            await asyncio.sleep(interval_s)

    async def aclose(self) -> None:
        await self._client.aclose()
