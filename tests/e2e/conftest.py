"""End-to-end fixtures: a real upstream server, a real gateway, the official SDK."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.settings import Settings
from tests.harness import GatewayServer, upstream_target, write_policy
from tests.upstream_server import Upstream, free_port, recording_files

CLOUD_KEY = "sk-test-cloud-0123456789abcdef"
#: the e2e gateway's body limit
MAX_BODY_BYTES = 1024 * 1024


def e2e_policy() -> dict[str, Any]:
    target = upstream_target

    targets: dict[str, Any] = {
        "echo": target("echo"),
        "echo-2": target("echo"),
        "cloud": target(
            "echo",
            kind="proprietary",
            api_key="${CLOUD_KEY:-}",
            price={"input_per_mtok": 5, "output_per_mtok": 15},
        ),
        "cloud-nokey": target("echo", kind="proprietary", api_key="${UNSET_KEY_FOR_TEST:-}"),
        "status-500": target("status:500"),
        "status-503": target("status:503"),
        "status-429": target("status:429"),
        "too-long": target("context-too-long"),
        "hang": target("hang", timeouts={"connect": 1, "first_byte": 0.5, "total": 5}),
        "drop": target("drop-mid-stream"),
        "refused": target("echo", base_url=f"http://127.0.0.1:{free_port()}/v1"),
        "not-json": target("not-json"),
        "slow-stream": target("slow-stream", timeouts={"connect": 1, "first_byte": 2, "total": 30}),
        "flaky": target(
            "flaky:2", retry={"attempts": 3, "backoff_base_s": 0.01, "backoff_max_s": 0.05}
        ),
        "breaker": target("status:500", circuit={"failures_to_open": 2, "open_seconds": 1.5}),
        # the test upstream's /v1/responses, forwarded natively
        "native": target("echo", responses="native"),
        "native-500": target("status:500", responses="native"),
        "native-drop": target("drop-mid-stream", responses="native"),
        "native-priced": target(
            "usage-details",
            responses="native",
            price={
                "input_per_mtok": 10,
                "output_per_mtok": 20,
                "cache_read_per_mtok": 1,
                "reasoning_per_mtok": 40,
            },
        ),
    }
    for path in recording_files():
        targets[f"rec-{path.name[:8]}"] = target(f"recording:{path.name[:8]}")
    aliases: dict[str, Any] = {"auto": {}}
    for name in targets:
        aliases[name] = {"targets": [name]}
    aliases.update(
        {
            "fallback-500": {"targets": ["status-500", "echo"]},
            "fallback-refused": {"targets": ["refused", "echo"]},
            "fallback-hang": {"targets": ["hang", "echo"]},
            "fallback-drop": {"targets": ["drop", "echo"]},
            "fallback-nokey": {"targets": ["cloud-nokey", "echo"]},
            "fallback-breaker": {"targets": ["breaker", "echo-2"]},
            "fallback-not-json": {"targets": ["not-json", "echo"]},
            "all-fail": {"targets": ["status-500", "refused"]},
            "too-long-then-echo": {"targets": ["too-long", "echo"]},
            "cloud-then-echo": {"targets": ["cloud", "echo"]},
            "native-then-chat": {"targets": ["native-500", "echo"]},
            "chat-then-native": {"targets": ["status-500", "native"]},
            "redact-cloud": {},
        }
    )
    return {
        "targets": targets,
        "aliases": aliases,
        "sensitivity": {
            "default_level": "public",
            "entities": {"email": "confidential", "us_ssn": "restricted"},
        },
        "defaults": {"cache": {"mode": "never"}},
        "rules": [
            {
                "name": "redact-to-cloud",
                "when": {"model": "redact-cloud"},
                "redact": {"entities": "all", "restore": True},
                "route": {"targets": ["cloud"]},
            },
            {"name": "pinned", "when": {"model": {"ne": "auto"}}, "route": {"alias": True}},
            {"name": "default", "route": {"targets": ["echo"]}},
        ],
    }


@pytest.fixture(scope="session")
def upstream() -> Iterator[Upstream]:
    server = Upstream().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def gateway(
    upstream: Upstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayServer]:
    policies = write_policy(tmp_path_factory.mktemp("policies"), e2e_policy())
    settings = Settings(
        policies=Path(policies),
        decision_log=tmp_path_factory.mktemp("logs") / "decisions.jsonl",
        environ={"UPSTREAM_URL": upstream.url, "CLOUD_KEY": CLOUD_KEY},
        reload_interval_s=0,
        max_body_bytes=MAX_BODY_BYTES,
    )
    server = GatewayServer(settings).start()
    yield server
    server.stop()


@pytest.fixture
def client(gateway: GatewayServer) -> Any:
    import openai

    # strict: every response must match the SDK's models exactly (types, required fields)
    return openai.OpenAI(
        base_url=gateway.url + "/v1",
        api_key="anything",
        max_retries=0,
        _strict_response_validation=True,
    )


os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
