"""Every error is OpenAI-shaped, with OpenAI's status; bad input never reaches an upstream."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.harness import GatewayServer
from tests.upstream_server import Upstream

USER = [{"role": "user", "content": "hi"}]


def assert_openai_error(
    response: httpx.Response, status: int, code: str | None = None
) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert isinstance(error["message"], str) and error["message"]
    if code is not None:
        assert error["code"] == code
    assert response.headers["x-request-id"]
    return dict(error)


def post(gateway: GatewayServer, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.post(gateway.url + path, timeout=10, **kwargs)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (b"{not json", None),
        (b"", None),
        (b"[1, 2]", None),
        (b'{"messages": [{"role": "user", "content": "x"}]}', "model"),
        (b'{"model": 42, "messages": []}', "model"),
        (b'{"model": "echo"}', "messages"),
        (b'{"model": "echo", "messages": []}', "messages"),
        (b'{"model": "echo", "messages": "hello"}', "messages"),
        (b'{"model": "echo", "messages": [42]}', "messages[0]"),
        (b'{"model": "echo", "messages": [{"content": "x"}]}', "messages[0].role"),
        (
            b'{"model": "echo", "messages": [{"role": "wizard", "content": "x"}]}',
            "messages[0].role",
        ),
        (b'{"model": "echo", "messages": [{"role": "user", "content": 5}]}', "messages[0].content"),
        (
            b'{"model": "echo", "messages": [{"role": "user", "content": "x"}], "temperature": "hot"}',
            "temperature",
        ),
        (
            b'{"model": "echo", "messages": [{"role": "user", "content": "x"}], "temperature": 3}',
            "temperature",
        ),
        (b'{"model": "echo", "messages": [{"role": "user", "content": "x"}], "n": 0}', "n"),
        (
            b'{"model": "echo", "messages": [{"role": "user", "content": "x"}], "stream": "yes"}',
            "stream",
        ),
        (
            b'{"model": "echo", "messages": [{"role": "user", "content": "x"}], "stream_options": {"include_usage": true}}',
            "stream_options",
        ),
    ],
)
def test_bad_chat_requests_are_400(
    gateway: GatewayServer, upstream: Upstream, body: bytes, param: str | None
) -> None:
    before = len(upstream.requests)
    response = post(
        gateway, "/v1/chat/completions", content=body, headers={"content-type": "application/json"}
    )
    error = assert_openai_error(response, 400)
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert len(upstream.requests) == before, "bad input must never reach an upstream"


def test_bad_embeddings_and_completions(gateway: GatewayServer) -> None:
    assert_openai_error(post(gateway, "/v1/embeddings", json={"model": "echo"}), 400)
    assert_openai_error(post(gateway, "/v1/embeddings", json={"model": "echo", "input": ""}), 400)
    assert_openai_error(post(gateway, "/v1/completions", json={"model": "echo"}), 400)


def test_unknown_model_is_404(client: Any) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="gpt-99", messages=USER)
    assert caught.value.code == "model_not_found"


def test_body_over_limit_is_413(gateway: GatewayServer, upstream: Upstream) -> None:
    before = len(upstream.requests)
    huge = (
        b'{"model": "echo", "messages": [{"role": "user", "content": "'
        + b"x" * (2 * 1024 * 1024)
        + b'"}]}'
    )
    response = post(
        gateway, "/v1/chat/completions", content=huge, headers={"content-type": "application/json"}
    )
    assert_openai_error(response, 413, "request_too_large")
    assert len(upstream.requests) == before


def test_unknown_path_and_method(gateway: GatewayServer) -> None:
    assert_openai_error(httpx.get(gateway.url + "/v1/nothing"), 404)
    assert_openai_error(httpx.get(gateway.url + "/v1/chat/completions"), 405)


def test_upstream_4xx_reaches_client_with_its_code(client: Any) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="too-long-then-echo", messages=USER)
    assert caught.value.code == "context_length_exceeded"
    assert "maximum context length" in caught.value.message


def test_no_target_left_is_503_naming_why(gateway: GatewayServer) -> None:
    response = post(gateway, "/v1/chat/completions", json={"model": "all-fail", "messages": USER})
    error = assert_openai_error(response, 503, "no_target_available")
    assert "status-500" in error["message"] and "refused" in error["message"]


def test_target_without_key_is_unavailable_with_reason(gateway: GatewayServer) -> None:
    response = post(
        gateway, "/v1/chat/completions", json={"model": "cloud-nokey", "messages": USER}
    )
    error = assert_openai_error(response, 503)
    assert "UNSET_KEY_FOR_TEST" in error["message"]


def test_keys_are_never_echoed(gateway: GatewayServer, upstream: Upstream) -> None:
    from tests.e2e.conftest import CLOUD_KEY

    ok = post(gateway, "/v1/chat/completions", json={"model": "cloud", "messages": USER})
    assert ok.status_code == 200
    assert upstream.requests[-1]["headers"]["Authorization"] == f"Bearer {CLOUD_KEY}"
    assert CLOUD_KEY not in ok.text and CLOUD_KEY not in str(ok.headers)
    ready = httpx.get(gateway.url + "/readyz").text
    metrics = httpx.get(gateway.url + "/metrics").text
    assert CLOUD_KEY not in ready and CLOUD_KEY not in metrics


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=st.dictionaries(
        st.sampled_from(
            ["model", "messages", "stream", "n", "temperature", "tools", "stream_options", "x"]
        ),
        json_values,
    )
)
def test_any_json_body_gets_a_non_500_openai_answer(
    gateway: GatewayServer, body: dict[str, Any]
) -> None:
    response = post(gateway, "/v1/chat/completions", json=body)
    assert response.status_code < 500 or response.status_code in (502, 503, 504)
    if response.status_code != 200:
        assert_openai_error(response, response.status_code)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(raw=st.binary(max_size=200))
def test_any_bytes_get_a_400_never_a_500(gateway: GatewayServer, raw: bytes) -> None:
    response = post(
        gateway, "/v1/chat/completions", content=raw, headers={"content-type": "application/json"}
    )
    assert response.status_code in (200, 400, 404), response.text
    if response.status_code != 200:
        assert_openai_error(response, response.status_code)


def test_a_bug_is_an_openai_500_without_details(
    gateway: GatewayServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A fault injected where the pipeline starts: the client gets OpenAI's 500,
    never the exception's text; the log gets the traceback."""

    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("internal detail sk-secret-0123456789")

    assert gateway.services is not None
    monkeypatch.setattr(gateway.services.pipeline, "handle", broken)
    with caplog.at_level("ERROR", logger="gateway.api"):
        response = post(gateway, "/v1/chat/completions", json={"model": "echo", "messages": USER})
    error = assert_openai_error(response, 500)
    assert error["type"] == "api_error"
    assert "sk-secret" not in response.text and "internal detail" not in response.text
    assert any("sk-secret" in str(r.exc_info[1]) for r in caplog.records if r.exc_info)
