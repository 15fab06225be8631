"""What kind of task a request is: a fast built-in classifier and a plug-in seam.

Labels: :data:`TASKS`. The built-in :class:`KeywordClassifier` scores each
label from the last user message (and, at half weight, the system prompt):

* keywords in English, Spanish, French, German, Portuguese, Italian, Russian,
  Japanese, Chinese and Korean (``translate``, ``traduce``, ``übersetze``,
  ``翻译``; ``summarize``, ``TL;DR``, ``résume``; ``extract``, ``list all``;
  ``poem``, ``slogan``; ``integral``, ``solve``; ``function``, ``SQL``...);
* phrases: a target language (``in French``, ``auf Deutsch``, ``en español``),
  a length for a summary (``in two sentences``), JSON/CSV output requests;
* shapes: fenced code, ``def``/``function``/braces and semicolons, stack
  traces, SQL; equations, LaTeX, digits with operators, word problems; a long
  pasted text under a short instruction leans to summarization.

Where the words sit matters: the first line (or first sentences) and a short
last line are the instruction and count fully; the material in between counts
at :data:`BODY_WEIGHT`, the system prompt at :data:`SYSTEM_WEIGHT`. The
highest score wins (ties go to the earlier label in :data:`TASKS`); below
:data:`MIN_SCORE` the answer is ``chat``. Only bounded slices of a long text
are read, with C-level string operations (``bytes.translate``, ``split``,
set intersection, substring tests), so the cost does not grow with the
prompt: ``bench/task_eval.py`` measures it.

Plug-ins implement :class:`TaskClassifier`. :class:`EmbeddingClassifier` is
the seam for an embedding model: nearest labelled centroid by cosine
similarity, deferring to another classifier when nothing is close enough. A
small-LLM classifier implements the same one-method protocol.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Protocol

from gateway.judging.task_keywords import CJK, KEYWORDS, LANGUAGE_WEIGHT, LANGUAGES, TO_WORDS
from gateway.judging.walk import walk

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
#: the best label needs at least this score, else the request is ``chat``
MIN_SCORE = 2.0
#: the system prompt says what the application is for, not what this request asks
SYSTEM_WEIGHT = 0.5
#: the middle of a long text is mostly material the request is about
BODY_WEIGHT = 0.4

#: an extra score slot (after the labels) that counts natural languages named
_LANGUAGE_SLOT = len(TASKS)

# Separators: ASCII punctuation and whitespace become spaces (``+`` and ``#``
# stay: c++, c#); other bytes (UTF-8 letters) are kept.
_SEPARATORS = bytes(
    32 if (chr(b) in "\t\n\r\x0b\x0c.,:;!?()[]{}\"'/\\<>=*&%$@|~^`-") else b for b in range(256)
)
_DIGITS = b"0123456789"
_MATH_OPS = b"=^+*/%"
#: characters common in code and rare in prose
_CODE_CHARS = b"{};=<>_[]`$"
#: substring tests run on the str: ``bytes in bytes`` costs several times more
_CODE_MARKERS = ("```", "Traceback (most recent", "Error:", "Exception", "def ", ";\n")
_SQL_SELECT = "SELECT "
_SQL_FROM = " FROM "
#: non-ASCII punctuation that separates words
_WIDE_SEPARATORS = (
    "¿",
    "¡",
    "«",
    "»",
    "\u201c",
    "\u201d",
    "\u201e",
    "\u2018",
    "\u2019",
    "\u2014",
    "\u2013",
)
#: UTF-8 lead bytes of CJK ideographs, kana and Hangul
_NOT_CJK_LEADS = bytes(b for b in range(256) if not 0xE3 <= b <= 0xED)

#: characters at each end of a text read as its instruction, at full weight
_INSTRUCTION = 160
#: characters read at the start and end of the rest, at :data:`BODY_WEIGHT`
_HEAD = 400
_TAIL = 300
#: characters read at the start and end of a long text for its shape
_SHAPE_HEAD = 2400
_SHAPE_TAIL = 600
#: below this length, numbers with an operator read as a calculation
_SHORT = 120
#: above this length, a text is read as pasted material under an instruction
_PASTED = 450


@dataclass(frozen=True, slots=True)
class TaskInput:
    """The texts a classifier looks at.

    ``has_tools`` is there for plug-ins; :class:`KeywordClassifier` ignores it
    (tools say how an answer is delivered, not what is asked).
    """

    last_user: str
    system: str = ""
    has_tools: bool = False


class TaskClassifier(Protocol):
    def classify(self, item: TaskInput) -> str:
        """One of :data:`TASKS`."""
        ...


def _window(text: str, head: int, tail: int) -> str:
    if len(text) <= head + tail:
        return text
    return f"{text[:head]}\n{text[-tail:]}"


def _middle(text: str, start: int, end: int) -> str:
    """``text[start:end]`` bounded to its first :data:`_HEAD` and last :data:`_TAIL` characters."""
    if end - start <= _HEAD + _TAIL:
        return text[start:end]
    return f"{text[start : start + _HEAD]}\n{text[end - _TAIL : end]}"


def _expand(word: str) -> list[str]:
    """``translat{e|ion}`` -> translate, translation (one brace group at most)."""
    start = word.find("{")
    if start < 0:
        return [word]
    end = word.index("}", start)
    return [word[:start] + middle + word[end + 1 :] for middle in word[start + 1 : end].split("|")]


_Hit = tuple[int, float]


def _lexicon() -> tuple[dict[bytes, list[_Hit]], dict[bytes, list[tuple[bytes, int, float]]]]:
    """Words -> hits, and phrases keyed by their longest (rarest) word."""
    words: dict[bytes, list[_Hit]] = {}
    phrases: dict[bytes, list[tuple[bytes, int, float]]] = {}
    entries = [(label, weight, w) for label, weight, ws in KEYWORDS for w in ws.split()]
    for language in LANGUAGES.split():
        entries += [("translation", LANGUAGE_WEIGHT, f"{to}_{language}") for to in TO_WORDS.split()]
        entries += [("", 1.0, f"{to}_{language}") for to in TO_WORDS.split()]
    for label, weight, entry in entries:
        index = TASKS.index(label) if label else _LANGUAGE_SLOT
        for form in _expand(entry):
            parts = form.split("_")
            if len(parts) == 1:
                words.setdefault(form.encode(), []).append((index, weight))
            else:
                key = max(parts, key=len).encode()
                phrase = f" {' '.join(parts)} ".encode()
                phrases.setdefault(key, []).append((phrase, index, weight))
    return words, phrases


class KeywordClassifier:
    """The built-in classifier: keywords, phrases and shapes; no model, no I/O.

    Cost is bounded: the instruction is read in at most :data:`_HEAD` +
    :data:`_TAIL` characters, the shape in at most :data:`_SHAPE_HEAD` +
    :data:`_SHAPE_TAIL`, with C-level string operations only.
    """

    __slots__ = ("_keys", "_phrases", "_words")

    def __init__(self) -> None:
        words, phrases = _lexicon()
        self._words = MappingProxyType({k: tuple(v) for k, v in words.items()})
        self._phrases = MappingProxyType({k: tuple(v) for k, v in phrases.items()})
        self._keys = frozenset(words) | frozenset(phrases)

    def classify(self, item: TaskInput) -> str:
        scores = [0.0] * (len(TASKS) + 1)
        text = item.last_user
        if len(text) <= 2 * _INSTRUCTION:
            self._score(text.lower(), scores, 1.0)
        else:
            # The instruction is the first line (or the first sentences of a
            # single paragraph) and a short last line; words in between are
            # more often the pasted material's than the request's.
            newline = text.find("\n", 0, _INSTRUCTION)
            head = newline if newline > 0 else _INSTRUCTION
            last = text.rfind("\n", len(text) - _INSTRUCTION)
            tail = last + 1 if last >= head else len(text)
            self._score(f"{text[:head]}\n{text[tail:]}".lower(), scores, 1.0)
            self._score(_middle(text, head, tail).lower(), scores, BODY_WEIGHT)
        if item.system:
            self._score(item.system[: _HEAD + _TAIL].lower(), scores, SYSTEM_WEIGHT)
        if scores[_CODE] >= 3.0 and not scores[_LANGUAGE_SLOT]:
            # "translate this Python to Go": a programming language and no
            # natural one named, so the translating is code work
            scores[_CODE] += scores[_TRANSLATION]
            scores[_TRANSLATION] = 0.0
        _shapes(text, scores)
        del scores[_LANGUAGE_SLOT]
        top = max(scores)
        # index() finds the first label with the top score: ties go to the earlier one
        return TASKS[scores.index(top)] if top >= MIN_SCORE else DEFAULT_TASK

    def _score(self, lower: str, scores: list[float], factor: float) -> None:
        ascii_only = lower.isascii()
        if not ascii_only:
            for mark in _WIDE_SEPARATORS:
                lower = lower.replace(mark, " ")
        raw = lower.encode("utf-8", "surrogatepass")
        tokens = raw.translate(_SEPARATORS).split()
        joined = b""  # the words re-joined by single spaces, built for the first phrase key
        words, phrases = self._words, self._phrases
        for key in self._keys.intersection(tokens):
            for index, weight in words.get(key, ()):
                scores[index] += weight * factor
            for phrase, index, weight in phrases.get(key, ()):
                if not joined:
                    joined = b" " + b" ".join(tokens) + b" "
                if phrase in joined:
                    scores[index] += weight * factor
        if not ascii_only and raw.translate(None, _NOT_CJK_LEADS):
            for label, weight, needles in CJK:
                if any(needle in lower for needle in needles):
                    scores[TASKS.index(label)] += weight * factor


def _shapes(text: str, scores: list[float]) -> None:
    """Code and math shapes, and long pasted text."""
    shown = _window(text, _SHAPE_HEAD, _SHAPE_TAIL)
    window = shown.encode("utf-8", "surrogatepass")
    size = len(window) or 1
    code_chars = size - len(window.translate(None, _CODE_CHARS))
    latex = "\\frac" in shown or "\\int" in shown or "\\lim" in shown
    code = (not latex and code_chars >= 4 and code_chars / size > 0.04) or (
        _SQL_SELECT in shown and _SQL_FROM in shown
    )
    if not code:
        for marker in _CODE_MARKERS:
            if marker in shown:
                code = True
                break
    if code:
        scores[_CODE] += 3.0
    instruction = window[: _HEAD + _TAIL]
    digits = len(instruction) - len(instruction.translate(None, _DIGITS))
    ops = len(instruction) - len(instruction.translate(None, _MATH_OPS))
    if latex:
        ops += 2
    if not code:
        if ops >= 2 and digits >= 2:
            scores[_MATH] += 2.5
        elif ops >= 1 and digits >= 1:
            # a short text of numbers and an operator is a calculation
            scores[_MATH] += 2.0 if len(text) < _SHORT else 1.0
        elif digits >= 3:
            scores[_MATH] += 0.5
        if len(text) > _PASTED:
            scores[_SUMMARIZATION] += 1.0


_CODE = TASKS.index("code")
_MATH = TASKS.index("math")
_SUMMARIZATION = TASKS.index("summarization")
_TRANSLATION = TASKS.index("translation")


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
    embedding of labelled prompts). The text embedded is the system prompt and
    the last user message, bounded like :class:`KeywordClassifier`'s. When the
    best similarity is below ``min_similarity`` the answer is ``fallback``'s.
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
        self._fallback: TaskClassifier = fallback or KeywordClassifier()

    def classify(self, item: TaskInput) -> str:
        text = _window(item.last_user, _HEAD, _TAIL)
        if item.system:
            text = f"{item.system[:_TAIL]}\n\n{text}"
        vector = _normalized(self._embed(text))
        best_label, best = DEFAULT_TASK, -math.inf
        for label, centroid in self._centroids:
            if len(centroid) != len(vector):
                raise ValueError(
                    f"embedding has {len(vector)} dimensions, centroids {len(centroid)}"
                )
            similarity = sum(a * b for a, b in zip(centroid, vector, strict=True))
            if similarity > best:
                best_label, best = label, similarity
        if best < self._min_similarity:
            return self._fallback.classify(item)
        return best_label


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

    Chat: the last ``user`` message (content a string or text parts) and the
    system (or ``developer``) messages joined. Completions: ``prompt`` (a
    string, or every string of a list, nested or not). Anything else reads as
    empty text.
    """
    has_tools = bool(body.get("tools") or body.get("functions"))
    messages = body.get("messages")
    if isinstance(messages, list):
        last_user = ""
        system: list[str] = []
        for message in messages:
            # dict first: the JSON parser's type, checked without the ABC machinery
            if type(message) is not dict and not isinstance(message, Mapping):
                continue
            role = message.get("role")
            if role == "user":
                last_user = _content_text(message.get("content"))
            elif role in ("system", "developer"):
                system.append(_content_text(message.get("content")))
        joined = "\n".join([s for s in system if s]) if system else ""
        return TaskInput(last_user, joined, has_tools)
    prompt = body.get("prompt")
    if isinstance(prompt, list):
        prompt = "\n".join(walk(prompt).strings)
    return TaskInput(prompt if isinstance(prompt, str) else "", "", has_tools)
