"""Build the :class:`~gateway.judging.facts.Facts` of one request.

One :class:`FactsBuilder` is made per policy load (it compiles the policy's
custom entities into its scanner) and shared by every request. ``build``
walks the body once (:mod:`gateway.judging.walk`: every key and string value,
any depth, known field or not), scans every string in every reading
(:mod:`gateway.judging.views`: normalised, decoded, and the conversation's
pieces read together), counts what it cannot read as ``unjudged``, maps the
entities found to levels through the policy, applies the client's hints, classifies the task and estimates
prompt tokens. It never keeps a value it found: only entity *types* reach
the facts.

Client hints:

* ``x-data-classification: public|internal|confidential|restricted`` raises
  the detected level; it lowers it only for a team or key the policy lets
  declassify (and then every entity counts at most at the declared level).
* ``x-gateway-task: <task>`` replaces the classifier's answer (at confidence 1.0).

An invalid hint is the client's error (:class:`~gateway.errors.InvalidRequest`
naming the header), never a silent default.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, Generic, TypeVar

from gateway.errors import InvalidRequest
from gateway.judging.facts import (
    EMPTY,
    EMPTY_FLOATS,
    EMPTY_LOAD,
    Facts,
    Sensitivity,
    SensitivityRules,
)
from gateway.judging.forwarded import FORWARDED
from gateway.judging.sensitivity import Detector, Scanner
from gateway.judging.task import TASKS, TaskClassifier, task_input
from gateway.judging.task_model import TaskLabel, shipped_classifier
from gateway.judging.tokens import estimate_request_tokens
from gateway.judging.views import body_entities
from gateway.judging.walk import walk
from gateway.levels import LEVEL_NAMES, Level
from gateway.targets import TargetLoad

CLASSIFICATION_HEADER = "x-data-classification"
TASK_HEADER = "x-gateway-task"

#: shared by every request without entities (read-only, so sharing is safe)
_NO_LEVELS: Mapping[str, Level] = MappingProxyType({})
#: credentials are never facts: no policy needs them, and facts are logged
_SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "api-key", "x-api-key"}
)


R = TypeVar("R", bound=SensitivityRules)


class FactsBuilder(Generic[R]):
    """Judges requests for one policy (``policy``: its sensitivity rules)."""

    def __init__(
        self,
        policy: R,
        *,
        task_classifier: TaskClassifier | None = None,
        scanner_plugins: Sequence[Detector] = (),
    ) -> None:
        self.policy = policy
        self.scanner = Scanner(custom=policy.custom_entities, plugins=scanner_plugins)
        self.classifier: TaskClassifier = task_classifier or shipped_classifier()
        #: entity types of short strings seen before (see :func:`body_entities`)
        self._memo: dict[str, frozenset[str]] = {}
        self._tasks = frozenset(TASKS)

    def build(
        self,
        *,
        endpoint: str,
        body: Mapping[str, Any],
        headers: Mapping[str, str],
        key_id: str | None = None,
        team: str | None = None,
        budget_usd: float | None = None,
        budget_remaining_usd: float | None = None,
        target_latency_ms: Mapping[str, float] = EMPTY_FLOATS,
        load: Mapping[str, TargetLoad] = EMPTY_LOAD,
        draw: float = 0.0,
        scan: bool = True,
    ) -> Facts:
        """The facts of one request. ``scan=False``: no detector runs (the
        facts of a body's shape alone, when its scan ran out of time)."""
        lowered = {
            name: v for k, v in headers.items() if (name := k.lower()) not in _SECRET_HEADERS
        }
        declared = self._declared(lowered.get(CLASSIFICATION_HEADER))
        policy = self.policy
        found = body_entities(self.scanner, walk(body), self._memo) if scan else {}
        if scan and (sent := [lowered[name] for name in FORWARDED if name in lowered]):
            # headers that go upstream are judged like the body
            for entity, n in body_entities(self.scanner, walk(sent), self._memo).items():
                found[entity] = found.get(entity, 0) + n
        sensitivity = policy.sensitivity(found, declared, team, key_id)
        if found:
            counts = tuple(sorted(found.items()))
            sensitivity = Sensitivity(sensitivity.level, sensitivity.entities, counts)
        if sensitivity.entities:
            levels = {e: policy.entity_level(e) for e in sensitivity.entities}
            if declared is not None and sensitivity.level < max(levels.values()):
                # declassified by a permitted team or key: nothing counts above the declared level
                levels = {e: min(level, sensitivity.level) for e, level in levels.items()}
            entity_levels: Mapping[str, Level] = MappingProxyType(levels)
        else:
            entity_levels = _NO_LEVELS
        task = self._task(lowered.get(TASK_HEADER), body)
        return Facts(
            endpoint=endpoint,
            alias=_text(body.get("model")),
            sensitivity=sensitivity,
            task=task.task,
            task_confidence=task.confidence,
            prompt_tokens=estimate_request_tokens(body),
            stream=body.get("stream") is True,
            has_tools=bool(body.get("tools") or body.get("functions")),
            max_tokens=_max_tokens(body),
            key_id=key_id,
            team=team,
            metadata=_metadata(body.get("metadata")),
            headers=MappingProxyType(lowered),
            budget_usd=budget_usd,
            budget_remaining_usd=budget_remaining_usd,
            target_latency_ms=target_latency_ms,
            load=load,
            draw=draw,
            entity_levels=entity_levels,
            declared_level=declared,
        )

    @staticmethod
    def _declared(value: str | None) -> Level | None:
        """The declared level; a header sent more than once (its values joined
        with ``,``) declares the highest of them."""
        if value is None:
            return None
        try:
            return max(Level.parse(part) for part in value.split(","))
        except ValueError:
            raise InvalidRequest(
                f"header {CLASSIFICATION_HEADER}: {value!r} is not a level; use one of: "
                + ", ".join(LEVEL_NAMES),
                param=CLASSIFICATION_HEADER,
                code="invalid_header",
            ) from None

    def _task(self, hint: str | None, body: Mapping[str, Any]) -> TaskLabel:
        if hint is None:
            return self.classifier.classify(task_input(body))
        hints = {part.strip().lower() for part in hint.split(",")}
        task = hints.pop() if len(hints) == 1 else ""
        if task not in self._tasks:
            raise InvalidRequest(
                f"header {TASK_HEADER}: {hint!r} is not a task; use one of: "
                + ", ".join(sorted(self._tasks)),
                param=TASK_HEADER,
                code="invalid_header",
            )
        return TaskLabel(task, 1.0)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _max_tokens(body: Mapping[str, Any]) -> int | None:
    for name in ("max_completion_tokens", "max_tokens"):
        value = body.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def _metadata(value: Any) -> Mapping[str, str]:
    if not isinstance(value, Mapping):
        return EMPTY
    return MappingProxyType(
        {k: v for k, v in value.items() if isinstance(k, str) and isinstance(v, str)}
    )
