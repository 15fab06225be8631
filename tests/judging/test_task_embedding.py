"""The embedding-classifier plug-in with a real embedding model a PyPI package ships.

WordLlama (``wordllama``, MIT) carries its static token-embedding model
(``l2_supercat``, 256 dimensions) and tokenizer inside the wheel; loaded from
site-packages with downloads disabled, nothing touches the network. Centroids
come from labelled prompts of the training split of the public corpus; the
check runs on held-out prompts. Skipped only when the package is not installed
(a dev dependency, so CI has it).
"""

from __future__ import annotations

import json
import lzma
import os
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from gateway.judging.task import TASKS, EmbeddingClassifier, TaskInput, task_input
from gateway.judging.task_model import shipped_classifier

CORPUS = Path(__file__).resolve().parents[2] / "bench" / "task_data" / "corpus.jsonl.xz"
PER_LABEL = 40


@pytest.fixture(scope="module")
def embed() -> Callable[[str], Sequence[float]]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    wordllama = pytest.importorskip("wordllama")
    model = wordllama.WordLlama.load(
        cache_dir=Path(wordllama.__file__).parent, disable_download=True
    )

    def vector(text: str) -> Sequence[float]:
        values: Sequence[float] = model.embed([text])[0].tolist()
        return values

    return vector


def _sample(split: str, per_label: int) -> list[dict[str, Any]]:
    """The first ``per_label`` English single-turn prompts of each label."""
    picked: dict[str, list[dict[str, Any]]] = defaultdict(list)
    with lzma.open(CORPUS, "rt", encoding="utf-8") as lines:
        for line in lines:
            row = json.loads(line)
            label = row["label"]
            if (
                row["split"] == split
                and row["lang"] == "en"
                and len(row["messages"]) == 1
                and len(picked[label]) < per_label
            ):
                picked[label].append(row)
    return [row for rows in picked.values() for row in rows]


def test_a_real_embedding_model_separates_the_tasks(
    embed: Callable[[str], Sequence[float]],
) -> None:
    examples = [
        (r["label"], r["messages"][0]["content"][:700]) for r in _sample("train", PER_LABEL)
    ]
    classifier = EmbeddingClassifier.from_examples(embed, examples)
    right: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for row in _sample("heldout", 15):
        answer = classifier.classify(task_input({"messages": row["messages"]}))
        assert answer.task in TASKS
        assert 0.0 < answer.confidence <= 1.0
        total[row["label"]] += 1
        right[row["label"]] += answer.task == row["label"]
    accuracy = sum(right.values()) / sum(total.values())
    # nearest centroid over static embeddings is far weaker than the learned
    # classifier, but far above chance (1/7) on prompts it never saw
    assert accuracy >= 0.5, {label: right[label] / total[label] for label in total}


def test_a_real_embedding_model_defers_when_nothing_is_close(
    embed: Callable[[str], Sequence[float]],
) -> None:
    examples = [(r["label"], r["messages"][0]["content"][:700]) for r in _sample("train", 5)]
    unsure = EmbeddingClassifier.from_examples(embed, examples, min_similarity=1.01)
    item = TaskInput("Translate into German: the train leaves at noon.")
    assert unsure.classify(item) == shipped_classifier().classify(item)
