"""Upstream: calling targets.

Owns the provider interface and its implementations (the OpenAI-compatible fast path
on the gateway's own HTTP/1.1 client in ``http1``, the litellm adapter — the only
litellm import —, the simulated provider and demo mode), the router (targets in
order, retries, backoff, fallbacks), circuit breakers and the SSE stream relay.

May import: observability, policy, judging, state and the core modules.
"""
