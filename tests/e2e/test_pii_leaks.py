"""Issue 12 end to end: IBANs and national ids in code blocks never reach OpenAI un-redacted.

``gateway serve`` runs as a user runs it (a subprocess, the shipped ``policies/``,
the environment naming a local open model and a local OpenAI-compatible server
as OpenAI). A compact all-digit IBAN inside a JSON code block once passed as
text; it is now found, so a code task goes to OpenAI with a placeholder instead,
and national ids (restricted) stay on the open model.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.harness import ROOT, GatewayProcess
from tests.upstream_server import Upstream

OPENAI_KEY = "sk-test-openai-0123456789abcdef"
IBAN = "DE89370400440532013000"
#: confidential values: OpenAI may get the request, redacted
CONFIDENTIAL = {
    "json": f'Fix this config:\n```json\n{{"payee": "ACME", "iban": "{IBAN}"}}\n```',
    "yaml": f"Why does this fail?\n```yaml\npayout:\n  iban: {IBAN}\n```",
    "csv": f"Parse this CSV in Python:\n```\nname,iban\nACME,{IBAN}\n```",
    "lower": f"```python\nIBAN = '{IBAN.lower()}'\n```",
    "spaced": "```js\nconst iban = 'GB82 WEST 1234 5698 7654 32';\n```",
}
#: restricted values: never to OpenAI, redacted or not
RESTRICTED = {
    "steuer": '```json\n{"steuer_id": "65929970489"}\n```',
    "pesel": "```sql\nINSERT INTO people VALUES ('44051401359');\n```",
    "cpf": "```python\ncpf = '529.982.247-25'\n```",
    "nir": "```\nNIR: 2 55 08 14 168 025 38\n```",
    "cn": '```json\n{"id": "11010519491231002X"}\n```',
}
VALUES = {
    "json": IBAN, "yaml": IBAN, "csv": IBAN, "lower": IBAN.lower(),
    "spaced": "GB82 WEST 1234 5698 7654 32", "steuer": "65929970489",
    "pesel": "44051401359", "cpf": "529.982.247-25", "nir": "2 55 08 14 168 025 38",
    "cn": "11010519491231002X",
}  # fmt: skip


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[Upstream, Upstream, GatewayProcess]]:
    open_model, openai = Upstream().start(), Upstream().start()
    process = GatewayProcess(
        "--policies",
        str(ROOT / "policies"),
        env={
            "OPEN_MODEL_BASE_URL": open_model.url,
            "OPENAI_BASE_URL": openai.url,
            "OPENAI_API_KEY": OPENAI_KEY,
        },
    )
    try:
        process.wait_ready()
        yield open_model, openai, process
    finally:
        process.stop()
        open_model.stop()
        openai.stop()


def _digits(s: str) -> str:
    return "".join(ch for ch in s if ch.isalnum()).upper()


def _leaked(value: str, raw: bytes) -> bool:
    text = raw.decode("utf-8", "replace")
    squeezed = _digits(text)
    compact = _digits(value)
    return value in text or any(compact[i : i + 8] in squeezed for i in range(len(compact) - 7))


@pytest.mark.parametrize("name", [*CONFIDENTIAL, *RESTRICTED])
def test_never_reaches_openai_unredacted(
    served: tuple[Upstream, Upstream, GatewayProcess], name: str
) -> None:
    open_model, openai, process = served
    content = {**CONFIDENTIAL, **RESTRICTED}[name]
    before_open, before_openai = len(open_model.requests), len(openai.requests)
    answer = httpx.post(
        process.url + "/v1/chat/completions",
        json={"model": "gpt-4o", "messages": [{"role": "user", "content": content}]},
        headers={"x-gateway-task": "code"},
        timeout=20,
    )
    assert answer.status_code == 200, answer.text
    sent_to_openai = openai.requests[before_openai:]
    for record in sent_to_openai:
        assert not _leaked(VALUES[name], record["raw"]), (name, record["body"])
    if name in RESTRICTED:
        assert sent_to_openai == [] and len(open_model.requests) == before_open + 1
    else:  # redacted to OpenAI, or kept local: either way judged as confidential
        assert len(sent_to_openai) + len(open_model.requests) - before_open == 1
        explained = httpx.post(
            process.url + "/gateway/explain",
            json={"model": "gpt-4o", "messages": [{"role": "user", "content": content}]},
            timeout=20,
        ).json()
        assert "iban" in explained["sensitivity"]["entities"]


def test_the_control_goes_to_openai(served: tuple[Upstream, Upstream, GatewayProcess]) -> None:
    _, openai, process = served
    before = len(openai.requests)
    answer = httpx.post(
        process.url + "/v1/chat/completions",
        json={
            "model": "gpt-4o",
            "messages": [{"role": "user", "content": '```json\n{"order": "A-1234"}\n```'}],
        },
        headers={"x-gateway-task": "code"},
        timeout=20,
    )
    assert answer.status_code == 200
    assert answer.headers["x-gateway-target"] == "openai-gpt-4o"
    assert len(openai.requests) == before + 1
