"""Sensitivity detection: which entity types a text holds, and where.

:class:`Scanner` runs the built-in detectors (personal data in
:mod:`gateway.judging.detectors`, secrets below), the policy's custom regexes and
optional plug-ins (:class:`Detector`, e.g. Presidio or an NER model) on one
text as it is. Built-in detectors are compiled once, prefiltered and anchored,
so ordinary prose is scanned in microseconds (``bench/facts_bench.py`` measures
it). The request path never calls it on a text alone: :mod:`gateway.judging.views`
runs it on every reading of every string the walk visits (normalised, decoded,
pieces read together) and maps the findings back.

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

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from itertools import pairwise
from types import MappingProxyType
from typing import Protocol

from gateway.judging import detectors as d
from gateway.judging import national_ids
from gateway.judging.credentials import assignments, password, url_passwords
from gateway.judging.probe import Finding, Probe
from gateway.judging.secrets import SECRET_RULES, secrets, secrets_everywhere

__all__ = [
    "BUILTIN_ENTITIES",
    "NER_ENTITIES",
    "SECRET_ENTITIES",
    "UNJUDGED",
    "Detector",
    "Finding",
    "Scanner",
    "resolve",
]


class Detector(Protocol):
    """A plug-in detector: reports findings of its ``entities`` in a text."""

    entities: frozenset[str]

    def find(self, text: str) -> Iterable[Finding]: ...


BuiltinFn = Callable[[Probe], Iterator[Finding]]


def _all(parts: list[BuiltinFn]) -> BuiltinFn:
    def detect(probe: Probe) -> Iterator[Finding]:
        for part in parts:
            yield from part(probe)

    return detect


#: the other built-in detectors, most specific first (the order breaks ties
#: between findings of the same span: a number that passes a country's check
#: is that country's id before it is a phone)
_IDS = national_ids.all_detectors()
_FORMAT_IDS = national_ids.FORMAT_ENTITIES
_BUILTINS: tuple[tuple[str, BuiltinFn], ...] = (
    ("password", password),
    ("iban", d.iban),
    # a 13-digit South African or 18-digit Chinese id can pass Luhn too: the
    # date and check inside the id make it the likelier reading
    *((name, _all(parts)) for name, parts in _IDS.items() if name != "in_aadhaar"),
    ("payment_card", d.payment_card),
    ("in_aadhaar", _all(_IDS["in_aadhaar"])),
    ("email", d.email),
    ("ip_address", d.ip_address),
    ("date_of_birth", d.date_of_birth),
    ("phone", d.phone),
)

_SECRET_NAMES = tuple(rule.entity for rule in SECRET_RULES)
#: the entity of content the gateway cannot read as text (token ids, binary,
#: audio, files, opaque URLs): found by the walk (:mod:`gateway.judging.walk`)
UNJUDGED = "unjudged"
BUILTIN_ENTITIES: frozenset[str] = (
    frozenset(_SECRET_NAMES) | {name for name, _ in _BUILTINS} | {UNJUDGED}
)
SECRET_ENTITIES: frozenset[str] = frozenset(_SECRET_NAMES) | {"password"}
#: what the optional NER plug-in (:mod:`gateway.judging.ner`) reports: policies
#: may give them levels whether the plug-in is enabled or not
NER_ENTITIES: frozenset[str] = frozenset({"person", "location"})
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
        if not probe.marks:
            # no digits, '@', ':' or secret anchors: only a credential assignment can be here
            found = list(assignments(probe)) if entities is None or "password" in entities else []
            return self._finish(text, entities, found)
        found = secrets(probe, entities)
        for name, detect in _applicable(probe):
            if entities is None or name in entities:
                found.extend(detect(probe))
        if probe.has_digits and (entities is None or not entities.isdisjoint(_FORMAT_IDS)):
            # the national ids' formats in one pass; it reports several entities
            found.extend(
                f for f in national_ids.formats(probe) if entities is None or f.entity in entities
            )
        return self._finish(text, entities, found)

    def find_all_detectors(
        self, text: str, entities: frozenset[str] | None = None
    ) -> list[Finding]:
        """:meth:`find` running every built-in detector, whatever the text.

        The reference the prefiltered :meth:`find` is tested against; the
        request path uses :meth:`find`.
        """
        probe = Probe(text)
        found = secrets_everywhere(probe, entities)
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
        return resolve(found) if len(found) > 1 else found

    def entity_types(self, texts: Iterable[str]) -> frozenset[str]:
        """The entity types :meth:`find` reports in any of ``texts``."""
        types: set[str] = set()
        for text in texts:
            for f in self.find(text):
                types.add(f.entity)
        return frozenset(types)


_COLON = ord(":")


def _applicable(probe: Probe) -> list[tuple[str, BuiltinFn]]:
    """The parts of the built-in detectors that may find something in ``probe``.

    A part is left out only when the view it reads first is empty, so that it
    would find nothing (:meth:`Scanner.find_all_detectors` is the reference).
    """
    marks = probe.marks
    parts: list[tuple[str, BuiltinFn]] = [("password", assignments)]
    if _COLON in marks and "://" in probe.text:
        parts.append(("password", url_passwords))
    for char, name, detect in d.ON_CHAR:
        if char in marks:
            parts.append((name, detect))
    if probe.has_digits:
        parts.extend(d.ON_RUNS)
        if probe.starts:
            parts.extend(d.ON_STARTS)
        if probe.lettered:
            parts.extend(d.ON_LETTERED)
    return parts


def resolve(found: list[Finding]) -> list[Finding]:
    """Keep, of overlapping findings, the longer (then the higher ranked, then the first).

    Greedy in that order, with the characters already kept marked in a
    bytearray: each finding costs its length (at C speed) to test and to mark,
    so many findings cost linear time (a sorted list with inserts costs their
    square).
    """
    found.sort(key=lambda f: f.start)
    if all(a.end <= b.start for a, b in pairwise(found)):
        return found  # the common case: nothing overlaps
    other = len(_RANK)
    found.sort(key=lambda f: (f.start - f.end, _RANK.get(f.entity, other), f.start))
    taken = bytearray(max(f.end for f in found))
    kept: list[Finding] = []
    for f in found:
        if taken.find(1, f.start, f.end) >= 0:
            continue
        taken[f.start : f.end] = b"\x01" * (f.end - f.start)
        kept.append(f)
    kept.sort(key=lambda f: f.start)
    return kept
