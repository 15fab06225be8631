"""The pipeline: one request, one way through.

Owns the order of work for one request — authenticate, parse, judge, decide, limits,
redaction, cache, route, settle — and the response-cache planning. It calls the
stages; it builds none of them (:func:`gateway.services.build_services` does).

May import: every stage (quota, upstream, observability, policy, judging), state and
the core modules.
"""
