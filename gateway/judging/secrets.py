"""Secrets with known prefixes: cloud and SaaS keys, tokens, private keys, JWTs.

The formats are in :mod:`gateway.judging.secret_formats` and its siblings
``secret_formats_cloud``, ``secret_formats_saas`` and ``secret_formats_keys``
(docs/secrets.md lists them). A
rule's ``pattern`` is tried only where one of its prefixes occurs. Prefixes are
found through an anchor, their rarest character (:data:`ANCHOR_ORDER`): one
memchr pass per anchor character finds its occurrences (shared by every rule),
and the character next to each occurrence picks the few prefixes worth a
``startswith`` there. :func:`secrets_everywhere` finds the prefixes by plain
substring search instead: the reference :func:`secrets` is tested against.

A match then passes, in order: the rule's ``proof`` (a checksum that holds
makes it certain), else the placeholder judgement of its variable part
(:func:`gateway.judging.placeholders.is_placeholder`: ``AKIAIOSFODNN7EXAMPLE``,
``ghp_xxxx…`` are not secrets), then the rule's ``valid`` check.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Mapping
from types import MappingProxyType

from gateway.judging.credentials import occurrences
from gateway.judging.placeholders import is_placeholder, is_published_sample
from gateway.judging.probe import MARKS, Finding, Probe, match_end
from gateway.judging.secret_formats import CHAT, PAYMENT, VCS_AND_CI
from gateway.judging.secret_formats_cloud import CLOUD
from gateway.judging.secret_formats_keys import KEYS, OBSERVABILITY
from gateway.judging.secret_formats_saas import AI, REGISTRIES, SAAS
from gateway.judging.secret_rule import SecretRule

SECRET_RULES: tuple[SecretRule, ...] = (
    *KEYS, *CLOUD, *VCS_AND_CI, *PAYMENT, *CHAT, *AI, *REGISTRIES, *OBSERVABILITY, *SAAS,
)  # fmt: skip
_PEM = KEYS[0]

#: the characters a prefix may be found through, rarest in ordinary text first; a
#: prefix with none of them is found from the digit runs (:attr:`Probe.runs`)
ANCHOR_ORDER = "~$_@|JzQK/-:SA."
_DIGITS = "0123456789"
_ALNUM = _DIGITS + "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def anchor_of(prefix: str) -> str:
    """The character ``prefix`` is found through: its rarest one in :data:`ANCHOR_ORDER`,
    else its first digit."""
    for ch in ANCHOR_ORDER:
        if ch in prefix:
            return ch
    for ch in prefix:
        if ch in _DIGITS:
            return ch
    raise ValueError(f"secret prefix {prefix!r} has no anchor character ({ANCHOR_ORDER!r})")


_Entry = tuple[str, int, SecretRule]
_ByNeighbour = Mapping[str, tuple[_Entry, ...]]


def _by_run() -> dict[str, tuple[_Entry, ...]]:
    """Prefixes found from a digit run: keyed by the character before the run."""
    by: dict[str, list[_Entry]] = {}
    for rule in SECRET_RULES:
        for prefix in rule.prefixes:
            anchor = anchor_of(prefix)
            if anchor in _DIGITS:
                offset = prefix.index(anchor)
                if offset == 0 or prefix[offset - 1] in _DIGITS:
                    raise ValueError(f"secret prefix {prefix!r}: its first digit starts it")
                by.setdefault(prefix[offset - 1], []).append((prefix, offset, rule))
    return {k: tuple(v) for k, v in by.items()}


def _by_anchor() -> dict[str, tuple[int, _ByNeighbour, _ByNeighbour]]:
    """anchor -> (its byte, prefixes keyed by the character after the anchor,
    prefixes ending with the anchor keyed by the character before it)."""
    after: dict[str, dict[str, list[_Entry]]] = {}
    before: dict[str, dict[str, list[_Entry]]] = {}
    for rule in SECRET_RULES:
        for prefix in rule.prefixes:
            anchor = anchor_of(prefix)
            if anchor in _DIGITS:
                continue
            if anchor not in MARKS or (len(prefix) < 2 and rule.before is None):
                raise ValueError(f"secret prefix {prefix!r}: anchor {anchor!r} is not a probe mark")
            offset = prefix.index(anchor)
            if len(prefix) == 1:
                # the anchor alone: its rule's ``before`` decides; any letter or digit before it
                for neighbour in _ALNUM:
                    before.setdefault(anchor, {}).setdefault(neighbour, []).append(
                        (prefix, 0, rule)
                    )
                continue
            if offset + 1 < len(prefix) and prefix[offset + 1].isspace():
                raise ValueError(f"secret prefix {prefix!r}: white space after its anchor")
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
        for anchor in ANCHOR_ORDER
        if anchor in after or anchor in before
    }


_BY_ANCHOR = MappingProxyType(_by_anchor())
_BY_RUN = MappingProxyType(_by_run())

_Candidate = tuple[int, int, SecretRule]  # (prefix start, prefix length, rule)


def secrets(probe: Probe, entities: frozenset[str] | None) -> list[Finding]:
    """Findings of every rule (of ``entities`` when given), non-overlapping per entity."""
    text = probe.text
    marks = probe.marks
    candidates: list[_Candidate] = []
    for anchor, (byte, after, before) in _BY_ANCHOR.items():
        if byte not in marks:
            continue
        # an anchor followed by white space starts no prefix, and no token after it
        for i in probe.tight(anchor):
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
                    candidates.append((start, len(prefix), rule))
    if _BY_RUN and probe.has_digits:
        # the runs after one of the few characters a run prefix has before its digits
        run_starts = [s for s, _ in probe.runs if text[s - 1 : s] in _BY_RUN]
        for run_start in run_starts:
            for prefix, offset, rule in _BY_RUN[text[run_start - 1 : run_start]]:
                start = run_start - offset
                if (
                    start >= 0
                    and (entities is None or rule.entity in entities)
                    and text.startswith(prefix, start)
                ):
                    candidates.append((start, len(prefix), rule))
    return _confirm(text, candidates) if candidates else []


def secrets_everywhere(probe: Probe, entities: frozenset[str] | None) -> list[Finding]:
    """:func:`secrets` finding each prefix by substring search: the reference."""
    text = probe.text
    candidates = [
        (start, len(prefix), rule)
        for rule in SECRET_RULES
        if entities is None or rule.entity in entities
        for prefix in rule.prefixes
        for start in occurrences(text, prefix)
    ]
    return _confirm(text, candidates)


def _confirm(text: str, candidates: Iterable[_Candidate]) -> list[Finding]:
    found: list[Finding] = []
    ends: dict[str, int] = {}
    pem: _PemEnds | None = None
    for prefix_start, size, rule in sorted(candidates, key=lambda c: c[0]):
        start = prefix_start
        if rule.before is not None:
            low = max(0, start - rule.lead)
            lead = rule.before.search(text[low:start])
            if lead is None:
                continue
            start = low + lead.start()
        if start < ends.get(rule.entity, 0):
            continue
        if rule.bounded and start and (text[start - 1].isalnum() or text[start - 1] in "_-"):
            continue
        m = rule.pattern.match(text, prefix_start)
        if m is None:
            continue
        end = m.end()
        value = text[start:end]
        if rule is _PEM:
            pem = pem or _PemEnds(text)
            end = pem.block_end(m.group(1), end)
            if not _pem_body(text[m.end() : end]):
                continue
        elif is_published_sample(value):
            continue
        elif not (rule.proof is not None and rule.proof(value)):
            if rule.placeholders:
                body = m.group("body") if "body" in rule.pattern.groupindex else None
                if is_placeholder(body if body is not None else value[size:] or value):
                    continue
            if rule.valid is not None and not rule.valid(value):
                continue
        ends[rule.entity] = end
        found.append(Finding(rule.entity, start, end))
    return found


_BASE64_RUN = re.compile(r"[A-Za-z0-9+/]{4,}")
_PEM_FILLER = re.compile(r"\.\.\.|…|[xX]{4}|<[^>]*>|REDACTED|redacted|\*{3}")


def _pem_body(block: str) -> bool:
    """Whether a PEM block (after its BEGIN line) holds key material: a base64 run with
    capitals, not a filler ("...", "<your key>", "anything"). A header alone (the
    block cut off) counts: what follows it is not in this text."""
    end = block.find("-----END ")
    if end < 0:
        return True
    body = block[:end]
    if _PEM_FILLER.search(body):
        return False
    return any(not run.islower() for run in _BASE64_RUN.findall(body))


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
