"""What a secret format is: :class:`SecretRule`, and :func:`rule` to declare one.

A rule is found through its literal prefixes (see :mod:`gateway.judging.secrets`
for the anchor search); ``pattern`` is matched where a prefix starts (or, with
``before``, where the text in the ``lead`` characters before the prefix starts).
The documentation fields (``name``, ``source``, ``check``) feed docs/secrets.md.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

#: a token ends where its alphabet does
TAIL = r"(?![A-Za-z0-9_\-])"
B64_TAIL = r"(?![A-Za-z0-9+/=])"


@dataclass(frozen=True, slots=True)
class SecretRule:
    """One secret format.

    ``proof``: a check (checksum, decoding) that, when it holds, makes the match
    certain, skipping the placeholder judgement; ``valid``: a check the match
    must pass; ``bounded``: the match may not start inside a word; ``before``:
    a regex ending with ``\\Z`` the ``lead`` characters before the prefix must
    end with (the format's start precedes its literal part); ``placeholders``:
    whether the placeholder judgement applies (to the ``body`` group, or to the
    match after its prefix).
    """

    entity: str
    name: str
    prefixes: tuple[str, ...]
    pattern: re.Pattern[str]
    source: str
    check: str
    valid: Callable[[str], bool] | None = None
    proof: Callable[[str], bool] | None = None
    bounded: bool = True
    before: re.Pattern[str] | None = None
    lead: int = 0
    placeholders: bool = True


def rule(
    entity: str,
    name: str,
    prefixes: str | tuple[str, ...],
    pattern: str,
    source: str,
    check: str = "prefix, length and alphabet",
    *,
    valid: Callable[[str], bool] | None = None,
    proof: Callable[[str], bool] | None = None,
    bounded: bool = True,
    before: str | None = None,
    lead: int = 0,
    placeholders: bool = True,
) -> SecretRule:
    return SecretRule(
        entity,
        name,
        (prefixes,) if isinstance(prefixes, str) else prefixes,
        re.compile(pattern),
        source,
        check,
        valid,
        proof,
        bounded,
        re.compile(before) if before else None,
        lead,
        placeholders,
    )
