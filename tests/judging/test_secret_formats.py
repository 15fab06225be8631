"""Every secret format: found in text, bounded, redacted; placeholders are not secrets.

Tokens are synthetic, built in the test code (:mod:`tests.judging.secret_samples`):
drawn from each rule's pattern with a seeded generator, with CRC32 checksums
computed as GitHub and npm compute them. None is a real secret.
"""

from __future__ import annotations

import random
import zlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.judging.redaction import Redaction
from gateway.judging.secret_checks import base62, crc32_base62_tail, pypi_macaroon
from gateway.judging.secret_docs import render
from gateway.judging.secrets import SECRET_RULES
from gateway.judging.sensitivity import SECRET_ENTITIES, Scanner
from tests.judging.secret_samples import ALNUM, github_token, sample

SCANNER = Scanner()
DOCS = Path(__file__).resolve().parents[2] / "docs" / "secrets.md"
SAMPLES = [(rule, sample(rule)) for rule in SECRET_RULES]
IDS = [f"{i}-{rule.entity}" for i, rule in enumerate(SECRET_RULES)]


def found(text: str) -> list[tuple[str, str]]:
    return [(f.entity, text[f.start : f.end]) for f in SCANNER.find(text)]


def test_at_least_a_hundred_formats_with_their_sources() -> None:
    assert len(SECRET_RULES) >= 100
    for rule in SECRET_RULES:
        assert rule.source.startswith("https://"), rule.name
        assert rule.entity in SECRET_ENTITIES
        assert rule.name and rule.check


def test_the_documentation_table_is_current() -> None:
    text = DOCS.read_text(encoding="utf-8")
    assert render(text) == text, "run: python -m gateway.judging.secret_docs docs/secrets.md"


@pytest.mark.parametrize(("rule", "token"), SAMPLES, ids=IDS)
def test_each_format_is_found_in_prose_and_redacted(rule: object, token: str) -> None:
    entity = rule.entity  # type: ignore[attr-defined]
    for before, after in (("My key is ", ", keep it safe."), ("", ""), ('{"v": "', '"}\n')):
        text = f"{before}{token}{after}"
        assert found(text) == [(entity, token)], text
    redaction = Redaction(SCANNER, frozenset({entity}))
    redacted = redaction.redact_text(f"use {token} now")
    assert token not in redacted and "[" in redacted
    assert redaction.restore_text(redacted) == f"use {token} now"


@pytest.mark.parametrize(("rule", "token"), SAMPLES, ids=IDS)
def test_a_format_glued_inside_a_word_is_not_that_secret(rule: object, token: str) -> None:
    if not rule.bounded:  # type: ignore[attr-defined]
        return
    text = f"zz{token}"
    assert (rule.entity, token) not in found(text)  # type: ignore[attr-defined]


def _npm(rng: random.Random) -> str:
    body = "".join(rng.choice(ALNUM) for _ in range(30))
    return "npm_" + body + base62(zlib.crc32(body.encode()), 6)


def test_github_and_npm_checksums_prove_a_token_whatever_its_body_reads() -> None:
    rng = random.Random(7)
    for prefix in ("ghp_", "gho_", "ghu_", "ghs_", "ghr_"):
        token = github_token(prefix, rng)
        assert crc32_base62_tail(token)
        assert found(f"token {token}") == [("github_token", token)]
    # a body that reads like a placeholder ("here", "fake") is still found when its CRC holds
    body = "fakeHere" + "".join(rng.choice(ALNUM) for _ in range(22))
    token = "ghp_" + body + base62(zlib.crc32(body.encode()), 6)
    assert found(token) == [("github_token", token)]
    broken = token[:-1] + ("A" if token[-1] != "A" else "B")
    assert not crc32_base62_tail(broken)
    assert found(broken) == []  # no proof: the placeholder judgement applies, and rejects it
    npm = _npm(rng)
    assert crc32_base62_tail(npm) and found(f"//registry:_authToken={npm}")[-1] == (
        "npm_token",
        npm,
    )


def test_pypi_token_macaroon_location() -> None:
    import base64

    macaroon = base64.urlsafe_b64encode(b"\x02\x01\x08pypi.org\x02\x06token-" + bytes(range(40)))
    token = "pypi-" + macaroon.decode().rstrip("=")
    assert pypi_macaroon(token)
    assert found(f"password = {token}")[-1] == ("pypi_token", token)


@pytest.mark.parametrize(
    "text",
    [
        "aws_access_key_id = AKIAIOSFODNN7EXAMPLE",
        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "GITHUB_TOKEN=ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "token: ghp_XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
        "export OPENAI_API_KEY=sk-proj-your_api_key_here_xxxxxxxxxxxxxxxx",
        "SLACK_TOKEN=xoxb-your-token-here-0000000000",
        "hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX",
        "stripe: sk_live_****************************",
        "api_key = <your-token>",
        "api_key: ${API_KEY}",
        "token = {{ vault_token }}",
        "Authorization: Bearer $TOKEN",
        "secret_key = your_api_key_here",
        "glpat-xxxxxxxxxxxxxxxxxxxx",
        "AIzaSyXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
        "sk-ant-api03-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "hf_abcdefghijklmnopqrstuvwxyzabcdefgh",
        "npm_123456789012345678901234567890123456",
        "password = ********",
        "mongodb://user:pass@localhost:27017/db",
        "postgres://user:password@localhost/app",
        "redis://:${REDIS_PASSWORD}@cache:6379",
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwi"
        "aWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
        "stripe.api_key = 'sk_test_4eC39HqLyjWDarjtT1zdp7dc'",
        "password: <password>",
        "DB_PASSWORD=${DB_PASSWORD}",
        "-----BEGIN RSA PRIVATE KEY-----\n...\n-----END RSA PRIVATE KEY-----",
        "-----BEGIN PRIVATE KEY-----\n<your key here>\n-----END PRIVATE KEY-----",
    ],
)
def test_documentation_placeholders_are_not_secrets(text: str) -> None:
    assert {e for e, _ in found(text)}.isdisjoint(SECRET_ENTITIES), found(text)


def test_changeme_is_a_weak_password_not_a_placeholder() -> None:
    # decided and documented in docs/secrets.md: a default password that works somewhere
    assert found("password=changeme") == [("password", "changeme")]
    assert found("admin password: 123456") == [("password", "123456")]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("Office wifi: SSID Guest5G, password M@pl3%81Z.", "M@pl3%81Z"),
        ("Mein Router-Passwort ist Sonnenblume77!", "Sonnenblume77!"),
        ("Das Kennwort lautet Haus#2024", "Haus#2024"),
        ("mot de passe : Azerty123!", "Azerty123!"),
        ("la contraseña es Gato2024#", "Gato2024#"),
        ("La password è Roma2024!", "Roma2024!"),
        ("a senha do wifi é Brasil@2024", "Brasil@2024"),
        ("het wachtwoord is Tulp2024!", "Tulp2024!"),
        ("пароль: Qwerty123", "Qwerty123"),
        ("hasło: Krakow#2023", "Krakow#2023"),
        ("şifre: Istanbul34!", "Istanbul34!"),
        ("密码是Abc12345\uff0c请保密", "Abc12345"),
        ("パスワードは Tokyo2024! です", "Tokyo2024!"),
        ("비밀번호는 qwer1234! 입니다", "qwer1234!"),
        ("lösenordet: Ikea2024#", "Ikea2024#"),
        ("the passphrase is 'correct horse'", "correct horse"),
        ("my password is password123", "password123"),
        ("Card PIN: 4821", "4821"),
    ],
)
def test_passwords_in_prose_in_many_languages(text: str, value: str) -> None:
    assert found(text) == [("password", value)]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("admin / Lantern1995$", "Lantern1995$"),
        ("root:Winter2024!", "Winter2024!"),
        ("Creds for the NAS: jsmith / Winter2024!", "Winter2024!"),
        ("mysql -u root -pJunip3r?98J mydb", "Junip3r?98J"),
        ("it fails:\nmysql -u root -pJunip3r?98J prod\n", "Junip3r?98J"),
        ("sshpass -p 'S3cr3t!' ssh deploy@host", "S3cr3t!"),
        ("curl -u admin:Pa55w0rd! https://api.internal/x", "Pa55w0rd!"),
        ("curl -X POST https://x \\\n  -u developer:yqDVtkqPECriaLRi", "yqDVtkqPECriaLRi"),
        ("redis-cli -h cache -a R3dis!pass ping", "R3dis!pass"),
        ("docker login -u me -p dckrSecret9 registry.io", "dckrSecret9"),
        ("htpasswd -bc .htpasswd admin Zebra99x", "Zebra99x"),
        ("ldapsearch -x -D cn=admin -w Ld4p!pw -b dc=x", "Ld4p!pw"),
        ("smbclient //srv/share -U alice%Sh4re!d", "Sh4re!d"),
        ("sqlcmd -S db -U sa -P Sql!2024x", "Sql!2024x"),
        ("openssl pkcs12 -in a.p12 -passin pass:P12secret", "P12secret"),
        ("PGPASSWORD=Xk93mq! psql -h db", "Xk93mq!"),
        ("export MYSQL_PWD='Dolphin#42'", "Dolphin#42"),
        ("deploy --password Hunter2x --force", "Hunter2x"),
        ("--password=Hunter2x", "Hunter2x"),
        ("<password>S3cret!</password>", "S3cret!"),
        ('<add key="SmtpPassword" value="Prestigitariu$"/>', "Prestigitariu$"),
        ("const smtpPassword = 'Mailer#2024';", "Mailer#2024"),
        ('[database]\npassword = "Tr0ub4dor&3"\n', "Tr0ub4dor&3"),
        ("db:\n  password: s3cr3t-Pw\n", "s3cr3t-Pw"),
        ("MONGO_URL=mongodb+srv://app:Mg0Pass!x@cluster0.abc.mongodb.net/db", "Mg0Pass!x"),
        ("REDIS_URL=redis://:R3dPw9x@cache:6379/0", "R3dPw9x"),
        ("amqp://guest:Gu3st!pw@rabbit:5672/", "Gu3st!pw"),
        ("jdbc:mysql://db:3306/app?user=app&password=Jd8c!pw", "Jd8c!pw"),
        ("Server=db;Database=app;User Id=sa;Password=Ad0!net9;", "Ad0!net9"),
        ('{"db": {"password": "J50n!pw"}}', "J50n!pw"),
    ],
)
def test_passwords_in_commands_pairs_and_config(text: str, value: str) -> None:
    assert ("password", value) in found(text), found(text)


@pytest.mark.parametrize(
    "text",
    [
        "Please reset your password.",
        "Passwort vergessen? Klicken Sie hier.",
        "Haben Sie Ihr Kennwort geändert?",
        "docker run -p 8080:80 nginx",
        "ssh -p 2222 user@host",
        "kubectl create secret generic db-pass --from-literal=password=$DB_PASS",
        "token = tokenizer(text, return_tensors='pt')",
        'headers = {"Authorization": f"Bearer {token}"}',
        "The token bucket refills 10 tokens per second.",
        "sk-learn is not a package name; use scikit-learn.",
        "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA\n-----END PUBLIC KEY-----",
        "The password field is required.",
        "Passwords must have 8 characters or more.",
        "I forgot my password again, how do I reset it?",
        "Das Passwort ist falsch.",
        "Le mot de passe est incorrect.",
        "Use a password manager.",
        "The admin / user split in TCP/IP and/or km/h notes.",
        "mysql -u root -p mydb",
        "my passport number is on file",
        "GPIO pin 13 drives the LED",
        "the key to success is practice",
        "API key rotation every 90 days",
        "commit sha 3f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c1d2e3f4a",
        "token id 550e8400-e29b-41d4-a716-446655440000",
        "MAX_TOKEN_LENGTH = 4096",
        "key = user_name_2",
        "secret = compute_hash(value)",
        "the solution: x = 3.14159 and y = 2.71828",
        'img src="data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="',
    ],
)
def test_talk_about_credentials_and_clean_code_are_not_secrets(text: str) -> None:
    assert {e for e, _ in found(text)}.isdisjoint(SECRET_ENTITIES), found(text)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        (
            "my Datadog API key is 3f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c",
            "3f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c",
        ),
        ("Authorization: Bearer 9dKq2LmZx81vTnRw4YpB7cHs", "9dKq2LmZx81vTnRw4YpB7cHs"),
        ("the token: Zq81xK3mP9wL2vN7", "Zq81xK3mP9wL2vN7"),
        ("clé API : Zq81xK3mP9wL2vN7aB4c", "Zq81xK3mP9wL2vN7aB4c"),
        (
            '"credentials": "0afae57f3ccfd9d7f5767067bc48b30f719e271b"',
            "0afae57f3ccfd9d7f5767067bc48b30f719e271b",
        ),
    ],
)
def test_generic_high_entropy_tokens_in_context(text: str, value: str) -> None:
    assert ("generic_secret", value) in found(text) or ("password", value) in found(text), found(
        text
    )


_CLEAN = st.text(alphabet="abcdefghijklmnopqrstuvwxyz .,\n", max_size=200)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(SAMPLES), _CLEAN, _CLEAN)
def test_a_secret_anywhere_in_clean_text_is_found_and_redacted(
    case: tuple[object, str], before: str, after: str
) -> None:
    rule, token = case
    entity = rule.entity  # type: ignore[attr-defined]
    text = f"{before} {token} {after}"
    assert (entity, token) in found(text)
    redacted = Redaction(SCANNER, SECRET_ENTITIES).redact_text(text)
    assert token not in redacted
