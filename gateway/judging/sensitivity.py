"""Sensitivity detection: which entity types a text holds, and where.

:class:`Scanner` runs the built-in detectors (personal data in
:mod:`gateway.judging.detectors`, secrets below), the policy's custom regexes and
optional plug-ins (:class:`Detector`, e.g. Presidio or an NER model) on one
text as it is. Built-in detectors are compiled once, prefiltered and anchored,
so ordinary prose is scanned in microseconds (``bench/facts_bench.py`` measures
it). The request path never calls it on a text alone: :mod:`gateway.judging.views`
runs it on every reading of every string the walk visits (normalised, decoded,
pieces read together) and maps the findings back.

Secrets: 120+ formats with known prefixes (:mod:`gateway.judging.secrets`, the
rules in ``secret_formats*``), credentials in assignments, URLs, prose in many
languages, pairs and commands (``password``: :mod:`gateway.judging.credentials`,
:mod:`gateway.judging.prose_credentials`), AWS secret keys in context
(``aws_secret_key``) and high-entropy tokens after a key-like word
(``generic_secret``: :mod:`gateway.judging.generic_secrets`). Documentation
placeholders never count (:mod:`gateway.judging.placeholders`). docs/secrets.md
lists every format with its source and check.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from itertools import pairwise
from types import MappingProxyType
from typing import Protocol

from gateway.judging import detectors as d
from gateway.judging import national_ids
from gateway.judging.credentials import assignments, password, prose, url_passwords
from gateway.judging.generic_secrets import generic_secrets
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
    ("generic_secret", generic_secrets),
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

_SECRET_NAMES = tuple(dict.fromkeys(rule.entity for rule in SECRET_RULES))
#: the entity of content the gateway cannot read as text (token ids, binary,
#: audio, files, opaque URLs): found by the walk (:mod:`gateway.judging.walk`)
UNJUDGED = "unjudged"
BUILTIN_ENTITIES: frozenset[str] = (
    frozenset(_SECRET_NAMES) | {name for name, _ in _BUILTINS} | {"aws_secret_key", UNJUDGED}
)
SECRET_ENTITIES: frozenset[str] = frozenset(_SECRET_NAMES) | {
    "password",
    "aws_secret_key",
    "generic_secret",
}
#: what the optional NER plug-in (:mod:`gateway.judging.ner`) reports: policies
#: may give them levels whether the plug-in is enabled or not
NER_ENTITIES: frozenset[str] = frozenset({"person", "location"})
#: the entities a built-in detector reports besides its own name
_ALSO: Mapping[str, frozenset[str]] = MappingProxyType(
    {"password": frozenset({"password", "aws_secret_key"})}
)


def _runs(name: str, entities: frozenset[str] | None) -> bool:
    """Whether the built-in detector ``name`` may find one of ``entities``."""
    if entities is None or name in entities:
        return True
    also = _ALSO.get(name)
    return also is not None and not also.isdisjoint(entities)


#: tie-break order on overlaps: secrets, checksummed ids, then the rest
_RANK: Mapping[str, int] = MappingProxyType(
    {
        name: i
        for i, name in enumerate(
            (*_SECRET_NAMES, "aws_secret_key", *(name for name, _ in _BUILTINS))
        )
    }
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
            # no digits, '@', ':' or secret anchors: only credentials in words can be here
            found: list[Finding] = []
            if _runs("password", entities):
                found.extend(assignments(probe))
                found.extend(prose(probe))
            if _runs("generic_secret", entities):
                found.extend(generic_secrets(probe))
            return self._finish(text, entities, found)
        found = secrets(probe, entities)
        for name, detect in _applicable(probe):
            if _runs(name, entities):
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
            if _runs(name, entities):
                found.extend(detect(probe))
        return self._finish(text, entities, found)

    def _finish(
        self, text: str, entities: frozenset[str] | None, found: list[Finding]
    ) -> list[Finding]:
        """Add the custom and plug-in findings to the built-ins'; resolve overlaps."""
        if entities is not None:
            found = [f for f in found if f.entity in entities]
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
    parts: list[tuple[str, BuiltinFn]] = [
        ("password", assignments),
        ("password", prose),
        ("generic_secret", generic_secrets),
    ]
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
