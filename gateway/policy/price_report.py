"""Where each target's prices come from: logged at start and on reload, shown in ``/readyz``.

A proprietary target whose price nobody knows (``unknown``) counts as $0:
its spend is invisible and budgets never bite on it, so it is logged as a
warning, listed under ``/readyz``'s ``prices.unknown`` and reported by
``gateway policy check``. A price file that could not be read is listed
under ``prices.errors``; the gateway runs on with the prices it has.
"""

from __future__ import annotations

import logging
from typing import Any

from gateway.judging.prices import PriceBook
from gateway.policy.compiled import CompiledPolicy
from gateway.targets import PriceSource

log = logging.getLogger("gateway.prices")


def price_sources(policy: CompiledPolicy) -> dict[str, str]:
    """Target name -> ``declared`` | ``litellm`` | ``free`` | ``unknown``."""
    return {name: t.price_source.value for name, t in policy.targets.items()}


def log_price_sources(policy: CompiledPolicy, book: PriceBook | None) -> None:
    for name, target in policy.targets.items():
        prices = target.prices
        level = logging.WARNING if target.price_source is PriceSource.UNKNOWN else logging.INFO
        log.log(
            level,
            "target %s (%s) priced from %s: $%g/$%g per Mtok in/out",
            name,
            target.model,
            target.price_source.value,
            prices.input_per_mtok,
            prices.output_per_mtok,
        )
    for error in book.errors if book is not None else ():
        log.error("%s; prices from it are not used", error)


def price_readiness(policy: CompiledPolicy, book: PriceBook | None) -> dict[str, Any]:
    """The ``prices`` section of ``/readyz``."""
    return {
        "sources": price_sources(policy),
        "unknown": sorted(
            name for name, t in policy.targets.items() if t.price_source is PriceSource.UNKNOWN
        ),
        "errors": list(book.errors) if book is not None else [],
    }
