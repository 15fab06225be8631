"""Observability: what the gateway tells operators.

Owns the metrics registry (bounded label sets) and its lock-free series, and the
request record (:class:`~gateway.observability.record.Exchange`) with the one place
that emits a finished request's metrics, access line, trace span end and decision
record; the JSON log lines (``logs``), the OpenTelemetry spans (``tracing``), the
decision log on disk with its hash chain and rotation (``audit_log``), its verifier
(``audit_verify``), report (``audit_report``) and ``gateway audit`` commands. Never
prompt or completion text, never a header or metadata value, never an API key (only
its id).

May import: the policy (the decision record's format and plain types) and the core
modules; nothing that handles requests.
"""
