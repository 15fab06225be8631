"""The shipped task model: it loads, it is the one the corpus trains, its packed
integer arithmetic is the plain weighted sum, and the training script runs."""

from __future__ import annotations

import hashlib
import lzma
import math
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from gateway.judging.task import TASKS, TaskInput, task_input
from gateway.judging.task_features import SEGMENTS, scale, segments
from gateway.judging.task_model import MODEL_PATH, LearnedClassifier, TaskModel

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "bench" / "task_data" / "corpus.jsonl.xz"
TRAIN = ROOT / "scripts" / "train_task_classifier.py"


@pytest.fixture(scope="module")
def model() -> TaskModel:
    return TaskModel.load(MODEL_PATH)


def test_the_shipped_model_is_small_and_matches_the_features(model: TaskModel) -> None:
    assert MODEL_PATH.stat().st_size < 4_000_000
    assert model.labels == TASKS
    assert model.segment_weights == tuple(weight for _, weight in SEGMENTS)
    assert len(model.weights) == len(model.vocabulary) * len(TASKS)
    assert 0.1 < model.temperature < 5


def test_the_shipped_model_was_trained_on_the_committed_corpus(model: TaskModel) -> None:
    assert model.meta["corpus_sha256"] == hashlib.sha256(CORPUS.read_bytes()).hexdigest()
    assert model.meta["limit"] == 0, "trained on the whole training split"


def _plain_scores(model: TaskModel, item: TaskInput) -> list[float]:
    """The logits as a plain weighted sum of float weights (no packing)."""
    index = {f: i for i, f in enumerate(model.vocabulary)}
    k = len(model.labels)
    scores = list(model.bias)
    for features, (_, weight) in zip(segments(item), SEGMENTS, strict=True):
        factor = scale(features, weight)
        for f in features:
            row = index.get(f)
            if row is not None:
                for label in range(k):
                    scores[label] += model.weights[row * k + label] * model.scale * factor
    return scores


@pytest.mark.parametrize(
    "item",
    [
        TaskInput("Translate into French: good morning, everyone."),
        TaskInput("小明有5个苹果，又买了3袋，每袋4个。一共有多少个？"),  # noqa: RUF001
        TaskInput("x" * 5000 + " summarize", "You are terse.", True, "earlier", "reply", 3),
        TaskInput(""),
    ],
)
def test_packed_scores_are_the_plain_weighted_sum(model: TaskModel, item: TaskInput) -> None:
    packed = LearnedClassifier(model).scores(item)
    plain = _plain_scores(model, item)
    assert all(
        math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9) for a, b in zip(packed, plain, strict=True)
    )


def test_a_model_file_of_another_format_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "model.zlib"
    bad.write_bytes(zlib.compress(b'{"format": 99}\n'))
    with pytest.raises(ValueError, match="format 99"):
        TaskModel.load(bad)


def test_the_training_script_reproduces_a_model_from_the_corpus(tmp_path: Path) -> None:
    pytest.importorskip("numpy")
    outputs = []
    for run in range(2):
        out = tmp_path / f"model-{run}.zlib"
        subprocess.run(
            [sys.executable, str(TRAIN), "--limit", "600", "--iterations", "40", "--out", str(out)],
            check=True,
            capture_output=True,
            timeout=300,
        )
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1], "training is deterministic"
    small = LearnedClassifier(TaskModel.load(tmp_path / "model-0.zlib"))
    assert small.labels == TASKS
    with lzma.open(CORPUS, "rt", encoding="utf-8") as lines:
        import json

        rows = [json.loads(line) for _, line in zip(range(3000), lines, strict=False)]
    seen = [r for r in rows if r["split"] == "train"][:600]
    right = sum(
        small.classify(task_input({"messages": r["messages"]})).task == r["label"] for r in seen
    )
    assert right / len(seen) > 0.9, "the small model fits what it was trained on"
