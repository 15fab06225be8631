"""Redaction of requests and restoration of answers, streamed or not."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from gateway.judging.redaction import Redaction, placeholder_tag
from gateway.judging.sensitivity import Scanner
from gateway.judging.walk import walk

SCANNER = Scanner()
PII = frozenset({"email", "phone"})


def chat(*contents: str) -> dict[str, Any]:
    return {
        "model": "gpt-4o",
        "stream": True,
        "messages": [{"role": "user", "content": c} for c in contents],
    }


def test_redacts_listed_entities_with_numbered_placeholders() -> None:
    body = chat("Write to jane@example.com or bob@example.org, call +1 415 555 0100.")
    r = Redaction(SCANNER, PII)
    out = r.redact_body(body)
    assert out["messages"][0]["content"] == "Write to [EMAIL_1] or [EMAIL_2], call [PHONE_1]."
    assert dict(r.mapping) == {
        "[EMAIL_1]": "jane@example.com",
        "[EMAIL_2]": "bob@example.org",
        "[PHONE_1]": "+1 415 555 0100",
    }
    assert dict(r.counts) == {"email": 2, "phone": 1}
    assert out["model"] == "gpt-4o" and out["stream"] is True


def test_same_value_same_placeholder_across_the_request() -> None:
    body: dict[str, Any] = {
        "messages": [
            {"role": "system", "content": "Customer: jane@example.com"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "c1",
                        "type": "function",
                        "function": {"name": "crm", "arguments": '{"email": "jane@example.com"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "jane@example.com: 3 orders"},
            {"role": "user", "content": [{"type": "text", "text": "mail jane@example.com"}]},
        ]
    }
    r = Redaction(SCANNER, PII)
    out = r.redact_body(body)
    assert [t for t in walk(out).strings if t.startswith(("Cust", "{", "[", "mail"))] == [
        "Customer: [EMAIL_1]",
        '{"email": "[EMAIL_1]"}',
        "[EMAIL_1]: 3 orders",
        "mail [EMAIL_1]",
    ]
    assert dict(r.counts) == {"email": 1}


def test_input_body_is_not_mutated() -> None:
    body = chat("jane@example.com")
    before = copy.deepcopy(body)
    Redaction(SCANNER, PII).redact_body(body)
    assert body == before


def test_unlisted_entities_stay() -> None:
    body = chat("jane@example.com, SSN 123-45-6789")
    r = Redaction(SCANNER, frozenset({"us_ssn"}))
    assert r.redact_body(body)["messages"][0]["content"] == "jane@example.com, SSN [US_SSN_1]"


def test_listed_entity_is_redacted_even_inside_a_longer_unlisted_one() -> None:
    body = chat("password=jane@example.com")
    out = Redaction(SCANNER, frozenset({"email"})).redact_body(body)
    assert out["messages"][0]["content"] == "password=[EMAIL_1]"


def test_secrets_and_custom_entities_get_placeholders() -> None:
    scanner = Scanner(custom={"employee-id": r"EMP-\d{6}"})
    body = chat("EMP-123456 uses AKIAZ7QX3MPLW9RT2KVB and password=hunter22")
    r = Redaction(scanner, frozenset({"employee-id", "aws_access_key", "password"}))
    assert r.redact_body(body)["messages"][0]["content"] == (
        "[EMPLOYEE_ID_1] uses [AWS_ACCESS_KEY_1] and password=[PASSWORD_1]"
    )
    assert placeholder_tag("employee-id") == "EMPLOYEE_ID"


def test_numbering_skips_placeholders_the_client_already_wrote() -> None:
    body = chat("Template: Dear [EMAIL_1],", "send to jane@example.com")
    r = Redaction(SCANNER, PII)
    out = r.redact_body(body)
    assert out["messages"][1]["content"] == "send to [EMAIL_2]"
    assert r.restore_text("Dear [EMAIL_1], I wrote to [EMAIL_2]") == (
        "Dear [EMAIL_1], I wrote to jane@example.com"
    )


def test_redaction_is_stable_under_a_second_pass() -> None:
    r = Redaction(SCANNER, SCANNER.entities)
    out = r.redact_body(chat("password=hunter22 jane@example.com 4111 1111 1111 1111"))
    again = Redaction(SCANNER, SCANNER.entities).redact_body(out)
    assert again == out


def test_restore_text_and_invented_placeholders() -> None:
    r = Redaction(SCANNER, PII)
    r.redact_body(chat("jane@example.com"))
    assert r.restore_text("Hi [EMAIL_1]! Not [EMAIL_9] nor [PHONE_1].") == (
        "Hi jane@example.com! Not [EMAIL_9] nor [PHONE_1]."
    )
    assert r.restore_text("no brackets") == "no brackets"


def test_no_entities_means_no_change() -> None:
    body = chat("jane@example.com")
    r = Redaction(SCANNER, frozenset())
    assert r.redact_body(body) == body
    assert r.mapping == {} and r.counts == {}
    assert r.restore_text("[EMAIL_1]") == "[EMAIL_1]"


def test_stream_restorer_joins_a_split_placeholder() -> None:
    r = Redaction(SCANNER, PII)
    r.redact_body(chat("jane@example.com and +44 20 7946 0958"))
    s = r.stream_restorer()
    out = [
        s.feed("Write to [EMA"),
        s.feed("IL_1"),
        s.feed("] now, or ["),
        s.feed("PHONE_1]"),
        s.flush(),
    ]
    assert out == ["Write to ", "", "jane@example.com now, or ", "+44 20 7946 0958", ""]


def test_stream_restorer_releases_brackets_that_cannot_be_placeholders() -> None:
    r = Redaction(SCANNER, PII)
    r.redact_body(chat("jane@example.com"))
    s = r.stream_restorer()
    assert s.feed("list[int] and [") == "list[int] and "
    assert s.feed("x]") == "[x]"
    assert s.feed(" [EMAIL_") == " "
    assert s.flush() == "[EMAIL_"


def test_stream_restorers_are_independent_per_choice() -> None:
    r = Redaction(SCANNER, PII)
    r.redact_body(chat("jane@example.com"))
    a, b = r.stream_restorer(), r.stream_restorer()
    assert a.feed("[EMAIL") == ""
    assert b.feed("plain") == "plain"
    assert a.feed("_1]") == "jane@example.com"


# --- properties -----------------------------------------------------------------

_local = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=10)
_domain = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=10)
_emails = st.builds(
    lambda a, b, tld: f"{a}@{b}.{tld}", _local, _domain, st.sampled_from(["com", "org", "io"])
)
_phones = st.builds(
    lambda area, ex, line: f"+1 {area} {ex} {line:04d}",
    st.integers(200, 999),
    st.integers(200, 999),
    st.integers(0, 9999),
)
_filler = st.text(alphabet="abcdefghij klmnop,.!?[]_XYZ", max_size=12)


@st.composite
def texts_with_pii(draw: st.DrawFn) -> str:
    pieces = draw(st.lists(st.one_of(_emails, _phones), min_size=1, max_size=5))
    out = []
    for piece in pieces:
        out.append(draw(_filler))
        out.append(f" {piece} ")
    out.append(draw(_filler))
    return "".join(out)


@given(texts_with_pii())
def test_redact_then_restore_is_identity(text: str) -> None:
    r = Redaction(SCANNER, PII)
    redacted = r.redact_body(chat(text))["messages"][0]["content"]
    assert "@" not in redacted
    assert r.restore_text(redacted) == text


@st.composite
def split_answers(draw: st.DrawFn) -> tuple[Redaction, str, list[str]]:
    r = Redaction(SCANNER, PII)
    r.redact_body(chat(draw(texts_with_pii())))
    tokens = [*r.mapping, "[EMAIL_", "[", "]", "[EMAIL_99]", "_1]", "PHONE"]
    answer = "".join(draw(st.lists(st.one_of(st.sampled_from(tokens), _filler), max_size=12)))
    cuts = sorted(draw(st.lists(st.integers(0, len(answer)), max_size=8)))
    chunks = [answer[i:j] for i, j in zip([0, *cuts], [*cuts, len(answer)], strict=True)]
    return r, answer, chunks


@given(split_answers())
def test_stream_restore_equals_whole_restore_for_any_split(
    case: tuple[Redaction, str, list[str]],
) -> None:
    r, answer, chunks = case
    s = r.stream_restorer()
    streamed = "".join(s.feed(c) for c in chunks) + s.flush()
    assert streamed == r.restore_text(answer)
