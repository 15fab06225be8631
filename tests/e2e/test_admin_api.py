"""The admin HTTP API over a real socket: keys and spend with the admin key,
strict bodies answered in OpenAI's shape, its OpenAPI document, and a keys
file broken while the gateway runs (it keeps serving; /readyz says why)."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gateway.settings import Settings
from tests.harness import ROOT, GatewayServer
from tests.upstream_server import Upstream

ADMIN = "admin-0123456789abcdef"


@pytest.fixture
def server(tmp_path: Path, upstream: Upstream) -> Iterator[GatewayServer]:
    policies = tmp_path / "policies"
    shutil.copytree(ROOT / "policies", policies)
    settings = Settings.from_env(
        {
            "GATEWAY_POLICIES": str(policies),
            "GATEWAY_KEYS_FILE": str(tmp_path / "keys.json"),
            "GATEWAY_ADMIN_KEY": ADMIN,
            "OPEN_MODEL_BASE_URL": upstream.url,
            "OPEN_MODEL_NAME": "echo",
            "GATEWAY_RELOAD_INTERVAL_S": "0",
        }
    )
    gateway = GatewayServer(settings).start()
    yield gateway
    gateway.stop()


def admin(server: GatewayServer) -> httpx.Client:
    return httpx.Client(
        base_url=server.url, headers={"authorization": f"Bearer {ADMIN}"}, timeout=10
    )


def ask(server: GatewayServer, key: str) -> int:
    return httpx.post(
        server.url + "/v1/chat/completions",
        json={"model": "local", "messages": [{"role": "user", "content": "hi"}]},
        headers={"authorization": f"Bearer {key}"},
        timeout=10,
    ).status_code


def test_key_lifecycle_over_http(server: GatewayServer) -> None:
    with admin(server) as api:
        made = api.post("/gateway/keys", json={"team": "web", "rpm": 100, "budget_usd": 3})
        assert made.status_code == 201, made.text
        key, record = made.json()["key"], made.json()["record"]
        assert record["team"] == "web" and record["budget_usd"] == 3.0
        assert "hash" not in record and key not in str(record)
        assert ask(server, key) == 200
        key_id = record["key_id"]
        assert api.get(f"/gateway/keys/{key_id}").json()["rpm"] == 100
        changed = api.patch(f"/gateway/keys/{key_id}", json={"rpm": None, "tpm": 5000})
        assert changed.status_code == 200, changed.text
        assert (changed.json()["rpm"], changed.json()["tpm"]) == (None, 5000)
        rotated = api.post(f"/gateway/keys/{key_id}/rotate")
        assert rotated.status_code == 201
        new_key = rotated.json()["key"]
        assert ask(server, key) == 401 and ask(server, new_key) == 200
        new_id = rotated.json()["record"]["key_id"]
        assert api.post(f"/gateway/keys/{new_id}/revoke").json()["status"] == "revoked"
        assert ask(server, new_key) == 401
        listed = api.get("/gateway/keys").json()
        assert listed["object"] == "list"
        assert {k["status"] for k in listed["data"]} == {"revoked"}
        assert api.get("/gateway/spend?period=day").status_code == 200


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"team": ""}, "team"),
        ({"team": "t", "rpm": -5}, "rpm"),
        ({"team": "t", "colour": "blue"}, "colour"),
        ({"team": "t", "period": "year", "budget_usd": 1}, "period"),
        ({"team": "t", "expires": "last tuesday"}, "expires"),
    ],
)
def test_bad_bodies_are_openai_shaped_400s(
    server: GatewayServer, body: dict[str, object], param: str
) -> None:
    with admin(server) as api:
        answer = api.post("/gateway/keys", json=body)
        assert answer.status_code == 400, answer.text
        error = answer.json()["error"]
        assert error["type"] == "invalid_request_error" and error["param"] == param
        assert api.post("/gateway/keys", content=b"{not json").status_code == 400
        assert api.get("/gateway/keys/zz").status_code == 400
        assert api.get("/gateway/keys/0123456789ab").status_code == 404


def test_the_admin_key_is_required(server: GatewayServer) -> None:
    assert httpx.get(server.url + "/gateway/keys").status_code == 401
    wrong = {"authorization": "Bearer nope"}
    assert httpx.post(server.url + "/gateway/keys", json={}, headers=wrong).status_code == 401


def test_openapi_describes_the_admin_routes(server: GatewayServer) -> None:
    document = httpx.get(server.url + "/gateway/openapi.json").json()
    assert document["openapi"].startswith("3.")
    paths = document["paths"]
    assert {"/gateway/keys", "/gateway/keys/{key_id}", "/gateway/spend"} <= set(paths)
    assert {"get", "post"} <= set(paths["/gateway/keys"])
    assert "patch" in paths["/gateway/keys/{key_id}"]
    create = document["components"]["schemas"]["KeyCreate"]
    assert create["properties"]["rpm"]["anyOf"][0]["minimum"] == 1
    assert all(p.startswith("/gateway/") for p in paths)


def test_a_broken_keys_file_keeps_the_last_good_keys(server: GatewayServer) -> None:
    with admin(server) as api:
        key = api.post("/gateway/keys", json={"team": "ops"}).json()["key"]
    path = server.settings.keys_file
    path.write_text('{"keys": [')  # a bad hand edit
    time.sleep(1.2)  # the file's check interval
    assert ask(server, key) == 200
    ready = httpx.get(server.url + "/readyz").json()
    assert ready["status"] == "degraded"
    assert any("not valid JSON" in p for p in ready["state"]["problems"])
    # prices: where each target's come from
    assert ready["prices"]["sources"]["openai-gpt-4o"] == "litellm"
    assert ready["prices"]["sources"]["local"] == "free"
    with admin(server) as api:
        refused = api.post("/gateway/keys", json={"team": "ops"})
    assert refused.status_code == 503 and "fix or remove" in refused.json()["error"]["message"]
