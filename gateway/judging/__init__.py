"""Judging: what a request is, computed once from its body and headers.

Owns request parsing and validation (lenient on the wire, strict where it matters),
the one walk over every string of a body (:mod:`~gateway.judging.walk`: keys and
values, any depth, and what cannot be read, ``unjudged``), the readings of each string
(:mod:`~gateway.judging.views`: normalised by :mod:`~gateway.judging.fold`, decoded
by :mod:`~gateway.judging.decode`), the sensitivity detectors and their scanner, the
task classifier, prompt-token estimates, prices, redaction and its restore, and
:class:`~gateway.judging.facts.Facts`, the policy's input. Pure and synchronous: no
I/O, no clock. Never keeps a value it found, only entity types.

May import: the core modules (errors, levels, endpoints, targets, settings) and
state's plain types. Not the policy (it reaches it through
:class:`~gateway.judging.facts.SensitivityRules`), nor anything above.
"""
