"""A decision as plain data: what ``policy explain`` prints and ``/gateway/explain`` answers.

Entity *names* only, never the values found; no prompt text.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.errors import ModelNotFound
from gateway.judging.build import FactsBuilder
from gateway.policy.compiled import CompiledPolicy
from gateway.policy.model import EMPTY_LOAD, Decision, Facts
from gateway.targets import TargetLoad


def explanation(facts: Facts, decision: Decision) -> dict[str, Any]:
    """``{"rule", "action", "targets", "task", "sensitivity", "estimated_cost_usd", "trace", ...}``."""
    out: dict[str, Any] = {
        "rule": decision.rule,
        "action": decision.action.value,
        "targets": list(decision.targets),
        "task": facts.task,
        "task_confidence": round(facts.task_confidence, 4),
        "sensitivity": {
            "level": facts.sensitivity.level.label,
            "entities": list(facts.sensitivity.entities),
            # how many of each kind were found (never a value)
            "counts": dict(facts.sensitivity.counts),
            # the level of what is sent, after any redaction
            "sent_level": decision.level.label,
        },
        "estimated_cost_usd": {t: round(c, 8) for t, c in decision.estimated_cost_usd.items()},
        "prompt_tokens": facts.prompt_tokens,
        "excluded": list(decision.excluded),
        "trace": [{"rule": s.rule, "matched": s.matched, "why": s.why} for s in decision.trace],
    }
    named = (*decision.targets, *decision.excluded)
    load = {name: facts.load[name].to_dict() for name in named if name in facts.load}
    if load:
        # the live load the decision saw (unknown readings are null)
        out["load"] = load
    if decision.spill:
        full = [
            name for name in decision.targets if name in facts.load and facts.load[name].saturated
        ]
        out["spill"] = {
            "saturated": full,
            "first": decision.targets[0] if decision.targets else None,
        }
    if decision.deny_message is not None:
        out["deny_message"] = decision.deny_message
    if decision.redact is not None:
        out["redact"] = {
            "entities": sorted(decision.redact.entities),
            "restore": decision.redact.restore,
        }
    if decision.targets:
        out["cache"] = {
            "mode": decision.cache.mode.value,
            "ttl_s": decision.cache.ttl_s,
            "shared": decision.cache.shared,
        }
    if decision.baseline is not None:
        out["baseline"] = decision.baseline
    if decision.limits is not None:
        out["limits"] = {
            k: v
            for k, v in (
                ("rpm", decision.limits.rpm),
                ("tpm", decision.limits.tpm),
                ("max_streams", decision.limits.max_streams),
            )
            if v is not None
        }
    return out


def explain_request(
    builder: FactsBuilder[CompiledPolicy],
    *,
    body: Mapping[str, Any],
    headers: Mapping[str, str],
    endpoint: str = "chat",
    team: str | None = None,
    key_id: str | None = None,
    key_policy: str | None = None,
    budget_usd: float | None = None,
    budget_remaining_usd: float | None = None,
    load: Mapping[str, TargetLoad] = EMPTY_LOAD,
) -> tuple[Facts, Decision]:
    """Facts and decision for a request, calling nothing upstream.

    Raises :class:`~gateway.errors.InvalidRequest` for invalid hints,
    :class:`~gateway.errors.ModelNotFound` for a ``model`` the policy does not
    publish for ``endpoint`` (as ``POST /gateway/explain`` and the endpoints
    themselves answer 404), and :class:`~gateway.errors.PolicyDenied` for a key
    policy the policy lacks.
    """
    policy = builder.policy
    model = body.get("model")
    if isinstance(model, str):
        alias = policy.aliases.get(model)
        if alias is None or endpoint not in alias.endpoints:
            raise ModelNotFound(
                f"The model `{model}` does not exist or you do not have access to it.",
                param="model",
            )
    facts = builder.build(
        endpoint=endpoint,
        body=body,
        headers=headers,
        key_id=key_id,
        team=team,
        budget_usd=budget_usd,
        budget_remaining_usd=budget_remaining_usd,
        load=load,
    )
    return facts, policy.decide(facts, policy.rule_set_for(team, key_policy))
