# ruff: noqa: RUF001  (CJK cases use fullwidth punctuation on purpose)
"""The task classifier: the project's own labelled set, per-class and multilingual
cases, conversations, confidence, formatting, speed, the plug-in seam.

These are sanity checks written by hand; the evaluation on public data the model
never saw is ``bench/task_heldout.py``.
"""

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
    TaskClassifier,
    TaskInput,
    TaskLabel,
    task_input,
)
from gateway.judging.task_model import LearnedClassifier, shipped_classifier

EVAL_SET = Path(__file__).resolve().parent.parent / "data" / "task_eval.yaml"


@pytest.fixture(scope="module")
def classifier() -> LearnedClassifier:
    return shipped_classifier()


def label(classifier: TaskClassifier, text: str, system: str = "", **context: Any) -> str:
    return classifier.classify(TaskInput(text, system, **context)).task


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
    classifier: LearnedClassifier, eval_set: list[dict[str, Any]]
) -> None:
    total: Counter[str] = Counter()
    right: Counter[str] = Counter()
    for item in eval_set:
        total[item["label"]] += 1
        got = label(classifier, item["text"], item.get("system", ""))
        right[item["label"]] += got == item["label"]
    per_class = {label: right[label] / total[label] for label in TASKS}
    overall = sum(right.values()) / len(eval_set)
    # This hand-written set is not used in training (the model learns from
    # public prompts and instruction templates, bench/task_data): 87 % here
    # (the keyword lists it replaced were tuned on this set: 97 %), 96 % on the
    # public held-out split (bench/task_heldout.py), which is the evaluation.
    # Questions about developer tools in prose are its weak spot (code: 52 %).
    assert overall >= 0.85, per_class
    assert min(per_class.values()) >= 0.5, per_class


# Cases written apart from the labelled set, a few per class.
CASES: dict[str, tuple[str, ...]] = {
    "code": (
        "```python\nfor i in range(10)\n    print(i)\n```\nwhat's wrong here?",
        "How can I make this Rust struct implement Display?",
        'Exception in thread "main" java.lang.NullPointerException\n    at com.acme.App.main(App.java:12)',
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
        "Resume en una frase: el ayuntamiento aprobó ayer el nuevo plan de movilidad urbana.",
        "tl;dr of this thread please: " + "People argued about the release date for a while. " * 12,
        "Fasse diesen Artikel kurz zusammen: Die Bahn streikt ab Montag in ganz Deutschland.",
    ),
    "translation": (
        "Translate 'good morning' into Italian.",
        "Traduce al francés: buenos días a todos.",
        "Übersetze ins Spanische: Wo ist der Bahnhof?",
        "这句话用日语怎么说？请翻译：今天天气很好。",
        "How do you say 'cheers' in Portuguese?",
    ),
    "extraction": (
        "Return JSON with fields name and age from: 'Anna, 34, lives in Oslo'.",
        "Extract all email addresses from the text below.",
        "List all the product names mentioned in this review.",
        "Extrae las fechas de este documento: firmado el 3 de mayo, vence el 9 de junio.",
    ),
    "creative": (
        "Write a poem about a lonely robot.",
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
    ("expected", "text"), [(task, text) for task, texts in CASES.items() for text in texts]
)
def test_cases(classifier: LearnedClassifier, expected: str, text: str) -> None:
    assert label(classifier, text) == expected


def test_empty_text_is_chat(classifier: LearnedClassifier) -> None:
    assert label(classifier, "") == DEFAULT_TASK


def test_system_prompt_is_a_weaker_signal(classifier: LearnedClassifier) -> None:
    poet = "You are a helpful assistant; you can also write poems."
    assert label(classifier, "What is the capital of Peru?", poet) == "chat"
    coder = "You are an expert Python programmer. Answer with code."
    assert label(classifier, "How do I read a file line by line?", coder) == "code"
    summary = "Summarize this for me: the meeting moved to Friday because the room was booked."
    assert label(classifier, summary, coder) == "summarization"
    translator = "You translate everything the user writes into German."
    meeting = "The meeting starts at nine and ends at noon."
    assert label(classifier, meeting, translator) == "translation"


def test_instruction_wins_over_words_in_pasted_material(classifier: LearnedClassifier) -> None:
    article = (
        "The novel was adapted into a film in 2019. The story follows a poet who writes "
        "songs in a small village, and critics praised its characters. " * 6
    )
    assert label(classifier, "Summarize this:\n\n" + article) == "summarization"


def test_translating_code_between_languages_is_code(classifier: LearnedClassifier) -> None:
    text = "Translate this Python to Go:\n```python\ndef add(a, b):\n    return a + b\n```"
    assert label(classifier, text) == "code"


def test_translating_a_code_comment_into_a_language_is_translation(
    classifier: LearnedClassifier,
) -> None:
    text = "Translate this Java comment into English: // calcola la somma degli elementi"
    assert label(classifier, text) == "translation"


def test_cost_does_not_grow_with_the_prompt(classifier: LearnedClassifier) -> None:
    small = TaskInput("Summarize this:\n\n" + "The board met and agreed on a budget. " * 100)
    huge = TaskInput("Summarize this:\n\n" + "The board met and agreed on a budget. " * 30_000)
    assert classifier.classify(huge).task == classifier.classify(small).task == "summarization"
    small_us = _median_us(lambda: classifier.classify(small), rounds=3, calls=50)
    huge_us = _median_us(lambda: classifier.classify(huge), rounds=3, calls=50)
    # slicing a 1 MB string is a memcpy, nothing more
    assert huge_us < 5 * small_us + 100


def test_every_answer_is_a_label(classifier: LearnedClassifier) -> None:
    for text in ("", "???", "1 2 3", "def", "翻", "x" * 10_000, "\ud800 lone surrogate"):
        answer = classifier.classify(TaskInput(text, text, previous_user=text, assistant=text))
        assert answer.task in TASKS
        assert 0.0 < answer.confidence <= 1.0


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
        "Translate this\ninto French",
        "Be brief.\nNo markdown.",
        True,
        previous_user="first question",
        assistant="an answer",
        user_turns=2,
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
    assert label(classifier, "a poem in verse") == "creative"
    assert label(classifier, "this equation") == "math"
    assert label(classifier, "hello there") == "chat"


def test_embedding_classifier_falls_back_when_nothing_is_close() -> None:
    class Always:
        def classify(self, item: TaskInput) -> TaskLabel:
            return TaskLabel("extraction", 0.3)

    fallback: TaskClassifier = Always()
    classifier = EmbeddingClassifier(
        _bag_of_words(VOCABULARY), CENTROIDS, min_similarity=0.5, fallback=fallback
    )
    assert label(classifier, "nothing in the vocabulary") == "extraction"
    default = EmbeddingClassifier(_bag_of_words(VOCABULARY), CENTROIDS, min_similarity=0.9)
    assert label(default, "Translate 'hi' into German") == "translation"


def test_embedding_classifier_sees_the_system_prompt() -> None:
    classifier = EmbeddingClassifier(_bag_of_words(VOCABULARY), CENTROIDS, min_similarity=0.5)
    assert label(classifier, "go on", system="you write a poem") == "creative"


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
    assert label(classifier, "anything") == "math"
    assert not math.isnan(0.0)


def test_task_input_reads_every_text_shape() -> None:
    from gateway.judging.task import task_input

    body = {"messages": [{"role": "user", "content": [{"type": "TEXT", "text": ["fix", "this"]}]}]}
    assert task_input(body).last_user == "fix\nthis"
    assert task_input({"prompt": [["a", "b"], "c"]}).last_user == "a\nb\nc"


# --- languages, conversations, confidence, formatting -------------------------

MULTILINGUAL: dict[str, tuple[str, ...]] = {
    "math": (
        "小明有5个苹果，又买了3袋，每袋4个。他现在一共有多少个苹果？",
        "一辆车每小时行驶60公里，3.5小时能行驶多远？",
        "ある店でりんごを1個120円で売っています。7個買うといくらですか？",
        "У Маши было 12 конфет, она отдала треть брату. Сколько осталось?",
    ),
    "translation": (
        "Traduce al inglés: Mañana vamos a la playa con mis primos.",
        "请把这句话翻译成英文：我们明天早上九点开会。",
        "이 문장을 영어로 번역해 주세요: 오늘 날씨가 정말 좋네요.",
        "ترجم إلى الإنجليزية: أين تقع محطة القطار؟",
        "इसका अंग्रेज़ी में अनुवाद करें: मुझे चाय पसंद है।",
        "What do these sentences mean in Romanian? The shop opens at nine. Bread is sold out.",
    ),
    "summarization": (
        "Riassumi in due frasi: il consiglio comunale ha approvato ieri il nuovo piano "
        "per il traffico, che prevede più piste ciclabili e meno parcheggi in centro.",
        "Resuma este texto: a prefeitura anunciou ontem um novo plano de transporte.",
    ),
    "code": (
        "用Python写一个函数，判断一个数是否是质数。",
        "Напиши функцию на JavaScript, которая переворачивает строку.",
    ),
    "chat": (
        "日本で一番高い山は何ですか？",
        "Qual è la capitale dell'Australia?",
        "ما هي عاصمة كندا؟",
    ),
}


@pytest.mark.parametrize(
    ("expected", "text"), [(task, text) for task, texts in MULTILINGUAL.items() for text in texts]
)
def test_languages(classifier: LearnedClassifier, expected: str, text: str) -> None:
    assert label(classifier, text) == expected


def test_a_follow_up_keeps_the_task_of_the_conversation(classifier: LearnedClassifier) -> None:
    translate = "Translate into German: The meeting is moved to Thursday afternoon."
    answer = "Das Treffen wird auf Donnerstagnachmittag verschoben."
    assert label(classifier, "and now in French?", previous_user=translate, assistant=answer) == (
        "translation"
    )
    summarise = "Summarize this report: " + "Sales rose in the north and fell in the south. " * 8
    assert label(
        classifier, "make it shorter", previous_user=summarise, assistant="Sales rose."
    ) == ("summarization")
    problem = "A train travels 300 km in 2.5 hours. What is its average speed?"
    follow = "and if it travelled 450 km?"
    assert label(classifier, follow, previous_user=problem, assistant="120 km/h.") == "math"


def test_a_new_request_in_a_conversation_is_judged_on_its_own(
    classifier: LearnedClassifier,
) -> None:
    problem = "A train travels 300 km in 2.5 hours. What is its average speed?"
    poem = "Now write a short poem about autumn leaves falling on a quiet river."
    assert label(classifier, poem, previous_user=problem, assistant="120 km/h.") == "creative"


def test_confidence_is_a_calibrated_probability(classifier: LearnedClassifier) -> None:
    clear = classifier.classify(TaskInput("Translate into French: good morning, everyone."))
    vague = classifier.classify(TaskInput("ok"))
    assert clear.task == "translation"
    assert 0.0 < vague.confidence < clear.confidence <= 1.0
    assert clear.confidence > 0.8
    probabilities = classifier.probabilities(TaskInput("Translate into French: good morning."))
    assert math.isclose(sum(probabilities), 1.0)


@pytest.mark.parametrize(
    "text",
    [
        "Summarize the following text in one sentence:\n",
        "Summarize the following text in one sentence:\n\n\n",
        "**Summarize the following text in one sentence:**",
        "## Task\nSummarize the following text in one sentence:",
        "   Summarize the following text in one sentence:   ",
    ],
)
def test_formatting_does_not_hide_the_instruction(classifier: LearnedClassifier, text: str) -> None:
    material = "The council met on Monday and agreed to extend the library's opening hours. " * 4
    assert label(classifier, text + "\n" + material) == "summarization"


def test_latex_is_math_not_code(classifier: LearnedClassifier) -> None:
    assert label(classifier, "Compute $\\int_0^1 x^2\\,dx$ and simplify $\\frac{3}{6}$.") == "math"
    assert label(classifier, "If $f(x)=5x^2+3x+4$, what is the value of $f(-2)$?") == "math"
    fenced = "Why does this fail?\n```python\nprint(1/0)\n```"
    assert label(classifier, fenced) == "code"


#: Sanity cases the shipped model gets wrong today, kept so that a retrained model
#: that fixes one fails here (strict) and the case moves up to the passing ones.
KNOWN_MISSES: list[tuple[str, str, dict[str, str]]] = [
    ("code", "Escribe un script de bash que haga copia de seguridad de /home cada noche.", {}),
    ("code", "Pythonで二分探索を実装してください。", {}),
    (
        "summarization",
        "Write a headline for this: the city council voted to close the old bridge for "
        "repairs, diverting traffic for six months while engineers replace its supports.",
        {},
    ),
    ("creative", "Give me a slogan for a bike repair shop.", {}),
    ("math", "사과가 한 상자에 24개씩 들어 있습니다. 5상자에는 모두 몇 개입니까?", {}),
    (
        "translation",
        "Good morning, team.",
        {"system": "You translate everything the user writes into German."},
    ),
    (
        "math",
        "why?",
        {
            "previous_user": "A train travels 300 km in 2.5 hours. What is its average speed?",
            "assistant": "120 km/h.",
        },
    ),
]


@pytest.mark.xfail(strict=True, reason="a known miss of the shipped model")
@pytest.mark.parametrize(("expected", "text", "context"), KNOWN_MISSES)
def test_known_misses(
    classifier: LearnedClassifier, expected: str, text: str, context: dict[str, str]
) -> None:
    assert label(classifier, text, **context) == expected
