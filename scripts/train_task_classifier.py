"""Train the learned task classifier and write gateway/judging/data/task_model.zlib.

Run: ``.venv/bin/python scripts/train_task_classifier.py [--corpus PATH] [--out PATH]
[--limit N] [--iterations N]``. Reads the ``train`` split of the corpus
(``bench/task_data/corpus.jsonl.xz``, built by ``bench/task_data/extract.py``;
the ``heldout`` split is never read here), turns each conversation into the
features of :mod:`gateway.judging.task_features` through the same
:func:`~gateway.judging.task.task_input` the gateway uses, and fits a
multinomial logistic regression (classes weighted to balance, L2) with full-batch
Adam in numpy. A tenth of the training items (by a hash of their id) is kept
aside to fit the softmax temperature (calibration) and report accuracy.
Deterministic: the same corpus gives the same weights. Needs numpy (a dev dependency).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import lzma
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.judging.task import TASKS, task_input  # noqa: E402
from gateway.judging.task_features import SEGMENTS, scale, segments  # noqa: E402
from gateway.judging.task_model import MODEL_PATH, TaskModel  # noqa: E402

CORPUS = ROOT / "bench" / "task_data" / "corpus.jsonl.xz"
MIN_COUNT = 2
L2 = 2e-6
LEARNING_RATE = 0.08
ITERATIONS = 200
#: weights below this (in every label) are dropped: they change no decision
PRUNE = 0.02


def read_corpus(path: Path, split: str) -> list[dict[str, Any]]:
    with lzma.open(path, "rt", encoding="utf-8") as lines:
        return [row for line in lines if (row := json.loads(line))["split"] == split]


def calibration(row_id: str) -> bool:
    return hashlib.sha256(row_id.encode()).digest()[0] % 10 == 0


def featurize(rows: list[dict[str, Any]]) -> list[list[tuple[set[str], float]]]:
    out = []
    for row in rows:
        item = task_input({"messages": row["messages"]})
        segs = segments(item)
        out.append([(f, scale(f, w)) for f, (_, w) in zip(segs, SEGMENTS, strict=True) if f])
    return out


def matrix(
    feats: list[list[tuple[set[str], float]]], index: dict[str, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CSR-like arrays: row of each entry, column, value."""
    rows: list[int] = []
    cols: list[int] = []
    vals: list[float] = []
    for r, segs in enumerate(feats):
        for features, value in segs:
            # sorted: set order changes with the process' hash seed, and so would
            # the order of float sums and the rounded weights
            for f in sorted(features):
                c = index.get(f)
                if c is not None:
                    rows.append(r)
                    cols.append(c)
                    vals.append(value)
    return np.array(rows, np.int64), np.array(cols, np.int64), np.array(vals, np.float64)


def logits(
    rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, n: int, w: np.ndarray, b: np.ndarray
) -> np.ndarray:
    """``X @ w.T + b`` for the sparse ``X`` given by (rows, cols, vals); ``w`` is (labels, features)."""
    out = np.empty((n, w.shape[0]))
    for k in range(w.shape[0]):
        out[:, k] = np.bincount(rows, weights=vals * w[k][cols], minlength=n)
    return out + b


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def train(
    feats: list[list[tuple[set[str], float]]], labels: np.ndarray, iterations: int, l2: float
) -> tuple[list[str], np.ndarray, np.ndarray]:
    counts: Counter[str] = Counter()
    for segs in feats:
        counts.update({f for features, _ in segs for f in features})
    vocabulary = sorted(f for f, c in counts.items() if c >= MIN_COUNT)
    index = {f: i for i, f in enumerate(vocabulary)}
    rows, cols, vals = matrix(feats, index)
    n, v, k = len(feats), len(vocabulary), len(TASKS)
    y = np.zeros((n, k))
    y[np.arange(n), labels] = 1.0
    per_class = np.bincount(labels, minlength=k).astype(float)
    sample = (n / (k * np.maximum(per_class, 1.0)))[labels]  # balance the classes
    sample /= sample.sum()
    w = np.zeros((k, v))
    b = np.zeros(k)
    m_w, v_w, m_b, v_b = np.zeros_like(w), np.zeros_like(w), np.zeros_like(b), np.zeros_like(b)
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    started = time.perf_counter()
    for step in range(1, iterations + 1):
        p = softmax(logits(rows, cols, vals, n, w, b))
        g = (p - y) * sample[:, None]
        grad_w = np.empty_like(w)
        for c in range(k):
            grad_w[c] = np.bincount(cols, weights=vals * g[:, c][rows], minlength=v)
        grad_w += l2 * w
        grad_b = g.sum(axis=0)
        for param, grad, m, s in ((w, grad_w, m_w, v_w), (b, grad_b, m_b, v_b)):
            m *= beta1
            m += (1 - beta1) * grad
            s *= beta2
            s += (1 - beta2) * grad * grad
            param -= (
                LEARNING_RATE * (m / (1 - beta1**step)) / (np.sqrt(s / (1 - beta2**step)) + eps)
            )
        if step % 50 == 0 or step == iterations:
            loss = -(sample * np.log(p[np.arange(n), labels] + 1e-12)).sum()
            accuracy = (p.argmax(axis=1) == labels).mean()
            print(
                f"step {step}: loss {loss:.4f} train accuracy {accuracy:.4f} "
                f"({time.perf_counter() - started:.0f} s)",
                flush=True,
            )
    return vocabulary, w.T, b


def temperature(z: np.ndarray, labels: np.ndarray) -> float:
    """The softmax temperature that minimises the calibration items' log loss."""
    best, best_loss = 1.0, float("inf")
    for t in np.arange(0.3, 3.01, 0.05):
        p = softmax(z / t)
        loss = -np.log(p[np.arange(len(labels)), labels] + 1e-12).mean()
        if loss < best_loss:
            best, best_loss = float(t), float(loss)
    return round(best, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--out", type=Path, default=MODEL_PATH)
    parser.add_argument("--limit", type=int, default=0, help="use the first N training items")
    parser.add_argument("--iterations", type=int, default=ITERATIONS)
    parser.add_argument("--l2", type=float, default=L2, help="L2 penalty on the weights")
    args = parser.parse_args()

    rows = read_corpus(args.corpus, "train")
    if args.limit:
        rows = rows[: args.limit]
    fit = [r for r in rows if not calibration(r["id"])]
    held = [r for r in rows if calibration(r["id"])]
    print(f"{len(fit)} training items, {len(held)} calibration items", flush=True)
    fit_feats = featurize(fit)
    fit_labels = np.array([TASKS.index(r["label"]) for r in fit])
    vocabulary, w, b = train(fit_feats, fit_labels, args.iterations, args.l2)

    keep = np.abs(w).max(axis=1) >= PRUNE
    vocabulary = [f for f, kept in zip(vocabulary, keep, strict=True) if kept]
    w = w[keep]
    unit = float(np.abs(w).max()) / 32000 or 1.0
    quantised = np.round(w / unit).astype(np.int16)
    index = {f: i for i, f in enumerate(vocabulary)}

    t = 1.0
    if held:
        held_labels = np.array([TASKS.index(r["label"]) for r in held])
        h_rows, h_cols, h_vals = matrix(featurize(held), index)
        z = logits(h_rows, h_cols, h_vals, len(held), (quantised * unit).T.copy(), b)
        t = temperature(z, held_labels)
        print(
            f"calibration accuracy {(z.argmax(axis=1) == held_labels).mean():.4f}, temperature {t}"
        )
    digest = hashlib.sha256(args.corpus.read_bytes()).hexdigest()
    model = TaskModel(
        labels=TASKS,
        vocabulary=tuple(vocabulary),
        weights=quantised.reshape(-1).tolist(),
        bias=tuple(round(float(x), 6) for x in b),
        scale=unit,
        temperature=t,
        segment_weights=tuple(weight for _, weight in SEGMENTS),
        meta={
            "corpus_sha256": digest,
            "train_items": len(fit),
            "limit": args.limit,
            "iterations": args.iterations,
            "l2": args.l2,
        },
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    model.dump(args.out)
    print(f"{len(vocabulary)} features -> {args.out} ({args.out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
