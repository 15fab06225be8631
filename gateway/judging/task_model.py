"""The learned task classifier: a multinomial logistic regression over the
features of :mod:`gateway.judging.task_features`, weights shipped in the package.

``data/task_model.zlib`` is written by ``scripts/train_task_classifier.py`` from
the public corpus in ``bench/task_data`` (provenance and licences in its
README). Its layout, after zlib decompression (zlib, not xz: it decompresses
five times faster, which is most of the start-up cost): one JSON header line (labels,
segment weights, bias, quantisation scale, softmax temperature, vocabulary
size, the corpus' sha256), then the vocabulary (one feature per line), then
one little-endian int16 per feature and label.

Inference: every segment's features are looked up in one dict that maps a
feature to its label weights *packed into one integer* (each weight offset to
be non-negative in a field of :data:`_FIELD` bits), so summing a segment is one
C-level ``sum(map(...))`` over its features, and the fields are unpacked once
per segment. Unknown features map to the packed offset alone (weight 0). The
probabilities are a softmax at the calibrated temperature; the confidence is
the top probability.
"""

from __future__ import annotations

import json
import math
import sys
import zlib
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from itertools import repeat
from pathlib import Path
from typing import Any

from gateway.judging.task_features import SEGMENTS, TaskInput, scale, segments

MODEL_PATH = Path(__file__).resolve().parent / "data" / "task_model.zlib"
#: the answer when there is nothing to judge (an empty conversation)
DEFAULT_TASK = "chat"
FORMAT = 1
#: bits per label in a packed weight: the offset (2**15) times the features of a
#: segment (at most a few thousand) stays far below 2**_FIELD
_FIELD = 40
_OFFSET = 1 << 15
_MASK = (1 << _FIELD) - 1


@dataclass(frozen=True, slots=True)
class TaskLabel:
    """A classifier's answer: the task and how sure it is (0..1)."""

    task: str
    confidence: float


@dataclass(frozen=True, slots=True)
class TaskModel:
    """Weights of the learned classifier (as trained, before packing)."""

    labels: tuple[str, ...]
    vocabulary: tuple[str, ...]
    #: ``len(vocabulary) * len(labels)`` quantised weights, row-major
    weights: Sequence[int]
    bias: tuple[float, ...]
    scale: float
    temperature: float
    segment_weights: tuple[float, ...]
    meta: dict[str, Any]

    def dump(self, path: Path) -> None:
        header = {
            "format": FORMAT,
            "labels": list(self.labels),
            "bias": list(self.bias),
            "scale": self.scale,
            "temperature": self.temperature,
            "segments": list(self.segment_weights),
            "vocabulary": len(self.vocabulary),
            **self.meta,
        }
        packed = array("h", self.weights)
        if sys.byteorder != "little":
            packed.byteswap()
        blob = (
            json.dumps(header, sort_keys=True).encode()
            + b"\n"
            + "\n".join(self.vocabulary).encode("utf-8")
            + b"\n"
            + packed.tobytes()
        )
        path.write_bytes(zlib.compress(blob, 9))

    @classmethod
    def load(cls, path: Path = MODEL_PATH) -> TaskModel:
        blob = zlib.decompress(path.read_bytes())
        end = blob.index(b"\n")
        header = json.loads(blob[:end])
        if header.get("format") != FORMAT:
            raise ValueError(f"{path}: task model format {header.get('format')}, want {FORMAT}")
        labels = tuple(header.pop("labels"))
        size = header.pop("vocabulary")
        start = end + 1
        weights_at = len(blob) - size * len(labels) * 2
        vocabulary = blob[start : weights_at - 1].decode("utf-8").split("\n") if size else []
        if len(vocabulary) != size:
            raise ValueError(f"{path}: {len(vocabulary)} features, header says {size}")
        weights = array("h")
        weights.frombytes(blob[weights_at:])
        if sys.byteorder != "little":
            weights.byteswap()
        if len(weights) != size * len(labels):
            raise ValueError(f"{path}: {len(weights)} weights for {size} features")
        header.pop("format")
        return cls(
            labels=labels,
            vocabulary=tuple(vocabulary),
            weights=weights,
            bias=tuple(header.pop("bias")),
            scale=float(header.pop("scale")),
            temperature=float(header.pop("temperature")),
            segment_weights=tuple(header.pop("segments")),
            meta=header,
        )


class LearnedClassifier:
    """The built-in classifier: the shipped model, loaded once; no I/O per request."""

    __slots__ = ("_bias", "_empty", "_labels", "_packed", "_scale", "_segments", "_temperature")

    def __init__(self, model: TaskModel | None = None) -> None:
        model = model or TaskModel.load(MODEL_PATH)
        if len(model.segment_weights) != len(SEGMENTS):
            raise ValueError(
                f"task model has {len(model.segment_weights)} segments, features {len(SEGMENTS)}"
            )
        self._packed = dict(
            zip(model.vocabulary, _pack(model.weights, len(model.labels)), strict=True)
        )
        self._empty = sum(_OFFSET << (_FIELD * label) for label in range(len(model.labels)))
        self._labels = model.labels
        self._bias = model.bias
        self._scale = model.scale
        self._temperature = model.temperature
        self._segments = model.segment_weights

    @property
    def labels(self) -> tuple[str, ...]:
        return self._labels

    def scores(self, item: TaskInput) -> list[float]:
        """Logits per label (before the temperature)."""
        scores = list(self._bias)
        get, empty, k, unit = self._packed.get, self._empty, len(self._labels), self._scale
        for features, weight in zip(segments(item), self._segments, strict=True):
            if not features:
                continue
            total = sum(map(get, features, repeat(empty)))
            offset = _OFFSET * len(features)
            factor = scale(features, weight) * unit
            for label in range(k):
                scores[label] += (((total >> (_FIELD * label)) & _MASK) - offset) * factor
        return scores

    def probabilities(self, item: TaskInput) -> list[float]:
        scores = self.scores(item)
        top = max(scores)
        t = self._temperature
        exps = [math.exp((s - top) / t) for s in scores]
        total = sum(exps)
        return [e / total for e in exps]

    def classify(self, item: TaskInput) -> TaskLabel:
        if not (item.last_user.strip() or item.previous_user or item.system):
            # nothing to judge: the default task, with no more confidence than a guess
            return TaskLabel(DEFAULT_TASK, 1.0 / len(self._labels))
        probabilities = self.probabilities(item)
        best = max(range(len(probabilities)), key=probabilities.__getitem__)
        return TaskLabel(self._labels[best], probabilities[best])


def _pack(weights: Sequence[int], k: int) -> list[int]:
    """Every row of ``k`` int16 weights as one integer: field ``label`` (of
    :data:`_FIELD` bits) holds ``weight + _OFFSET``. Built with C-level byte
    operations (a few tens of ms for the shipped model, not a Python loop per weight):
    adding 2**15 to an int16 is flipping its top bit, and each 2-byte field is
    spread into a 5-byte one by slice assignment."""
    raw = bytearray(array("h", weights).tobytes())
    if sys.byteorder != "little":
        swapped = array("h", weights)
        swapped.byteswap()
        raw = bytearray(swapped.tobytes())
    raw[1::2] = raw[1::2].translate(_FLIP_TOP_BIT)
    width = _FIELD // 8
    spread = bytearray(len(raw) // 2 * width)
    spread[0::width] = raw[0::2]
    spread[1::width] = raw[1::2]
    row = k * width
    view = memoryview(spread)
    from_bytes = int.from_bytes
    return [from_bytes(view[i : i + row], "little") for i in range(0, len(spread), row)]


_FLIP_TOP_BIT = bytes(b ^ 0x80 for b in range(256))


@cache
def shipped_classifier() -> LearnedClassifier:
    """The classifier of the shipped model, built once per process: loading
    takes a fraction of a second, and the object never changes after it is
    built, so every policy load and test shares it."""
    return LearnedClassifier()
