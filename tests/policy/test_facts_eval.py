"""``gateway facts eval`` through the installed command, on small labelled files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.harness import ROOT

GATEWAY = Path(sys.executable).parent / "gateway"
IBAN = "DE89370400440532013000"
SECRET_WORDS = ("DE89370400440532013000", "ada@example.com", "7946 0958", "Solve 2x")

LINES: list[dict[str, Any]] = [
    {
        "text": f"Wire to {IBAN} today",
        "entities": [{"type": "iban", "start": 8, "end": 30}],
        "task": "chat",
    },
    {"text": "Call me on +44 20 7946 0958 or mail ada@example.com", "entities": ["phone", "email"]},
    {"messages": [{"role": "user", "content": "Solve 2x + 3 = 11"}], "entities": [], "task": "math"},
    {"text": "BSN 111222333 please", "entities": [{"type": "nl_bsn", "start": 4, "end": 13}]},
    # labelled as holding nothing, but it holds an email: one spurious finding
    {"text": "reply to ada@example.com", "entities": []},
    # labelled with a card the detectors cannot see: one miss
    {"text": "card ending 4242", "entities": [{"type": "payment_card", "start": 5, "end": 16}]},
    {"body": {"model": "m", "messages": [{"role": "user", "content": "Translate to French: hi"}]},
     "task": "translation"},
    {"text": "policy ticket TICKET-1234", "entities": ["ticket"]},
]  # fmt: skip


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    return subprocess.run(
        [str(GATEWAY), "facts", "eval", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
        input=stdin,
        env=env,
    )


@pytest.fixture
def labelled(tmp_path: Path) -> Path:
    path = tmp_path / "labelled.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in LINES) + "\n\n")
    return path


@pytest.fixture
def policy(tmp_path: Path) -> Path:
    """The shipped policies plus one custom entity."""
    directory = tmp_path / "policies"
    directory.mkdir()
    for source in (ROOT / "policies").glob("*.yaml"):
        (directory / source.name).write_text(source.read_text())
    (directory / "entities.yaml").write_text(
        "entities:\n  ticket: {pattern: 'TICKET-[0-9]{4}', level: internal}\n"
    )
    return directory


def test_json_report_counts_every_entity_and_task(labelled: Path, policy: Path) -> None:
    done = run(str(labelled), "--policy", str(policy), "--format", "json")
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["lines"] == len(LINES)
    entities = report["entities"]
    assert entities["iban"] == {"tp": 1, "fp": 0, "fn": 0, "precision": 1.0, "recall": 1.0}
    assert entities["nl_bsn"]["tp"] == 1
    assert entities["email"] == {"tp": 1, "fp": 1, "fn": 0, "precision": 0.5, "recall": 1.0}
    assert entities["payment_card"] == {"tp": 0, "fp": 0, "fn": 1, "precision": None, "recall": 0.0}
    assert entities["ticket"]["tp"] == 1  # the policy's custom entity
    assert report["confusion"]["math"] == {"math": 1}
    assert report["task_accuracy"] == 1.0
    misses = report["worst_misses"]
    assert misses[0] == {
        "line": 6,
        "kind": "missed",
        "entity": "payment_card",
        "start": 5,
        "end": 16,
    }
    assert {"line": 5, "kind": "spurious", "entity": "email", "start": 9, "end": 24} in misses


def test_table_report_never_prints_text(labelled: Path, policy: Path) -> None:
    done = run(str(labelled), "--policy", str(policy))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "iban" in done.stdout and "confusion" in done.stdout
    assert "line 6: missed payment_card at 5-16" in done.stdout
    for word in SECRET_WORDS:
        assert word not in done.stdout + done.stderr


def test_without_the_policy_its_custom_entity_is_a_miss(labelled: Path) -> None:
    done = run(str(labelled), "--policy", str(ROOT / "policies"), "--format", "json")
    assert json.loads(done.stdout)["entities"]["ticket"]["fn"] == 1


def test_reads_stdin() -> None:
    line = json.dumps({"text": f"IBAN {IBAN}", "entities": ["iban"]})
    done = run("-", "--policy", str(ROOT / "policies"), "--format", "json", stdin=line)
    assert done.returncode == 0 and json.loads(done.stdout)["entities"]["iban"]["tp"] == 1


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json", "line 2: not JSON"),
        ('{"txt": "x"}', "line 2: unknown key 'txt'"),
        ('{"text": "x", "messages": []}', "line 2: give exactly one of"),
        ('{"text": "x", "task": "poetry"}', "line 2: task 'poetry' is not a task"),
        ('{"text": "abc", "entities": [{"type": "iban", "start": 2, "end": 9}]}', "line 2: entity 'iban'"),
        ('{"messages": [], "entities": [{"type": "iban", "start": 0, "end": 1}]}', "line 2: entity offsets need 'text'"),
        ('{"text": "x", "entities": "iban"}', "line 2: 'entities' must be a list"),
        ("[1, 2]", "line 2: a line must be a JSON object"),
    ],
)  # fmt: skip
def test_a_bad_line_is_named(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"text": "fine"}) + "\n" + line + "\n")
    done = run(str(path), "--policy", str(ROOT / "policies"))
    assert done.returncode == 1
    assert message in done.stdout, done.stdout
    assert "Traceback" not in done.stderr


def test_a_missing_file_or_policy_exits_1(tmp_path: Path, labelled: Path) -> None:
    assert run(str(tmp_path / "nope.jsonl"), "--policy", str(ROOT / "policies")).returncode == 1
    assert run(str(labelled), "--policy", str(tmp_path / "no-policy")).returncode == 1
    assert run().returncode == 2  # usage
