"""The response cache's rules: what makes two requests the same answer, when
the cache is read or written, and when an entry may be served.

The key is described below; an entry is served only where invariant 1 of
docs/invariants.md holds (see :func:`may_serve`).

The key is a SHA-256 over:

* the cache scope: the team (entries are never shared across teams unless
  the rule says ``shared: true``),
* the endpoint and whether the answer is streamed (the formats differ),
* the decision's targets and their models, in order (the same ordered targets
  resolve to the same answering target),
* every request field that can change the answer: messages / prompt / input,
  sampling parameters, tools, response format, n, seed, stop, …

Fields that cannot change the answer are left out: ``stream_options``,
``user``, ``metadata``, ``store``, ``service_tier``. The body hashed is the
one sent upstream, i.e. after redaction, so two requests differing only in a
redacted value share an entry (and each gets its own values restored).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import orjson

from gateway.policy.model import CacheMode, CacheSpec, Decision
from gateway.state.base import CachedResponse
from gateway.targets import Target
from gateway.upstream.provider import Usage

_IGNORED = frozenset(
    {"stream", "stream_options", "user", "metadata", "store", "service_tier", "model"}
)


def is_deterministic(body: Mapping[str, Any]) -> bool:
    """Temperature 0, or a fixed seed: the same request gives the same answer."""
    temperature = body.get("temperature")
    if (
        isinstance(temperature, int | float)
        and not isinstance(temperature, bool)
        and temperature == 0
    ):
        return True
    seed = body.get("seed")
    return isinstance(seed, int) and not isinstance(seed, bool)


def cacheable(mode: CacheMode, body: Mapping[str, Any]) -> bool:
    if mode is CacheMode.NEVER:
        return False
    return mode is CacheMode.ALWAYS or is_deterministic(body)


def cache_key(
    *,
    scope: str,
    endpoint: str,
    stream: bool,
    targets: list[Target],
    body: Mapping[str, Any],
) -> str:
    material = {
        "scope": scope,
        "endpoint": endpoint,
        "stream": stream,
        "targets": [(t.name, t.model) for t in targets],
        "body": {k: v for k, v in body.items() if k not in _IGNORED},
    }
    encoded = orjson.dumps(material, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    return hashlib.sha256(encoded).hexdigest()


def cache_keys(
    spec: CacheSpec,
    headers: Mapping[str, str],
    *,
    team: str | None,
    endpoint: str,
    stream: bool,
    targets: list[Target],
    body: Mapping[str, Any],
) -> tuple[str | None, str | None]:
    """(key to read, key to write); None skips that side.

    ``Cache-Control: no-store`` skips the cache, ``no-cache`` skips the read only;
    the rule's mode decides which requests are cacheable at all."""
    directives = headers.get("cache-control", "").lower()
    if "no-store" in directives or not cacheable(spec.mode, body):
        return None, None
    key = cache_key(
        scope="*" if spec.shared else f"team:{team or '-'}",
        endpoint=endpoint,
        stream=stream,
        targets=targets,
        body=body,
    )
    return (None if "no-cache" in directives else key), key


def may_serve(decision: Decision, targets: Mapping[str, Target], entry: CachedResponse) -> bool:
    """Invariant 1 (docs/invariants.md) on a hit: the entry's target must be one
    this decision allows, and it must be allowed to receive this request's data."""
    if entry.target not in decision.targets:
        return False
    target = targets.get(entry.target)
    return (
        target is not None
        and target.may_receive(decision.level)
        and entry.level <= int(decision.level)
    )


def entry_for(
    decision: Decision,
    target: Target,
    usage: Usage | None,
    *,
    body: bytes | None = None,
    chunks: tuple[bytes, ...] = (),
    now: float,
) -> CachedResponse:
    return CachedResponse(
        target=target.name,
        level=int(decision.level),
        body=body,
        chunks=chunks,
        prompt_tokens=usage.prompt_tokens if usage else 0,
        completion_tokens=usage.completion_tokens if usage else 0,
        created_at=now,
    )
