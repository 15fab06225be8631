"""Judging within a time budget, large bodies off the event loop.

:func:`judge` wraps :meth:`FactsBuilder.build <gateway.judging.build.FactsBuilder.build>`:

- A body of at least ``threshold`` bytes is judged in ``executor`` (a small,
  bounded thread pool owned by the services), so that the event loop keeps
  serving other requests while it is scanned. Smaller bodies are judged
  inline: handing them to a thread would cost more than their scan.
- Judging that takes longer than ``budget_s`` fails closed: the request is
  treated as ``restricted``, with the entity :data:`BUDGET_EXCEEDED` (so the
  decision log and metrics say why), never as the level a partial scan
  might have suggested. Off the loop the wait is cut at the budget (a scan
  still queued is cancelled; one already running finishes in its thread, its
  result unused); inline, a scan that overran is judged restricted after the
  fact. A client's declared level cannot lower it.

The detectors are linear in their input (``tests/judging/test_linear.py``),
so a scan's cost is bounded by the body size limit; the budget bounds the
request's wait whatever the detectors (policy regexes and plug-ins included).
Plug-in detectors run in the executor's threads for large bodies: they must
be thread-safe.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from concurrent.futures import Executor
from dataclasses import replace
from functools import partial
from types import MappingProxyType
from typing import Any, TypeVar

from gateway.judging.build import FactsBuilder
from gateway.judging.facts import Facts, Sensitivity, SensitivityRules
from gateway.judging.tokens import estimate_request_tokens
from gateway.levels import Level

#: the entity of a request whose judging ran out of time (level: restricted)
BUDGET_EXCEEDED = "judging_budget_exceeded"

#: the top-level fields facts read besides texts: kept when judging is cut short
_SHAPE_FIELDS = ("model", "stream", "max_tokens", "max_completion_tokens")

R = TypeVar("R", bound=SensitivityRules)


async def judge(
    builder: FactsBuilder[R],
    *,
    size: int,
    threshold: int,
    budget_s: float,
    executor: Executor | None,
    **build: Any,
) -> Facts:
    """The facts of one request (``build``: the keyword arguments of ``FactsBuilder.build``).

    ``size``: the body's size in bytes, compared with ``threshold``; without an
    executor every body is judged inline. Errors of ``build`` (a bad hint
    header) propagate unchanged.
    """
    if executor is None or size < threshold:
        started = time.perf_counter()
        facts = builder.build(**build)
        if time.perf_counter() - started > budget_s:
            return _restricted(facts)
        return facts
    loop = asyncio.get_running_loop()
    work = loop.run_in_executor(executor, partial(builder.build, **build))
    try:
        return await asyncio.wait_for(work, budget_s)
    except TimeoutError:
        return _unjudged(builder, build)


def _restricted(facts: Facts) -> Facts:
    """``facts`` with the level forced to restricted by :data:`BUDGET_EXCEEDED`."""
    entities = tuple(sorted({*facts.sensitivity.entities, BUDGET_EXCEEDED}))
    levels = {**facts.entity_levels, BUDGET_EXCEEDED: Level.RESTRICTED}
    return replace(
        facts,
        sensitivity=Sensitivity(Level.RESTRICTED, entities),
        entity_levels=MappingProxyType(levels),
    )


def _unjudged(builder: FactsBuilder[R], build: Mapping[str, Any]) -> Facts:
    """Restricted facts for a body whose scan did not finish: built from its shape
    (model, stream, limits, whether it has tools) and its token estimate, never
    from its texts."""
    body: Mapping[str, Any] = build["body"]
    shape: dict[str, Any] = {k: body[k] for k in _SHAPE_FIELDS if k in body}
    if body.get("tools") or body.get("functions"):
        shape["tools"] = [{}]
    facts = builder.build(**{**build, "body": shape, "scan": False})
    return replace(_restricted(facts), prompt_tokens=estimate_request_tokens(body))
