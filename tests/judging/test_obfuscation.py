"""Each obfuscation of issue 19 is seen through, and redaction replaces the original characters."""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest

from gateway.judging.decode import headless_private_keys
from gateway.judging.fold import digit_view, fold
from gateway.judging.redaction import Redaction
from gateway.judging.sensitivity import BUILTIN_ENTITIES, Scanner
from gateway.judging.views import body_entities, find_everywhere
from gateway.judging.walk import walk

SCANNER = Scanner()
KEY = "AKIAZ7QX3MPLW9RT2KVB"
EMAIL = "ada.lovelace@example.com"
CARD = "4111111111111111"
SSN = "078-05-1120"

PKCS8_BODY = (
    "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\n"
    "MzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDuictGeurT8jNbvJZHtCSuYEvu\n"
    "NMoSfm76oqFvAp8Gy0iz5sxjZmSnXyCdPEovGhLa0VzMaQ8s+CLOyS56YyCFGeJZ\n"
)

OBFUSCATED: list[tuple[str, str, str]] = [
    ("zero-width space", "aws_access_key", "AKIA\u200bZ7QX3M\u200cPLW9RT2KVB"),
    ("soft hyphens", "aws_access_key", "AKIA\u00adZ7QX\u00ad3MPLW9RT2KVB"),
    ("word joiner and BOM", "aws_access_key", "AK\u2060IAZ7QX3MPL\ufeffW9RT2KVB"),
    ("bidi marks", "aws_access_key", "AKIA\u202eZ7QX3MPLW9RT2KVB\u202c"),
    ("combining marks", "aws_access_key", "A\u0301KIAZ7QX3MPLW9RT2KVB"),
    ("NUL characters", "aws_access_key", "AKIA\x00Z7QX3MPLW9\x00RT2KVB"),
    ("literal NUL escapes", "aws_access_key", "AKIA\\u0000Z7QX3MPLW9\\x00RT2KVB"),
    ("Cyrillic look-alikes", "aws_access_key", "\u0410\u041aI\u0410Z7QX3MPLW9RT2KVB"),
    ("Greek look-alikes", "aws_access_key", "\u0391\u039a\u0399\u0391Z7QX3MPLW9RT2KVB"),
    ("full-width", "aws_access_key", "".join(chr(ord(c) + 0xFEE0) for c in KEY)),
    ("glued to a word", "aws_access_key", "mykey" + KEY),
    ("base64", "aws_access_key", base64.b64encode(KEY.encode()).decode()),
    (
        "base64 url-safe in prose",
        "email",
        "see " + base64.urlsafe_b64encode(EMAIL.encode()).decode(),
    ),
    ("hex", "aws_access_key", KEY.encode().hex()),
    ("percent-encoding", "email", "ada.lovelace%40example.com"),
    (
        "data:text URI",
        "aws_access_key",
        "data:text/plain;base64," + base64.b64encode(KEY.encode()).decode(),
    ),
    ("card with dots", "payment_card", "4111.1111.1111.1111"),
    ("card with double spaces", "payment_card", "4111  1111  1111  1111"),
    ("card with underscores", "payment_card", "4111_1111_1111_1111"),
    ("full-width SSN", "us_ssn", "".join(chr(ord(c) + 0xFEE0) if c.isdigit() else c for c in SSN)),
    ("email with look-alikes", "email", "ad\u0430.lovel\u0430ce@ex\u0430mple.com"),
    ("tag characters", "aws_access_key", "".join(chr(0xE0000 + ord(c)) for c in KEY)),
    (
        "variation-selector bytes",
        "aws_access_key",
        "\U0001f600" + "".join(chr(0xE0100 + ord(c) - 16) for c in KEY),
    ),
    (
        "Arabic-Indic digits",
        "payment_card",
        " ".join(["\u0664\u0661\u0661\u0661"] + ["\u0661" * 4] * 3),
    ),
    ("Devanagari digits", "us_ssn", "\u0966\u096d\u096e-\u0966\u096b-\u0967\u0967\u0968\u0966"),
    ("PEM body without BEGIN", "private_key", PKCS8_BODY),
    ("PEM body JSON-escaped", "private_key", PKCS8_BODY.replace("\n", "\\n")),
]


@pytest.mark.parametrize(("name", "entity", "text"), OBFUSCATED, ids=[o[0] for o in OBFUSCATED])
def test_obfuscation_is_seen_through(name: str, entity: str, text: str) -> None:
    found = {f.entity for f in find_everywhere(SCANNER, f"here: {text} thanks")}
    assert entity in found


@pytest.mark.parametrize(("name", "entity", "text"), OBFUSCATED, ids=[o[0] for o in OBFUSCATED])
def test_redaction_replaces_the_original_characters(name: str, entity: str, text: str) -> None:
    r = Redaction(SCANNER, frozenset(BUILTIN_ENTITIES))
    body = {"model": "m", "messages": [{"role": "user", "content": f"here: {text} thanks"}]}
    out = r.redact_body(body)
    content = out["messages"][0]["content"]
    assert content.startswith("here: ") and content.endswith(" thanks") and "]" in content
    assert text not in content
    folded = fold(content)
    readable = folded.text if folded is not None else content
    for secret in (KEY, EMAIL, CARD, "1111 1111", "05-1120", "MIIEvQIBADAN"):
        assert not any(secret[i : i + 8] in readable for i in range(len(secret) - 7))
    assert r.restore_text(content) == f"here: {text} thanks"


def test_split_across_messages_is_found_and_each_piece_redacted() -> None:
    body: dict[str, Any] = {
        "messages": [
            {"role": "user", "content": "my key starts AKIAZ7QX3M"},
            {"role": "user", "content": "PLW9RT2KVB and that is all"},
        ]
    }
    assert "aws_access_key" in body_entities(SCANNER, walk(body))
    r = Redaction(SCANNER, frozenset({"aws_access_key"}))
    sent = orjson.dumps(r.redact_body(body)).decode()
    assert "AKIAZ7QX3M" not in sent and "PLW9RT2KVB" not in sent


def test_split_across_parts_is_found() -> None:
    body = {
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "ada.lovelace@"},
                    {"type": "text", "text": "example.com"},
                ],
            }
        ]
    }
    assert "email" in body_entities(SCANNER, walk(body))


def test_a_finding_glued_to_the_next_piece_is_redacted_once() -> None:
    body = {
        "messages": [
            {"role": "tool", "tool_call_id": "c1", "content": f"{EMAIL}: 3 orders"},
        ]
    }
    out = Redaction(SCANNER, frozenset({"email"})).redact_body(body)
    assert out["messages"][0]["tool_call_id"] == "c1"
    assert out["messages"][0]["content"] == "[EMAIL_1]: 3 orders"


@pytest.mark.parametrize(
    "text",
    [
        "pi is 3.14159265358979 and e is 2.718281828",
        "python 3.11.4 on 10.0.2 and build 2024.01.15",
        "the word internationalization and antidisestablishmentarianism",
        "commit 9fceb02d0ae598e95dc970b74767f19372d61af8 fixed it",
        "Mixed café naïve résumé, 東京 and Ελληνικά text",
    ],
)
def test_ordinary_text_finds_nothing_new(text: str) -> None:
    assert find_everywhere(SCANNER, text) == SCANNER.find(text)


def test_views_are_not_built_for_plain_ascii() -> None:
    assert fold("plain prose, nothing odd.") is None
    assert digit_view("in 2024 we had 3 teams") is None


def test_certificates_are_not_private_keys() -> None:
    cert = "MIIDdzCCAl+gAwIBAgIEAgAAuTANBgkqhkiG9w0BAQUFADBaMQswCQYDVQQGEwJJRTESMBAGA1UE"
    assert list(headless_private_keys(cert)) == []


def test_escapes_inside_json_strings_read_as_their_characters() -> None:
    arguments = '{"key": "\\u0041KIAZ7QX3MPLW9RT2KVB"}'
    assert "aws_access_key" in {f.entity for f in find_everywhere(SCANNER, arguments)}


def test_non_ascii_prose_is_left_alone() -> None:
    assert fold("東京と大阪、そして Ελληνικά") is None
    assert fold("东京 AKIA\u200bZ7QX3MPLW9RT2KVB") is not None


def test_the_memo_of_short_strings_never_keeps_a_finding() -> None:
    memo: dict[str, frozenset[str]] = {}
    body = {"messages": [{"role": "user", "content": "a@b.co"}], "metadata": {"a@b.co": "x"}}
    assert "email" in body_entities(SCANNER, walk(body), memo)
    assert "email" in body_entities(SCANNER, walk(body), memo)
    assert "a@b.co" not in memo and "role" in memo
