"""The Responses API as users meet it: `gateway serve` with the shipped policies,
keys made by `gateway keys create` (two teams), only the upstream URLs pointing
at the test's real server, and official clients unmodified: the ``openai`` SDK
(strict), the OpenAI Agents SDK running an agent with a function tool, and
LangChain's ``ChatOpenAI(use_responses_api=True)``.

Each runs twice: the open model's server speaking Responses natively
(``OPEN_MODEL_RESPONSES=native``, as a vLLM operator sets it) and speaking chat
completions only (the default, translated by the gateway).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import agents
import httpx
import langchain_openai
import openai
import pytest
from openai import AsyncOpenAI

from tests.harness import ROOT, GatewayProcess
from tests.upstream_server import Upstream


@dataclass
class Served:
    mode: str
    gateway: GatewayProcess
    upstream: Upstream
    key_a: str
    key_b: str
    clients: list[openai.OpenAI] = field(default_factory=list)

    def client(self, key: str | None = None) -> openai.OpenAI:
        made = openai.OpenAI(
            base_url=self.gateway.url + "/v1",
            api_key=key or self.key_a,
            max_retries=0,
            _strict_response_validation=True,
        )
        self.clients.append(made)
        return made

    def sent(self, marker: str) -> list[dict[str, Any]]:
        return [r for r in self.upstream.requests if marker in str(r["body"])]


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    server = Upstream().start()
    yield server
    server.stop()


def _create_key(env: dict[str, str], team: str) -> str:
    made = subprocess.run(
        [sys.executable, "-m", "gateway", "keys", "create", "--team", team],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert made.returncode == 0, made.stderr
    return made.stdout.strip()


@pytest.fixture(scope="module", params=["native", "translate"])
def served(
    request: pytest.FixtureRequest, upstream: Upstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    keys = tmp_path_factory.mktemp("keys") / "keys.json"
    env = {
        "GATEWAY_KEYS_FILE": str(keys),
        "OPENAI_BASE_URL": upstream.url,
        "OPENAI_API_KEY": "sk-test-0123456789",
        "OPEN_MODEL_BASE_URL": upstream.url,
        # echoes, and with tools calls one until its output comes back
        "OPEN_MODEL_NAME": "agent",
        "OPEN_MODEL_RESPONSES": request.param,
    }
    cli_env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", **env}
    key_a, key_b = _create_key(cli_env, "team-a"), _create_key(cli_env, "team-b")
    gateway = GatewayProcess(env=env)
    served = Served(request.param, gateway, upstream, key_a, key_b)
    try:
        gateway.wait_ready()
        yield served
    finally:
        for client in served.clients:
            client.close()
        gateway.stop()


def test_the_openai_sdk_create_stream_retrieve_and_follow_up(served: Served) -> None:
    client = served.client()
    marker = uuid.uuid4().hex
    raw = client.responses.with_raw_response.create(model="local", input=f"remember {marker}")
    first = raw.parse()
    assert raw.headers["x-gateway-target"] == "local"
    assert first.output_text == f"echo: remember {marker}"
    path = "/v1/responses" if served.mode == "native" else "/v1/chat/completions"
    assert [r["path"] for r in served.sent(marker)] == [path]
    with client.responses.stream(model="local", input=f"stream {marker} too") as stream:
        kinds = [event.type for event in stream]
        streamed = stream.get_final_response()
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    assert streamed.output_text == f"echo: stream {marker} too"
    assert client.responses.retrieve(first.id).output_text == first.output_text
    follow = uuid.uuid4().hex
    second = client.responses.create(
        model="local", input=f"and {follow}?", previous_response_id=first.id
    )
    assert second.previous_response_id == first.id
    (sent,) = served.sent(follow)
    if served.mode == "native":
        # the provider keeps the conversation: its own id, and only the new input
        assert sent["body"]["previous_response_id"] in served.upstream.responses_store
        assert sent["body"]["input"] == [
            {"type": "message", "role": "user", "content": f"and {follow}?"}
        ]
    else:
        assert [m["content"] for m in sent["body"]["messages"]] == [
            f"remember {marker}",
            f"echo: remember {marker}",
            f"and {follow}?",
        ]
    with client.responses.stream(
        model="local", input=f"then {follow}", previous_response_id=second.id
    ) as stream:
        third = stream.get_final_response()
    assert third.output_text == f"echo: then {follow}" and third.previous_response_id == second.id


def test_a_follow_up_served_elsewhere_gets_the_whole_conversation(served: Served) -> None:
    """The first turn went to OpenAI (native), the next to the open model: the
    provider's id means nothing there, so the gateway expands its own store."""
    client = served.client()
    marker = uuid.uuid4().hex
    first = client.responses.create(model="gpt-4o", input=f"hello {marker}")
    assert served.sent(marker)[0]["path"] == "/v1/responses"  # OpenAI: native by default
    follow = uuid.uuid4().hex
    client.responses.create(model="local", input=f"more {follow}", previous_response_id=first.id)
    (sent,) = served.sent(follow)
    if served.mode == "native":
        assert "previous_response_id" not in sent["body"]
        assert [item["content"] for item in sent["body"]["input"]] == [
            f"hello {marker}",
            f"echo: hello {marker}",
            f"more {follow}",
        ]
    else:
        assert len(sent["body"]["messages"]) == 3


def test_another_teams_response_id_is_not_found(served: Served) -> None:
    url = served.gateway.url + "/v1/responses"
    a = {"authorization": f"Bearer {served.key_a}"}
    b = {"authorization": f"Bearer {served.key_b}"}
    made = httpx.post(url, json={"model": "local", "input": "team a only"}, headers=a)
    assert made.status_code == 200, made.text
    rid = made.json()["id"]
    for method, path, body in (
        ("GET", f"/{rid}", None),
        ("GET", f"/{rid}/input_items", None),
        ("DELETE", f"/{rid}", None),
        ("POST", "", {"model": "local", "input": "x", "previous_response_id": rid}),
    ):
        answer = httpx.request(method, url + path, json=body, headers=b)
        assert answer.status_code == 404, (method, path, answer.text)
        assert answer.json()["error"]["type"] == "invalid_request_error"
        assert "team a only" not in answer.text
    # B's DELETE did not touch it: A still has it, and can follow it up
    assert httpx.get(f"{url}/{rid}", headers=a).status_code == 200
    follow = {"model": "local", "input": "y", "previous_response_id": rid}
    assert httpx.post(url, json=follow, headers=a).status_code == 200


def test_the_agents_sdk_runs_an_agent_with_a_function_tool(served: Served) -> None:
    agents.set_tracing_disabled(True)
    before = len(served.upstream.requests)
    calls: list[str] = []

    @agents.function_tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        calls.append(city)
        return f"sunny in {city}"

    async def run(streamed: bool) -> str:
        client = AsyncOpenAI(
            base_url=served.gateway.url + "/v1", api_key=served.key_a, max_retries=0
        )
        agent = agents.Agent(
            name="weather",
            instructions="Answer with the weather tool.",
            tools=[get_weather],
            model=agents.OpenAIResponsesModel(model="local", openai_client=client),
        )
        config = agents.RunConfig(tracing_disabled=True)
        try:
            if streamed:
                result = agents.Runner.run_streamed(agent, "weather in Paris?", run_config=config)
                async for _ in result.stream_events():
                    pass
                return str(result.final_output)
            done = await agents.Runner.run(agent, "weather in Paris?", run_config=config)
            return str(done.final_output)
        finally:
            await client.close()

    assert asyncio.run(run(streamed=False)) == "the tool said: sunny in Paris"
    assert asyncio.run(run(streamed=True)) == "the tool said: sunny in Paris"
    assert calls == ["Paris", "Paris"]
    paths = {r["path"] for r in served.upstream.requests[before:]}
    assert paths == {"/v1/responses" if served.mode == "native" else "/v1/chat/completions"}


def test_langchain_invokes_and_streams_with_the_responses_api(served: Served) -> None:
    llm = langchain_openai.ChatOpenAI(
        model="local",
        base_url=served.gateway.url + "/v1",
        api_key=served.key_a,
        use_responses_api=True,
        max_retries=0,
    )
    marker = uuid.uuid4().hex
    message = llm.invoke(f"hello {marker}")
    assert message.text == f"echo: hello {marker}"
    assert served.sent(marker)
    chunks = list(llm.stream(f"stream {marker}"))
    assert "".join(chunk.text for chunk in chunks) == f"echo: stream {marker}"
    usage = sum(chunks[1:], chunks[0]).usage_metadata
    assert usage is not None and usage["output_tokens"] > 0


def test_the_shipped_policy_checks(tmp_path: Path) -> None:
    """`responses: ${OPEN_MODEL_RESPONSES:-translate}` and a bad value, through `policy check`."""
    ok = subprocess.run(
        [sys.executable, "-m", "gateway", "policy", "check", str(ROOT / "policies")],
        cwd=ROOT,
        env={"OPEN_MODEL_RESPONSES": "native", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    bad = subprocess.run(
        [sys.executable, "-m", "gateway", "policy", "check", str(ROOT / "policies")],
        cwd=ROOT,
        env={"OPEN_MODEL_RESPONSES": "natively", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 1
    assert "targets.yaml" in bad.stdout + bad.stderr and "responses" in bad.stdout + bad.stderr


def test_a_deterministic_request_is_answered_from_the_cache(served: Served) -> None:
    """The shipped cache (``mode: auto``): the same temperature-0 request again is a
    hit, whole and streamed, with its own ids, and never reaches the upstream twice."""
    client = served.client()
    marker = uuid.uuid4().hex
    answers = [
        client.responses.with_raw_response.create(
            model="local", input=f"cache {marker}", temperature=0
        )
        for _ in range(2)
    ]
    assert [a.headers["x-gateway-cache"] for a in answers] == ["miss", "hit"]
    first, second = (a.parse() for a in answers)
    assert second.output_text == first.output_text == f"echo: cache {marker}"
    assert second.id != first.id
    assert client.responses.retrieve(second.id).output_text == second.output_text
    finals = []
    for _ in range(2):
        with client.responses.stream(
            model="local", input=f"cached stream {marker}", temperature=0
        ) as stream:
            finals.append(stream.get_final_response())
    assert [f.output_text for f in finals] == [f"echo: cached stream {marker}"] * 2
    assert finals[0].id != finals[1].id
    assert len(served.sent(marker)) == 2  # one whole, one streamed


def test_a_follow_up_the_provider_forgot_is_sent_whole(served: Served) -> None:
    """The provider dropped the previous turn (its retention, a restart): it
    answers ``previous_response_not_found`` and the gateway sends the same
    target the whole conversation from its own store instead. (Translated, the
    upstream never held anything: the gateway always sends the whole of it.)"""
    client = served.client()
    marker = uuid.uuid4().hex
    first = client.responses.create(model="local", input=f"keep {marker}")
    served.upstream.responses_store.clear()
    follow = uuid.uuid4().hex
    second = client.responses.create(
        model="local", input=f"still {follow}?", previous_response_id=first.id
    )
    assert second.output_text == f"echo: still {follow}?"
    if served.mode == "translate":
        (sent,) = served.sent(follow)
        assert len(sent["body"]["messages"]) == 3
        return
    tried, whole = (r["body"] for r in served.sent(follow))
    assert "previous_response_id" in tried and "previous_response_id" not in whole
    assert [item["content"] for item in whole["input"]] == [
        f"keep {marker}",
        f"echo: keep {marker}",
        f"still {follow}?",
    ]
