"""The shipped policies load, every file in them is used, and their cases pass."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.judging.build import FactsBuilder
from gateway.judging.prices import PriceBook
from gateway.policy.cases import case_files, run_cases
from gateway.policy.explain import explain_request, explanation
from gateway.policy.loader import load_policy, policy_files
from gateway.policy.model import Action
from tests.policy.conftest import SHIPPED

REQUESTS = Path(__file__).resolve().parents[1] / "data" / "requests"


def test_every_shipped_file_loads_without_warnings() -> None:
    policy = load_policy(SHIPPED, {}, prices=PriceBook.from_litellm())
    assert policy.warnings == ()
    assert [p.name for p in policy.files] == [p.name for p in policy_files(SHIPPED)]
    assert len(policy.files) >= 4
    assert {
        "auto",
        "gpt-4o",
        "gpt-4o-mini",
        "local",
        "text-embedding-3-small",
        "local-embed",
    } <= set(policy.aliases)
    assert policy.default_baseline == "openai-gpt-4o"
    assert policy.default_cache.ttl_s == 3600
    # proprietary prices come from litellm's cost map
    assert policy.targets["openai-gpt-4o"].prices.input_per_mtok > 0
    assert policy.targets["anthropic-sonnet"].prices.input_per_mtok > 0
    assert policy.targets["openai-gpt-4o"].unavailable_reason == "OPENAI_API_KEY is not set"
    assert policy.targets["local"].unavailable_reason is None


def test_shipped_policy_reads_the_documented_variables() -> None:
    env = {
        "OPEN_MODEL_BASE_URL": "http://gpu:8000/v1",
        "OPEN_MODEL_NAME": "Qwen/Qwen2.5-7B-Instruct",
        "OPENAI_API_KEY": "sk-x",
        "OPENAI_BASE_URL": "https://proxy.example/v1",
    }
    policy = load_policy(SHIPPED, env, prices=PriceBook({}))
    assert policy.targets["local"].base_url == "http://gpu:8000/v1"
    assert policy.targets["local"].model == "Qwen/Qwen2.5-7B-Instruct"
    # the embeddings server defaults to the open model's server
    assert policy.targets["local-embed"].base_url == "http://gpu:8000/v1"
    assert policy.targets["openai-gpt-4o"].base_url == "https://proxy.example/v1"
    assert policy.targets["openai-gpt-4o"].unavailable_reason is None
    assert policy.targets["anthropic-sonnet"].unavailable_reason == "ANTHROPIC_API_KEY is not set"


def test_shipped_cases_pass_and_cover_every_rule() -> None:
    policy = load_policy(SHIPPED, {}, prices=PriceBook.from_litellm())
    assert case_files(SHIPPED)
    report = run_cases(SHIPPED, FactsBuilder(policy), {})
    assert report.problems == []
    failures = "\n".join(f"{r.name}: {r.message}" for r in report.failed)
    assert report.ok, failures
    assert len(report.results) >= 15
    covered = set()
    for path in case_files(SHIPPED):
        for line in path.read_text().splitlines():
            if "rule:" in line:
                covered.add(line.split("rule:")[1].split(",")[0].strip(" }"))
    assert set(policy.rules()) <= covered, set(policy.rules()) - covered


@pytest.mark.parametrize("name", sorted(p.name for p in REQUESTS.glob("*.json")))
def test_explain_examples(name: str) -> None:
    policy = load_policy(SHIPPED, {}, prices=PriceBook({}))
    body = json.loads((REQUESTS / name).read_text())
    facts, decision = explain_request(FactsBuilder(policy), body=body, headers={})
    out = explanation(facts, decision)
    assert out["rule"] in policy.rules()
    assert decision.action is Action.ROUTE
    assert out["trace"][-1]["matched"] is True
    assert set(out) >= {"rule", "targets", "task", "sensitivity", "estimated_cost_usd", "trace"}
    text = json.dumps(out)
    # names of entities only, never the values found
    assert "alice.smith@example.com" not in text and "AKIAZ3MSJV4WWNKWW5XQ" not in text
