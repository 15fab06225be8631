"""Every error is OpenAI-shaped, with OpenAI's status; bad input never reaches an upstream."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import openai
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from gateway.endpoints import Endpoint
from gateway.errors import InvalidRequest, ModelNotFound
from gateway.judging.request import parse_body
from tests.e2e.conftest import MAX_BODY_BYTES, e2e_policy
from tests.harness import GatewayServer
from tests.upstream_server import Upstream

USER = [{"role": "user", "content": "hi"}]
ALIASES = frozenset(e2e_policy()["aliases"])


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


def expected_answer(raw: bytes) -> tuple[int, dict[str, Any]]:
    """What the gateway must answer to a chat body that names no alias of the
    policy: the parser's own 400 when it refuses the body, else the 404 for the
    unknown model. Nothing else: no 200, and never a 5xx."""
    try:
        parsed = parse_body(raw, Endpoint.CHAT, max_bytes=MAX_BODY_BYTES)
    except InvalidRequest as error:
        return error.status, error.body()
    return 404, ModelNotFound(
        f"The model `{parsed.model}` does not exist or you do not have access to it.",
        param="model",
    ).body()


def assert_exact_answer(gateway: GatewayServer, raw: bytes) -> None:
    status, body = expected_answer(raw)
    response = post(
        gateway, "/v1/chat/completions", content=raw, headers={"content-type": "application/json"}
    )
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["x-request-id"]
    assert response.json() == body


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
def test_any_json_body_gets_its_exact_openai_answer(
    gateway: GatewayServer, body: dict[str, Any]
) -> None:
    model = body.get("model")
    assume(not isinstance(model, str) or model not in ALIASES)
    assert_exact_answer(gateway, json.dumps(body).encode())


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(raw=st.binary(max_size=200))
def test_any_bytes_get_their_exact_400_never_a_500(gateway: GatewayServer, raw: bytes) -> None:
    assert_exact_answer(gateway, raw)


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b'{"model": "gpt-99", "messages": [{"role": "user", "content": "hi"}]}', 404),
        (b'{"model": "gpt-99", "messages": []}', 400),
        (b'{"model": "", "messages": []}', 400),
        (b"\xff\xfe", 400),
        (b"null", 400),
    ],
)
def test_the_oracle_itself(gateway: GatewayServer, body: bytes, status: int) -> None:
    """The two properties above lean on ``expected_answer``: pin it on known cases."""
    assert expected_answer(body)[0] == status
    assert_exact_answer(gateway, body)


def upstream_error(message: str, error_type: str, code: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": error_type, "param": None, "code": code}}


@pytest.mark.parametrize(
    ("model", "status", "body"),
    [
        # one target answering an error status: its own message and type are passed
        # on (a 5xx as 502, a 429 as 429), with the gateway's code when it has none
        ("status-500", 502, upstream_error("upstream says 500", "server_error", "upstream_error")),
        ("status-503", 502, upstream_error("upstream says 503", "server_error", "upstream_error")),
        (
            "status-429",
            429,
            upstream_error("upstream says 429", "rate_limit_exceeded", "upstream_error"),
        ),
        # failures without an upstream status: the gateway's own words, naming the target
        (
            "hang",
            504,
            upstream_error(
                "Every target timed out (hang: timeout).", "api_error", "upstream_timeout"
            ),
        ),
        (
            "not-json",
            503,
            upstream_error(
                "No target could serve this request (not-json: protocol).",
                "api_error",
                "no_target_available",
            ),
        ),
        (
            "refused",
            503,
            upstream_error(
                "No target could serve this request (refused: connection refused at URL).",
                "api_error",
                "no_target_available",
            ),
        ),
        (
            "cloud-nokey",
            503,
            upstream_error(
                "No target could serve this request (cloud-nokey: UNSET_KEY_FOR_TEST is not set).",
                "api_error",
                "no_target_available",
            ),
        ),
        (
            "all-fail",
            503,
            upstream_error(
                "No target could serve this request (status-500: HTTP 500; refused: connection refused at URL).",
                "api_error",
                "no_target_available",
            ),
        ),
    ],
)
def test_upstream_failures_get_their_exact_status_and_body(
    gateway: GatewayServer, model: str, status: int, body: dict[str, Any]
) -> None:
    response = post(gateway, "/v1/chat/completions", json={"model": model, "messages": USER})
    assert response.status_code == status, response.text
    got = response.json()
    expected = body["error"]["message"]
    if "at URL" in expected:  # the refused target's port is picked when the policy is written
        pattern = re.escape(expected).replace("URL", r"http://127\.0\.0\.1:\d+/v1")
        assert re.fullmatch(pattern, got["error"]["message"]), got
        got["error"]["message"] = expected
    assert got == body


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
