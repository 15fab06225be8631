"""The task classifier on public data it was not trained on: the held-out split.

Run: ``python bench/task_heldout.py [--corpus PATH] [--model PATH]
[--json]``. Reads the ``heldout`` split of ``bench/task_data/corpus.jsonl.xz``
(items chosen by a hash of their source id, plus instruction templates the
training never saw; see bench/task_data/README.md), classifies every
conversation through :func:`~gateway.judging.task.task_input` as the gateway
does, and prints overall accuracy, per-class precision and recall, the
confusion matrix, accuracy per language and per source, how often a clean
prompt is flagged sensitive by the built-in detectors, and the classifier's
median cost on a 4 KB prompt (alone, and with the rest of the facts).
Exits 1 when a target is missed: 90 % overall, 85 % for every class.
"""

from __future__ import annotations

import argparse
import json
import lzma
import statistics
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.judging.sensitivity import Scanner  # noqa: E402
from gateway.judging.task import TASKS, TaskInput, task_input  # noqa: E402
from gateway.judging.task_model import LearnedClassifier, TaskModel, shipped_classifier  # noqa: E402

CORPUS = ROOT / "bench" / "task_data" / "corpus.jsonl.xz"
OVERALL_TARGET = 0.90
CLASS_TARGET = 0.85


def read(path: Path, split: str = "heldout") -> list[dict[str, Any]]:
    with lzma.open(path, "rt", encoding="utf-8") as lines:
        return [row for line in lines if (row := json.loads(line))["split"] == split]


def evaluate(classify: Callable[[TaskInput], str], rows: list[dict[str, Any]]) -> dict[str, Any]:
    confusion: dict[str, Counter[str]] = {label: Counter() for label in TASKS}
    by_lang: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    by_source: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for row in rows:
        got = classify(task_input({"messages": row["messages"]}))
        confusion[row["label"]][got] += 1
        ok = int(got == row["label"])
        for table, key in ((by_lang, row["lang"]), (by_source, row["source"])):
            table[key][0] += ok
            table[key][1] += 1
    right = sum(confusion[label][label] for label in TASKS)
    recall = {
        label: confusion[label][label] / max(1, sum(confusion[label].values())) for label in TASKS
    }
    predicted = Counter[str]()
    for label in TASKS:
        predicted.update(confusion[label])
    precision = {label: confusion[label][label] / max(1, predicted[label]) for label in TASKS}
    return {
        "items": len(rows),
        "accuracy": right / max(1, len(rows)),
        "recall": recall,
        "precision": precision,
        "confusion": {label: dict(confusion[label]) for label in TASKS},
        "languages": {k: v[0] / v[1] for k, v in sorted(by_lang.items())},
        "language_items": {k: v[1] for k, v in sorted(by_lang.items())},
        "sources": {k: v[0] / v[1] for k, v in sorted(by_source.items())},
    }


def flagged(rows: list[dict[str, Any]]) -> tuple[int, int, Counter[str]]:
    """How many prompts the built-in detectors find something in (these public
    prompts carry no secrets or personal data of real people, though news text
    names public figures, dates and places)."""
    scanner = Scanner()
    kinds: Counter[str] = Counter()
    hits = 0
    for row in rows:
        found: set[str] = set()
        for message in row["messages"]:
            found.update(f.entity for f in scanner.find(message["content"]))
        if found:
            hits += 1
            kinds.update(found)
    return hits, len(rows), kinds


def timing(classify: Callable[[TaskInput], object], rows: list[dict[str, Any]]) -> dict[str, float]:
    """Median microseconds to classify a ~4 KB prompt (and a 64 KB one)."""
    out = {}
    text = "\n".join(r["messages"][-1]["content"] for r in rows[:200])
    for size in (4096, 65536):
        item = TaskInput((text * (1 + size // max(1, len(text))))[:size])
        runs = []
        for _ in range(300):
            started = time.perf_counter()
            classify(item)
            runs.append(time.perf_counter() - started)
        out[f"{size // 1024}KB_us"] = statistics.median(runs) * 1e6
    return out


def report(name: str, result: dict[str, Any]) -> None:
    print(f"\n== {name}: {result['accuracy']:.1%} of {result['items']} held-out items")
    print(f"{'class':<15}{'precision':>10}{'recall':>8}")
    for label in TASKS:
        print(f"{label:<15}{result['precision'][label]:>10.1%}{result['recall'][label]:>8.1%}")
    print("confusion (rows: expected, columns: got)")
    print(" " * 15 + "".join(f"{label[:6]:>7}" for label in TASKS))
    for label in TASKS:
        row = result["confusion"][label]
        print(f"{label:<15}" + "".join(f"{row.get(got, 0):>7}" for got in TASKS))
    print(
        "per language: "
        + ", ".join(
            f"{k} {v:.1%} ({result['language_items'][k]})" for k, v in result["languages"].items()
        )
    )
    print("per source: " + ", ".join(f"{k} {v:.1%}" for k, v in result["sources"].items()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    parser.add_argument("--no-flags", action="store_true", help="skip the detector count")
    parser.add_argument("--model", type=Path, help="a model file instead of the shipped one")
    args = parser.parse_args()
    rows = read(args.corpus)
    learned = LearnedClassifier(TaskModel.load(args.model)) if args.model else shipped_classifier()
    result = evaluate(lambda item: learned.classify(item).task, rows)
    result["timing"] = timing(learned.classify, rows)
    report("learned classifier", result)
    print("cost: " + ", ".join(f"{k} {v:.1f}" for k, v in result["timing"].items()))
    if not args.no_flags:
        hits, total, kinds = flagged(rows)
        result["flagged"] = {"items": hits, "of": total, "kinds": dict(kinds)}
        print(
            f"flagged sensitive by the built-in detectors: {hits}/{total} "
            f"({hits / max(1, total):.2%}): {dict(kinds.most_common(8))}"
        )
    if args.json:
        print(json.dumps(result, indent=1, sort_keys=True))
    ok = result["accuracy"] >= OVERALL_TARGET and min(result["recall"].values()) >= CLASS_TARGET
    print("targets (90 % overall, 85 % every class): " + ("met" if ok else "MISSED"))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
