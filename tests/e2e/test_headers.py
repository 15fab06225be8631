"""What a client's headers can and cannot do: only the gateway's own headers reach an
upstream, the request id sent upstream is the gateway's, a repeated classification
header counts at its highest level."""

from __future__ import annotations

import uuid

import httpx

from tests.harness import GatewayServer
from tests.upstream_server import Upstream

USER = [{"role": "user", "content": "hello there"}]
PLANTED = "AKIAZ7QX3MPLW9RT2KVB"


def _sent_to_upstream(upstream: Upstream, marker: str) -> dict[str, str]:
    for request in reversed(upstream.requests):
        if marker in str(request["body"]):
            headers: dict[str, str] = {k.lower(): v for k, v in request["headers"].items()}
            return headers
    raise AssertionError("the request never reached the upstream")


def test_client_headers_and_request_id_stay_at_the_gateway(
    gateway: GatewayServer, upstream: Upstream
) -> None:
    marker = f"marker-{uuid.uuid4().hex}"
    response = httpx.post(
        gateway.url + "/v1/chat/completions",
        json={"model": "echo", "messages": [{"role": "user", "content": marker}]},
        headers={
            "x-request-id": f"trace-{PLANTED}",
            "x-custom-secret": PLANTED,
            "cookie": f"session={PLANTED}",
            "x-forwarded-for": "10.1.2.3",
        },
    )
    assert response.status_code == 200
    # the client's own id comes back to the client, with the gateway's beside it
    assert response.headers["x-request-id"] == f"trace-{PLANTED}"
    own = response.headers["x-gateway-request-id"]
    assert own.startswith("req_") and PLANTED not in own
    sent = _sent_to_upstream(upstream, marker)
    assert sent["x-request-id"] == own
    assert PLANTED not in str(sent)
    assert not {"x-custom-secret", "cookie", "x-forwarded-for"} & set(sent)


def test_without_a_client_id_the_gateway_id_is_the_request_id(
    gateway: GatewayServer, upstream: Upstream
) -> None:
    marker = f"marker-{uuid.uuid4().hex}"
    response = httpx.post(
        gateway.url + "/v1/chat/completions",
        json={"model": "echo", "messages": [{"role": "user", "content": marker}]},
    )
    assert response.status_code == 200
    assert "x-gateway-request-id" not in response.headers
    assert _sent_to_upstream(upstream, marker)["x-request-id"] == response.headers["x-request-id"]


def test_a_repeated_classification_header_takes_the_highest_level(
    gateway: GatewayServer,
) -> None:
    for values in (["restricted", "public"], ["public", "restricted"]):
        response = httpx.post(
            gateway.url + "/gateway/explain",
            json={"model": "auto", "messages": USER},
            headers=[("x-data-classification", value) for value in values],
        )
        assert response.status_code == 200, response.text
        assert response.json()["sensitivity"]["level"] == "restricted"


def test_a_repeated_classification_header_with_a_bad_value_is_refused(
    gateway: GatewayServer,
) -> None:
    response = httpx.post(
        gateway.url + "/v1/chat/completions",
        json={"model": "echo", "messages": USER},
        headers=[("x-data-classification", "public"), ("x-data-classification", "secret")],
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "x-data-classification"


def test_conflicting_task_hints_are_refused(gateway: GatewayServer) -> None:
    response = httpx.post(
        gateway.url + "/v1/chat/completions",
        json={"model": "echo", "messages": USER},
        headers=[("x-gateway-task", "code"), ("x-gateway-task", "chat")],
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "x-gateway-task"
