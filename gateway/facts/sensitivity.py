"""Sensitivity detection: which entity types a text holds, and where.

:class:`Scanner` runs the built-in detectors (personal data in
:mod:`gateway.facts.detectors`, secrets below), the policy's custom regexes and
optional plug-ins (:class:`Detector`, e.g. Presidio or an NER model). Built-in
detectors are compiled once, prefiltered and anchored, so ordinary prose is
scanned in microseconds (``bench/facts_bench.py`` measures it).

Secrets and the checks that keep false positives down:

- ``aws_access_key``: ``AKIA``/``ASIA`` + 16 upper-case alphanumerics.
- ``github_token``: ``ghp_ gho_ ghu_ ghs_ ghr_`` + 36+ alphanumerics, ``github_pat_``.
- ``gitlab_token``: ``glpat- gldt- glrt- glptt-`` + 20+ characters.
- ``slack_token``: ``xox[abeprs]-`` tokens and ``hooks.slack.com/services/`` URLs.
- ``openai_key``: ``sk-`` / ``sk-proj-`` / ``sk-svcacct-`` + 20+ characters
  holding both letters and digits; ``anthropic_key``: ``sk-ant-``.
- ``stripe_key``: ``sk_live_ sk_test_ rk_live_ rk_test_``.
- ``google_api_key``: ``AIza`` + exactly 35 characters.
- ``private_key``: a ``-----BEGIN ... PRIVATE KEY-----`` block (through its END
  line, or its base64 body when the END line is missing).
- ``jwt``: three base64url parts whose header decodes to a JSON object with "alg".
- ``password``: a credential assigned to a named key (``password=``,
  ``passwd:``, ``"pwd": "…"``, ``api_key=``, ``client_secret:``,
  ``auth_token=``…) and the password in a URL (``scheme://user:pass@host``).
  The finding is the value only. Values that are references or placeholders
  (``$VAR``, ``${…}``, ``<…>``, environment lookups in code, ``[PASSWORD_1]``, ``***``)
  never count; key/secret/token values need 8+ characters with letters and
  digits; an unquoted value after ``:`` needs a character that is not a letter
  (so the prose "Password: required" is not a password).
"""

from __future__ import annotations

import base64
import binascii
import bisect
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Protocol

from gateway.facts import detectors as d
from gateway.facts.credentials import assignments, letters_and_digits, password, url_passwords
from gateway.facts.probe import Finding, Probe

__all__ = ["BUILTIN_ENTITIES", "SECRET_ENTITIES", "Detector", "Finding", "Scanner"]


class Detector(Protocol):
    """A plug-in detector: reports findings of its ``entities`` in a text."""

    entities: frozenset[str]

    def find(self, text: str) -> Iterable[Finding]: ...


BuiltinFn = Callable[[Probe], Iterator[Finding]]


@dataclass(frozen=True, slots=True)
class _SecretRule:
    """A secret with known prefixes: ``pattern`` is tried where a prefix occurs.

    Each prefix comes with an anchor, one of its rarer characters: prefixes are
    looked for only at their anchor's occurrences (one memchr pass per anchor
    character, shared by all rules), far cheaper than a substring search of the
    whole text per prefix. ``bounded``: the match may not start inside a word.
    """

    entity: str
    prefixes: tuple[tuple[str, str], ...]
    pattern: re.Pattern[str]
    valid: Callable[[str], bool] | None = None
    bounded: bool = True


def _secrets(probe: Probe, entities: frozenset[str] | None) -> list[Finding]:
    text = probe.text
    candidates: list[tuple[int, _SecretRule]] = []
    for anchor, entries in _BY_ANCHOR.items():
        if anchor not in text:
            continue
        positions = probe.positions(anchor)
        for prefix, offset, rule in entries:
            if entities is None or rule.entity in entities:
                candidates.extend(
                    (i - offset, rule)
                    for i in positions
                    if i >= offset and text.startswith(prefix, i - offset)
                )
    found: list[Finding] = []
    ends: dict[str, int] = {}
    for start, rule in sorted(candidates, key=lambda c: c[0]):
        if start < ends.get(rule.entity, 0):
            continue
        if rule.bounded and start and (text[start - 1].isalnum() or text[start - 1] in "_-"):
            continue
        m = rule.pattern.match(text, start)
        if m is not None and (rule.valid is None or rule.valid(m.group())):
            ends[rule.entity] = m.end()
            found.append(Finding(rule.entity, start, m.end()))
    return found


def _jwt_valid(token: str) -> bool:
    header = token.split(".", 1)[0]
    try:
        decoded = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
    except (binascii.Error, ValueError):
        return False
    return isinstance(decoded, dict) and "alg" in decoded


_TAIL = r"(?![A-Za-z0-9_\-])"
_SECRET_RULES: tuple[_SecretRule, ...] = (
    _SecretRule(
        "private_key",
        (("-----BEGIN", "-"),),
        re.compile(
            r"-----BEGIN ((?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?)-----"
            r"(?:[\s\S]*?-----END \1-----"
            # no END line (a truncated paste): its base64 lines, JSON-escaped or not
            r"|(?:(?:\r?\n|\\n)+[A-Za-z0-9+/=]{8,}(?![^\r\n\\]))*)"
        ),
        bounded=False,
    ),
    _SecretRule(
        "jwt",
        (("eyJ", "J"),),
        re.compile(r"eyJ[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]{2,}\.[A-Za-z0-9_\-]*"),
        _jwt_valid,
    ),
    _SecretRule(
        "aws_access_key",
        (("AKIA", "K"), ("ASIA", "S")),
        re.compile(r"A[KS]IA[A-Z0-9]{16}" + _TAIL),
    ),
    _SecretRule(
        "github_token",
        (*((f"gh{c}_", "_") for c in "pousr"), ("github_pat_", "_")),
        re.compile(r"(?:gh[pousr]_[A-Za-z0-9]{36,251}|github_pat_[A-Za-z0-9_]{22,255})" + _TAIL),
    ),
    _SecretRule(
        "gitlab_token",
        (("glpat-", "-"), ("gldt-", "-"), ("glrt-", "-"), ("glptt-", "-")),
        re.compile(r"gl(?:pat|dt|rt|ptt)-[A-Za-z0-9_\-]{20,}"),
    ),
    _SecretRule(
        "slack_token",
        (*((f"xox{c}-", "-") for c in "abeprs"), ("https://hooks.slack.com/", ":")),
        re.compile(
            r"(?:xox[abeprs]-[A-Za-z0-9\-]{10,}"
            r"|https://hooks\.slack\.com/(?:services|workflows)/[A-Za-z0-9/_\-]{20,})"
        ),
    ),
    _SecretRule("anthropic_key", (("sk-ant-", "-"),), re.compile(r"sk-ant-[A-Za-z0-9_\-]{20,}")),
    _SecretRule(
        "openai_key",
        (("sk-", "-"),),
        re.compile(r"sk-(?!ant-)(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,}"),
        lambda s: letters_and_digits(s[3:]),
    ),
    _SecretRule(
        "stripe_key",
        (("sk_", "_"), ("rk_", "_")),
        re.compile(r"[sr]k_(?:live|test)_[A-Za-z0-9]{16,}" + _TAIL),
    ),
    _SecretRule("google_api_key", (("AIza", "z"),), re.compile(r"AIza[A-Za-z0-9_\-]{35}" + _TAIL)),
)


def _by_anchor() -> dict[str, tuple[tuple[str, int, _SecretRule], ...]]:
    table: dict[str, list[tuple[str, int, _SecretRule]]] = {}
    for rule in _SECRET_RULES:
        for prefix, anchor in rule.prefixes:
            table.setdefault(anchor, []).append((prefix, prefix.index(anchor), rule))
    return {anchor: tuple(entries) for anchor, entries in table.items()}


_BY_ANCHOR: Mapping[str, tuple[tuple[str, int, _SecretRule], ...]] = MappingProxyType(_by_anchor())

#: the other built-in detectors, most specific first
_BUILTINS: tuple[tuple[str, BuiltinFn], ...] = (
    ("password", password),
    ("payment_card", d.payment_card),
    ("iban", d.iban),
    ("us_ssn", d.us_ssn),
    ("uk_nino", d.uk_nino),
    ("ca_sin", d.ca_sin),
    ("es_dni", d.es_dni),
    ("in_aadhaar", d.in_aadhaar),
    ("email", d.email),
    ("ip_address", d.ip_address),
    ("date_of_birth", d.date_of_birth),
    ("phone", d.phone),
)

_SECRET_NAMES = tuple(rule.entity for rule in _SECRET_RULES)
BUILTIN_ENTITIES: frozenset[str] = frozenset(_SECRET_NAMES) | {name for name, _ in _BUILTINS}
SECRET_ENTITIES: frozenset[str] = frozenset(_SECRET_NAMES) | {"password"}
#: tie-break order on overlaps: secrets, checksummed ids, then the rest
_RANK: Mapping[str, int] = MappingProxyType(
    {name: i for i, name in enumerate((*_SECRET_NAMES, *(name for name, _ in _BUILTINS)))}
)


class Scanner:
    """Finds entities in texts: built-ins, custom regexes and plug-ins.

    ``custom`` maps an entity name to a regex (from the policy); each match is a
    finding of that entity. A bad regex raises ``ValueError`` naming the entity.
    """

    def __init__(
        self, custom: Mapping[str, str] | None = None, plugins: Sequence[Detector] = ()
    ) -> None:
        compiled: list[tuple[str, re.Pattern[str]]] = []
        for entity, pattern in (custom or {}).items():
            try:
                compiled.append((entity, re.compile(pattern)))
            except re.error as exc:
                raise ValueError(
                    f"custom entity {entity!r}: invalid regex {pattern!r}: {exc}"
                ) from None
        self._custom = tuple(compiled)
        self._plugins = tuple(plugins)
        entities = set(BUILTIN_ENTITIES)
        entities.update(name for name, _ in compiled)
        for plugin in self._plugins:
            entities.update(plugin.entities)
        self.entities: frozenset[str] = frozenset(entities)

    def find(self, text: str, entities: frozenset[str] | None = None) -> list[Finding]:
        """Non-overlapping findings sorted by start.

        Only ``entities`` are looked for when given (so a finding of another type
        never hides one of these). Of overlapping findings the longer wins; on an
        exact tie, the more specific type (secrets, then checksummed ids, then
        the rest; built-ins before custom and plug-in types).

        A built-in detector runs only when the probe view it reads first is
        not empty (digit runs, the runs a number can start with, runs after a
        capital, ``@``, ``:``), so ordinary prose runs few of them. The
        findings are exactly :meth:`find_all_detectors`'s.
        """
        probe = Probe(text)
        found = _secrets(probe, entities)
        for name, detect in _applicable(probe):
            if entities is None or name in entities:
                found.extend(detect(probe))
        return self._finish(text, entities, found)

    def find_all_detectors(
        self, text: str, entities: frozenset[str] | None = None
    ) -> list[Finding]:
        """:meth:`find` running every built-in detector, whatever the text.

        The reference the prefiltered :meth:`find` is tested against; the
        request path uses :meth:`find`.
        """
        probe = Probe(text)
        found = _secrets(probe, entities)
        for name, detect in _BUILTINS:
            if entities is None or name in entities:
                found.extend(detect(probe))
        return self._finish(text, entities, found)

    def _finish(
        self, text: str, entities: frozenset[str] | None, found: list[Finding]
    ) -> list[Finding]:
        """Add the custom and plug-in findings to the built-ins'; resolve overlaps."""
        for name, pattern in self._custom:
            if entities is None or name in entities:
                found.extend(
                    Finding(name, m.start(), m.end())
                    for m in pattern.finditer(text)
                    if m.end() > m.start()
                )
        for plugin in self._plugins:
            if entities is None or not plugin.entities.isdisjoint(entities):
                found.extend(
                    f
                    for f in plugin.find(text)
                    if (entities is None or f.entity in entities)
                    and 0 <= f.start < f.end <= len(text)
                )
        return _resolve(found) if len(found) > 1 else found

    def entity_types(self, texts: Iterable[str]) -> frozenset[str]:
        """The entity types :meth:`find` reports in any of ``texts``."""
        types: set[str] = set()
        for text in texts:
            for f in self.find(text):
                types.add(f.entity)
        return frozenset(types)


def _applicable(probe: Probe) -> list[tuple[str, BuiltinFn]]:
    """The parts of the built-in detectors that may find something in ``probe``.

    A part is left out only when the view it reads first is empty, so that it
    would find nothing (:meth:`Scanner.find_all_detectors` is the reference).
    """
    text = probe.text
    parts: list[tuple[str, BuiltinFn]] = [("password", assignments)]
    if "://" in text:
        parts.append(("password", url_passwords))
    for char, name, detect in d.ON_CHAR:
        if char in text:
            parts.append((name, detect))
    if probe.runs:
        parts.extend(d.ON_RUNS)
        if probe.starts:
            parts.extend(d.ON_STARTS)
        if probe.lettered:
            parts.extend(d.ON_LETTERED)
    return parts


def _resolve(found: list[Finding]) -> list[Finding]:
    other = len(_RANK)
    found.sort(key=lambda f: (f.start - f.end, _RANK.get(f.entity, other), f.start))
    # kept intervals never overlap, so sorted by start they are sorted by end too
    starts: list[int] = []
    kept: list[Finding] = []
    for f in found:
        i = bisect.bisect_right(starts, f.start)
        if (i and kept[i - 1].end > f.start) or (i < len(kept) and kept[i].start < f.end):
            continue
        starts.insert(i, f.start)
        kept.insert(i, f)
    return kept
