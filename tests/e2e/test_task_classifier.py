# ruff: noqa: RUF001  (CJK prompts use fullwidth punctuation on purpose)
"""The learned task classifier in the real `gateway serve` process with the shipped policies.

A Chinese math word problem and a Spanish translation request are labelled
right (``/gateway/explain`` answers the task and its confidence), and the
label drives the shipped routing rules of a real completion.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.harness import GatewayProcess

ROOT = Path(__file__).resolve().parents[2]

CHINESE_MATH = "小明有5个苹果，又买了3袋，每袋4个。他现在一共有多少个苹果？"
SPANISH_TRANSLATION = "Traduce al inglés, por favor: Mañana vamos a la playa con mis primos."


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    policies = tmp_path_factory.mktemp("shipped") / "policies"
    shutil.copytree(ROOT / "policies", policies)
    process = GatewayProcess("--demo", "--policies", str(policies))
    process.wait_ready()
    yield process
    process.stop()


def _chat(text: str) -> dict[str, object]:
    return {"model": "auto", "messages": [{"role": "user", "content": text}]}


@pytest.mark.parametrize(
    ("text", "task"), [(CHINESE_MATH, "math"), (SPANISH_TRANSLATION, "translation")]
)
def test_explain_labels_the_task_with_confidence(
    gateway: GatewayProcess, text: str, task: str
) -> None:
    answer = httpx.post(gateway.url + "/gateway/explain", json=_chat(text), timeout=10)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["task"] == task
    assert 0.5 < body["task_confidence"] <= 1.0


def test_the_label_drives_the_shipped_routing(gateway: GatewayProcess) -> None:
    math = httpx.post(gateway.url + "/v1/chat/completions", json=_chat(CHINESE_MATH), timeout=10)
    assert math.status_code == 200, math.text
    assert math.headers["x-gateway-rule"] == "code-and-math"
    translation = httpx.post(
        gateway.url + "/v1/chat/completions", json=_chat(SPANISH_TRANSLATION), timeout=10
    )
    assert translation.status_code == 200, translation.text
    assert translation.headers["x-gateway-rule"] == "open-first-tasks"


def test_a_follow_up_is_judged_with_its_conversation(gateway: GatewayProcess) -> None:
    body = {
        "model": "auto",
        "messages": [
            {"role": "user", "content": SPANISH_TRANSLATION},
            {"role": "assistant", "content": "Tomorrow we are going to the beach with my cousins."},
            {"role": "user", "content": "¿y ahora en francés?"},
        ],
    }
    answer = httpx.post(gateway.url + "/gateway/explain", json=body, timeout=10)
    assert answer.status_code == 200, answer.text
    assert answer.json()["task"] == "translation"


def test_a_client_hint_is_certain(gateway: GatewayProcess) -> None:
    answer = httpx.post(
        gateway.url + "/gateway/explain",
        json=_chat(CHINESE_MATH),
        headers={"x-gateway-task": "chat"},
        timeout=10,
    )
    assert answer.json()["task"] == "chat"
    assert answer.json()["task_confidence"] == 1.0
