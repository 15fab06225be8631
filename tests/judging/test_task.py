# ruff: noqa: RUF001  (CJK cases use fullwidth punctuation on purpose)
"""The task classifier: accuracy on the labelled set, per-class cases, speed, plug-in seam."""

from __future__ import annotations

import math
import statistics
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.judging.task import (
    DEFAULT_TASK,
    TASKS,
    EmbeddingClassifier,
    KeywordClassifier,
    TaskClassifier,
    TaskInput,
    task_input,
)

EVAL_SET = Path(__file__).resolve().parent.parent / "data" / "task_eval.yaml"


@pytest.fixture(scope="module")
def classifier() -> KeywordClassifier:
    return KeywordClassifier()


@pytest.fixture(scope="module")
def eval_set() -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = yaml.safe_load(EVAL_SET.read_text(encoding="utf-8"))
    return items


def test_eval_set_shape(eval_set: list[dict[str, Any]]) -> None:
    labels = Counter(item["label"] for item in eval_set)
    assert len(eval_set) >= 180
    assert set(labels) == set(TASKS)
    assert min(labels.values()) >= 20
    not_english = sum(item["lang"] != "en" for item in eval_set)
    assert not_english / len(eval_set) >= 0.2
    assert len({item["text"] for item in eval_set}) == len(eval_set), "duplicate prompts"


def test_accuracy_on_the_labelled_set(
    classifier: KeywordClassifier, eval_set: list[dict[str, Any]]
) -> None:
    total: Counter[str] = Counter()
    right: Counter[str] = Counter()
    for item in eval_set:
        total[item["label"]] += 1
        got = classifier.classify(TaskInput(item["text"], item.get("system", "")))
        right[item["label"]] += got == item["label"]
    per_class = {label: right[label] / total[label] for label in TASKS}
    overall = sum(right.values()) / len(eval_set)
    assert overall >= 0.85, per_class
    assert min(per_class.values()) >= 0.7, per_class


# Cases written apart from the labelled set, a few per class.
CASES: dict[str, tuple[str, ...]] = {
    "code": (
        "```python\nfor i in range(10)\n    print(i)\n```\nwhat's wrong here?",
        "How can I make this Rust struct implement Display?",
        'Exception in thread "main" java.lang.NullPointerException\n    at com.acme.App.main(App.java:12)',
        "Escribe un script de bash que haga copia de seguridad de /home cada noche.",
        "SELECT name FROM users WHERE created_at > now() - interval '7 days'; is slow, how do I index it?",
    ),
    "math": (
        "Solve 5x - 7 = 18.",
        "What is the integral of 1/x?",
        "Quelle est la probabilité de tirer un as dans un jeu de 52 cartes ?",
        "Berechne 12 * 17 + 3.",
        "x^2 + y^2 = 25, find y when x = 3",
    ),
    "summarization": (
        "Summarize the attached report in five bullets.",
        "tl;dr of this thread please: " + "People argued about the release date for a while. " * 12,
        "Fasse diesen Artikel kurz zusammen: Die Bahn streikt ab Montag in ganz Deutschland.",
        "Resume en una frase: el ayuntamiento aprobó ayer el nuevo plan de movilidad urbana.",
    ),
    "translation": (
        "Translate 'good morning' into Italian.",
        "Traduce al francés: buenos días a todos.",
        "Übersetze ins Spanische: Wo ist der Bahnhof?",
        "这句话用日语怎么说？请翻译：今天天气很好。",
        "How do you say 'cheers' in Portuguese?",
    ),
    "extraction": (
        "Extract all email addresses from the text below.",
        "Return JSON with fields name and age from: 'Anna, 34, lives in Oslo'.",
        "List all the product names mentioned in this review.",
        "Extrae las fechas de este documento: firmado el 3 de mayo, vence el 9 de junio.",
    ),
    "creative": (
        "Write a poem about a lonely robot.",
        "Give me a slogan for a bike repair shop.",
        "Écris une histoire courte sur un chat perdu à Marseille.",
        "Schreib ein Gedicht über das Meer.",
        "秋をテーマにした俳句を作って",
    ),
    "chat": (
        "hello!",
        "What time zone is Chicago in?",
        "Any tips for keeping basil alive indoors?",
        "¿Qué opinas de los coches eléctricos?",
        "ok thanks",
    ),
}


@pytest.mark.parametrize(
    ("label", "text"), [(label, text) for label, texts in CASES.items() for text in texts]
)
def test_cases(classifier: KeywordClassifier, label: str, text: str) -> None:
    assert classifier.classify(TaskInput(text)) == label


def test_empty_text_is_chat(classifier: KeywordClassifier) -> None:
    assert classifier.classify(TaskInput("")) == DEFAULT_TASK


def test_system_prompt_is_a_weaker_signal(classifier: KeywordClassifier) -> None:
    poet = "You are a helpful assistant; you can also write poems."
    assert classifier.classify(TaskInput("What is the capital of Peru?", poet)) == "chat"
    coder = "You are an expert Python programmer. Answer with code."
    assert classifier.classify(TaskInput("How do I read a file line by line?", coder)) == "code"
    summary = "Summarize this for me: the meeting moved to Friday because the room was booked."
    assert classifier.classify(TaskInput(summary, coder)) == "summarization"
    translator = "You translate everything the user writes into German."
    assert classifier.classify(TaskInput("Good morning, team.", translator)) == "translation"


def test_instruction_wins_over_words_in_pasted_material(classifier: KeywordClassifier) -> None:
    article = (
        "The novel was adapted into a film in 2019. The story follows a poet who writes "
        "songs in a small village, and critics praised its characters. " * 6
    )
    assert classifier.classify(TaskInput("Summarize this:\n\n" + article)) == "summarization"


def test_translating_code_between_languages_is_code(classifier: KeywordClassifier) -> None:
    text = "Translate this Python to Go:\n```python\ndef add(a, b):\n    return a + b\n```"
    assert classifier.classify(TaskInput(text)) == "code"


def test_translating_a_code_comment_into_a_language_is_translation(
    classifier: KeywordClassifier,
) -> None:
    text = "Translate this Java comment into English: // calcola la somma degli elementi"
    assert classifier.classify(TaskInput(text)) == "translation"


def test_cost_does_not_grow_with_the_prompt(classifier: KeywordClassifier) -> None:
    small = TaskInput("Summarize this:\n\n" + "The board met and agreed on a budget. " * 100)
    huge = TaskInput("Summarize this:\n\n" + "The board met and agreed on a budget. " * 30_000)
    assert classifier.classify(huge) == classifier.classify(small) == "summarization"
    small_us = _median_us(lambda: classifier.classify(small), rounds=3, calls=50)
    huge_us = _median_us(lambda: classifier.classify(huge), rounds=3, calls=50)
    # slicing a 1 MB string is a memcpy, nothing more
    assert huge_us < 5 * small_us + 100


def test_every_answer_is_a_label(classifier: KeywordClassifier) -> None:
    for text in ("", "???", "1 2 3", "def", "翻", "x" * 10_000, "\ud800 lone surrogate"):
        assert classifier.classify(TaskInput(text, text)) in TASKS


def _median_us(fn: Callable[[], object], rounds: int = 5, calls: int = 300) -> float:
    """Best of a few rounds' medians: robust to a busy machine."""
    medians = []
    for _ in range(rounds):
        samples = []
        for _ in range(calls):
            start = time.perf_counter_ns()
            fn()
            samples.append(time.perf_counter_ns() - start)
        medians.append(statistics.median(samples) / 1000)
    return min(medians)


# --- request bodies -----------------------------------------------------------


def test_task_input_from_chat_body() -> None:
    body = {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": [{"type": "text", "text": "No markdown."}]},
            {"role": "user", "content": "first question"},
            {"role": "assistant", "content": "an answer"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Translate this"},
                    {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
                    {"type": "text", "text": "into French"},
                ],
            },
        ],
        "tools": [{"type": "function", "function": {"name": "f"}}],
    }
    assert task_input(body) == TaskInput(
        "Translate this\ninto French", "Be brief.\nNo markdown.", True
    )


def test_task_input_from_completions_body() -> None:
    assert task_input({"prompt": "Once upon a time"}) == TaskInput("Once upon a time")
    assert task_input({"prompt": ["a", 1, "b"]}) == TaskInput("a\nb")
    assert task_input({"prompt": [1, 2, 3]}) == TaskInput("")


@pytest.mark.parametrize(
    "body",
    [{}, {"messages": None}, {"messages": [None, {"role": "user", "content": 5}]}, {"prompt": 3}],
)
def test_task_input_is_lenient(body: dict[str, Any]) -> None:
    assert task_input(body).last_user == ""


# --- the embedding seam -------------------------------------------------------


def _bag_of_words(vocabulary: Sequence[str]) -> Any:
    """A tiny deterministic embedding: counts of vocabulary words."""

    def embed(text: str) -> list[float]:
        words = text.lower().split()
        return [float(sum(w.startswith(v) for w in words)) for v in vocabulary]

    return embed


VOCABULARY = ("poem", "verse", "sum", "equation", "hello")
CENTROIDS = {
    "creative": [[1.0, 1.0, 0.0, 0.0, 0.0]],
    "math": [[0.0, 0.0, 1.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0, 0.0]],
    "chat": [[0.0, 0.0, 0.0, 0.0, 1.0]],
}


def test_embedding_classifier_picks_the_nearest_centroid() -> None:
    classifier = EmbeddingClassifier(_bag_of_words(VOCABULARY), CENTROIDS, min_similarity=0.5)
    assert classifier.classify(TaskInput("a poem in verse")) == "creative"
    assert classifier.classify(TaskInput("this equation")) == "math"
    assert classifier.classify(TaskInput("hello there")) == "chat"


def test_embedding_classifier_falls_back_when_nothing_is_close() -> None:
    class Always:
        def classify(self, item: TaskInput) -> str:
            return "extraction"

    fallback: TaskClassifier = Always()
    classifier = EmbeddingClassifier(
        _bag_of_words(VOCABULARY), CENTROIDS, min_similarity=0.5, fallback=fallback
    )
    assert classifier.classify(TaskInput("nothing in the vocabulary")) == "extraction"
    default = EmbeddingClassifier(_bag_of_words(VOCABULARY), CENTROIDS, min_similarity=0.9)
    assert default.classify(TaskInput("Translate 'hi' into German")) == "translation"


def test_embedding_classifier_sees_the_system_prompt() -> None:
    classifier = EmbeddingClassifier(_bag_of_words(VOCABULARY), CENTROIDS, min_similarity=0.5)
    assert classifier.classify(TaskInput("go on", system="you write a poem")) == "creative"


def test_embedding_classifier_rejects_bad_centroids() -> None:
    embed = _bag_of_words(VOCABULARY)
    with pytest.raises(ValueError, match="unknown task labels"):
        EmbeddingClassifier(embed, {"poetry": [[1.0]]})
    with pytest.raises(ValueError, match="at least one centroid"):
        EmbeddingClassifier(embed, {})
    with pytest.raises(ValueError, match="different dimensions"):
        EmbeddingClassifier(embed, {"math": [[1.0, 0.0]], "chat": [[1.0]]})
    wrong = EmbeddingClassifier(embed, {"math": [[1.0, 0.0]]})
    with pytest.raises(ValueError, match="dimensions"):
        wrong.classify(TaskInput("x"))


def test_zero_vectors_do_not_divide_by_zero() -> None:
    classifier = EmbeddingClassifier(lambda _: [0.0, 0.0], {"math": [[1.0, 0.0]]})
    assert classifier.classify(TaskInput("anything")) == "math"
    assert not math.isnan(0.0)


def test_task_input_reads_every_text_shape() -> None:
    from gateway.judging.task import task_input

    body = {"messages": [{"role": "user", "content": [{"type": "TEXT", "text": ["fix", "this"]}]}]}
    assert task_input(body).last_user == "fix\nthis"
    assert task_input({"prompt": [["a", "b"], "c"]}).last_user == "a\nb\nc"
