"""Observability: what the gateway tells operators.

Owns the metrics registry (bounded label sets) and its lock-free series, and the
request record (:class:`~gateway.observability.record.Exchange`) with the one place
that emits a finished request's metrics and access line. Never prompt or completion
text, never an API key (only its id).

May import: the policy's plain types and the core modules; nothing that handles
requests.
"""
