"""Secrets with known prefixes: cloud and SaaS keys, tokens, private keys, JWTs.

The rules (what each entity looks like, the checks against false positives)
are listed in :mod:`gateway.judging.sensitivity`. A rule's ``pattern`` is tried
only where one of its prefixes occurs. Prefixes are found through an anchor,
one of their rarer characters: one memchr pass per anchor character finds its
occurrences (shared by every rule), and the character next to each occurrence
picks the few prefixes worth a ``startswith`` there. :func:`secrets_everywhere`
finds the prefixes by plain substring search instead: the reference
:func:`secrets` is tested against.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from gateway.judging.credentials import letters_and_digits, occurrences
from gateway.judging.probe import MARKS, Finding, Probe, match_end


@dataclass(frozen=True, slots=True)
class SecretRule:
    """A secret with known prefixes, each given with its anchor character.

    ``valid`` checks a match further; ``bounded``: the match may not start
    inside a word.
    """

    entity: str
    prefixes: tuple[tuple[str, str], ...]
    pattern: re.Pattern[str]
    valid: Callable[[str], bool] | None = None
    bounded: bool = True


def _jwt_valid(token: str) -> bool:
    header = token.split(".", 1)[0]
    try:
        raw = base64.urlsafe_b64decode(header + "=" * (-len(header) % 4))
        # most lookalikes have no "alg" at all: skip the JSON parser (and its exception)
        decoded = json.loads(raw) if b'"alg"' in raw else None
    except (binascii.Error, ValueError):
        return False
    return isinstance(decoded, dict) and "alg" in decoded


_TAIL = r"(?![A-Za-z0-9_\-])"
SECRET_RULES: tuple[SecretRule, ...] = (
    SecretRule(
        "private_key",
        (("-----BEGIN", "-"),),
        # the header only: the block's extent is found by _private_key_end
        re.compile(r"-----BEGIN ((?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?)-----"),
        bounded=False,
    ),
    SecretRule(
        "jwt",
        (("eyJ", "J"),),
        re.compile(r"eyJ[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]{2,}\.[A-Za-z0-9_\-]*"),
        _jwt_valid,
    ),
    SecretRule(
        "aws_access_key",
        (("AKIA", "K"), ("ASIA", "S")),
        re.compile(r"A[KS]IA[A-Z0-9]{16}" + _TAIL),
    ),
    SecretRule(
        "github_token",
        (*((f"gh{c}_", "_") for c in "pousr"), ("github_pat_", "_")),
        re.compile(r"(?:gh[pousr]_[A-Za-z0-9]{36,251}|github_pat_[A-Za-z0-9_]{22,255})" + _TAIL),
    ),
    SecretRule(
        "gitlab_token",
        (("glpat-", "-"), ("gldt-", "-"), ("glrt-", "-"), ("glptt-", "-")),
        re.compile(r"gl(?:pat|dt|rt|ptt)-[A-Za-z0-9_\-]{20,}"),
    ),
    SecretRule(
        "slack_token",
        (*((f"xox{c}-", "-") for c in "abeprs"), ("https://hooks.slack.com/", ":")),
        re.compile(
            r"(?:xox[abeprs]-[A-Za-z0-9\-]{10,}"
            r"|https://hooks\.slack\.com/(?:services|workflows)/[A-Za-z0-9/_\-]{20,})"
        ),
    ),
    SecretRule("anthropic_key", (("sk-ant-", "-"),), re.compile(r"sk-ant-[A-Za-z0-9_\-]{20,}")),
    SecretRule(
        "openai_key",
        (("sk-", "-"),),
        re.compile(r"sk-(?!ant-)(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,}"),
        lambda s: letters_and_digits(s[3:]),
    ),
    SecretRule(
        "stripe_key",
        (("sk_", "_"), ("rk_", "_")),
        re.compile(r"[sr]k_(?:live|test)_[A-Za-z0-9]{16,}" + _TAIL),
    ),
    SecretRule("google_api_key", (("AIza", "z"),), re.compile(r"AIza[A-Za-z0-9_\-]{35}" + _TAIL)),
)


_Entry = tuple[str, int, SecretRule]
_ByNeighbour = Mapping[str, tuple[_Entry, ...]]


def _by_anchor() -> dict[str, tuple[int, _ByNeighbour, _ByNeighbour]]:
    """anchor -> (its byte, prefixes keyed by the character after the anchor,
    prefixes ending with the anchor keyed by the character before it)."""
    after: dict[str, dict[str, list[_Entry]]] = {}
    before: dict[str, dict[str, list[_Entry]]] = {}
    for rule in SECRET_RULES:
        for prefix, anchor in rule.prefixes:
            if anchor not in MARKS:
                raise ValueError(f"secret anchor {anchor!r} is not one of the probe's marks")
            offset = prefix.index(anchor)
            if offset + 1 < len(prefix):
                side, neighbour = after, prefix[offset + 1]
            else:
                side, neighbour = before, prefix[offset - 1]
            side.setdefault(anchor, {}).setdefault(neighbour, []).append((prefix, offset, rule))
    return {
        anchor: (
            ord(anchor),
            MappingProxyType({k: tuple(v) for k, v in after.get(anchor, {}).items()}),
            MappingProxyType({k: tuple(v) for k, v in before.get(anchor, {}).items()}),
        )
        for anchor in (*after, *(a for a in before if a not in after))
    }


_BY_ANCHOR = MappingProxyType(_by_anchor())


def secrets(probe: Probe, entities: frozenset[str] | None) -> list[Finding]:
    """Findings of every rule (of ``entities`` when given), non-overlapping per entity."""
    text = probe.text
    marks = probe.marks
    candidates: list[tuple[int, SecretRule]] = []
    for anchor, (byte, after, before) in _BY_ANCHOR.items():
        if byte not in marks:
            continue
        for i in probe.positions(anchor):
            near = after.get(text[i + 1 : i + 2], ()) if after else ()
            if before:
                near += before.get(text[i - 1 : i], ())
            for prefix, offset, rule in near:
                start = i - offset
                if (
                    start >= 0
                    and (entities is None or rule.entity in entities)
                    and text.startswith(prefix, start)
                ):
                    candidates.append((start, rule))
    return _confirm(text, candidates) if candidates else []


def secrets_everywhere(probe: Probe, entities: frozenset[str] | None) -> list[Finding]:
    """:func:`secrets` finding each prefix by substring search: the reference."""
    text = probe.text
    candidates = [
        (start, rule)
        for rule in SECRET_RULES
        if entities is None or rule.entity in entities
        for prefix, _ in rule.prefixes
        for start in occurrences(text, prefix)
    ]
    return _confirm(text, candidates)


def _confirm(text: str, candidates: Iterable[tuple[int, SecretRule]]) -> list[Finding]:
    found: list[Finding] = []
    ends: dict[str, int] = {}
    pem: _PemEnds | None = None
    for start, rule in sorted(candidates, key=lambda c: c[0]):
        if start < ends.get(rule.entity, 0):
            continue
        if rule.bounded and start and (text[start - 1].isalnum() or text[start - 1] in "_-"):
            continue
        m = rule.pattern.match(text, start)
        if m is None:
            continue
        end = m.end()
        if rule.entity == "private_key":
            pem = pem or _PemEnds(text)
            end = pem.block_end(m.group(1), end)
        elif rule.valid is not None and not rule.valid(m.group()):
            continue
        ends[rule.entity] = end
        found.append(Finding(rule.entity, start, end))
    return found


#: a truncated PEM block (no END line): its base64 lines, JSON-escaped or not
_PEM_BODY = re.compile(r"(?:(?:\r?\n|\\n)+[A-Za-z0-9+/=]{8,}(?![^\r\n\\]))*")
_PEM_END_LABEL = re.compile(r"-----END ([A-Z0-9 ]*)-----")


class _PemEnds:
    """Where each PEM block of one text ends, with every END line found once.

    A block runs from its BEGIN line through the first END line with the same
    label after it, or, without one, through the base64 lines that follow.
    The END lines are indexed in one pass, so many BEGIN lines without an END
    cost linear time (a lazy regex up to the END line would rescan the rest of
    the text from every BEGIN).
    """

    __slots__ = ("_by_label", "_text")

    def __init__(self, text: str) -> None:
        self._by_label: dict[str, list[int]] = {}
        i = text.find("-----END ")
        while i >= 0:
            m = _PEM_END_LABEL.match(text, i)
            if m is not None:
                self._by_label.setdefault(m.group(1), []).append(m.end())
            i = text.find("-----END ", i + 1)
        self._text = text

    def block_end(self, label: str, header_end: int) -> int:
        ends = self._by_label.get(label)
        if ends:
            # the END line must start at or after the header's end
            k = bisect.bisect_left(ends, header_end + len(label) + 14)
            if k < len(ends):
                return ends[k]
        return match_end(_PEM_BODY, self._text, header_end)
