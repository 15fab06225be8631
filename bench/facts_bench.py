"""Median time of sensitivity detection on ordinary prompts of 1, 4, 16 and 64 KB.

Run: ``python bench/facts_bench.py``. Prints, per size, the median microseconds of
``Scanner.entity_types`` on English prose with a few numbers (no entities), on
the same prose with a handful of entities sprinkled in, and of a full
``Redaction.redact_body`` of the latter. Not a test: numbers depend on the machine.
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway.judging.redaction import Redaction
from gateway.judging.sensitivity import Scanner

WORDS = [
    "the",
    "of",
    "and",
    "to",
    "in",
    "a",
    "is",
    "that",
    "for",
    "it",
    "as",
    "was",
    "with",
    "be",
    "by",
    "on",
    "not",
    "he",
    "this",
    "are",
    "or",
    "his",
    "from",
    "at",
    "which",
    "but",
    "have",
    "an",
    "they",
    "you",
    "were",
    "her",
    "she",
    "there",
    "been",
    "one",
    "all",
    "we",
    "their",
    "has",
    "would",
    "when",
    "if",
    "so",
    "what",
    "can",
    "about",
    "more",
    "will",
    "up",
    "out",
    "them",
    "into",
    "some",
    "time",
    "could",
    "than",
    "other",
    "then",
    "do",
    "only",
    "its",
    "like",
    "new",
    "also",
    "after",
    "first",
    "two",
    "use",
    "how",
    "our",
    "way",
    "even",
    "because",
    "any",
    "these",
    "most",
    "us",
    "model",
    "data",
    "request",
    "summary",
    "please",
    "explain",
    "the",
    "following",
    "code",
    "function",
    "returns",
    "value",
    "error",
    "latency",
    "customer",
    "meeting",
    "notes",
    "report",
    "quarter",
    "revenue",
    "growth",
    "team",
    "project",
    "deadline",
    "review",
]
ENTITIES = (
    "jane.doe@example.com",
    "+1 415 555 0100",
    "4111 1111 1111 1111",
    "10.20.30.40",
    "password=hunter22",
)


def prose(size: int, seed: int, with_entities: bool) -> str:
    rng = random.Random(seed)
    parts: list[str] = []
    length = 0
    while length < size:
        if rng.random() < 0.01:
            word = str(rng.randint(1, 2030))  # years and counts: digits are common in prose
        elif with_entities and rng.random() < 0.004:
            word = rng.choice(ENTITIES)
        else:
            word = rng.choice(WORDS)
        if rng.random() < 0.08:
            word += rng.choice(".,:")
        parts.append(word)
        length += len(word) + 1
    return " ".join(parts)[:size]


def median_us(fn: Callable[[], object], rounds: int) -> float:
    samples = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples) * 1e6


def main() -> None:
    scanner = Scanner()
    print(f"{'size':>6} {'clean µs':>10} {'entities µs':>12} {'redact µs':>10}")
    for kb in (1, 4, 16, 64):
        size = kb * 1024
        rounds = max(50, 4000 // kb)
        clean = prose(size, kb, with_entities=False)
        dirty = prose(size, kb, with_entities=True)
        body = {"model": "m", "messages": [{"role": "user", "content": dirty}]}
        t_clean = median_us(lambda: scanner.entity_types([clean]), rounds)  # noqa: B023
        t_dirty = median_us(lambda: scanner.entity_types([dirty]), rounds)  # noqa: B023
        t_redact = median_us(
            lambda: Redaction(scanner, scanner.entities).redact_body(body),  # noqa: B023
            rounds,
        )
        print(f"{kb:>4}KB {t_clean:>10.1f} {t_dirty:>12.1f} {t_redact:>10.1f}")


if __name__ == "__main__":
    main()
