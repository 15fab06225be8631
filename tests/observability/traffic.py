"""The traffic of the live test: one request down every path the dashboards show.

Which rule each request meets is set by :func:`tests.observability.conftest.observed_policy`.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from tests.harness import GatewayServer
from tests.observability.conftest import ACTION, chat
from tests.servers import RedisServer, command

EMAIL = "jane.doe@example.com"
SSN = "123-45-6789"


def drive(gateway: GatewayServer, keys: dict[str, str]) -> dict[str, list[httpx.Response]]:
    """Send one request down each path (key ``alpha``; ``broke`` for the budget
    refusal); the answers by path name. Safe to run twice: a second round meets
    an open circuit, a warm cache and a spent rate limit, and still moves every counter."""
    answers: dict[str, list[httpx.Response]] = {}
    alpha = {"authorization": f"Bearer {keys['alpha']}"}
    with httpx.Client(base_url=gateway.url, headers=alpha, timeout=15) as client:

        def send(
            name: str, body: dict[str, Any], path: str = "/v1/chat/completions", **headers: str
        ) -> httpx.Response:
            response = client.post(path, json=body, headers=headers)
            answers.setdefault(name, []).append(response)
            return response

        send("plain", chat("Hello there, how are you today?"))
        send("completions", {"model": "auto", "prompt": "Once upon a time"}, "/v1/completions")
        send("proprietary", chat("What is the capital of France?", model="cloud"))
        send("fallback", chat("hello", model="fallback"))
        send("retry", chat("hello", model="flaky"))
        for _ in range(3):
            send("breaker", chat("hello", model="breaker"))
        send("cache", chat("cache me", temperature=0), **{ACTION: "cache"})
        for _ in range(40):  # the first answer is stored in the background
            if (
                send("cache", chat("cache me", temperature=0), **{ACTION: "cache"}).headers.get(
                    "x-gateway-cache"
                )
                == "hit"
            ):
                break
            time.sleep(0.05)
        send("deny", chat("hello"), **{ACTION: "deny"})
        send("redact", chat(f"Write to {EMAIL} about the meeting"))
        for _ in range(3):
            send("limited", chat("hello"), **{ACTION: "limited"})
        send("restricted", chat(f"My SSN is {SSN}, is that fine?"))
        send("classified", chat("plain words"), **{"x-data-classification": "restricted"})
        send("unservable", chat("plain words"), **{"x-data-classification": "confidential"})
        with client.stream(
            "POST", "/v1/chat/completions", json=chat("stream these words please", stream=True)
        ) as stream:
            stream.read()
            answers["stream"] = [stream]
        with client.stream(
            "POST",
            "/v1/chat/completions",
            json=chat("one two three four", model="drop", stream=True),
        ) as stream:
            stream.read()
            answers["broken-stream"] = [stream]
        send("all-fail", chat("hello", model="all-fail"))
        send("embeddings", {"model": "embed-model", "input": "vectors please"}, "/v1/embeddings")
        send("budget", chat("hello", model="cloud"), authorization=f"Bearer {keys['broke']}")
        send("bad-key", chat("hello"), authorization="Bearer sk-not-a-key-of-ours")
        # three at once at a target with room for one (600 ms each): two spill to the
        # cloud; then six confidential ones, which may not: one served at once, four queued
        # (two served within the 1.5 s wait, two refused when it ran out), one refused at
        # once (the queue holds four)
        with ThreadPoolExecutor(6) as pool:
            spill = {ACTION: "spill"}
            answers["spill"] = list(
                pool.map(
                    lambda i: client.post(
                        "/v1/chat/completions", json=chat(f"idea {i}"), headers=spill
                    ),
                    range(3),
                )
            )
            held = {ACTION: "spill", "x-data-classification": "confidential"}
            answers["held"] = list(
                pool.map(
                    lambda i: client.post(
                        "/v1/chat/completions", json=chat(f"note {i}"), headers=held
                    ),
                    range(6),
                )
            )
        send("unknown-model", chat("hello", model="no-such-model"))
        answers["ready"] = [client.get("/readyz")]
    return answers


def shared_state_outage(gateway: GatewayServer, redis: RedisServer, key: str) -> httpx.Response:
    """Pause every Redis client for a moment: the gateway's state calls time out
    (``gateway_state_errors_total``) and it keeps serving (limits fail open)."""
    assert command(redis.port, "CLIENT", "PAUSE", "800", "ALL").startswith("+OK")
    response = httpx.post(
        f"{gateway.url}/v1/chat/completions",
        json=chat("during the outage"),
        headers={"authorization": f"Bearer {key}"},
        timeout=15,
    )
    time.sleep(0.9)  # the pause ends; /readyz then sets the backend gauge back to 1
    httpx.get(f"{gateway.url}/readyz", timeout=5)
    return response
