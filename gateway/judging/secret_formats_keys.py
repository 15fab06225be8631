"""The secret formats of observability SaaS (New Relic, Sentry, Grafana, Honeycomb,
Dynatrace, Splunk) and the keys and tokens of any issuer: private keys, age keys,
JWTs (signed or not), password hashes.

Written from each format's public description (``source``); docs/secrets.md
lists them.
"""

from __future__ import annotations

from gateway.judging.secret_checks import base64_pem, jwt_header
from gateway.judging.secret_rule import B64_TAIL, TAIL, SecretRule, rule

OBSERVABILITY: tuple[SecretRule, ...] = (
    rule(
        "newrelic_key",
        "New Relic user, admin, insert, REST and browser keys",
        ("NRAK-", "NRAA-", "NRII-", "NRRA-", "NRJS-", "NRIQ-"),
        r"NR(?:AK|AA|II|RA|IQ)-[A-Za-z0-9]{27,32}|NRJS-[0-9a-f]{19}",
        "https://docs.newrelic.com/docs/apis/intro-apis/new-relic-api-keys/",
        "prefix, 27+ upper alphanumerics",
    ),
    rule(
        "newrelic_key",
        "New Relic license (ingest) key",
        "NRAL",
        r"NRAL" + TAIL,
        "https://docs.newrelic.com/docs/apis/intro-apis/new-relic-api-keys/#license-key",
        "36 hex digits, NRAL",
        before=r"(?<![0-9a-z])(?:[0-9a-f]{36}|[a-z]{2}[0-9]{2}xx[0-9a-f]{30})\Z",
        lead=36,
    ),
    rule(
        "sentry_token",
        "Sentry organisation and user auth tokens",
        ("sntrys_", "sntryu_"),
        r"sntrys_eyJ[A-Za-z0-9+/=]{30,}_[A-Za-z0-9+/]{43}|sntryu_[0-9a-f]{64}",
        "https://docs.sentry.io/account/auth-tokens/",
        "prefix, base64 JSON or 64 hex digits",
    ),
    rule(
        "sentry_dsn",
        "Sentry DSN with its key",
        ".ingest.",
        r"\.ingest\.(?:[a-z]{2}\.)?sentry\.io/\d+",
        "https://docs.sentry.io/concepts/key-terms/dsn-explainer/",
        "32 hex key, @oN.ingest.sentry.io",
        before=r"[0-9a-f]{32}(?::[0-9a-f]{32})?@o\d{1,12}\Z",
        lead=90,
        placeholders=False,
    ),
    rule(
        "grafana_token",
        "Grafana Cloud access policy token and service-account token",
        ("glc_", "glsa_"),
        r"glc_[A-Za-z0-9+/]{32,400}={0,2}|glsa_[A-Za-z0-9]{32}_[0-9a-f]{8}",
        "https://grafana.com/docs/grafana/latest/administration/service-accounts/",
        "prefix, base64 or 32 + 8",
    ),
    rule(
        "grafana_token",
        "Grafana API key (legacy)",
        "eyJrIjoi",
        r"eyJrIjoi[A-Za-z0-9+/]{60,120}={0,2}" + B64_TAIL,
        "https://grafana.com/docs/grafana/latest/administration/api-keys/",
        "base64 JSON with k, n, id",
    ),
    rule(
        "honeycomb_key",
        "Honeycomb ingest and management keys",
        ("hcaik_", "hcxik_", "hcamk_", "hcxmk_"),
        r"hc[ax][im]k_[0-9a-z]{58,64}" + TAIL,
        "https://docs.honeycomb.io/get-started/configure/environments/manage-api-keys/",
        "prefix, 58+ characters",
    ),
    rule(
        "dynatrace_token",
        "Dynatrace API token",
        "dt0c01.",
        r"dt0c01\.[A-Z0-9]{24}\.[A-Z0-9]{64}" + TAIL,
        "https://docs.dynatrace.com/docs/manage/identity-access-management/access-tokens-and-oauth-clients/access-tokens",
        "prefix, 24 + 64 upper alphanumerics",
    ),
    rule(
        "splunk_token",
        "Splunk HEC token in an Authorization header",
        "Splunk ",
        r"Splunk [0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}" + TAIL,
        "https://docs.splunk.com/Documentation/Splunk/latest/Data/UsetheHTTPEventCollector",
        "context (Splunk scheme), UUID",
    ),
)

KEYS: tuple[SecretRule, ...] = (
    rule(
        "private_key",
        "PEM private key block (RSA, EC, DSA, OpenSSH, PKCS#8, encrypted, PGP)",
        "-----BEGIN",
        # the header only: the block's extent is found by the PEM end finder
        r"-----BEGIN ((?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?)-----",
        "https://datatracker.ietf.org/doc/html/rfc7468",
        "BEGIN line, through its END line or base64 body",
        bounded=False,
        placeholders=False,
    ),
    rule(
        "private_key",
        "PuTTY private key file",
        ("PuTTY-User-Key-File-",),
        r"PuTTY-User-Key-File-[23]: [a-z0-9\-]+(?:[\s\S]{0,6000}?Private-MAC: [0-9a-f]{40,64})?",
        "https://the.earth.li/~sgtatham/putty/0.78/htmldoc/AppendixC.html",
        "file header",
        placeholders=False,
    ),
    rule(
        "private_key",
        "PEM private key block encoded in base64 (Kubernetes secrets, JSON configs)",
        "LS0tLS1CRUdJTi",
        r"LS0tLS1CRUdJTi[A-Za-z0-9+/]{40,}={0,2}",
        "https://kubernetes.io/docs/concepts/configuration/secret/",
        "base64 of a BEGIN … PRIVATE KEY line",
        valid=base64_pem,
        placeholders=False,
    ),
    rule(
        "age_key",
        "age secret key",
        "AGE-SECRET-KEY-1",
        r"AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}" + TAIL,
        "https://age-encryption.org/v1",
        "prefix, 58 bech32 characters",
    ),
    rule(
        "jwt",
        "JSON Web Token, signed or not (alg none)",
        "eyJ",
        r"eyJ[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]{2,}\.[A-Za-z0-9_\-]*",
        "https://datatracker.ietf.org/doc/html/rfc7519",
        "header decodes to JSON with alg",
        valid=jwt_header,
        placeholders=False,
    ),
    rule(
        "password_hash",
        "bcrypt, sha-crypt, md5-crypt, Apache apr1, Argon2 and Kerberos AS-REP/TGS hashes",
        ("$2a$", "$2b$", "$2y$", "$6$", "$5$", "$1$", "$8$", "$9$", "$apr1$", "$argon2", "$krb5"),
        r"\$(?:2[aby]\$\d\d\$[./A-Za-z0-9]{53}|[15689]\$(?:rounds=\d+\$)?[./A-Za-z0-9]{1,16}\$[./A-Za-z0-9]{22,86}"
        r"|apr1\$[./A-Za-z0-9]{1,8}\$[./A-Za-z0-9]{22}|krb5(?:asrep|tgs)\$\d+\$(?:[^\s$:*]{1,120}:|\*[^\s*]{1,200}\*\$)?[0-9a-f]{32}\$[0-9a-f]{64,}|argon2(?:id|i|d)\$v=\d+\$m=\d+,t=\d+,p=\d+\$[A-Za-z0-9+/]{16,}\$[A-Za-z0-9+/]{20,})",
        "https://passlib.readthedocs.io/en/stable/modular_crypt_format.html",
        "modular crypt format",
        bounded=False,
    ),
)
