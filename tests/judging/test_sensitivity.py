"""Sensitivity detectors: real-looking positives, near-miss negatives, properties."""

from __future__ import annotations

import base64
import itertools
import json
from collections.abc import Iterable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.judging.checksums import iban_valid, luhn_valid, verhoeff_valid
from gateway.judging.sensitivity import (
    BUILTIN_ENTITIES,
    SECRET_ENTITIES,
    Finding,
    Scanner,
)

SCANNER = Scanner()


def found(text: str) -> list[tuple[str, str]]:
    return [(f.entity, text[f.start : f.end]) for f in SCANNER.find(text)]


def assert_found(entity: str, value: str, before: str = "see ", after: str = " thanks") -> None:
    text = f"{before}{value}{after}"
    assert found(text) == [(entity, value)], text


def assert_not(entity: str, text: str) -> None:
    assert entity not in {e for e, _ in found(text)}, (text, found(text))


def _b64(obj: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


# --- personal data ------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "jane.doe@example.com",
        "j.o'neil+tag@mail.example.co.uk",
        "ADMIN_42@Sub-Domain.Example.ORG",
        "x@y.io",
    ],
)
def test_email_positive(value: str) -> None:
    assert_found("email", value)


@pytest.mark.parametrize(
    "text",
    [
        "user@localhost please",
        "ping @channel now",
        "a@b.c is short",
        "foo@ bar.com",
        "@example.com",
    ],
)
def test_email_negative(text: str) -> None:
    assert_not("email", text)


@pytest.mark.parametrize(
    "value",
    [
        "+1 415 555 0100",
        "+1-415-555-0100",
        "+14155550100",
        "(415) 555-0100",
        "415-555-0100",
        "415.555.0100",
        "1-415-555-0100",
        "+44 20 7946 0958",
        "+44 (0)20 7946 0958",
        "+49 30 123456",
        "+33 1 23 45 67 89",
        "020 7946 0958",
        "07700 900123",
        "030 123456",
        "030/123456",
        "01 23 45 67 89",
    ],
)
def test_phone_positive(value: str) -> None:
    assert_found("phone", value, before="call me on ")


@pytest.mark.parametrize(
    "text",
    [
        "order 4155550100 shipped",  # a bare digit string is never a phone
        "on 2023-01-15 at 12:30:45",
        "release 1.2.3 and 10.4.1",
        "dates 01-02-2023 and 01.02.2023 10:30",
        "uuid 123e4567-e89b-12d3-a456-426614174000",
        "uuid 12345678-1234-5678-1234-567812345678",
        "invoice INV-2023-000123",
        "pi is 3.14159265",
        "total 1,234,567.89 USD",
        "area code 123-555-0100 is not valid",  # NANP area codes start 2-9
        "+1 2",  # too short
    ],
)
def test_phone_negative(text: str) -> None:
    assert_not("phone", text)


@pytest.mark.parametrize(
    "value",
    [
        "4111 1111 1111 1111",
        "4111-1111-1111-1111",
        "4111111111111111",
        "5500 0000 0000 0004",
        "2223 0000 4841 0010",
        "3782 822463 10005",
        "6011111111111117",
        "4012888888881881",
    ],
)
def test_payment_card_positive(value: str) -> None:
    assert_found("payment_card", value, before="card: ")


@pytest.mark.parametrize(
    "text",
    [
        "card 4111 1111 1111 1112",  # fails Luhn
        "card 4111111111111112",
        "tracking 1234567890123452",  # Luhn-valid but no network starts with 1
        "short 4111 1111 1111",
        "order 12345-67890-12345",
    ],
)
def test_payment_card_negative(text: str) -> None:
    assert_not("payment_card", text)


def test_a_card_is_not_also_a_phone() -> None:
    assert found("pay with 4111 1111 1111 1111 today") == [("payment_card", "4111 1111 1111 1111")]


@pytest.mark.parametrize("value", ["123-45-6789", "078-05-1120", "219 09 9999"])
def test_us_ssn_positive(value: str) -> None:
    assert_found("us_ssn", value, before="SSN ")


@pytest.mark.parametrize(
    "value",
    ["000-12-3456", "666-12-3456", "900-12-3456", "123-00-4567", "123-45-0000", "123-45 6789"],
)
def test_us_ssn_invalid_ranges(value: str) -> None:
    assert_not("us_ssn", f"SSN {value}")


@pytest.mark.parametrize("value", ["AB123456C", "AB 12 34 56 C", "JG103759A"])
def test_uk_nino_positive(value: str) -> None:
    assert_found("uk_nino", value, before="NI number ")


@pytest.mark.parametrize("value", ["QQ123456C", "BG123456A", "AB123456E", "DA123456A", "AB12345C"])
def test_uk_nino_negative(value: str) -> None:
    assert_not("uk_nino", f"NI number {value}")


@pytest.mark.parametrize(
    ("entity", "value"),
    [
        ("ca_sin", "130 692 544"),
        ("ca_sin", "278-901-236"),
        ("es_dni", "12345678Z"),
        ("es_dni", "87654321X"),
        ("es_dni", "X1234567L"),
        ("es_dni", "Y7654321G"),
        ("in_aadhaar", "2345 6789 0124"),
        ("in_aadhaar", "4987-6543-2102"),
    ],
)
def test_other_national_ids(entity: str, value: str) -> None:
    assert_found(entity, value, before="id ")


@pytest.mark.parametrize(
    ("entity", "value"),
    [
        ("ca_sin", "130 692 545"),  # Luhn fails
        ("ca_sin", "830 692 541"),  # 8xx is never issued
        ("es_dni", "12345678A"),  # wrong letter
        ("es_dni", "X1234567A"),
        ("in_aadhaar", "2345 6789 0125"),  # Verhoeff fails
        ("in_aadhaar", "1345 6789 0124"),  # never starts with 0 or 1
    ],
)
def test_other_national_ids_negative(entity: str, value: str) -> None:
    assert_not(entity, f"id {value} here")


@pytest.mark.parametrize(
    "value",
    [
        "GB82 WEST 1234 5698 7654 32",
        "GB82WEST12345698765432",
        "DE89 3704 0044 0532 0130 00",
        "FR14 2004 1010 0505 0001 3M02 606",
        "NL91ABNA0417164300",
    ],
)
def test_iban_positive(value: str) -> None:
    assert_found("iban", value, before="IBAN: ")


@pytest.mark.parametrize(
    "text",
    [
        "IBAN GB82 WEST 1234 5698 7654 33",  # bad checksum
        "IBAN DE89 3704 0044 0532 0130",  # too short for DE
        "code QX12 3456 7890 1234 56",  # unknown country
    ],
)
def test_iban_negative(text: str) -> None:
    assert_not("iban", text)


def test_iban_stops_at_the_country_length() -> None:
    text = "to DE89 3704 0044 0532 0130 00 AB"
    assert found(text) == [("iban", "DE89 3704 0044 0532 0130 00")]


@pytest.mark.parametrize(
    "value",
    [
        "192.168.1.1",
        "10.0.0.255",
        "8.8.8.8",
        "1.2.3.4",  # a dotted quad is an address, whatever it was meant as
        "2001:db8::8a2e:370:7334",
        "fe80::1ff:fe23:4567:890a",
        "2001:0db8:85a3:0000:0000:8a2e:0370:7334",
        "::ffff:192.0.2.128",
    ],
)
def test_ip_address_positive(value: str) -> None:
    assert_found("ip_address", value, before="host ")


@pytest.mark.parametrize(
    "text",
    [
        "host 256.1.1.1",
        "host 192.168.01.1",
        "release 1.2.3",
        "release 1.2.3.4.5",
        "version 1.2.3.4",  # "version" right before: a version, not an address
        "v1.2.3.4",
        "at 12:30:45",
        "mac 00:1A:2B:3C:4D:5E",
        "std::vector<int> and a::b",
        "Note: the end",
        "dead::beef",
    ],
)
def test_ip_address_negative(text: str) -> None:
    assert_not("ip_address", text)


@pytest.mark.parametrize(
    ("text", "date"),
    [
        ("DOB: 12/03/1985", "12/03/1985"),
        ("D.O.B. 03-12-85", "03-12-85"),
        ("date of birth 1985-03-12", "1985-03-12"),
        ("Date of Birth: March 12, 1985", "March 12, 1985"),
        ("she was born on 12th March 1985", "12th March 1985"),
        ("birthday: 7 Sept 1990", "7 Sept 1990"),
        ("Birth date - 1990/07/04", "1990/07/04"),
    ],
)
def test_date_of_birth_positive(text: str, date: str) -> None:
    assert found(text) == [("date_of_birth", date)]


@pytest.mark.parametrize(
    "text",
    [
        "the meeting on 12/03/1985",
        "born in 1985",
        "stubborn since 12/03/1985",
        "Adobe 12/03/1985 release",
        "born on the fourth of July, and on 12/03/1985 far far far later we met",
    ],
)
def test_date_of_birth_negative(text: str) -> None:
    assert_not("date_of_birth", text)


# --- secrets ------------------------------------------------------------------

JWT = (
    f"{_b64({'alg': 'HS256', 'typ': 'JWT'})}.{_b64({'sub': '1234567890'})}"
    ".dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
)
PEM = (
    "-----BEGIN RSA PRIVATE KEY-----\n"
    "MIIEowIBAAKCAQEA0Z3VS5JJcds3xfn/ygWyF8PbnGy0AHB7Lsd8+c8eX1e2E\n"
    "-----END RSA PRIVATE KEY-----"
)


@pytest.mark.parametrize(
    ("entity", "value"),
    [
        ("aws_access_key", "AKIAZ7QX3MPLW9RT2KVB"),
        ("aws_access_key", "ASIAY34FZKBOKMUTVV7A"),
        ("github_token", "ghp_" + "A1b2C3d4E5" * 3 + "F6g7H8"),
        ("github_token", "ghs_" + "Qw7Er9Ty2Ui4Op6As8Df1Gh3Jk5Lz0Xc2Vb4N"),
        (
            "github_token",
            "github_pat_11AQ7ZKRI0x8Lm3Nw5Pq2Rt_"
            + "Vb4Nc6Mx8Kz0Lq2Wr5Ty7Ui9Op1As3Df5Gh7Jk9Lz1Xc3Vb5Nm7Qw9Er2Ty4Ui6Op",
        ),
        ("gitlab_token", "glpat-Rk7Hq2vLx9TmWb4NcZ8s"),
        ("slack_token", "xoxb-483920175836-2947163058274-Gk2nQ8rTz5WvXp1Lm7Bc4Hd9"),
        ("slack_token", "xoxp-5829104736-k3Jd8QwZ2m"),
        (
            "slack_webhook",
            "https://hooks.slack.com/services/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",
        ),
        ("openai_key", "sk-" + "aB3dE5gH7jK9mN2pQ4sT6vW8yZ1bC3eF5hJ7kL9nP2rS4uV6x"),
        ("openai_key", "sk-proj-" + "Zx9_y8-W" * 10),
        ("anthropic_key", "sk-ant-api03-" + "Ab1_Xy7-Qm3Zr9Kd2Lw5Np8Tv4Hs6Jc0Fg"),
        ("stripe_key", "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc"),
        ("google_api_key", "AIzaSyD8kQ3vN7pR2xW5mZ9tL4cH6jB1fG0eYsU"),
        ("jwt", JWT),
        ("private_key", PEM),
        ("private_key", "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmU"),
        (
            "private_key",
            "-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nlQOYBF\n-----END PGP PRIVATE KEY BLOCK-----",
        ),
    ],
)
def test_secret_positive(entity: str, value: str) -> None:
    assert entity in SECRET_ENTITIES
    assert_found(entity, value, before="here it is\n", after="\nthanks")


@pytest.mark.parametrize(
    ("entity", "text"),
    [
        ("aws_access_key", "AKIA1234 is short"),
        ("aws_access_key", "XAKIAIOSFODNN7EXAMPLE glued to a word"),
        ("github_token", "ghp_short"),
        ("gitlab_token", "glpat-short"),
        ("openai_key", "use sk-learn-is-a-python-library-name here"),
        ("openai_key", "sk-1234"),
        ("google_api_key", "AIzaTooShort"),
        ("jwt", f"{_b64({'typ': 'JWT'})}.{_b64({'sub': 1})}.sig"),  # header without alg
        ("jwt", "eyJnot-base64-json.abc.def"),
        ("private_key", "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqh\n-----END PUBLIC KEY-----"),
        ("private_key", "-----BEGIN CERTIFICATE-----\nMIIBIjANBgkqh"),
    ],
)
def test_secret_negative(entity: str, text: str) -> None:
    assert_not(entity, text)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("password=hunter22", "hunter22"),
        ("DB_PASSWORD=correct-horse-battery", "correct-horse-battery"),
        ("passwd: s3cret!", "s3cret!"),
        ('{"password": "letmein"}', "letmein"),
        ("pwd='abcd1234'", "abcd1234"),
        ("user.password := Tr0ub4dor!3", "Tr0ub4dor!3"),
        ("api_key=abcd1234efgh5678", "abcd1234efgh5678"),
        ("client_secret: 9f8e7d6c5b4a3210", "9f8e7d6c5b4a3210"),
        ("export AUTH_TOKEN=tok_9f8e7d6c5b4a", "tok_9f8e7d6c5b4a"),
        ("postgres://app:p4ssw0rd@db.internal:5432/app", "p4ssw0rd"),
    ],
)
def test_password_assignment_positive(text: str, value: str) -> None:
    assert found(f"config: {text}\n") == [("password", value)]


@pytest.mark.parametrize(
    "text",
    [
        "Password: required",
        "password: string",
        "password=${DB_PASSWORD}",
        "password: {{ vault_pw }}",
        "password = os.environ['PW']",
        "password=<your password>",
        "password: ********",
        "password=[PASSWORD_1]",
        "pwd=/home/user",
        "pwd=abc",
        "api_key=short",
        "secret: everything",
        "max_tokens=1024",
        "token = tokenizer.encode(text)",
        "the password is never logged",
        "https://example.com/path?x=1",
    ],
)
def test_password_assignment_negative(text: str) -> None:
    assert_not("password", text)


# --- scanner behaviour ----------------------------------------------------------


def test_entity_names_are_stable() -> None:
    assert {
        "email", "phone", "payment_card", "us_ssn", "uk_nino", "iban", "ip_address",
        "date_of_birth", "aws_access_key", "github_token", "gitlab_token", "slack_token",
        "openai_key", "anthropic_key", "google_api_key", "private_key", "jwt", "password",
    } <= BUILTIN_ENTITIES  # fmt: skip
    assert SECRET_ENTITIES <= BUILTIN_ENTITIES
    assert "email" not in SECRET_ENTITIES
    assert SCANNER.entities == BUILTIN_ENTITIES


def test_findings_are_sorted_and_non_overlapping() -> None:
    text = (
        "Mail jane@example.com or call +1 415 555 0100; card 4111 1111 1111 1111, "
        "server 10.0.0.1, password=jane@example.com, key AKIAZ7QX3MPLW9RT2KVB."
    )
    findings = SCANNER.find(text)
    assert [f.entity for f in findings] == [
        "email", "phone", "payment_card", "ip_address", "password", "aws_access_key",
    ]  # fmt: skip
    for a, b in itertools.pairwise(findings):
        assert a.end <= b.start


def test_find_restricted_to_entities_is_not_hidden_by_others() -> None:
    text = "password=jane@example.com"
    assert found(text) == [("password", "jane@example.com")]
    only = SCANNER.find(text, frozenset({"email"}))
    assert [(f.entity, text[f.start : f.end]) for f in only] == [("email", "jane@example.com")]


def test_entity_types_is_the_union_over_texts() -> None:
    texts = ["mail jane@example.com", "nothing here", "SSN 123-45-6789"]
    assert SCANNER.entity_types(texts) == {"email", "us_ssn"}
    assert SCANNER.entity_types([]) == frozenset()


def test_custom_regex_entities() -> None:
    scanner = Scanner(custom={"employee_id": r"EMP-\d{6}"})
    assert "employee_id" in scanner.entities
    text = "ticket from EMP-123456 about jane@example.com"
    assert [(f.entity, text[f.start : f.end]) for f in scanner.find(text)] == [
        ("employee_id", "EMP-123456"),
        ("email", "jane@example.com"),
    ]
    assert scanner.entity_types([text]) == {"employee_id", "email"}


def test_custom_regex_that_matches_empty_reports_nothing_empty() -> None:
    scanner = Scanner(custom={"maybe": r"x*"})
    assert [f for f in scanner.find("abc") if f.end <= f.start] == []


def test_bad_custom_regex_names_the_entity() -> None:
    with pytest.raises(ValueError, match="employee_id"):
        Scanner(custom={"employee_id": r"EMP-(\d{6}"})


class KeywordDetector:
    """A plug-in in the shape of a heavier detector (an NER model, Presidio)."""

    entities = frozenset({"person"})

    def find(self, text: str) -> Iterable[Finding]:
        i = text.find("Alice Smith")
        if i >= 0:
            yield Finding("person", i, i + len("Alice Smith"))
        yield Finding("person", 5, 2)  # a broken finding: dropped


def test_plugins_add_entities() -> None:
    scanner = Scanner(plugins=[KeywordDetector()])
    assert "person" in scanner.entities
    text = "from Alice Smith <alice@example.com>"
    assert [(f.entity, text[f.start : f.end]) for f in scanner.find(text)] == [
        ("person", "Alice Smith"),
        ("email", "alice@example.com"),
    ]
    assert scanner.find(text, frozenset({"email"})) == [Finding("email", 18, 35)]


def test_checksum_helpers() -> None:
    assert luhn_valid("79927398713") and not luhn_valid("79927398710")
    assert verhoeff_valid("2363") and not verhoeff_valid("2364")
    assert iban_valid("GB82WEST12345698765432") and not iban_valid("GB82WEST12345698765431")


def test_ordinary_prose_has_no_findings() -> None:
    text = (
        "In 2023 the team of 15 engineers shipped version 2.4 of the product. Revenue grew "
        "12.5% to $3.2M; see section 4.1.2 and page 17. The meeting is at 10:30 on March 3. "
        "Our key insight: tokens are cheap, passwords are not. Use pass-through mode."
    )
    assert found(text) == []


# --- properties -----------------------------------------------------------------

_NETWORK_PREFIXES = ["4", "51", "52", "53", "54", "55", "2221", "2720", "34", "37", "6011", "65"]


def _luhn_digit(body: str) -> str:
    for check in "0123456789":
        if luhn_valid(body + check):
            return check
    raise AssertionError("unreachable: one check digit always fits")


@st.composite
def card_numbers(draw: st.DrawFn) -> str:
    prefix = draw(st.sampled_from(_NETWORK_PREFIXES))
    length = draw(st.sampled_from([15, 16] if prefix in ("34", "37") else [13, 16, 19]))
    body = prefix + "".join(
        draw(
            st.lists(
                st.sampled_from("0123456789"),
                min_size=length - 1 - len(prefix),
                max_size=length - 1 - len(prefix),
            )
        )
    )
    return body + _luhn_digit(body)


def _format(number: str, sep: str) -> str:
    if not sep:
        return number
    return sep.join(number[i : i + 4] for i in range(0, len(number), 4))


@given(card_numbers(), st.sampled_from(["", " ", "-"]))
def test_every_luhn_valid_card_is_found(number: str, sep: str) -> None:
    value = _format(number, sep)
    text = f"card: {value}, exp 12/29"
    assert ("payment_card", value) in found(text)


@given(card_numbers(), st.sampled_from(["", " ", "-"]), st.integers(1, 9))
def test_luhn_invalid_numbers_are_not_cards(number: str, sep: str, delta: int) -> None:
    broken = number[:-1] + str((int(number[-1]) + delta) % 10)
    assert not luhn_valid(broken)
    assert_not("payment_card", f"card: {_format(broken, sep)}, exp 12/29")


@given(
    st.text(alphabet=st.sampled_from("0123456789 -.:/+()@_abcAKIAeyJsk[]=\"'\n\tİ"), max_size=200)
)
def test_find_never_raises_on_dense_text(text: str) -> None:
    findings = SCANNER.find(text)
    for a, b in itertools.pairwise(findings):
        assert a.end <= b.start
    assert all(0 <= f.start < f.end <= len(text) for f in findings)
    assert SCANNER.entity_types([text]) == {f.entity for f in findings}


@given(st.text(max_size=300))
def test_find_never_raises_on_any_text(text: str) -> None:
    SCANNER.find(text)
