"""The gateway prices a usage exactly as litellm does: cached prompt tokens,
cache writes and reasoning tokens each at their own rate from litellm's map.

The targets are compiled by the policy loader with the price book the
running gateway uses; the usage is read from the wire shape an upstream
sends. Nothing is called upstream.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gateway.judging.prices import PriceBook
from gateway.policy.loader import load_policy
from gateway.settings import prepare_litellm_import
from gateway.targets import PriceSource, Target
from gateway.upstream.provider import Usage

#: (target model, litellm provider or None for an OpenAI-compatible target)
MODELS = [
    ("gpt-4o", None),
    ("gpt-4o-mini", None),
    ("o3-mini", None),
    ("o1", None),
    ("claude-sonnet-4-5", "anthropic"),
    ("claude-haiku-4-5", "anthropic"),
    ("gemini-2.5-flash", "gemini"),
    ("gemini-2.5-pro", "gemini"),
    ("mistral-large-latest", "mistral"),
]

#: usages as upstreams report them (OpenAI's shape, and litellm's for Anthropic)
USAGES: dict[str, dict[str, Any]] = {
    "plain": {"prompt_tokens": 1234, "completion_tokens": 321},
    "cached": {
        "prompt_tokens": 5000,
        "completion_tokens": 200,
        "prompt_tokens_details": {"cached_tokens": 4096},
    },
    "reasoning": {
        "prompt_tokens": 800,
        "completion_tokens": 2500,
        "completion_tokens_details": {"reasoning_tokens": 2000},
    },
    "cache_write": {
        "prompt_tokens": 9000,
        "completion_tokens": 150,
        "prompt_tokens_details": {"cached_tokens": 6000},
        "cache_creation_input_tokens": 2500,
    },
}


def _policy_text() -> str:
    lines = ["targets:"]
    for i, (model, provider) in enumerate(MODELS):
        lines.append(f"  t{i}:")
        lines.append("    kind: proprietary")
        lines.append(f"    model: {model}")
        if provider is None:
            lines.append("    base_url: http://127.0.0.1:9/v1")
        else:
            lines.append("    provider: litellm")
            lines.append(f"    litellm_provider: {provider}")
    lines += [
        "aliases:",
        "  any: {targets: [t0]}",
        "rules:",
        "  - name: all",
        "    route: {targets: [t0]}",
    ]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def targets(tmp_path_factory: pytest.TempPathFactory) -> list[Target]:
    folder: Path = tmp_path_factory.mktemp("policy")
    (folder / "policy.yaml").write_text(_policy_text())
    policy = load_policy(folder, {}, prices=PriceBook.from_litellm())
    return [policy.targets[f"t{i}"] for i in range(len(MODELS))]


def _litellm_cost(model: str, provider: str | None, wire: dict[str, Any]) -> float:
    prepare_litellm_import()
    import litellm
    from litellm.types.utils import ModelResponse
    from litellm.types.utils import Usage as LitellmUsage

    usage = LitellmUsage(
        total_tokens=wire["prompt_tokens"] + wire["completion_tokens"],
        **wire,
    )
    response = ModelResponse(model=model, usage=usage)
    cost: float = litellm.completion_cost(
        completion_response=response, model=model, custom_llm_provider=provider
    )
    return cost


@pytest.mark.parametrize("usage_name", sorted(USAGES))
def test_cost_equals_litellms(targets: list[Target], usage_name: str) -> None:
    wire = USAGES[usage_name]
    usage = Usage.from_wire(wire)
    assert usage is not None
    for (model, provider), target in zip(MODELS, targets, strict=True):
        assert target.price_source is PriceSource.LITELLM, model
        ours = usage.cost(target.prices)
        theirs = _litellm_cost(model, provider, wire)
        assert ours == pytest.approx(theirs, abs=1e-9), (model, usage_name, ours, theirs)
        assert ours > 0


def test_cached_and_reasoning_tokens_change_the_cost(targets: list[Target]) -> None:
    """Guard against a table that passes because no special rate applies."""
    by_model = {model: t for (model, _), t in zip(MODELS, targets, strict=True)}
    cached = Usage.from_wire(USAGES["cached"])
    assert cached is not None and cached.cached_tokens == 4096
    plain = Usage(cached.prompt_tokens, cached.completion_tokens)
    gpt = by_model["gpt-4o"].prices
    assert cached.cost(gpt) < plain.cost(gpt)
    written = Usage.from_wire(USAGES["cache_write"])
    assert written is not None and written.cache_write_tokens == 2500
    claude = by_model["claude-sonnet-4-5"].prices
    assert written.cost(claude) != Usage(written.prompt_tokens, written.completion_tokens).cost(
        claude
    )


def test_anthropic_native_usage_is_read_as_openais() -> None:
    usage = Usage.from_wire(
        {
            "input_tokens": 100,
            "output_tokens": 20,
            "cache_read_input_tokens": 300,
            "cache_creation_input_tokens": 50,
        }
    )
    assert usage == Usage(
        prompt_tokens=450, completion_tokens=20, cached_tokens=300, cache_write_tokens=50
    )
