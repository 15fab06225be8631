"""Issue 12 end to end: secrets of every kind stay on the self-hosted model; placeholders do not.

``gateway serve`` runs as a user runs it (a subprocess, the shipped ``policies/``,
upstreams from ``OPEN_MODEL_BASE_URL`` and ``OPENAI_BASE_URL``) with two real
local upstreams: one plays the self-hosted model, one plays OpenAI (its wire
format). Each prompt is sent as a code task, which the shipped policy sends to
OpenAI unless it holds restricted data. Tokens are synthetic, built here.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Iterator

import httpx
import pytest

from gateway.judging.secret_checks import base62
from tests.harness import GatewayProcess
from tests.upstream_server import Upstream

OPENAI_KEY = "sk-test-openai-0123456789abcdef"
_RNG = random.Random(12)
_AN = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def _random(alphabet: str, n: int) -> str:
    return "".join(_RNG.choice(alphabet) for _ in range(n))


_GH_BODY = _random(_AN, 30)
SECRETS = {
    "slack app token": "xapp-1-A0"
    + _random("ABCDEFGHJKLMNPQRSTUVWXYZ23456789", 9)
    + "-"
    + _random("123456789", 13)
    + "-"
    + _random("0123456789abcdef", 64),
    "router password (de)": "Mein Router-Passwort ist Sonnenblume77!",
    "wifi password": "Office wifi: SSID Guest5G, password M@pl3%81Z",
    "admin pair": "admin / Lantern1995$",
    "mysql flag": "mysql -u root -pJunip3r?98J prod",
    "aws sts bearer id": "ABIA" + _random("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16),
    "gitlab deploy token": "gldt-" + _random(_AN, 20),
    "github token (checksum)": "ghp_" + _GH_BODY + base62(zlib.crc32(_GH_BODY.encode()), 6),
    "vault token": "hvs." + _random(_AN, 90),
    "webhook without scheme": "hooks.slack.com/services/T0"
    + _random("ABCDEFGHJKLMN23456789", 8)
    + "/B0"
    + _random("ABCDEFGHJKLMN23456789", 9)
    + "/"
    + _random(_AN, 24),
    "signature-less jwt": "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJhZG1pbiIsInJvbGUiOiJyb290In0.",
    "password in Chinese": "服务器的密码是Qx7!mz42",
}
PLACEHOLDERS = (
    "Explain what AKIAIOSFODNN7EXAMPLE means in the AWS docs and fix my boto3 code.",
    "Why does `export GITHUB_TOKEN=ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx` fail in CI?",
    "Write a function that checks the password field is not empty.",
)


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[Upstream, Upstream, GatewayProcess]]:
    open_model, openai = Upstream().start(), Upstream().start()
    gateway = GatewayProcess(
        env={
            "GATEWAY_POLICIES": "policies",
            "OPEN_MODEL_BASE_URL": open_model.url,
            "OPENAI_BASE_URL": openai.url,
            "OPENAI_API_KEY": OPENAI_KEY,
        }
    )
    try:
        gateway.wait_ready()
        yield open_model, openai, gateway
    finally:
        gateway.stop()
        open_model.stop()
        openai.stop()


def _ask(gateway: GatewayProcess, content: str) -> httpx.Response:
    return httpx.post(
        gateway.url + "/v1/chat/completions",
        json={"model": "auto", "messages": [{"role": "user", "content": content}]},
        headers={"x-gateway-task": "code"},
        timeout=20,
    )


@pytest.mark.parametrize("name", sorted(SECRETS))
def test_a_secret_never_reaches_the_proprietary_upstream(
    served: tuple[Upstream, Upstream, GatewayProcess], name: str
) -> None:
    open_model, openai, gateway = served
    secret = SECRETS[name]
    before = len(openai.requests)
    response = _ask(gateway, f"Fix this deploy script, it fails:\n{secret}\nthanks")
    assert response.status_code == 200, response.text
    assert response.headers["x-gateway-rule"] == "restricted-stays-local"
    for record in openai.requests[before:]:
        assert secret[-12:] not in str(record["body"])
    assert len(openai.requests) == before
    assert any(secret[-12:] in str(r["body"]) for r in open_model.requests)


@pytest.mark.parametrize("prompt", PLACEHOLDERS)
def test_documentation_placeholders_still_go_to_the_strong_model(
    served: tuple[Upstream, Upstream, GatewayProcess], prompt: str
) -> None:
    _, openai, gateway = served
    before = len(openai.requests)
    response = _ask(gateway, prompt)
    assert response.status_code == 200, response.text
    assert response.headers["x-gateway-rule"] == "code-and-math"
    assert len(openai.requests) == before + 1


def test_explain_names_the_entities_never_the_values(
    served: tuple[Upstream, Upstream, GatewayProcess],
) -> None:
    _, _, gateway = served
    secret = SECRETS["slack app token"]
    response = httpx.post(
        gateway.url + "/gateway/explain",
        json={
            "model": "auto",
            "messages": [
                {"role": "user", "content": f"{secret} and " + SECRETS["router password (de)"]}
            ],
        },
        timeout=20,
    )
    assert response.status_code == 200
    body = response.json()
    assert {"slack_token", "password"} <= set(body["sensitivity"]["entities"])
    assert body["sensitivity"]["level"] == "restricted"
    assert secret not in response.text and "Sonnenblume77" not in response.text
