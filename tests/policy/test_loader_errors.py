"""Every kind of policy mistake is refused with file, line, rule and a fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.policy.problems import PolicyError, Severity
from tests.policy.conftest import BASE, WriteDir, load, problems_of

TARGETS = """
targets:
  local:
    kind: open
    base_url: http://127.0.0.1:9/v1
    model: llama
  cloud:
    kind: proprietary
    base_url: http://127.0.0.1:9/v1
    model: gpt-4o
    api_key: k
    price: {input_per_mtok: 1, output_per_mtok: 2}
"""

# (rules text appended to TARGETS, expected line, rule, message part, fix part)
RULE_CASES = [
    (
        "rules:\n  - name: r1\n    when: {sensitivty: confidential}\n    route: {targets: [local]}\n",
        15,
        "r1",
        "unknown condition 'sensitivty'",
        "did you mean 'sensitivity'?",
    ),
    (
        "rules:\n  - name: r1\n    route: {targets: [locl]}\n",
        15,
        "r1",
        "unknown target 'locl'",
        "did you mean 'local'?",
    ),
    (
        "rules:\n  - name: r1\n    route: {targets: [gpu-box]}\n",
        15,
        "r1",
        "unknown target 'gpu-box'",
        "declare target 'gpu-box' under targets:",
    ),
    (
        "rules:\n  - name: r1\n    when: {task: cod}\n    route: {targets: [local]}\n",
        15,
        "r1",
        "unknown task 'cod'",
        "did you mean 'code'?",
    ),
    (
        "rules:\n  - name: r1\n    when: {sensitivity: secret}\n    route: {targets: [local]}\n",
        15,
        "r1",
        "unknown value 'secret'",
        "use one of",
    ),
    (
        "rules:\n  - name: r1\n    when: {entities: {any: [emial]}}\n    route: {targets: [local]}\n",
        15,
        "r1",
        "unknown entity 'emial'",
        "did you mean 'email'?",
    ),
    (
        "rules:\n  - name: r1\n    when: {header.x-app: {matches: '(unclosed'}}\n    route: {targets: [local]}\n",
        15,
        "r1",
        "invalid regular expression",
        "fix the pattern",
    ),
    (
        "rules:\n  - name: r1\n    when: {prompt_tokens: {gt: many}}\n    route: {targets: [local]}\n",
        15,
        "r1",
        "must be a number",
        None,
    ),
    (
        "rules:\n  - name: r1\n    route: {targets: [local]}\n    deny: {message: no}\n",
        14,
        "r1",
        "both 'route' and 'deny'",
        "split it",
    ),
    (
        "rules:\n  - name: r1\n    when: {task: code}\n",
        14,
        "r1",
        "needs an action",
        "add route",
    ),
    (
        "rules:\n  - name: r1\n    route: {targets: [local]}\n  - name: r1\n    route: {targets: [cloud]}\n",
        16,
        "r1",
        "used twice",
        None,
    ),
    (
        "rules:\n  - name: r1\n    route: {targets: [local], stratgy: cheapest}\n",
        15,
        "r1",
        "unknown key 'stratgy'",
        "did you mean 'strategy'?",
    ),
    (
        "rules:\n  - name: r1\n    route: {targets: [local], strategy: fastest}\n",
        15,
        "r1",
        "unknown value 'fastest'",
        "lowest-latency",
    ),
    (
        "rules:\n  - name: r1\n    when: {model: gpt-5}\n    route: {targets: [local]}\n",
        15,
        "r1",
        "unknown model alias 'gpt-5'",
        "declare alias 'gpt-5' under aliases:",
    ),
    (
        "rules:\n  - name: r1\n    when: {estimated_cost: {target: cloud}}\n    route: {targets: [local]}\n",
        15,
        "r1",
        "has no comparison",
        "gt: 0.01",
    ),
    (
        "rules:\n  - name: r1\n    redact: {entities: [email], restor: true}\n    route: {targets: [cloud]}\n",
        15,
        "r1",
        "unknown key 'restor'",
        "did you mean 'restore'?",
    ),
    (
        "rules:\n  - name: r1\n    deny: {message: no}\n    cache: {mode: never}\n",
        16,
        "r1",
        "no meaning on a deny rule",
        "remove 'cache'",
    ),
    (
        "rules:\n  - name: r1\n    when: {budget_used: {gte: 80}}\n    route: {targets: [local]}\n",
        15,
        "r1",
        "<= 1",
        None,
    ),
    (
        "rules:\n  - nme: r1\n    route: {targets: [local]}\n",
        14,
        None,
        "unknown key 'nme'",
        "did you mean 'name'?",
    ),
]


@pytest.mark.parametrize(("rules", "line", "rule", "message", "fix"), RULE_CASES)
def test_rule_errors_name_file_line_rule_and_fix(
    write_policy: WriteDir, rules: str, line: int, rule: str | None, message: str, fix: str | None
) -> None:
    path = write_policy(**{"p.yaml": TARGETS + rules})
    problems = problems_of(path)
    matching = [p for p in problems if message in p.message]
    assert matching, [str(p) for p in problems]
    problem = matching[0]
    assert problem.file == path / "p.yaml"
    assert problem.line == line, str(problem)
    if rule is not None:
        assert problem.rule == rule
    if fix is not None:
        assert problem.fix is not None and fix in problem.fix, str(problem)
    assert problem.severity is Severity.ERROR


TARGET_CASES = [
    (
        "  t:\n    kind: open\n    base_url: http://x\n    model: m\n    max_sensitivty: internal\n",
        5,
        "unknown key 'max_sensitivty'",
        "did you mean 'max_sensitivity'?",
    ),
    (
        "  t:\n    kind: opn\n    base_url: http://x\n    model: m\n",
        2,
        "unknown value 'opn'",
        "did you mean 'open'?",
    ),
    ("  t:\n    kind: open\n    model: m\n", 2, "needs 'base_url'", "add base_url"),
    (
        "  t:\n    kind: open\n    base_url: localhost:8000/v1\n    model: m\n",
        3,
        "base_url 'localhost:8000/v1' is not an http(s) URL",
        "http://localhost:8000/v1",
    ),
    (
        "  t:\n    kind: open\n    base_url: api.openai.com/v1\n    model: m\n",
        3,
        "is not an http(s) URL",
        "https://",
    ),
    (
        "  t:\n    kind: proprietary\n    provider: litellm\n    model: m\n",
        2,
        "needs 'litellm_provider'",
        "anthropic",
    ),
    ("  t:\n    kind: open\n    base_url: http://x\n", 2, "needs 'model'", "add model"),
    (
        "  t:\n    kind: open\n    base_url: http://x\n    model: m\n    weight: 0\n",
        5,
        "weight must be > 0",
        None,
    ),
    (
        "  t:\n    kind: open\n    base_url: http://x\n    model: m\n    timeouts: {conect: 1}\n",
        5,
        "unknown key 'conect'",
        "did you mean 'connect'?",
    ),
    (
        "  t:\n    kind: open\n    base_url: http://x\n    model: m\n    simulated: {latency_ms: 5}\n",
        5,
        "only applies to provider: simulated",
        None,
    ),
    (
        "  t:\n    kind: open\n    base_url: http://x\n    model: m\n    max_sensitivity: 3\n",
        5,
        "must be a string",
        "quote it",
    ),
    (
        "  t:\n    kind: open\n    base_url: http://x\n    model: m\n    responses: natve\n",
        5,
        "responses: unknown value 'natve'",
        "did you mean 'native'?",
    ),
    (
        "  t:\n    kind: proprietary\n    provider: litellm\n    litellm_provider: anthropic\n"
        "    model: m\n    responses: native\n",
        6,
        "responses: native needs provider: openai",
        "responses: translate",
    ),
]


def test_responses_native_by_default_for_proprietary_openai_targets(write_policy: WriteDir) -> None:
    """``responses``: native for proprietary ``provider: openai`` targets (OpenAI
    speaks it), translate for open ones unless declared, never for litellm."""
    text = TARGETS + (
        "  vllm:\n    kind: open\n    base_url: http://127.0.0.1:9/v1\n    model: m\n"
        "    responses: native\n"
        "  cloud-chat:\n    kind: proprietary\n    base_url: http://127.0.0.1:9/v1\n"
        "    model: m\n    api_key: k\n    price: {input_per_mtok: 1, output_per_mtok: 2}\n"
        "    responses: translate\n"
        "rules:\n  - name: r\n    route: {targets: [local]}\n"
    )
    policy = load(write_policy(**{"p.yaml": text}))
    native = {name: t.responses_native for name, t in policy.targets.items()}
    assert native == {"local": False, "cloud": True, "vllm": True, "cloud-chat": False}


@pytest.mark.parametrize(("target", "line", "message", "fix"), TARGET_CASES)
def test_target_errors(
    write_policy: WriteDir, target: str, line: int, message: str, fix: str | None
) -> None:
    text = "rules:\n  - name: r\n    route: {targets: [t]}\ntargets:\n" + target
    path = write_policy(**{"p.yaml": text})
    problems = [p for p in problems_of(path) if message in p.message]
    assert problems, message
    assert problems[0].line == line + 4, str(problems[0])
    if fix is not None:
        assert problems[0].fix is not None and fix in problems[0].fix


def test_unknown_top_level_section(write_policy: WriteDir) -> None:
    path = write_policy(**{"p.yaml": BASE + "alias:\n  x: {}\n"})
    (problem,) = problems_of(path)
    assert problem.message == "unknown key 'alias' in the top level of p.yaml"
    assert problem.fix == "did you mean 'aliases'?"
    assert problem.line == 16


def test_yaml_syntax_error_has_a_line(write_policy: WriteDir) -> None:
    path = write_policy(**{"p.yaml": BASE + "  - name: [unclosed\n"})
    (problem,) = problems_of(path)
    assert "invalid YAML at line" in problem.message
    assert problem.line is not None and problem.line >= 13


def test_yaml_syntax_error_says_line_column_and_what_was_expected(
    write_policy: WriteDir,
) -> None:
    path = write_policy(**{"p.yaml": "targets:\n  a: [1, 2\n  b: 3\n"})
    (problem,) = problems_of(path)
    assert problem.line == 3
    assert "line 3, column 4" in problem.message
    assert "expected ',' or ']'" in problem.message
    assert "flow sequence that began at line 2, column 6" in problem.message
    assert problem.fix is not None and "close the [ ... ] list" in problem.fix
    assert "  b: 3\n" in problem.fix and problem.fix.endswith("   ^")
    assert "fix the YAML syntax" not in str(problem)


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("a:\n\tb: 1\n", "not allow tabs"),
        ("a: b: c\n", "quote a value that contains ': '"),
        ("a: {x: 1\n", "close the { ... } mapping"),
        ('a: "unclosed\n', "close the quoted string"),
        ("a:\n  - x\n  y: 2\n", "line this entry up"),
    ],
)
def test_yaml_syntax_errors_get_a_specific_hint(
    write_policy: WriteDir, text: str, hint: str
) -> None:
    (problem,) = problems_of(write_policy(**{"p.yaml": text}))
    assert problem.message.startswith("invalid YAML at line")
    assert problem.fix is not None and hint in problem.fix


def test_one_file_of_a_directory_gives_one_clear_error(write_policy: WriteDir) -> None:
    path = write_policy(
        **{
            "targets.yaml": TARGETS,
            "routing.yaml": "rules:\n  - name: r\n    route: {targets: [local, cloud]}\n",
        }
    )
    for name, missing in (("routing.yaml", "no targets"), ("targets.yaml", "no rules")):
        with pytest.raises(PolicyError) as info:
            load(path / name)
        (problem,) = info.value.problems
        assert f"{name} has {missing}: it is one file of the policy in {path}/" in problem.message
        assert problem.fix == f"check the whole directory: gateway policy check {path}"
    load(path)  # the directory itself is fine


def test_a_lone_policy_file_is_accepted(write_policy: WriteDir) -> None:
    path = write_policy(**{"policy__only.yaml": BASE})
    assert load(path / "policy" / "only.yaml").targets.keys() == {"open-a", "prop-a"}


def test_no_targets_is_one_error_not_a_cascade(write_policy: WriteDir) -> None:
    path = write_policy(**{"p.yaml": "rules:\n  - name: r\n    route: {targets: [a, b]}\n"})
    (problem,) = problems_of(path)
    assert "no targets are declared" in problem.message
    assert "use one of: " not in str(problem)


def test_an_unknown_name_with_nothing_to_choose_from_says_so() -> None:
    from gateway.policy.problems import suggest

    assert suggest("x", []) == "none is defined yet"


def test_duplicate_key_in_one_mapping(write_policy: WriteDir) -> None:
    path = write_policy(
        **{"p.yaml": BASE + "aliases:\n  a: {targets: [open-a]}\n  a: {targets: [prop-a]}\n"}
    )
    (problem,) = problems_of(path)
    assert "key 'a' appears twice" in problem.message and problem.line == 18
    assert "first on line 17" in problem.message


def test_custom_entity_with_bad_regex(write_policy: WriteDir) -> None:
    path = write_policy(
        **{"p.yaml": BASE + "entities:\n  emp_id: {pattern: 'EMP-(\\d+', level: confidential}\n"}
    )
    (problem,) = problems_of(path)
    assert "entity 'emp_id': invalid regular expression" in problem.message
    assert problem.line == 17


def test_builtin_entity_cannot_be_redeclared(write_policy: WriteDir) -> None:
    path = write_policy(**{"p.yaml": BASE + "entities:\n  email: {pattern: 'x'}\n"})
    (problem,) = problems_of(path)
    assert "is built in" in problem.message and "sensitivity.entities" in (problem.fix or "")


def test_team_with_unknown_policy(write_policy: WriteDir) -> None:
    path = write_policy(
        **{
            "p.yaml": BASE
            + "teams:\n  research: {policy: strct}\npolicies:\n  strict:\n    rules:\n      - {name: s, route: {targets: [open-a]}}\n"
        }
    )
    (problem,) = problems_of(path)
    assert problem.message == "team 'research' uses unknown policy 'strct'"
    assert problem.fix is not None and "did you mean 'strict'?" in problem.fix


def test_unset_variable_without_default_names_file_line_and_variable(
    write_policy: WriteDir,
) -> None:
    text = BASE.replace("http://127.0.0.1:9/v1\n    model: llama", "${LOCAL_URL}\n    model: llama")
    path = write_policy(**{"p.yaml": text})
    (problem,) = problems_of(path)
    assert problem.message.startswith("environment variable LOCAL_URL is not set")
    assert problem.line == 5 and problem.file == path / "p.yaml"
    assert problem.fix == "set LOCAL_URL, or give a default: ${LOCAL_URL:-value}"


def test_every_error_is_reported_in_one_pass(write_policy: WriteDir) -> None:
    text = (
        TARGETS
        + "rules:\n  - name: a\n    route: {targets: [nope]}\n  - name: b\n    when: {tsk: code}\n    route: {targets: [local]}\n"
    )
    path = write_policy(**{"p.yaml": text})
    problems = problems_of(path)
    assert {p.rule for p in problems} == {"a", "b"}


def test_policy_error_report_is_readable(write_policy: WriteDir) -> None:
    path = write_policy(
        **{"p.yaml": TARGETS + "rules:\n  - name: r1\n    route: {targets: [locl]}\n"}
    )
    with pytest.raises(PolicyError) as info:
        load(path)
    text = str(info.value)
    assert text.splitlines()[0] == "policy refused: 1 error"
    assert (
        f"{path / 'p.yaml'}:15: error in rule 'r1': unknown target 'locl' in route.targets" in text
    )
    assert "    fix: did you mean 'local'?" in text


def test_missing_directory_and_empty_directory(tmp_path: Path) -> None:
    assert "no such file" in problems_of(tmp_path / "absent")[0].message
    assert "no *.yaml" in problems_of(tmp_path)[0].message


def test_shadowed_rule_is_a_warning_not_an_error(write_policy: WriteDir) -> None:
    text = BASE + "  - name: never\n    when: {task: code}\n    route: {targets: [open-a]}\n"
    policy = load(write_policy(**{"p.yaml": text}))
    (warning,) = policy.warnings
    assert warning.severity is Severity.WARNING and warning.rule == "never"
    assert "can never match" in warning.message and "'everything'" in warning.message
    assert warning.line == 16


def test_rule_set_without_catch_all_warns(write_policy: WriteDir) -> None:
    text = TARGETS + "rules:\n  - name: r\n    when: {task: code}\n    route: {targets: [local]}\n"
    policy = load(write_policy(**{"p.yaml": text}))
    assert any("no catch-all" in w.message for w in policy.warnings)


def test_an_error_in_the_catch_all_rule_adds_no_catch_all_warning(write_policy: WriteDir) -> None:
    text = TARGETS + (
        "rules:\n  - name: r\n    when: {task: code}\n    route: {targets: [local]}\n"
        "  - name: last\n    route: {targets: [local], strategy: cheapestt}\n"
    )
    with pytest.raises(PolicyError) as info:
        load(write_policy(**{"p.yaml": text}))
    (problem,) = info.value.problems
    assert problem.rule == "last" and "cheapestt" in problem.message
