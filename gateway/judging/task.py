"""What kind of task a request is: the built-in learned classifier and a plug-in seam.

Labels: :data:`TASKS`. The built-in classifier is
:class:`~gateway.judging.task_model.LearnedClassifier`: a logistic regression
over character and word features of the conversation (the last user turn
weighted most, the earlier user turn, the assistant's last reply and the system
prompt less: :mod:`gateway.judging.task_features`), trained by
``scripts/train_task_classifier.py`` on public multilingual data, weights
shipped in the package. Every answer is a :class:`TaskLabel`: the task and a
calibrated confidence, which a policy may condition on (``task_confidence``).

Plug-ins implement :class:`TaskClassifier`. :class:`EmbeddingClassifier` is
the seam for an embedding model: nearest labelled centroid by cosine
similarity, deferring to another classifier when nothing is close enough. A
small-LLM classifier implements the same one-method protocol.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

from gateway.judging.task_features import TaskInput
from gateway.judging.task_model import TaskLabel, shipped_classifier
from gateway.judging.walk import walk

__all__ = [
    "DEFAULT_TASK",
    "TASKS",
    "EmbeddingClassifier",
    "TaskClassifier",
    "TaskInput",
    "TaskLabel",
    "task_input",
]

TASKS: tuple[str, ...] = (
    "translation",
    "summarization",
    "extraction",
    "creative",
    "math",
    "code",
    "chat",
)
DEFAULT_TASK = "chat"

#: characters of the last user message, and of the system prompt and the
#: earlier user turn, given to an embedding model
_EMBED_HEAD = 400
_EMBED_TAIL = 300
_EMBED_CONTEXT = 200
#: softmax temperature over cosine similarities for an embedding answer's confidence
_SIMILARITY_TEMPERATURE = 0.05


class TaskClassifier(Protocol):
    def classify(self, item: TaskInput) -> TaskLabel:
        """One of :data:`TASKS` and a confidence in 0..1."""
        ...


def _window(text: str, head: int, tail: int) -> str:
    if len(text) <= head + tail:
        return text
    return f"{text[:head]}\n{text[-tail:]}"


# --- the plug-in seam -------------------------------------------------------


Embed = Callable[[str], Sequence[float]]


def _normalized(vector: Sequence[float]) -> tuple[float, ...]:
    norm = math.sqrt(sum(x * x for x in vector))
    if norm == 0.0:
        return tuple(0.0 for _ in vector)
    return tuple(x / norm for x in vector)


class EmbeddingClassifier:
    """Nearest labelled centroid by cosine similarity of an embedding.

    ``embed`` turns a text into a vector (a local sentence-embedding model, or
    a call the caller has made synchronous and bounded); ``centroids`` maps
    labels of :data:`TASKS` to one or more reference vectors (e.g. the mean
    embedding of labelled prompts). The text embedded is the start of the
    system prompt and of the earlier user turn, and the last user message
    bounded to its first :data:`_EMBED_HEAD` and last :data:`_EMBED_TAIL`
    characters. The confidence is the best label's share of a softmax over
    each label's best similarity. When the best similarity is below
    ``min_similarity`` the answer is ``fallback``'s (by default the built-in
    learned classifier).
    """

    __slots__ = ("_centroids", "_embed", "_fallback", "_min_similarity")

    def __init__(
        self,
        embed: Embed,
        centroids: Mapping[str, Sequence[Sequence[float]]],
        *,
        min_similarity: float = 0.0,
        fallback: TaskClassifier | None = None,
    ) -> None:
        unknown = sorted(set(centroids) - set(TASKS))
        if unknown:
            raise ValueError(f"unknown task labels {unknown}; use labels from {TASKS}")
        pairs = [(label, _normalized(v)) for label, vs in centroids.items() for v in vs]
        if not pairs:
            raise ValueError("an embedding classifier needs at least one centroid")
        dimensions = {len(v) for _, v in pairs}
        if len(dimensions) != 1:
            raise ValueError(f"centroids have different dimensions: {sorted(dimensions)}")
        self._embed = embed
        self._centroids = tuple(pairs)
        self._min_similarity = min_similarity
        self._fallback: TaskClassifier = fallback or shipped_classifier()

    @classmethod
    def from_examples(
        cls,
        embed: Embed,
        examples: Iterable[tuple[str, str]],
        *,
        min_similarity: float = 0.0,
        fallback: TaskClassifier | None = None,
    ) -> EmbeddingClassifier:
        """Centroids from labelled texts ``(label, text)``: each label's mean
        normalised embedding (a platform team's own labelled prompts)."""
        sums: dict[str, list[float]] = {}
        for label, text in examples:
            vector = _normalized(embed(text))
            total = sums.setdefault(label, [0.0] * len(vector))
            if len(total) != len(vector):
                raise ValueError(
                    f"embeddings have different dimensions: {len(total)}, {len(vector)}"
                )
            for i, x in enumerate(vector):
                total[i] += x
        centroids = {label: [total] for label, total in sums.items()}
        return cls(embed, centroids, min_similarity=min_similarity, fallback=fallback)

    def classify(self, item: TaskInput) -> TaskLabel:
        parts = [
            item.system[:_EMBED_CONTEXT],
            item.previous_user[:_EMBED_CONTEXT],
            _window(item.last_user, _EMBED_HEAD, _EMBED_TAIL),
        ]
        vector = _normalized(self._embed("\n\n".join(p for p in parts if p)))
        best: dict[str, float] = {}
        for label, centroid in self._centroids:
            if len(centroid) != len(vector):
                raise ValueError(
                    f"embedding has {len(vector)} dimensions, centroids {len(centroid)}"
                )
            similarity = sum(a * b for a, b in zip(centroid, vector, strict=True))
            if similarity > best.get(label, -math.inf):
                best[label] = similarity
        label = max(best, key=best.__getitem__)
        top = best[label]
        if top < self._min_similarity:
            return self._fallback.classify(item)
        exps = [math.exp((s - top) / _SIMILARITY_TEMPERATURE) for s in best.values()]
        return TaskLabel(label, 1.0 / sum(exps))


# --- request bodies -----------------------------------------------------------


def _content_text(content: Any) -> str:
    """The text of a message's content: a string, or its parts' texts (a part's
    ``text`` of any shape, its strings found by the walk)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts: list[str] = []
        for part in content:
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, Mapping):
                text = part.get("text")
                if isinstance(text, str):
                    texts.append(text)
                elif text is not None:
                    texts.extend(walk(text).strings)
        return "\n".join(texts)
    return ""


def task_input(body: Mapping[str, Any]) -> TaskInput:
    """The :class:`TaskInput` of an OpenAI chat or completions body (lenient).

    Chat: the last ``user`` message (content a string or text parts), the user
    message before it, the last ``assistant`` message before the last user
    message, the number of user turns, and the system (or ``developer``)
    messages joined. Completions: ``prompt`` (a string, or every string of a
    list, nested or not). Anything else reads as empty text. Only references
    to the texts are kept: the classifier reads bounded slices of them.
    """
    has_tools = bool(body.get("tools") or body.get("functions"))
    messages = body.get("messages")
    if isinstance(messages, list):
        last_user = previous_user = assistant = last_assistant = ""
        turns = 0
        system: list[str] = []
        for message in messages:
            # dict first: the JSON parser's type, checked without the ABC machinery
            if type(message) is not dict and not isinstance(message, Mapping):
                continue
            role = message.get("role")
            if role == "user":
                previous_user, last_user = last_user, _content_text(message.get("content"))
                assistant = last_assistant
                turns += 1
            elif role == "assistant":
                last_assistant = _content_text(message.get("content"))
            elif role in ("system", "developer"):
                system.append(_content_text(message.get("content")))
        joined = "\n".join([s for s in system if s]) if system else ""
        return TaskInput(last_user, joined, has_tools, previous_user, assistant, max(turns, 1))
    prompt = body.get("prompt")
    if isinstance(prompt, list):
        prompt = "\n".join(walk(prompt).strings)
    return TaskInput(prompt if isinstance(prompt, str) else "", "", has_tools)
