"""Recall and precision of the secret detectors on public labelled samples.

    python bench/secrets_eval.py [--split tuning|held-out|all] [--misses N] [--json]

Data (provenance and licences in bench/data/secrets/README.md): the samples of two
public secret scanners' rule tests (noseyparker, gitleaks), extracted by
bench/secrets_data.py, and GSM8K test questions as clean prompts. Each sample goes to
the held-out split when the first byte of the SHA-256 of its text is below 0x55 (a
third), to the tuning split otherwise; tuning looked at the tuning split only, and
``--misses`` prints misses of the tuning split only.

Figures:

- recall on the kinds the gateway claims (a sample of a source rule mapped to a
  built-in entity in :data:`CLAIMED`) and over every kind the sources cover: a
  positive sample counts as found when the scanner reports any secret entity in it;
- flagged negatives: the sources' negative samples in which a secret entity is
  found, split into documentation placeholders (the sample carries a placeholder
  marker, :data:`PLACEHOLDER_MARKERS`) and the rest (many of those are real-looking
  tokens that a source's rule leaves to another rule: flagging them is not wrong
  for a gateway, which is why the placeholder figure is the target);
- clean prompts flagged: GSM8K questions with any entity of the secret family.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway.judging.sensitivity import SECRET_ENTITIES, Scanner

DATA = Path(__file__).resolve().parent / "data" / "secrets"

#: source rule (noseyparker id without its number, or gitleaks rule id) prefixes -> the
#: built-in entity claimed for that kind. A rule not listed is a kind not claimed.
CLAIMED: dict[str, str] = {
    "np.aws": "aws_access_key", "aws-access-token": "aws_access_key",
    "aws-amazon-bedrock-api-key-long-lived": "aws_bedrock_key",
    "np.azure": "azure_key", "azure-ad-client-secret": "azure_key",
    "np.gcp": "gcp_service_account", "gcp-service-account": "gcp_service_account",
    "np.google": "google_api_key", "gcp-api-key": "google_api_key",
    "np.digitalocean": "digitalocean_token", "digitalocean": "digitalocean_token",
    "np.heroku": "heroku_key", "heroku-api-key-v2": "heroku_key",
    "cloudflare-origin-ca-key": "cloudflare_key", "flyio-access-token": "flyio_token",
    "np.doppler": "doppler_token", "doppler": "doppler_token",
    "np.hashicorp": "vault_token", "vault": "vault_token", "hashicorp-tf-api-token": "terraform_token",
    "np.github": "github_token", "github": "github_token",
    "np.gitlab": "gitlab_token", "gitlab": "gitlab_token",
    "np.bitbucket": "bitbucket_token", "bitbucket": "bitbucket_token",
    "np.atlassian": "atlassian_token", "atlassian-api-token": "atlassian_token",
    "sourcegraph-access-token": "sourcegraph_token", "np.sourcegraph": "sourcegraph_token",
    "sonar-api-token": "sonar_token", "octopus-deploy-api-key": "octopus_key",
    "np.stripe": "stripe_key", "stripe-access-token": "stripe_key",
    "np.square": "square_key", "square-access-token": "square_key", "square-secret": "square_key",
    "np.shopify": "shopify_token", "shopify": "shopify_token",
    "np.slack": "slack_token", "slack": "slack_token",
    "np.msteams": "teams_webhook", "microsoft-teams-webhook": "teams_webhook",
    "np.telegram": "telegram_bot_token", "telegram-bot-api-token": "telegram_bot_token",
    "np.twilio": "twilio_key", "twilio-api-key": "twilio_key",
    "np.sendgrid": "sendgrid_key", "sendgrid-api-token": "sendgrid_key",
    "np.mailgun": "mailgun_key", "np.mailchimp": "mailchimp_key", "mailchimp-api-key": "mailchimp_key",
    "np.openai": "openai_key", "openai-api-key": "openai_key",
    "np.anthropic": "anthropic_key", "anthropic": "anthropic_key",
    "np.huggingface": "huggingface_token", "huggingface": "huggingface_token",
    "np.groq": "groq_key", "perplexity-api-key": "perplexity_key",
    "np.jina": "jina_key", "np.firecrawl": "firecrawl_key", "np.tavily": "tavily_key",
    "np.npm": "npm_token", "npm-access-token": "npm_token",
    "np.pypi": "pypi_token", "pypi-upload-token": "pypi_token",
    "np.rubygems": "rubygems_key", "rubygems-api-token": "rubygems_key",
    "np.nuget": "nuget_key", "np.dockerhub": "dockerhub_token",
    "np.artifactory": "jfrog_key", "artifactory": "jfrog_key",
    "np.newrelic": "newrelic_key", "new-relic": "newrelic_key",
    "sentry-org-token": "sentry_token", "sentry-user-token": "sentry_token",
    "np.grafana": "grafana_token", "grafana": "grafana_token",
    "np.dynatrace": "dynatrace_token", "dynatrace-api-token": "dynatrace_token",
    "linear-api-key": "linear_key", "notion-api-token": "notion_token",
    "np.okta": "okta_token", "np.figma": "figma_token", "np.postman": "postman_key",
    "postman-api-token": "postman_key", "np.facebook": "facebook_token",
    "facebook-access-token": "facebook_token", "facebook-page-access-token": "facebook_token",
    "np.mapbox": "mapbox_token", "1password-service-account-token": "onepassword_token",
    "1password-secret-key": "onepassword_token", "np.age": "age_key", "age-secret-key": "age_key",
    "np.pem": "private_key", "private-key": "private_key", "np.jwt": "jwt", "jwt": "jwt",
    "np.pwhash": "password_hash", "np.postgres": "password", "np.mongodb": "password",
    "np.http": "password", "np.netrc": "password", "np.odbc": "password",
    "curl-auth-user": "password", "np.generic": "generic_secret",
    "generic-api-key": "generic_secret", "np.reactapp": "password",
    "np.dtrack": "dependency_track_key", "np.twitch": "twitch_key",
    "maxmind-license-key": "maxmind_key", "np.krb5": "password_hash", "np.psexec": "password",
}  # fmt: skip

#: a negative sample holding one of these is a documentation placeholder
PLACEHOLDER_MARKERS = re.compile(
    r"EXAMPLE|x{6,}|X{6,}|\*{4,}|<[a-z_\- ]+>|\$\{|\{\{|your[_\- ]|_here|placeholder|dummy|"
    r"REDACTED|0{10,}|1234567890",
    re.IGNORECASE,
)
SECRET_FAMILY = SECRET_ENTITIES


def held_out(text: str) -> bool:
    return hashlib.sha256(text.encode()).digest()[0] < 0x55


#: rules of claimed families whose samples hold no secret (public ids, domains, user names)
NOT_SECRETS = frozenset(
    {"np.aws.3", "np.age.1", "np.google.1", "np.github.5", "np.mapbox.1", "np.shopify.1",
     "np.reactapp.1"}
)  # fmt: skip


def kind(sample: dict[str, str]) -> str:
    return sample["rule"]


def claimed(k: str) -> str | None:
    if k in NOT_SECRETS:
        return None
    if k.startswith("np."):
        k = ".".join(k.split(".")[:2])
    best = None
    for prefix, entity in CLAIMED.items():
        if (k == prefix or k.startswith(prefix + "-") or k.startswith(prefix)) and (
            best is None or len(prefix) > len(best[0])
        ):
            best = (prefix, entity)
    return best[1] if best else None


def load(name: str, split: str) -> list[dict[str, str]]:
    rows = [json.loads(line) for line in (DATA / name).read_text(encoding="utf-8").splitlines()]
    if split == "all":
        return rows
    return [r for r in rows if held_out(r["text"]) == (split == "held-out")]


def evaluate(scanner: Scanner, split: str) -> dict[str, object]:
    samples = load("samples.jsonl", split)
    clean = load("clean.jsonl", split)
    per_kind: dict[str, list[int]] = {}
    claimed_hits = claimed_total = all_hits = all_total = 0
    misses: list[str] = []
    neg = Counter[str]()
    for s in samples:
        found = {f.entity for f in scanner.find(s["text"])} & SECRET_FAMILY
        if s["label"] == "secret":
            k = kind(s)
            family = ".".join(k.split(".")[:2]) if k.startswith("np.") else k
            hit = bool(found)
            all_total += 1
            all_hits += hit
            stats = per_kind.setdefault(family, [0, 0])
            stats[0] += hit
            stats[1] += 1
            if claimed(k) is not None:
                claimed_total += 1
                claimed_hits += hit
                if not hit:
                    misses.append(f"{k}: {s['text'][:160]!r}")
        else:
            group = "placeholder" if PLACEHOLDER_MARKERS.search(s["text"]) else "other"
            neg[group + "_total"] += 1
            neg[group + "_flagged"] += bool(found)
    flagged_clean = sum(
        1 for c in clean if {f.entity for f in scanner.find(c["text"])} & SECRET_FAMILY
    )
    any_entity = sum(1 for c in clean if scanner.find(c["text"]))
    return {
        "split": split,
        "claimed_recall": claimed_hits / max(claimed_total, 1),
        "claimed_samples": claimed_total,
        "all_recall": all_hits / max(all_total, 1),
        "all_samples": all_total,
        "placeholder_negatives_flagged": neg["placeholder_flagged"]
        / max(neg["placeholder_total"], 1),
        "placeholder_negatives": neg["placeholder_total"],
        "other_negatives_flagged": neg["other_flagged"] / max(neg["other_total"], 1),
        "other_negatives": neg["other_total"],
        "clean_flagged_secret": flagged_clean / max(len(clean), 1),
        "clean_flagged_any_entity": any_entity / max(len(clean), 1),
        "clean_prompts": len(clean),
        "per_kind": {k: v[0] / v[1] for k, v in sorted(per_kind.items())},
        "misses": misses,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--split", default="held-out", choices=("tuning", "held-out", "all"))
    parser.add_argument("--misses", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = evaluate(Scanner(), args.split)
    misses = result.pop("misses")
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    for key, value in result.items():
        if key != "per_kind":
            print(f"{key:32} {value:.3f}" if isinstance(value, float) else f"{key:32} {value}")
    weak = {k: v for k, v in result["per_kind"].items() if v < 1}  # type: ignore[attr-defined]
    print("kinds below 100 %:", ", ".join(f"{k} {v:.0%}" for k, v in weak.items()))
    if args.misses and args.split == "tuning":
        for m in misses[: args.misses]:  # type: ignore[index]
            print("  miss", m)
    return 0


if __name__ == "__main__":
    sys.exit(main())
