"""OpenTelemetry traces: one span per request, children for its stages.

Spans of one request (all under the client's trace when it sent a W3C
``traceparent``):

* the request span (kind SERVER), named ``{operation} {alias}`` as the GenAI
  semantic conventions name spans (``chat auto``), ended when the answer is
  complete (a stream's last event);
* ``gateway.decide``: judging and deciding; ``gateway.cache``: the cache lookup;
* one span per upstream attempt (kind CLIENT, ``{operation} {model}``), so
  that retries and fallbacks are visible; each attempt's ``traceparent`` is
  sent to the upstream with it.

Attributes: the GenAI conventions' (``gen_ai.operation.name``,
``gen_ai.request.model``, ``gen_ai.provider.name``
(attempts) and the older ``gen_ai.system``, ``gen_ai.usage.input_tokens``,
``gen_ai.usage.output_tokens``) and the gateway's own (``gateway.rule``,
``gateway.target``, ``gateway.target.kind``, ``gateway.sensitivity.level``,
``gateway.sensitivity.sent_level``, ``gateway.cache``, ``gateway.cost_usd``, ``gateway.outcome``...).
Never prompt or completion text, never a header value.

Off by default: tracing starts only when an OTLP endpoint is named by the
standard variables (see :func:`gateway.settings._otel_traces_endpoint`); the
exporter reads the rest of its ``OTEL_EXPORTER_OTLP_*`` settings (headers,
timeout, compression) and the SDK its ``OTEL_BSP_*`` and sampler variables
itself. Off, :meth:`Tracer.request_span` returns :data:`NO_SPAN`, a shared
object whose methods do nothing (the OpenTelemetry SDK is not even imported);
a client's ``traceparent`` is then still passed on to the upstream unchanged.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

from gateway.observability.logs import bind_request

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span
    from opentelemetry.trace import Tracer as OtelTracer

    from gateway.observability.record import Exchange
    from gateway.settings import Settings
    from gateway.targets import Target

log = logging.getLogger("gateway.tracing")

_TRACEPARENT = re.compile(r"[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}")

#: the GenAI conventions' operation names, by gateway endpoint label
OPERATIONS = {"chat": "chat", "completions": "text_completion", "embeddings": "embeddings"}


class Child:
    """A child span (no-op when tracing is off); a context manager that
    records an exception escaping it as the span's error."""

    traceparent: str | None = None

    def set(self, key: str, value: Any) -> None:
        return None

    def __enter__(self) -> Child:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None


_NO_CHILD = Child()


class RequestSpan:
    """A request's span; this base class, :data:`NO_SPAN`, records nothing."""

    #: the trace id (hex), when recorded
    trace_id: str | None = None

    def child(self, name: str) -> Child:
        return _NO_CHILD

    def attempt(self, target: Target, attempt: int) -> Child:
        return _NO_CHILD

    def end(self, ex: Exchange) -> None:
        return None


NO_SPAN = RequestSpan()


class _Passthrough(RequestSpan):
    """Tracing off, but the client sent a ``traceparent``: pass it on."""

    def __init__(self, traceparent: str) -> None:
        self._child = Child()
        self._child.traceparent = traceparent

    def attempt(self, target: Target, attempt: int) -> Child:
        return self._child


class _Child(Child):
    def __init__(self, span: Span, traceparent: str | None = None) -> None:
        self._span = span
        self.traceparent = traceparent

    def set(self, key: str, value: Any) -> None:
        self._span.set_attribute(key, value)

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is not None:
            from opentelemetry.trace import Status, StatusCode

            from gateway.errors import failure_reason

            self._span.set_attribute("error.type", failure_reason(exc))
            self._span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
        self._span.end()


class _Recording(RequestSpan):
    def __init__(self, tracer: OtelTracer, span: Span, context: Context, endpoint: str) -> None:
        self._tracer = tracer
        self._span = span
        self._context = context
        self._operation = OPERATIONS.get(endpoint, endpoint)
        self.trace_id = f"{span.get_span_context().trace_id:032x}"

    def child(self, name: str) -> Child:
        return _Child(self._tracer.start_span(name, context=self._context))

    def attempt(self, target: Target, attempt: int) -> Child:
        from opentelemetry.trace import SpanKind, set_span_in_context

        provider = target.litellm_provider or target.provider.value
        span = self._tracer.start_span(
            f"{self._operation} {target.model}",
            context=self._context,
            kind=SpanKind.CLIENT,
            attributes={
                "gen_ai.operation.name": self._operation,
                "gen_ai.request.model": target.model,
                "gen_ai.provider.name": provider,
                "gen_ai.system": provider,
                "gateway.target": target.name,
                "gateway.target.kind": target.kind.value,
                "gateway.attempt": attempt,
            },
        )
        carrier: dict[str, str] = {}
        _propagator().inject(carrier, context=set_span_in_context(span))
        return _Child(span, carrier.get("traceparent"))

    def end(self, ex: Exchange) -> None:
        from opentelemetry.trace import Status, StatusCode

        span = self._span
        alias = ex.alias or ""
        span.update_name(f"{self._operation} {alias}".strip())
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": self._operation,
            "gen_ai.request.model": alias,
            "gen_ai.usage.input_tokens": ex.prompt_tokens,
            "gen_ai.usage.output_tokens": ex.completion_tokens,
            "gateway.request_id": ex.request_id,
            "gateway.endpoint": ex.endpoint,
            "gateway.cache": ex.cache,
            "gateway.outcome": ex.outcome,
            "gateway.attempts": ex.attempts,
            "gateway.stream": ex.stream,
            "http.response.status_code": ex.status,
        }
        optional = {
            "gateway.rule": ex.rule,
            "gateway.action": ex.action,
            "gateway.target": ex.target,
            "gateway.target.kind": ex.kind,
            "gateway.sensitivity.level": ex.level,
            "gateway.sensitivity.sent_level": ex.sent_level,
            "gateway.task": ex.task,
            "gateway.team": ex.team,
            "gateway.key_id": ex.key_id,
            "gateway.cost_usd": ex.cost_usd,
        }
        attributes.update({k: v for k, v in optional.items() if v is not None})
        span.set_attributes(attributes)
        if ex.status >= 500 or ex.outcome == "stream_error":
            span.set_status(Status(StatusCode.ERROR, ex.outcome))
        span.end()


def _propagator() -> Any:
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    return TraceContextTextMapPropagator()


class Tracer:
    """Makes request spans; built once per process by ``build_services``."""

    def __init__(self, provider: TracerProvider | None = None) -> None:
        self._provider = provider
        self._tracer: OtelTracer | None = (
            provider.get_tracer("gateway") if provider is not None else None
        )
        self._propagator = _propagator() if provider is not None else None

    @property
    def enabled(self) -> bool:
        return self._tracer is not None

    @classmethod
    def from_settings(cls, settings: Settings) -> Tracer:
        endpoint = settings.otel_traces_endpoint
        if endpoint is None:
            return cls()
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        provider = TracerProvider(
            resource=Resource.create({"service.name": settings.otel_service_name}),
            shutdown_on_exit=False,
        )
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
        log.info("tracing on: OTLP/HTTP to %s", endpoint)
        return cls(provider)

    def request_span(
        self, request_id: str, endpoint: str, headers: Mapping[str, str]
    ) -> RequestSpan:
        """The span of one request, child of the client's ``traceparent`` if any;
        binds the request (and trace) id to every log line of this request."""
        tracer = self._tracer
        if tracer is None:
            bind_request(request_id, None)
            traceparent = headers.get("traceparent")
            if traceparent is None or not _TRACEPARENT.fullmatch(traceparent):
                return NO_SPAN
            return _Passthrough(traceparent)
        from opentelemetry.trace import SpanKind, set_span_in_context

        parent = self._propagator.extract(headers) if self._propagator is not None else None
        span = tracer.start_span(
            f"{OPERATIONS.get(endpoint, endpoint)}", context=parent, kind=SpanKind.SERVER
        )
        recording = _Recording(tracer, span, set_span_in_context(span), endpoint)
        bind_request(request_id, recording.trace_id)
        return recording

    def force_flush(self) -> None:
        """Export the spans ended so far, now (tests; an operator's dump)."""
        if self._provider is not None:
            self._provider.force_flush()

    def shutdown(self) -> None:
        """Export what is pending and stop (at shutdown)."""
        if self._provider is not None:
            self._provider.shutdown()
