"""The secret formats of source control, CI, payment and chat.

Each format is written from its provider's public description of the token
(the ``source`` of each rule); docs/secrets.md lists them all. The rest of the
formats (cloud platforms in :mod:`gateway.judging.secret_formats_cloud`; AI providers, package registries, observability, SaaS, keys and
tokens of any issuer) are in :mod:`gateway.judging.secret_formats_saas`.
"""

from __future__ import annotations

from gateway.judging.secret_checks import crc32_base62_tail
from gateway.judging.secret_rule import TAIL, SecretRule, rule

_AN = "[A-Za-z0-9]"
_HEX = "[0-9a-f]"
_GH = "https://docs.github.com/en/authentication/keeping-your-account-and-data-secure/about-authentication-to-github#githubs-token-formats"
_GL = "https://docs.gitlab.com/security/tokens/#token-prefixes"
_SLACK = "https://api.slack.com/authentication/token-types"
#: a webhook URL's finding starts at its scheme when it has one
_SCHEME = r"(?:https?://)?\Z"


def _slack_shape(token: str) -> bool:
    """xox?-<id of 8+ digits>-…-<random part of 8+ letters and digits>."""
    parts = token.split("-")
    version_or_id = parts[1].isdigit() and (len(parts[1]) >= 8 or len(parts[1]) == 1)
    return len(parts) >= 3 and version_or_id and len(parts[-1]) >= 8


VCS_AND_CI: tuple[SecretRule, ...] = (
    rule(
        "github_token",
        "GitHub personal, OAuth, user-to-server, server-to-server and refresh tokens",
        tuple(f"gh{c}_" for c in "pousr"),
        r"gh[pousr]_(?P<body>[A-Za-z0-9]{36,251})" + TAIL,
        _GH,
        "prefix, 36+ alphanumerics; CRC32 base62 checksum (last 6)",
        proof=crc32_base62_tail,
    ),
    rule(
        "github_token",
        "GitHub fine-grained personal access token",
        "github_pat_",
        r"github_pat_(?P<body>[A-Za-z0-9]{22}_[A-Za-z0-9]{59}|[A-Za-z0-9_]{22,255})" + TAIL,
        _GH,
        "prefix, 22 + 59 alphanumerics",
    ),
    rule(
        "gitlab_token",
        "GitLab tokens (personal, OAuth, deploy, runner, CI job, trigger, feed, incoming mail, agent, SCIM, feature-flag…)",
        (
            "glpat-",
            "gloas-",
            "gldt-",
            "glrt-",
            "glrtr-",
            "glcbt-",
            "glptt-",
            "glft-",
            "glimt-",
            "glagent-",
            "glsoat-",
            "glffct-",
            "glwt-",
            "gltok-",
        ),
        r"gl(?:pat|oas|dt|rtr?|cbt|ptt|ft|imt|agent|soat|ffct|wt|tok)-(?:[0-9a-f]{1,4}_)?[A-Za-z0-9_\-.]{20,}",
        _GL,
        "prefix, 20+ characters",
    ),
    rule(
        "gitlab_token",
        "GitLab runner registration token (legacy)",
        "GR1348941",
        r"GR1348941[A-Za-z0-9_\-]{20,}" + TAIL,
        _GL,
        "prefix, 20+ characters",
    ),
    rule(
        "bitbucket_token",
        "Bitbucket app password",
        "ATBB",
        r"ATBB[A-Za-z0-9_=.\-]{28,}" + TAIL,
        "https://support.atlassian.com/bitbucket-cloud/docs/app-passwords/",
        "prefix, 28+ characters",
    ),
    rule(
        "bitbucket_token",
        "Bitbucket repository / workspace access token",
        "ATCTT3",
        r"ATCTT3[A-Za-z0-9_=\-]{100,}" + TAIL,
        "https://support.atlassian.com/bitbucket-cloud/docs/access-tokens/",
        "prefix, 100+ characters",
    ),
    rule(
        "atlassian_token",
        "Atlassian API token (Jira, Confluence)",
        "ATATT3",
        r"ATATT3[A-Za-z0-9_=\-]{100,}" + TAIL,
        "https://support.atlassian.com/atlassian-account/docs/manage-api-tokens-for-your-atlassian-account/",
        "prefix, 100+ characters",
    ),
    rule(
        "circleci_token",
        "CircleCI personal and project API tokens",
        ("CCIPAT_", "CCIPRJ_"),
        r"CCIP(?:AT|RJ)_[A-Za-z0-9]{20,}_[0-9a-f]{40}" + TAIL,
        "https://circleci.com/docs/managing-api-tokens/",
        "prefix, id, 40 hex digits",
    ),
    rule(
        "buildkite_token",
        "Buildkite API access token",
        "bkua_",
        r"bkua_[0-9a-f]{40}" + TAIL,
        "https://buildkite.com/docs/apis/managing-api-tokens",
        "prefix, 40 hex digits",
    ),
    rule(
        "sonar_token",
        "SonarQube / SonarCloud user, project and analysis tokens",
        ("squ_", "sqp_", "sqa_"),
        r"sq[upa]_[0-9a-f]{40}" + TAIL,
        "https://docs.sonarsource.com/sonarqube-server/latest/user-guide/managing-tokens/",
        "prefix, 40 hex digits",
    ),
    rule(
        "octopus_key",
        "Octopus Deploy API key",
        "API-",
        r"API-[A-Z0-9]{25,32}" + TAIL,
        "https://octopus.com/docs/octopus-rest-api/how-to-create-an-api-key",
        "prefix, 25-32 upper alphanumerics",
        valid=lambda s: sum(c.isdigit() for c in s[4:]) >= 3,
    ),
    rule(
        "sourcegraph_token",
        "Sourcegraph access token",
        "sgp_",
        r"sgp_(?:[0-9a-fA-F]{16}_|local_)?[0-9a-fA-F]{40}" + TAIL,
        "https://sourcegraph.com/docs/cli/how-tos/creating_an_access_token",
        "prefix, 40 hex digits",
    ),
)

PAYMENT: tuple[SecretRule, ...] = (
    rule(
        "stripe_key",
        "Stripe secret, restricted and publishable live keys, test keys",
        ("sk_live_", "sk_test_", "rk_live_", "rk_test_", "pk_live_"),
        r"(?:[sr]k_(?:live|test)|pk_live)_(?P<body>[A-Za-z0-9]{16,247})" + TAIL,
        "https://docs.stripe.com/keys",
        "prefix, 16+ alphanumerics",
    ),
    rule(
        "stripe_key",
        "Stripe webhook signing secret",
        "whsec_",
        r"whsec_[A-Za-z0-9+/=]{32,}" + TAIL,
        "https://docs.stripe.com/webhooks#verify-events",
        "prefix, 32+ characters",
    ),
    rule(
        "square_key",
        "Square access token and application secret (legacy prefixes)",
        ("sq0atp-", "sq0csp-"),
        r"sq0(?:atp|csp)-[A-Za-z0-9_\-]{22,43}" + TAIL,
        "https://developer.squareup.com/docs/build-basics/access-tokens",
        "prefix, 22-43 characters",
    ),
    rule(
        "square_key",
        "Square production access token",
        "EAAA",
        r"EAAA[A-Za-z0-9_\-+]{60}" + TAIL,
        "https://developer.squareup.com/docs/build-basics/access-tokens",
        "prefix, 60 characters",
    ),
    rule(
        "braintree_token",
        "PayPal Braintree access token",
        ("access_token$production$", "access_token$sandbox$"),
        r"access_token\$(?:production|sandbox)\$[0-9a-z]{16}\$[0-9a-f]{32}",
        "https://developer.paypal.com/braintree/docs/guides/authentication/overview",
        "prefix, merchant id, 32 hex digits",
    ),
    rule(
        "adyen_key",
        "Adyen API key",
        "AQE",
        r"AQE[A-Za-z0-9+/=._~\-]{60,300}",
        "https://docs.adyen.com/development-resources/api-credentials",
        "prefix, 60+ characters",
        valid=lambda s: sum(c.isdigit() for c in s) >= 4,
    ),
    rule(
        "razorpay_key",
        "Razorpay key id",
        ("rzp_live_", "rzp_test_"),
        r"rzp_(?:live|test)_[A-Za-z0-9]{14}" + TAIL,
        "https://razorpay.com/docs/api/authentication/",
        "prefix, 14 alphanumerics",
    ),
    rule(
        "flutterwave_key",
        "Flutterwave secret and encryption keys",
        ("FLWSECK-", "FLWSECK_TEST-"),
        r"FLWSECK(?:_TEST)?-[0-9a-f]{12,32}(?:-X)?" + TAIL,
        "https://developer.flutterwave.com/docs/api-keys",
        "prefix, hex digits",
    ),
    rule(
        "shopify_token",
        "Shopify admin, custom-app, partner and shared-secret tokens",
        ("shpat_", "shpca_", "shppa_", "shpss_"),
        r"shp(?:at|ca|pa|ss)_[0-9a-fA-F]{32}" + TAIL,
        "https://shopify.dev/docs/apps/build/authentication-authorization/access-tokens",
        "prefix, 32 hex digits",
    ),
    rule(
        "shippo_token",
        "Shippo API token",
        ("shippo_live_", "shippo_test_"),
        r"shippo_(?:live|test)_[0-9a-f]{40}" + TAIL,
        "https://docs.goshippo.com/docs/guides_general/authentication/",
        "prefix, 40 hex digits",
    ),
)

CHAT: tuple[SecretRule, ...] = (
    rule(
        "slack_token",
        "Slack bot, user, app, refresh, workspace and legacy tokens",
        tuple(f"xox{c}-" for c in "abeoprs"),
        r"xox[abeoprs]-(?P<body>[A-Za-z0-9\-]{10,})",
        _SLACK,
        "prefix, a numeric id of 8+ digits, a random part of 8+ characters",
        valid=_slack_shape,
    ),
    rule(
        "slack_token",
        "Slack configuration access / refresh token",
        ("xoxe.xoxp-", "xoxe.xoxb-"),
        r"xoxe\.xox[pb]-\d-[A-Za-z0-9]{100,}" + TAIL,
        _SLACK,
        "prefix, 100+ characters",
    ),
    rule(
        "slack_token",
        "Slack app-level token",
        "xapp-",
        r"xapp-\d-[A-Z0-9]{9,12}-\d{9,16}-[0-9a-z]{32,64}" + TAIL,
        _SLACK,
        "prefix, version, app id, numeric id, 64 hex digits",
    ),
    rule(
        "slack_webhook",
        "Slack incoming webhook, workflow and trigger URL (with or without scheme)",
        "hooks.slack.com/",
        r"hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9_\-]{8,}/[A-Za-z0-9/_\-]{10,}",
        "https://api.slack.com/messaging/webhooks",
        "host and path, random path part",
        before=_SCHEME,
        lead=8,
    ),
    rule(
        "discord_webhook",
        "Discord webhook URL (with or without scheme)",
        ("discord.com/api/webhooks/", "discordapp.com/api/webhooks/"),
        r"discord(?:app)?\.com/api/webhooks/\d{17,20}/[A-Za-z0-9_\-]{60,68}",
        "https://discord.com/developers/docs/resources/webhook",
        "host, numeric id, 68-character token",
        before=_SCHEME,
        lead=8,
    ),
    rule(
        "teams_webhook",
        "Microsoft Teams incoming webhook URL (with or without scheme)",
        (".webhook.office.com/", "outlook.office.com/webhook"),
        r"(?:\.webhook\.office\.com/webhookb2|outlook\.office\.com/webhook)/[0-9a-f\-]{36}@[0-9a-f\-]{36}/IncomingWebhook/[0-9a-f]{32}/[0-9a-f\-]{36}",
        "https://learn.microsoft.com/microsoftteams/platform/webhooks-and-connectors/how-to/add-incoming-webhook",
        "host, tenant and hook ids",
        bounded=False,
    ),
    rule(
        "google_chat_webhook",
        "Google Chat webhook URL",
        "chat.googleapis.com/v1/spaces/",
        r"chat\.googleapis\.com/v1/spaces/[A-Za-z0-9_\-]{8,}/messages\?key=[A-Za-z0-9_\-]{30,}&token=[A-Za-z0-9_\-%]{30,}",
        "https://developers.google.com/workspace/chat/quickstart/webhooks",
        "host, key and token",
    ),
    rule(
        "telegram_bot_token",
        "Telegram bot token",
        ":AA",
        r":AA[A-Za-z0-9_\-]{33}" + TAIL,
        "https://core.telegram.org/bots/api#authorizing-your-bot",
        "bot id, colon, 35 characters",
        before=r"(?<![0-9])[0-9]{8,10}\Z",
        lead=10,
        placeholders=False,
    ),
    rule(
        "twilio_key",
        "Twilio API key SID",
        "SK",
        r"SK(?P<body>[0-9a-f]{32})" + TAIL,
        "https://www.twilio.com/docs/iam/api-keys",
        "prefix, 32 hex digits",
    ),
    rule(
        "sendgrid_key",
        "SendGrid API key",
        "SG.",
        r"SG\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43}" + TAIL,
        "https://www.twilio.com/docs/sendgrid/ui/account-and-settings/api-keys",
        "prefix, 22 + 43 characters",
    ),
    rule(
        "mailgun_key",
        "Mailgun API key (legacy key- prefix)",
        "key-",
        r"key-(?P<body>[0-9a-f]{32})" + TAIL,
        "https://documentation.mailgun.com/docs/mailgun/api-reference/authentication",
        "prefix, 32 hex digits",
    ),
    rule(
        "mailchimp_key",
        "Mailchimp API key",
        "-us",
        r"-us\d{1,2}" + TAIL,
        "https://mailchimp.com/developer/marketing/guides/quick-start/",
        "32 hex digits, -us and a data-centre number",
        before=r"(?<![0-9a-f])[0-9a-f]{32}\Z",
        lead=32,
    ),
    rule(
        "brevo_key",
        "Brevo (Sendinblue) API and SMTP keys",
        ("xkeysib-", "xsmtpsib-"),
        r"x(?:keysib|smtpsib)-[0-9a-f]{64}-[A-Za-z0-9]{16}" + TAIL,
        "https://developers.brevo.com/docs/getting-started",
        "prefix, 64 hex digits, 16 characters",
    ),
)
