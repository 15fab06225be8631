"""The access log: one JSON line per request, ids and numbers only.

Each request through a real gateway leaves exactly one line on the
``gateway.access`` logger, carrying its request id, key id, team, rule,
target, attempts, status, latency, tokens, cost and cache result — and never
the prompt, the completion, the data detected in them or the API key.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from gateway.observability.logs import JsonFormatter
from gateway.settings import Settings
from tests.harness import GatewayServer, write_policy
from tests.observability.conftest import ACTION, chat, observed_policy, policy_environ
from tests.upstream_server import Upstream

TEAM = "log-team"
EMAIL = "someone.private@example.org"
SECRET = "AKIAZ7QX3MPLW9RT2KVB"
PASSWORD = "Sup3r-Secret-Pw!"
PROMPT_WORDS = "zebra quantum lantern"
#: every line must carry these (values may be null where they do not apply)
FIELDS = (
    "request_id",
    "key_id",
    "team",
    "rule",
    "target",
    "attempts",
    "status",
    "latency_ms",
    "prompt_tokens",
    "completion_tokens",
    "cost_usd",
    "cache",
)


@dataclass
class Stack:
    gateway: GatewayServer
    key: str
    key_id: str


@pytest.fixture(scope="module")
def stack(upstream: Upstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    settings = Settings(
        policies=write_policy(tmp_path_factory.mktemp("access"), observed_policy()),
        environ=policy_environ(upstream),
        reload_interval_s=0,
    )
    gateway = GatewayServer(settings).start()
    services = gateway.services
    assert services is not None

    async def make_key() -> tuple[str, str]:
        key, record = await services.state.keys.create_key(TEAM)
        services.auth.forget()
        return key, record.key_id

    try:
        key, key_id = gateway.call(make_key())
        yield Stack(gateway, key, key_id)
    finally:
        gateway.stop()


class _Collect(logging.Handler):
    """Keeps every record of the ``gateway`` loggers, from any thread."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def access_lines(self, request_id: str) -> list[dict[str, Any]]:
        found = []
        for record in list(self.records):
            if record.name == "gateway.access":
                line = json.loads(JsonFormatter().format(record))
                if line["request_id"] == request_id:
                    found.append(line)
        return found

    def wait_for_line(self, request_id: str) -> list[dict[str, Any]]:
        # a stream's line is written once its accounting is done, after the last byte
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not self.access_lines(request_id):
            time.sleep(0.02)
        time.sleep(0.1)  # a second line, if there were one, would be here by now
        return self.access_lines(request_id)


@dataclass
class Logged:
    response: httpx.Response
    body: bytes
    #: this request's access-log lines
    lines: list[dict[str, Any]]
    #: everything any ``gateway`` logger said while the request ran
    text: str


# (name, body, extra headers, use the real key, expected status)
CASES: list[tuple[str, dict[str, Any], dict[str, str], bool, int]] = [
    ("plain", chat(f"Tell me about {PROMPT_WORDS}"), {}, True, 200),
    ("email", chat(f"Write to {EMAIL} about {PROMPT_WORDS}"), {}, True, 200),
    ("secret", chat(f"key {SECRET} and password = {PASSWORD!r}"), {}, True, 200),
    ("stream", chat(f"Stream {PROMPT_WORDS}", stream=True), {}, True, 200),
    ("cache-1", chat(f"Cache {PROMPT_WORDS}", temperature=0), {ACTION: "cache"}, True, 200),
    ("denied", chat(f"Deny {PROMPT_WORDS}"), {ACTION: "deny"}, True, 403),
    ("bad-key", chat(f"Who {PROMPT_WORDS}"), {}, False, 401),
    ("fallback", chat(f"Fall back {PROMPT_WORDS}", model="fallback"), {}, True, 200),
]


def _send(
    client: httpx.Client,
    handler: _Collect,
    stack: Stack,
    body: dict[str, Any],
    headers: dict[str, str],
    own_key: bool,
) -> Logged:
    request_id = f"req-log-{uuid.uuid4().hex}"
    key = stack.key if own_key else f"sk-unknown-{uuid.uuid4().hex}"
    first = len(handler.records)
    with client.stream(
        "POST",
        "/v1/chat/completions",
        json=body,
        headers={**headers, "authorization": f"Bearer {key}", "x-request-id": request_id},
    ) as response:
        content = response.read()
    assert response.headers["x-request-id"] == request_id  # echoed to its client only
    lines = handler.wait_for_line(response.headers["x-gateway-request-id"])
    text = "\n".join(JsonFormatter().format(record) for record in handler.records[first:])
    return Logged(response, content, lines, text)


@pytest.fixture(scope="module")
def logged(stack: Stack) -> dict[str, Logged]:
    """Each case sent once with its own request id (the cacheable one twice)."""
    handler = _Collect()
    logger = logging.getLogger("gateway")
    previous = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    results: dict[str, Logged] = {}
    try:
        with httpx.Client(base_url=stack.gateway.url, timeout=15) as client:
            for name, body, headers, own_key, _ in CASES:
                results[name] = _send(client, handler, stack, body, headers, own_key)
            _, body, headers, own_key, _ = CASES[4]
            for _ in range(40):  # the first answer is stored in the background
                results["cache-2"] = _send(client, handler, stack, body, headers, own_key)
                if results["cache-2"].response.headers.get("x-gateway-cache") == "hit":
                    break
                time.sleep(0.05)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)
    return results


NAMES = [case[0] for case in CASES] + ["cache-2"]


@pytest.mark.parametrize("name", NAMES)
def test_one_json_line_per_request_with_every_field(
    name: str, logged: dict[str, Logged], stack: Stack
) -> None:
    entry = logged[name]
    assert len(entry.lines) == 1, entry.lines
    line = entry.lines[0]
    missing = [f for f in FIELDS if f not in line]
    assert not missing
    assert line["status"] == entry.response.status_code
    assert line["latency_ms"] > 0
    if name == "bad-key":
        assert line["key_id"] is None and line["team"] is None
        return
    assert line["key_id"] == stack.key_id and line["team"] == TEAM
    assert line["rule"] is not None


def test_the_lines_say_what_happened(logged: dict[str, Logged]) -> None:
    line = {name: entry.lines[0] for name, entry in logged.items()}
    assert line["plain"]["target"] == "open-a" and line["plain"]["attempts"] == 1
    assert line["plain"]["prompt_tokens"] > 0 and line["plain"]["completion_tokens"] > 0
    assert line["email"]["target"] == "cloud" and line["email"]["cost_usd"] > 0
    assert line["email"]["rule"] == "email-redacted-to-cloud"
    assert (
        line["secret"]["rule"] == "restricted-stays-open"
        and line["secret"]["level"] == "restricted"
    )
    assert line["stream"]["stream"] is True and line["stream"]["completion_tokens"] > 0
    assert (line["cache-1"]["cache"], line["cache-2"]["cache"]) == ("miss", "hit")
    assert line["cache-2"]["cost_usd"] == 0
    assert line["denied"]["outcome"] == "denied" and line["denied"]["target"] is None
    assert line["bad-key"]["outcome"] == "auth_error"
    assert line["fallback"]["attempts"] == 3 and line["fallback"]["target"] == "open-a"


@pytest.mark.parametrize("name", NAMES)
def test_no_prompt_completion_data_or_key_is_logged(
    name: str, logged: dict[str, Logged], stack: Stack
) -> None:
    entry = logged[name]
    assert entry.lines, "no access line"
    said = entry.text
    assert entry.lines[0]["request_id"] in said  # the capture sees the gateway's records
    for secret in (EMAIL, SECRET, PASSWORD, PROMPT_WORDS, "echo:", stack.key):
        assert secret not in said, f"{secret!r} was logged"
    assert "sk-unknown-" not in said
    assert not {"prompt", "messages", "content", "completion", "authorization"} & set(
        entry.lines[0]
    )
