"""The property of issue 19: a value planted anywhere in any body is seen by every consumer.

Bodies of every endpoint's shape, with a secret or an email planted at a random
path — a key or a value, in a known field or an unknown one, at any depth,
whole, inside filler, split in two, or obfuscated — must be judged at the
value's level (the facts hold its entity; the shipped policy never sends it to
a proprietary target unredacted), and the redacted body must hold it in no
form: not literally, not any 8-character piece, not after normalisation.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from gateway.judging.build import FactsBuilder
from gateway.judging.fold import fold
from gateway.judging.prices import PriceBook
from gateway.judging.redaction import Redaction
from gateway.judging.sensitivity import BUILTIN_ENTITIES
from gateway.judging.walk import walk
from gateway.policy.loader import load_policy
from gateway.policy.model import Action
from gateway.targets import Kind

POLICIES = Path(__file__).resolve().parents[2] / "policies"
POLICY = load_policy(POLICIES, {}, prices=PriceBook.from_litellm())
BUILDER = FactsBuilder(POLICY)

PLANTS = {
    "aws_access_key": "AKIAZ7QX3MPLW9RT2KVB",
    "github_token": "ghp_R8x2Kq9LmZ4vT7wN3pY6sD1fH5jB0cXeGaUo",
    "email": "ada.lovelace@example.com",
}


def zero_width(s: str) -> str:
    return "\u200b".join(s[i : i + 3] for i in range(0, len(s), 3))


def soft_hyphen(s: str) -> str:
    return "\u00ad".join(s[i : i + 4] for i in range(0, len(s), 4))


def homoglyph(s: str) -> str:
    return s.replace("A", "\u0410").replace("a", "\u0430").replace("e", "\u0435")


def full_width(s: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in s)


def b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


def hexed(s: str) -> str:
    return s.encode().hex()


def percent(s: str) -> str:
    return "".join(f"%{ord(c):02X}" if c in "@._" else c for c in s)


def nul(s: str) -> str:
    return s[:4] + "\x00" + s[4:]


def nul_escape(s: str) -> str:
    return s[:4] + "\\u0000" + s[4:]


OBFUSCATIONS = [
    lambda s: s, zero_width, soft_hyphen, homoglyph, full_width, b64, hexed, percent, nul,
    nul_escape,
]  # fmt: skip

FIELDS = [
    "messages", "content", "name", "tool_call_id", "tools", "function", "description",
    "parameters", "properties", "default", "enum", "examples", "response_format",
    "json_schema", "stop", "metadata", "user", "stream_options", "arguments", "refusal",
    "input", "prompt", "instructions", "system", "prediction", "text", "items", "x_unknown",
    "vendor_extension", "data", "file_data", "url",
]  # fmt: skip

SKELETONS: list[dict[str, Any]] = [
    {"model": "auto", "messages": [{"role": "user", "content": "hello there"}]},
    {"model": "auto", "prompt": "write a haiku"},
    {"model": "auto", "input": ["embed me"]},
    {"model": "auto", "input": [{"role": "user", "content": [{"type": "input_text", "text": "hi"}]}]},
    {"model": "auto", "system": "be brief", "messages": [{"role": "user", "content": "yo"}]},
]  # fmt: skip

filler = st.text(alphabet="bfghjknsuwy ", min_size=0, max_size=12)
steps = st.lists(st.one_of(st.sampled_from(FIELDS), st.just(0)), min_size=0, max_size=5)


@st.composite
def planted_bodies(draw: st.DrawFn) -> tuple[dict[str, Any], str, str]:
    entity = draw(st.sampled_from(sorted(PLANTS)))
    secret = PLANTS[entity]
    mode = draw(st.sampled_from(["value", "inside", "key", "split"]))
    shown = draw(st.sampled_from(OBFUSCATIONS))(secret)
    before, after = draw(filler), draw(filler)
    leaf: Any
    if mode == "value":
        leaf = shown
    elif mode == "inside":
        leaf = f"{before} {shown} {after}"
    elif mode == "key":
        leaf = {f"{before} {shown}" if before else shown: draw(filler)}
    else:  # the secret itself split in two consecutive texts
        cut = draw(st.integers(3, len(secret) - 3))
        leaf = [f"{before} {secret[:cut]}", f"{secret[cut:]} {after}"]
    path = [draw(st.sampled_from(FIELDS)), *draw(steps)]
    node = leaf
    for step in reversed(path):
        node = [node] if step == 0 else {step: node}
    body = dict(draw(st.sampled_from(SKELETONS)))
    body.update(node)
    return body, entity, secret


def pieces(secret: str) -> list[str]:
    return [secret[i : i + 8] for i in range(len(secret) - 7)]


def readable(body: Any) -> list[str]:
    """Every string of ``body`` as sent and as normalised."""
    out = [orjson.dumps(body).decode()]
    for text in walk(body).strings:
        folded = fold(text)
        out.append(folded.text if folded is not None else text)
    return out


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(planted_bodies())
def test_a_planted_value_is_judged_and_redacted_everywhere(
    planted: tuple[dict[str, Any], str, str],
) -> None:
    body, entity, secret = planted
    endpoint = "chat" if "messages" in body else "completions"
    facts = BUILDER.build(endpoint=endpoint, body=body, headers={})
    assert entity in facts.sensitivity.entities
    decision = POLICY.decide(facts)
    if decision.action is Action.ROUTE and decision.redact is None:
        kinds = {POLICY.targets[name].kind for name in decision.targets}
        assert kinds == {Kind.OPEN}, decision
    redacted = Redaction(BUILDER.scanner, BUILTIN_ENTITIES).redact_body(body)
    for text in readable(redacted):
        assert secret not in text
        for piece in pieces(secret):
            assert piece not in text, (piece, text)
