"""``gateway facts eval``: precision and recall of the detectors and the task
classifier on a platform team's own labelled traffic.

One JSON object per line (blank lines are skipped)::

    {"text": "...", "entities": [{"type": "iban", "start": 10, "end": 32}], "task": "code"}
    {"messages": [{"role": "user", "content": "..."}], "entities": ["email"]}
    {"body": {"model": "m", "messages": [...]}, "task": "math"}

- exactly one of ``text`` (a user message), ``messages`` (a chat) or ``body``
  (a whole request body, any endpoint);
- ``entities`` (optional): what the line holds. Entity types alone are scored
  against the types the request path finds in the whole request (every field,
  normalised and decoded, as ``gateway serve`` judges it); spans (``start``,
  ``end``: character offsets, with ``text`` only) are scored against the
  detectors' findings in the text as written: a labelled span is found when a
  finding of its type overlaps it; a finding that overlaps no labelled span of
  its type is spurious. ``[]`` says the line holds nothing, so anything found is
  spurious; no ``entities`` key: the line is not scored for entities;
- ``task`` (optional): the expected task label.

The report holds counts, offsets and labels only: no text of a line is ever
printed, nor any value found in one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from gateway.errors import GatewayError
from gateway.judging.build import FactsBuilder
from gateway.judging.facts import SensitivityRules
from gateway.judging.task import TASKS

_KEYS = frozenset({"text", "messages", "body", "entities", "task", "id"})
_INPUTS = ("text", "messages", "body")


class EvalInputError(ValueError):
    """A line of the labelled file is not valid; the message names the line."""


@dataclass(frozen=True, slots=True)
class Miss:
    line: int
    entity: str
    kind: str  # "missed" | "spurious"
    start: int | None = None
    end: int | None = None

    def render(self) -> str:
        where = f" at {self.start}-{self.end}" if self.start is not None else ""
        return f"line {self.line}: {self.kind} {self.entity}{where}"


@dataclass(slots=True)
class Counts:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float | None:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    @property
    def recall(self) -> float | None:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None


@dataclass(slots=True)
class Report:
    lines: int = 0
    entities: dict[str, Counts] = field(default_factory=dict)
    confusion: dict[str, Counter[str]] = field(default_factory=dict)
    misses: list[Miss] = field(default_factory=list)
    task_misses: list[tuple[int, str, str]] = field(default_factory=list)

    def count(self, entity: str) -> Counts:
        counts = self.entities.get(entity)
        if counts is None:
            counts = self.entities[entity] = Counts()
        return counts

    def tasks(self) -> dict[str, Counts]:
        out: dict[str, Counts] = {}
        for expected, row in self.confusion.items():
            for predicted, n in row.items():
                if expected == predicted:
                    out.setdefault(expected, Counts()).tp += n
                else:
                    out.setdefault(expected, Counts()).fn += n
                    out.setdefault(predicted, Counts()).fp += n
        return dict(sorted(out.items()))

    def worst_misses(self, limit: int) -> list[Miss]:
        """Misses of the entities with the lowest recall first, then spurious findings
        of those with the lowest precision; in file order within an entity."""

        def rank(miss: Miss) -> tuple[int, float, int]:
            counts = self.entities[miss.entity]
            score = counts.recall if miss.kind == "missed" else counts.precision
            return (miss.kind != "missed", score if score is not None else 0.0, miss.line)

        return sorted(self.misses, key=rank)[:limit]

    def as_json(self, limit: int) -> dict[str, Any]:
        def metrics(c: Counts) -> dict[str, Any]:
            return {
                "tp": c.tp,
                "fp": c.fp,
                "fn": c.fn,
                "precision": _round(c.precision),
                "recall": _round(c.recall),
            }

        total = _total(self.entities.values())
        tasks = self.tasks()
        right = sum(row[label] for label, row in self.confusion.items())
        judged = sum(sum(row.values()) for row in self.confusion.values())
        return {
            "lines": self.lines,
            "entities": {name: metrics(c) for name, c in sorted(self.entities.items())},
            "entities_overall": metrics(total),
            "tasks": {name: metrics(c) for name, c in tasks.items()},
            "task_accuracy": _round(right / judged if judged else None),
            "confusion": {
                e: dict(sorted(row.items())) for e, row in sorted(self.confusion.items())
            },
            "worst_misses": [
                {k: v for k, v in vars_of(m).items() if v is not None}
                for m in self.worst_misses(limit)
            ],
            "task_misses": [
                {"line": line, "expected": e, "predicted": p}
                for line, e, p in self.task_misses[:limit]
            ],
        }


def vars_of(miss: Miss) -> dict[str, Any]:
    return {
        "line": miss.line,
        "kind": miss.kind,
        "entity": miss.entity,
        "start": miss.start,
        "end": miss.end,
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _total(counts: Iterable[Counts]) -> Counts:
    total = Counts()
    for c in counts:
        total.tp += c.tp
        total.fp += c.fp
        total.fn += c.fn
    return total


def evaluate(lines: Iterable[bytes], builder: FactsBuilder[SensitivityRules]) -> Report:
    """Score every line; :class:`EvalInputError` (naming the line) on the first bad one."""
    report = Report()
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        item = _parse(number, raw)
        report.lines += 1
        body, text = _body(item)
        try:
            facts = builder.build(endpoint=_endpoint(body), body=body, headers={})
        except GatewayError as exc:
            raise EvalInputError(f"line {number}: the request is not valid: {exc}") from None
        labels = item.get("entities")
        if labels is not None:
            spans = _labelled_spans(number, labels, text)
            if spans is None:
                _score_types(report, number, _types(labels), set(facts.sensitivity.entities))
            else:
                assert text is not None
                found = [(f.entity, f.start, f.end) for f in builder.scanner.find(text)]
                _score_spans(report, number, spans, found)
        task = item.get("task")
        if task is not None:
            report.confusion.setdefault(task, Counter())[facts.task] += 1
            if facts.task != task:
                report.task_misses.append((number, task, facts.task))
    return report


def _parse(number: int, raw: bytes) -> dict[str, Any]:
    try:
        item = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise EvalInputError(f"line {number}: not JSON ({exc})") from None
    if not isinstance(item, dict):
        raise EvalInputError(f"line {number}: a line must be a JSON object")
    unknown = sorted(set(item) - _KEYS)
    if unknown:
        raise EvalInputError(
            f"line {number}: unknown key {unknown[0]!r}; a line has: {', '.join(sorted(_KEYS))}"
        )
    given = [k for k in _INPUTS if k in item]
    if len(given) != 1:
        raise EvalInputError(
            f"line {number}: give exactly one of 'text', 'messages' or 'body' (got {len(given)})"
        )
    kind = given[0]
    expected = {"text": str, "messages": list, "body": dict}[kind]
    if not isinstance(item[kind], expected):
        raise EvalInputError(f"line {number}: '{kind}' must be a {expected.__name__}")
    task = item.get("task")
    if task is not None and task not in TASKS:
        raise EvalInputError(
            f"line {number}: task {task!r} is not a task; use one of: {', '.join(TASKS)}"
        )
    if "entities" in item and not isinstance(item["entities"], list):
        raise EvalInputError(f"line {number}: 'entities' must be a list")
    return item


def _body(item: Mapping[str, Any]) -> tuple[dict[str, Any], str | None]:
    if "text" in item:
        text: str = item["text"]
        return {"model": "eval", "messages": [{"role": "user", "content": text}]}, text
    if "messages" in item:
        return {"model": "eval", "messages": item["messages"]}, None
    return dict(item["body"]), None


def _endpoint(body: Mapping[str, Any]) -> str:
    return "embeddings" if "input" in body else "completions" if "prompt" in body else "chat"


def _types(labels: list[Any]) -> set[str]:
    return {label if isinstance(label, str) else label["type"] for label in labels}


def _labelled_spans(
    number: int, labels: list[Any], text: str | None
) -> list[tuple[str, int, int]] | None:
    """The labelled spans (none for a text labelled ``[]``), or None when the
    labels are types only."""
    spans: list[tuple[str, int, int]] = []
    for label in labels:
        if isinstance(label, str):
            continue
        if not isinstance(label, dict) or not isinstance(label.get("type"), str):
            raise EvalInputError(
                f"line {number}: an entity is a type name or "
                '{"type": ..., "start": ..., "end": ...}'
            )
        start, end = label.get("start"), label.get("end")
        if start is None and end is None:
            continue
        if text is None:
            raise EvalInputError(f"line {number}: entity offsets need 'text' (not messages/body)")
        if not (isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= len(text)):
            raise EvalInputError(
                f"line {number}: entity {label['type']!r}: start and end must be offsets "
                f"with 0 <= start < end <= {len(text)} (the text's length)"
            )
        spans.append((label["type"], start, end))
    if spans and len(spans) != len(labels):
        raise EvalInputError(f"line {number}: give offsets for every entity of a line, or none")
    # a text labelled as holding nothing: what is found there is spurious, at its offsets
    return spans if spans or (not labels and text is not None) else None


def _score_types(report: Report, number: int, labelled: set[str], found: set[str]) -> None:
    for entity in labelled | found:
        counts = report.count(entity)
        if entity in labelled and entity in found:
            counts.tp += 1
        elif entity in labelled:
            counts.fn += 1
            report.misses.append(Miss(number, entity, "missed"))
        else:
            counts.fp += 1
            report.misses.append(Miss(number, entity, "spurious"))


def _score_spans(
    report: Report,
    number: int,
    labelled: list[tuple[str, int, int]],
    found: list[tuple[str, int, int]],
) -> None:
    def overlaps(a: tuple[str, int, int], b: tuple[str, int, int]) -> bool:
        return a[0] == b[0] and a[1] < b[2] and b[1] < a[2]

    for span in labelled:
        counts = report.count(span[0])
        if any(overlaps(span, f) for f in found):
            counts.tp += 1
        else:
            counts.fn += 1
            report.misses.append(Miss(number, span[0], "missed", span[1], span[2]))
    for f in found:
        if not any(overlaps(f, span) for span in labelled):
            report.count(f[0]).fp += 1
            report.misses.append(Miss(number, f[0], "spurious", f[1], f[2]))


def render(report: Report, limit: int) -> str:
    """The report as text tables."""

    def pct(value: float | None) -> str:
        return "-" if value is None else f"{value:.1%}"

    out = [f"{report.lines} lines"]
    if report.entities:
        out.append("")
        out.append(f"{'entity':<22}{'tp':>6}{'fp':>6}{'fn':>6}{'precision':>11}{'recall':>9}")
        rows = [*sorted(report.entities.items()), ("all", _total(report.entities.values()))]
        for name, c in rows:
            out.append(
                f"{name:<22}{c.tp:>6}{c.fp:>6}{c.fn:>6}{pct(c.precision):>11}{pct(c.recall):>9}"
            )
    if report.confusion:
        tasks = report.tasks()
        right = sum(row[label] for label, row in report.confusion.items())
        judged = sum(sum(row.values()) for row in report.confusion.values())
        out.append("")
        out.append(f"{'task':<22}{'tp':>6}{'fp':>6}{'fn':>6}{'precision':>11}{'recall':>9}")
        for name, c in tasks.items():
            out.append(
                f"{name:<22}{c.tp:>6}{c.fp:>6}{c.fn:>6}{pct(c.precision):>11}{pct(c.recall):>9}"
            )
        out.append(f"task accuracy: {pct(right / judged)} of {judged}")
        labels = sorted(tasks)
        out.append("")
        out.append("confusion (rows: labelled, columns: judged)")
        out.append(f"{'':<15}" + "".join(f"{label[:9]:>10}" for label in labels))
        for expected in labels:
            row = report.confusion.get(expected, Counter())
            out.append(f"{expected:<15}" + "".join(f"{row[p]:>10}" for p in labels))
    worst = report.worst_misses(limit)
    if worst or report.task_misses:
        out.append("")
        out.append("worst misses (kinds and offsets only; no text is printed)")
        out.extend(m.render() for m in worst)
        out.extend(
            f"line {line}: task {expected} judged {predicted}"
            for line, expected, predicted in report.task_misses[:limit]
        )
    return "\n".join(out)
