# ruff: noqa: RUF001  (CJK samples use fullwidth punctuation on purpose)
"""Token estimates: close to tiktoken on varied text, fast, and never raising on odd bodies."""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path
from typing import Any

import pytest

from gateway.judging.tokens import (
    IMAGE_TOKENS,
    MESSAGE_OVERHEAD,
    REPLY_PRIMING,
    estimate_request_tokens,
    estimate_tokens,
)

SAMPLES: dict[str, str] = {
    "en_prose": "The committee met on Tuesday to review the quarterly results. Revenue grew faster than expected, mostly because of the new subscription tier, but operating costs rose as well. Several members asked whether the marketing budget should be cut before the end of the year; others argued that doing so would slow growth just when the product is gaining traction. In the end they agreed to revisit the question in March.",
    "en_chat": "hey, can you help me figure out why my sourdough keeps coming out flat? I feed the starter every day and it doubles, but the loaf spreads out in the oven like a pancake. I'm using 75% hydration and baking at 250C.",
    "en_technical": "To configure the load balancer, set the health-check interval to 10s and the unhealthy threshold to 3. Requests that time out after 30 seconds are retried once on another backend; idempotent methods (GET, PUT, DELETE) only. TLS is terminated at the edge, and traffic to the pods uses mTLS via the mesh sidecar.",
    "py_code": 'def merge_intervals(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]:\n    """Merge overlapping closed intervals."""\n    if not intervals:\n        return []\n    intervals = sorted(intervals)\n    merged = [intervals[0]]\n    for start, end in intervals[1:]:\n        last_start, last_end = merged[-1]\n        if start <= last_end:\n            merged[-1] = (last_start, max(last_end, end))\n        else:\n            merged.append((start, end))\n    return merged\n',
    "js_code": "export async function fetchUsers(page = 1) {\n  const res = await fetch(`/api/users?page=${page}&limit=50`, {\n    headers: { 'Accept': 'application/json' },\n  });\n  if (!res.ok) {\n    throw new Error(`HTTP ${res.status}: ${res.statusText}`);\n  }\n  const { data, total } = await res.json();\n  return { users: data.map(u => ({ id: u.id, name: u.full_name })), total };\n}\n",
    "sql": "SELECT c.customer_id, c.name, SUM(o.amount) AS total_spent\nFROM customers c\nJOIN orders o ON o.customer_id = c.customer_id\nWHERE o.created_at >= '2024-01-01' AND o.status <> 'cancelled'\nGROUP BY c.customer_id, c.name\nHAVING SUM(o.amount) > 1000\nORDER BY total_spent DESC\nLIMIT 20;",
    "json": '{"id": 48213, "name": "Ada Lovelace", "email": "ada@example.org", "roles": ["admin", "editor"], "settings": {"theme": "dark", "notifications": true, "timezone": "Europe/London"}, "created": "2023-11-04T09:12:45Z"}',
    "numbers": "Q1: 1,284,392.17; Q2: 1,401,220.05; Q3: 998,114.80; Q4: 1,652,007.33. Growth 12.4%, 9.1%, -28.8%, 65.5%. IDs 40213 40214 40219 40377 41002.",
    "zh": "人工智能正在改变我们的工作方式。许多公司开始使用大型语言模型来处理客户服务、撰写文档和分析数据。然而，如何保护用户隐私、避免模型产生错误信息，仍然是需要认真对待的问题。专家建议企业在部署之前进行充分的测试。",
    "ja": "昨日は友達と一緒に京都へ行きました。朝早く出発して、清水寺と金閣寺を見学しました。天気がとても良くて、紅葉がきれいでした。お昼には湯豆腐を食べて、夕方に新幹線で東京に帰りました。また行きたいです。",
    "ko": "이번 주말에는 가족과 함께 부산에 갈 예정입니다. 해운대 해수욕장에서 산책을 하고, 자갈치 시장에서 신선한 회를 먹을 계획이에요. 날씨가 좋았으면 좋겠습니다.",
    "es": "El informe trimestral muestra que las ventas aumentaron un ocho por ciento, aunque los costos de logística también subieron. La dirección propone renegociar los contratos con los proveedores antes de que termine el año y revisar la política de precios en los mercados más competitivos.",
    "fr": "Nous avons bien reçu votre demande de remboursement. Après vérification, il apparaît que la commande a été livrée le 12 mars à l'adresse indiquée. Pourriez-vous nous envoyer une photo du colis endommagé afin que nous puissions traiter votre réclamation dans les meilleurs délais ?",
    "de": "Die Sitzung wurde um zehn Uhr eröffnet. Zunächst stellte die Geschäftsführung die Ergebnisse des vergangenen Geschäftsjahres vor; anschließend diskutierten die Anwesenden über die geplante Umstrukturierung der Vertriebsabteilung und die Einführung eines neuen Abrechnungssystems.",
    "ru": "Вчера мы обсуждали план развития проекта на следующий год. Команда предложила перейти на новую архитектуру и улучшить систему мониторинга, чтобы быстрее находить ошибки в работе сервиса.",
    "pt": "A reunião foi adiada para a próxima semana porque vários participantes estavam viajando. Enquanto isso, peço que todos revisem o documento compartilhado e enviem seus comentários até sexta-feira.",
    "mixed": "Error: ECONNREFUSED 127.0.0.1:6379 — 连接 Redis 失败。Please check that `redis-server` is running (systemctl status redis) 🙏",
    "traceback": "Traceback (most recent call last):\n  File \"/app/main.py\", line 42, in <module>\n    main()\n  File \"/app/main.py\", line 37, in main\n    result = compute(data['items'])\nKeyError: 'items'\n",
    # not used to fit the weights
    "en_email": "Hi Maria,\n\nThanks for sending the draft contract over. I've read through it and have two concerns: the termination clause gives the vendor 90 days' notice but us only 30, and the liability cap seems low for a project of this size. Could we discuss on Thursday afternoon?\n\nBest,\nTom",
    "go_code": 'func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {\n\tctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)\n\tdefer cancel()\n\tif err := s.db.PingContext(ctx); err != nil {\n\t\thttp.Error(w, "database unavailable", http.StatusServiceUnavailable)\n\t\treturn\n\t}\n\tw.WriteHeader(http.StatusOK)\n\t_, _ = w.Write([]byte("ok"))\n}\n',
    "zh_tech": "请帮我检查这段代码为什么在高并发情况下会出现死锁。我们使用了两个互斥锁，分别保护用户表和订单表，但在某些请求中加锁的顺序不一致。",
    "ja_business": "お世話になっております。先日ご依頼いただいた見積書を添付いたしましたので、ご確認のほどよろしくお願いいたします。納期については、来月末までに対応可能です。",
    "markdown": "## Release notes\n\n- **Faster startup**: the index is now loaded lazily.\n- *Fixed*: a crash when the config file was empty (#412).\n- Dropped support for Python 3.8.\n\n| version | date |\n|---|---|\n| 2.4.0 | 2024-05-02 |\n",
}

ENCODINGS = ("cl100k_base", "o200k_base")


def _tiktoken_dir() -> Path | None:
    """litellm ships tiktoken's cl100k_base (and o200k_base) cache files."""
    spec = find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "litellm_core_utils" / "tokenizers"
        if candidate.is_dir():
            return candidate
    return None


@pytest.fixture(scope="module")
def encoding() -> Any:
    cache = _tiktoken_dir()
    if cache is None or find_spec("tiktoken") is None:
        pytest.skip(
            "no tiktoken encoding can be loaded offline (litellm's tokenizer files are absent)"
        )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TIKTOKEN_CACHE_DIR", str(cache))
        import tiktoken

        try:
            return tiktoken.get_encoding("cl100k_base")
        except ValueError as error:  # tiktoken's error when it must not download
            pytest.skip(f"cl100k_base cannot be loaded offline: {error}")


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_within_25_percent_of_cl100k(encoding: Any, name: str) -> None:
    text = SAMPLES[name]
    real = len(encoding.encode(text))
    estimate = estimate_tokens(text)
    assert abs(estimate - real) <= 0.25 * real, f"{name}: estimate {estimate}, cl100k {real}"


def test_long_mixed_text_within_25_percent(encoding: Any) -> None:
    text = "\n\n".join(SAMPLES.values()) * 3
    real = len(encoding.encode(text))
    assert abs(estimate_tokens(text) - real) <= 0.25 * real


def test_empty_and_tiny() -> None:
    assert estimate_tokens("") == 0
    assert estimate_tokens("a") == 1
    assert estimate_tokens(" ") == 1


def test_monotone_in_length() -> None:
    text = SAMPLES["en_prose"]
    assert estimate_tokens(text * 2) > estimate_tokens(text)
    assert estimate_tokens(text * 200) == pytest.approx(200 * estimate_tokens(text), rel=0.02)


def test_cjk_costs_more_per_character_than_english() -> None:
    assert estimate_tokens("数据" * 100) > estimate_tokens("data" * 50)


def test_lone_surrogates_do_not_raise() -> None:
    assert estimate_tokens("abc\ud800def") >= 1


# --- whole requests ---------------------------------------------------------


def test_chat_counts_overhead_per_message() -> None:
    body = {
        "model": "m",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Hello there"},
        ],
    }
    expected = (
        REPLY_PRIMING
        + 2 * MESSAGE_OVERHEAD
        + estimate_tokens("You are terse.")
        + estimate_tokens("Hello there")
    )
    assert estimate_request_tokens(body) == expected


def test_chat_text_parts_and_images() -> None:
    body = {
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is in this picture?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA" * 500}},
                    {"type": "image_url", "image_url": {"url": "https://example.com/x.png"}},
                ],
            }
        ]
    }
    expected = (
        REPLY_PRIMING
        + MESSAGE_OVERHEAD
        + estimate_tokens("What is in this picture?")
        + 2 * IMAGE_TOKENS
    )
    assert estimate_request_tokens(body) == expected


def test_tools_and_tool_calls_count() -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Current weather for a city",
                "parameters": {
                    "type": "object",
                    "properties": {"city": {"type": "string"}},
                    "required": ["city"],
                },
            },
        }
    ]
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": '{"temp_c": 18}'},
    ]
    without_tools = estimate_request_tokens({"messages": messages})
    with_tools = estimate_request_tokens({"messages": messages, "tools": tools})
    assert with_tools - without_tools >= 20
    no_call = [messages[0], {"role": "assistant", "content": None}, messages[2]]
    assert without_tools > estimate_request_tokens({"messages": no_call})


def test_completions_prompt_shapes() -> None:
    assert estimate_request_tokens({"prompt": "Once upon a time"}) == estimate_tokens(
        "Once upon a time"
    )
    assert estimate_request_tokens({"prompt": ["ab", "cd"]}) == 2
    assert estimate_request_tokens({"prompt": [1, 2, 3, 4]}) == 4
    assert estimate_request_tokens({"prompt": [[1, 2], [3]]}) == 3


def test_embeddings_input_shapes() -> None:
    assert estimate_request_tokens({"input": "hello world"}) == estimate_tokens("hello world")
    assert estimate_request_tokens({"input": ["a b c", "d e f"]}) == 2 * estimate_tokens("a b c")
    assert estimate_request_tokens({"input": [[5, 6, 7]]}) == 3


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({}, 0),
        # a string is not a list of messages, a mapping not a prompt: nothing to count
        ({"messages": "not a list"}, 0),
        ({"prompt": {"weird": True}}, 0),
        ({"input": None}, 0),
        # every entry of a list is a message (its overhead), whatever it holds;
        # a non-text content counts as its JSON, parts without text count nothing
        (
            {"messages": [None, 3, {"content": 42}, {"content": [None, 7, {"type": "text"}]}]},
            REPLY_PRIMING + 4 * MESSAGE_OVERHEAD + estimate_tokens("42"),
        ),
        # malformed tool calls are skipped, the rest of the message counts
        (
            {"messages": [{"role": "user", "content": "x", "tool_calls": "bad"}]},
            REPLY_PRIMING + MESSAGE_OVERHEAD + estimate_tokens("x"),
        ),
        # what JSON cannot encode (an int beyond 64 bits) counts as its repr
        (
            {"tools": [{"function": {"name": 10**40}}]},
            estimate_tokens(str([{"function": {"name": 10**40}}])),
        ),
    ],
)
def test_malformed_bodies_count_what_can_be_read(body: dict[str, Any], expected: int) -> None:
    assert estimate_request_tokens(body) == expected


def test_fields_with_text_beyond_the_known_ones_count_too() -> None:
    base = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": 0}
    extra = {**base, "metadata": {"note": "a long note " * 20}, "x_vendor": ["more text here"]}
    assert estimate_request_tokens(extra) >= estimate_request_tokens(base) + 40
