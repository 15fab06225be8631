"""Every ending of an admitted request is settled exactly once.

A real gateway (in-process, real sockets) in front of the real test upstream;
the one seam watched is :meth:`Settlement.settle`, wrapped to count its calls
(the real one runs). Each ending — a whole answer, a completed stream, an
upstream that drops mid-stream, a client that goes away at a random point of
a stream, an upstream error before any byte, a refused connection, a cache
hit (whole and streamed) — must give one settlement, leave its leases
released (stream slot, budget reservation), add its tokens to the spend
ledger once, store a cache entry only for a complete answer, count one
request in the metrics and leave no active stream behind.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.observability.record import Exchange
from gateway.pipeline.settlement import Ending, Settlement
from gateway.settings import Settings
from gateway.state.base import Period
from tests.harness import GatewayServer, upstream_target, write_policy
from tests.upstream_server import Upstream, free_port

ENDINGS = (
    "whole",
    "stream",
    "stream-dropped",
    "client-gone",
    "upstream-500",
    "upstream-500-stream",
    "refused",
    "cache-hit",
    "cache-hit-stream",
)


def policy() -> dict[str, Any]:
    targets = {
        "echo": upstream_target("echo"),
        "slow": upstream_target(
            "slow-stream", timeouts={"connect": 1, "first_byte": 2, "total": 30}
        ),
        "drop": upstream_target("drop-mid-stream"),
        "s500": upstream_target("status:500"),
        "refused": upstream_target("echo", base_url=f"http://127.0.0.1:{free_port()}/v1"),
    }
    return {
        "targets": targets,
        "aliases": {name: {"targets": [name]} for name in targets},
        "sensitivity": {"default_level": "public", "entities": {"email": "confidential"}},
        "defaults": {"cache": {"mode": "auto"}},
        "rules": [
            # one stream at a time: a slot not given back refuses the next stream
            {"name": "pinned", "route": {"alias": True}, "limits": {"max_streams": 1}},
        ],
    }


@dataclass
class Settled:
    ex: Exchange
    ending: Ending


class Gateway:
    def __init__(self, server: GatewayServer) -> None:
        self.server = server
        services = server.services
        assert services is not None
        self.services = services
        settlement: Settlement = services.pipeline._settlement
        real = settlement.settle
        self.calls: list[Settled] = []

        def counted(ex: Exchange, ending: Ending) -> None:
            self.calls.append(Settled(ex, ending))
            real(ex, ending)

        settlement.settle = counted  # type: ignore[method-assign]

    def requests_total(self) -> float:
        text = httpx.get(self.server.url + "/metrics").text
        return sum(
            float(m.group(1))
            for m in re.finditer(r"^gateway_requests_total\{.*\} (\S+)$", text, re.M)
        )

    def active_streams(self) -> float:
        text = httpx.get(self.server.url + "/metrics").text
        found = re.search(r"^gateway_active_streams (\S+)$", text, re.M)
        return float(found.group(1)) if found else 0.0

    def tokens(self) -> int:
        self.server.call(self.services.batch_writer.flush())
        report = self.server.call(self.services.state.ledger.report(Period.DAY))
        return int(sum(report.tokens_by_team.values()))


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    upstream = Upstream().start()
    policies = write_policy(tmp_path_factory.mktemp("policies"), policy())
    server = GatewayServer(
        Settings(
            policies=Path(policies),
            keys_file=tmp_path_factory.mktemp("keys") / "keys.json",
            environ={"UPSTREAM_URL": upstream.url},
            reload_interval_s=0,
        )
    ).start()
    try:
        yield Gateway(server)
    finally:
        server.stop()
        upstream.stop()


def body(model: str, text: str, *, stream: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "user", "content": text}],
        "temperature": 0,
        "stream": stream,
    }
    if stream:
        out["stream_options"] = {"include_usage": True}
    return out


def send(url: str, payload: dict[str, Any], *, read_events: int | None = None) -> int:
    """POST a chat request; a stream is read to its end, or only ``read_events``
    events before the client closes the connection. Returns the status."""
    with (
        httpx.Client(timeout=30) as client,
        client.stream("POST", url + "/v1/chat/completions", json=payload) as answer,
    ):
        if read_events is None:
            answer.read()
            return answer.status_code
        seen = 0
        for line in answer.iter_lines():
            if line.startswith("data: "):
                seen += 1
                if seen >= read_events:
                    break
        return answer.status_code


def wait_for(condition: Any, what: str, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def run_ending(gateway: Gateway, ending: str, cut: int) -> None:
    url = gateway.server.url
    text = f"settle {uuid.uuid4().hex}"  # a fresh cache key per run
    requests_before, tokens_before = gateway.requests_total(), gateway.tokens()
    first_stored = None
    if ending.startswith("cache-hit"):
        stream = ending.endswith("stream")
        assert send(url, body("echo", text, stream=stream)) == 200
        wait_for(lambda: len(gateway.calls) == 1, "the first answer was not settled")
        gateway.server.call(gateway.services.pipeline.drain())
        requests_before, tokens_before = gateway.requests_total(), gateway.tokens()
        key = gateway.calls[0].ending.work.cache_write
        assert key is not None
        first_stored = gateway.server.call(gateway.services.state.cache.get(key)).created_at
        gateway.calls.clear()
    plans = {
        "whole": ("echo", False, None, 200),
        "stream": ("echo", True, None, 200),
        "stream-dropped": ("drop", True, None, 200),
        "client-gone": ("slow", True, cut, 200),
        "upstream-500": ("s500", False, None, 502),
        "upstream-500-stream": ("s500", True, None, 502),
        "refused": ("refused", False, None, 503),
        "cache-hit": ("echo", False, None, 200),
        "cache-hit-stream": ("echo", True, None, 200),
    }
    model, stream, read_events, status = plans[ending]
    got = send(url, body(model, text, stream=stream), read_events=read_events)
    assert got == status, (ending, got)
    wait_for(lambda: len(gateway.calls) >= 1, f"{ending}: never settled")
    wait_for(
        lambda: gateway.requests_total() >= requests_before + 1, f"{ending}: no request counted"
    )
    gateway.server.call(gateway.services.pipeline.drain())
    time.sleep(0.05)  # a second settlement, if there were one, would have come by now
    assert len(gateway.calls) == 1, f"{ending}: settled {len(gateway.calls)} times"
    settled = gateway.calls.pop()
    admission = settled.ending.work.admission
    assert admission.released and admission.reserved_usd == 0.0, ending
    assert gateway.requests_total() == requests_before + 1, ending
    assert gateway.active_streams() == 0, ending
    answered = ending not in ("upstream-500", "upstream-500-stream", "refused")
    ex = settled.ex
    expected = ex.prompt_tokens + ex.completion_tokens if answered else 0
    assert gateway.tokens() - tokens_before == expected, ending
    if ending == "client-gone":
        assert ex.outcome == "cancelled"
        # priced for what was streamed: about one token per event relayed
        assert ex.completion_tokens >= cut - 1
    if ending == "stream-dropped":
        assert ex.outcome == "stream_error"
    key = settled.ending.work.cache_write
    entry = None if key is None else gateway.server.call(gateway.services.state.cache.get(key))
    if ending in ("whole", "stream"):
        assert entry is not None  # complete and deterministic: stored
    elif ending.startswith("cache-hit"):
        assert entry is not None and entry.created_at == first_stored, "a hit is not stored again"
    else:
        assert entry is None, f"{ending}: an incomplete answer was cached"
    # the stream slot (max_streams 1) came back: the next stream is admitted
    assert send(url, body("echo", text + " next", stream=True)) == 200
    wait_for(lambda: len(gateway.calls) == 1, "the next stream was not settled")
    gateway.server.call(gateway.services.pipeline.drain())
    gateway.calls.clear()


@pytest.mark.parametrize("ending", ENDINGS)
def test_each_ending_is_settled_once(gateway: Gateway, ending: str) -> None:
    gateway.calls.clear()
    run_ending(gateway, ending, cut=3)


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(ending=st.sampled_from(ENDINGS), cut=st.integers(1, 40))
def test_endings_in_any_order_and_cancellation_anywhere(
    gateway: Gateway, ending: str, cut: int
) -> None:
    gateway.calls.clear()
    run_ending(gateway, ending, cut)
