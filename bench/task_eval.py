"""Accuracy and speed of the built-in task classifier on the project's own labelled set.

(The evaluation on public data it was not trained on is ``bench/task_heldout.py``.)

Run: ``python bench/task_eval.py [tests/data/task_eval.yaml]``. Prints accuracy
per class and overall, every confusion (expected -> got, with the prompt),
and the median time to classify a 4 KB prompt and to estimate its tokens.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

# runnable from a checkout without installing the package
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway.judging.task import TASKS, TaskClassifier, TaskInput
from gateway.judging.task_model import shipped_classifier
from gateway.judging.tokens import estimate_tokens

DEFAULT_SET = Path(__file__).resolve().parent.parent / "tests" / "data" / "task_eval.yaml"


def load(path: Path) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return items


def evaluate(
    classifier: TaskClassifier, items: Sequence[dict[str, Any]]
) -> tuple[dict[str, float], float, list[tuple[str, str, str]]]:
    """Per-class accuracy (recall), overall accuracy, and (expected, got, text) misses."""
    total: Counter[str] = Counter()
    right: Counter[str] = Counter()
    misses: list[tuple[str, str, str]] = []
    for item in items:
        expected = item["label"]
        got = classifier.classify(TaskInput(item["text"], item.get("system", ""))).task
        total[expected] += 1
        if got == expected:
            right[expected] += 1
        else:
            misses.append((expected, got, item["text"]))
    per_class = {label: right[label] / total[label] for label in TASKS if total[label]}
    overall = sum(right.values()) / max(1, sum(total.values()))
    return per_class, overall, misses


def median_us(fn: Callable[[], object], calls: int = 2000) -> float:
    samples = []
    for _ in range(calls):
        start = time.perf_counter_ns()
        fn()
        samples.append(time.perf_counter_ns() - start)
    return statistics.median(samples) / 1000


def prompt_4kb(items: Sequence[dict[str, Any]]) -> str:
    """A realistic 4 KB prompt: pasted material from the set under an instruction."""
    body = "\n\n".join(item["text"] for item in items)
    return "Here is some material I collected:\n\n" + body[:3900] + "\n\nWhat do you make of it?"


def main(argv: Sequence[str]) -> int:
    path = Path(argv[1]) if len(argv) > 1 else DEFAULT_SET
    items = load(path)
    classifier = shipped_classifier()
    per_class, overall, misses = evaluate(classifier, items)
    langs = Counter(item.get("lang", "?") for item in items)
    print(
        f"{len(items)} prompts, {sum(n for lang, n in langs.items() if lang != 'en')} not in English"
    )
    for label, accuracy in per_class.items():
        print(f"  {label:14s} {accuracy:6.1%}")
    print(f"  {'overall':14s} {overall:6.1%}")
    print(f"\nconfusions ({len(misses)}):")
    for expected, got, text in misses:
        print(f"  {expected:>13s} -> {got:13s} {text[:90]!r}")
    sample = prompt_4kb(items)
    item = TaskInput(sample)
    print(f"\nspeed on a {len(sample.encode())}-byte prompt (median of 2000):")
    print(f"  classify         {median_us(lambda: classifier.classify(item)):6.1f} µs")
    print(f"  estimate_tokens  {median_us(lambda: estimate_tokens(sample)):6.1f} µs")
    # the tests scale their budgets by this reference (12 µs on an idle modern core)
    print(f"  reference        {median_us(lambda: sum(range(1000))):6.1f} µs  (sum(range(1000)))")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
