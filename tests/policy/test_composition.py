"""Files compose; ${VAR} interpolation; targets whose key is unset are unavailable."""

from __future__ import annotations

import pytest

from gateway.levels import Level
from gateway.policy.interpolate import InterpolationSyntaxError, interpolate
from gateway.targets import Kind, ProviderType
from tests.policy.conftest import BASE, WriteDir, load, problems_of

MORE_TARGETS = """
targets:
  extra:
    kind: open
    provider: simulated
    simulated: {latency_ms: 5, completion_tokens: 8}
aliases:
  extra: {targets: [extra], endpoints: [chat]}
policies:
  sim:
    rules:
      - {name: sim-all, route: {targets: [extra]}}
teams:
  lab: {policy: sim}
"""


def test_files_merge(write_policy: WriteDir) -> None:
    policy = load(write_policy(**{"a.yaml": BASE, "b.yaml": MORE_TARGETS}))
    assert set(policy.targets) == {"open-a", "prop-a", "extra"}
    assert policy.targets["extra"].provider is ProviderType.SIMULATED
    assert policy.targets["extra"].model == "extra"
    assert policy.targets["extra"].simulated.latency_ms == 5
    assert set(policy.aliases) == {"auto", "extra"}
    assert policy.aliases["extra"].endpoints == ("chat",)
    assert policy.rule_set_for("lab", None) == "sim"
    assert [p.name for p in policy.files] == ["a.yaml", "b.yaml"]
    assert len(policy.fingerprint) == 64


def test_duplicate_target_across_files(write_policy: WriteDir) -> None:
    dup = "targets:\n  open-a:\n    kind: open\n    base_url: http://x\n    model: m\n"
    path = write_policy(**{"a.yaml": BASE, "b.yaml": dup})
    (problem,) = problems_of(path)
    assert problem.file == path / "b.yaml" and problem.line == 2
    assert "target 'open-a' is defined twice (also in a.yaml" in problem.message


def test_default_rules_in_two_files(write_policy: WriteDir) -> None:
    path = write_policy(
        **{"a.yaml": BASE, "b.yaml": "rules:\n  - {name: x, route: {targets: [open-a]}}\n"}
    )
    (problem,) = problems_of(path)
    assert "'rules:' is defined in a.yaml" in problem.message and problem.file == path / "b.yaml"


def test_defaults_key_set_in_two_files(write_policy: WriteDir) -> None:
    path = write_policy(
        **{
            "a.yaml": BASE + "defaults:\n  expected_completion_tokens: 100\n",
            "b.yaml": "defaults:\n  expected_completion_tokens: 200\n",
        }
    )
    (problem,) = problems_of(path)
    assert "defaults.expected_completion_tokens is set twice" in problem.message


def test_environment_interpolation(write_policy: WriteDir) -> None:
    text = BASE.replace(
        "http://127.0.0.1:9/v1\n    model: llama", "${URL:-http://fallback/v1}\n    model: ${MODEL}"
    )
    text += "defaults:\n  expected_completion_tokens: ${EXPECTED:-64}\n"
    policy = load(write_policy(**{"p.yaml": text}), {"MODEL": "mistral", "EXPECTED": "512"})
    assert policy.targets["open-a"].base_url == "http://fallback/v1"
    assert policy.targets["open-a"].model == "mistral"
    assert policy.expected_completion_tokens == 512  # a plain scalar resolves to an int


def test_unset_api_key_makes_a_proprietary_target_unavailable(write_policy: WriteDir) -> None:
    text = BASE.replace("api_key: sk-test", "api_key: ${OPENAI_API_KEY:-}")
    text += "  - name: never\n    route: {targets: [open-a]}\n"
    path = write_policy(
        **{"p.yaml": text.replace("  - name: never\n    route: {targets: [open-a]}\n", "")}
    )
    policy = load(path)
    assert policy.targets["prop-a"].unavailable_reason == "OPENAI_API_KEY is not set"
    assert policy.targets["prop-a"].api_key is None
    policy = load(path, {"OPENAI_API_KEY": "sk-live"})
    assert policy.targets["prop-a"].unavailable_reason is None
    assert policy.targets["prop-a"].api_key == "sk-live"


def test_api_key_without_default_is_not_a_load_error(write_policy: WriteDir) -> None:
    text = BASE.replace("api_key: sk-test", "api_key: ${SECRET_KEY}")
    policy = load(write_policy(**{"p.yaml": text}))
    assert policy.targets["prop-a"].unavailable_reason == "SECRET_KEY is not set"


def test_open_target_with_empty_optional_key_is_available(write_policy: WriteDir) -> None:
    text = BASE.replace("    model: llama\n", "    model: llama\n    api_key: ${OPEN_KEY:-}\n")
    policy = load(write_policy(**{"p.yaml": text}))
    target = policy.targets["open-a"]
    assert target.unavailable_reason is None and target.api_key is None
    assert target.kind is Kind.OPEN and target.max_sensitivity is Level.RESTRICTED
    assert policy.targets["prop-a"].max_sensitivity is Level.INTERNAL


def test_quoted_values_stay_strings(write_policy: WriteDir) -> None:
    text = BASE.replace("model: llama", "model: '${NUM:-123}'")
    policy = load(write_policy(**{"p.yaml": text}))
    assert policy.targets["open-a"].model == "123"


@pytest.mark.parametrize(
    ("text", "env", "out", "missing"),
    [
        ("plain", {}, "plain", ()),
        ("${A}", {"A": "1"}, "1", ()),
        ("${A}", {}, "", ("A",)),
        ("${A:-x}", {}, "x", ()),
        ("${A:-x}", {"A": ""}, "x", ()),
        ("${A:-${B:-deep}}", {}, "deep", ()),
        ("${A:-${B:-deep}}", {"B": "b"}, "b", ()),
        ("${A:-${B}}", {}, "", ("B",)),
        ("pre-${A}-post", {"A": "mid"}, "pre-mid-post", ()),
        ("cost $$5 and $x", {}, "cost $5 and $x", ()),
        ("${A:-}", {}, "", ()),
    ],
)
def test_interpolate(text: str, env: dict[str, str], out: str, missing: tuple[str, ...]) -> None:
    result = interpolate(text, env)
    assert (result.text, result.missing) == (out, missing)


@pytest.mark.parametrize("text", ["${", "${A", "${A:-x", "${1A}", "${A-x}"])
def test_interpolate_syntax_errors(text: str) -> None:
    with pytest.raises(InterpolationSyntaxError):
        interpolate(text, {})


def test_interpolation_syntax_error_in_a_file(write_policy: WriteDir) -> None:
    text = BASE.replace("model: llama", "model: ${BROKEN")
    (problem,) = problems_of(write_policy(**{"p.yaml": text}))
    assert problem.line == 6 and "after '${BROKEN'" in problem.message
