"""Client headers that are forwarded to a target, and the grammar each must meet.

A forwarded header is part of what is sent, so it is judged like the body: its
value must parse in full under a narrow grammar (anything else is a 400, never
passed on), and the facts builder scans the value with every detector
(:meth:`gateway.judging.build.FactsBuilder.build`). Today these are Anthropic's
``anthropic-version`` (a date) and ``anthropic-beta`` (comma-separated feature
names, each ending in a date, such as ``prompt-caching-2024-07-31``); they go to
Anthropic targets only (:mod:`gateway.upstream.dialect`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from gateway.errors import InvalidRequest

ANTHROPIC_VERSION = "anthropic-version"
ANTHROPIC_BETA = "anthropic-beta"
#: lower-case names of every client header that may be forwarded
FORWARDED = (ANTHROPIC_VERSION, ANTHROPIC_BETA)

_DATE = r"20\d\d-[01]\d-[0-3]\d"
_VERSION = re.compile(_DATE)
#: a feature name: lower-case words joined by hyphens, ending in its release date
_BETA = re.compile(rf"[a-z][a-z0-9]{{0,23}}(?:-[a-z0-9]{{1,24}}){{0,7}}-{_DATE}")
#: more beta features than this in one request is not a client, it is a channel
MAX_BETAS = 16


def forwarded_headers(headers: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """The forwardable headers among ``headers`` (lower-case names), validated.

    Raises :class:`InvalidRequest` naming the header when a value does not parse."""
    out: list[tuple[str, str]] = []
    version = headers.get(ANTHROPIC_VERSION)
    if version is not None:
        version = version.strip()
        if not _VERSION.fullmatch(version):
            raise _invalid(ANTHROPIC_VERSION, "a date such as 2023-06-01")
        out.append((ANTHROPIC_VERSION, version))
    beta = headers.get(ANTHROPIC_BETA)
    if beta is not None:
        names = [name.strip() for name in beta.split(",") if name.strip()]
        if len(names) > MAX_BETAS or not all(_BETA.fullmatch(name) for name in names):
            raise _invalid(
                ANTHROPIC_BETA,
                f"at most {MAX_BETAS} comma-separated feature names such as "
                "prompt-caching-2024-07-31",
            )
        if names:
            out.append((ANTHROPIC_BETA, ",".join(dict.fromkeys(names))))
    return tuple(out)


def _invalid(name: str, expected: str) -> InvalidRequest:
    return InvalidRequest(
        f"header {name}: the value is not {expected}", param=name, code="invalid_header"
    )
