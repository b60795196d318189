"""What differs between the email-service providers: fields, words, backends and addresses.

One entry per provider. The form, the backends, the stand-in and the README
read this table, so adding a provider is one entry here (and its stand-in).
"""

from dataclasses import dataclass
from urllib.parse import urlsplit

from django.db import models


class Provider(models.TextChoices):
    # The values are anymail's names for them; the delivery webhooks' URLs end with them
    # (apps.webhooks uses this same enum).
    AMAZON_SES = "amazon_ses", "Amazon SES"
    MAILGUN = "mailgun", "Mailgun"
    SENDGRID = "sendgrid", "SendGrid"
    POSTMARK = "postmark", "Postmark"
    BREVO = "brevo", "Brevo"
    MAILJET = "mailjet", "Mailjet"


MAILGUN_REGIONS = {"us": "https://api.mailgun.net/v3/", "eu": "https://api.eu.mailgun.net/v3/"}


@dataclass(frozen=True)
class ProviderInfo:
    label: str
    backend: str
    # The secret: its label and where the admin finds it.
    secret_label: str
    secret_help: str
    # A second, non-secret part of the credentials (an id), or "" when there is none.
    key_id_label: str = ""
    key_id_help: str = ""
    # SES: an AWS region; Mailgun: US or EU.
    region_label: str = ""
    region_help: str = ""
    sender_domain: bool = False
    default_api_url: str = ""
    # Hosts (or parent domains, starting with ".") a tenant's API URL may point at.
    api_hosts: tuple[str, ...] = ()
    # Where to verify the sender, and what a new account may do (for the hints).
    verify_sender: str = ""
    sandbox: str = ""
    console: str = ""


PROVIDERS: dict[str, ProviderInfo] = {
    Provider.AMAZON_SES: ProviderInfo(
        label="Amazon SES",
        backend="anymail.backends.amazon_ses.EmailBackend",
        key_id_label="Access key ID",
        key_id_help="Of an IAM user allowed ses:SendEmail and ses:SendRawEmail, like "
        "AKIAIOSFODNN7EXAMPLE. Create it in the AWS console under IAM → Users → "
        "Security credentials → Create access key.",
        secret_label="Secret access key",
        secret_help="Shown once by AWS when the access key is created.",
        region_label="AWS region",
        region_help="Where your SES identities are verified, like eu-west-1 or us-east-1.",
        default_api_url="",  # Built by boto3 from the region.
        api_hosts=(".amazonaws.com",),
        verify_sender="In the Amazon SES console, under Configuration → Identities, verify "
        "the From address or its domain, in the same region.",
        sandbox="A new SES account is in the sandbox: it may send only to verified addresses. "
        "Verify the recipient under Identities, or request production access under "
        "Account dashboard.",
        console="the Amazon SES console",
    ),
    Provider.MAILGUN: ProviderInfo(
        label="Mailgun",
        backend="anymail.backends.mailgun.EmailBackend",
        secret_label="API key",
        secret_help="A Mailgun sending or private API key: in Mailgun, under API Security "
        "(or Sending → Domain settings → Sending API keys).",
        region_label="Mailgun region",
        region_help="Where your Mailgun account's domain lives: US (api.mailgun.net) or EU "
        "(api.eu.mailgun.net).",
        sender_domain=True,
        default_api_url=MAILGUN_REGIONS["us"],
        api_hosts=(".mailgun.net",),
        verify_sender="In Mailgun, under Sending → Domains, add and verify the sending domain "
        "(its DNS records), and choose the region the domain was created in.",
        sandbox="A Mailgun sandbox domain sends only to authorized recipients: add the address "
        "under the sandbox domain's Authorized Recipients, or send from your own verified "
        "domain.",
        console="Mailgun",
    ),
    Provider.SENDGRID: ProviderInfo(
        label="SendGrid",
        backend="anymail.backends.sendgrid.EmailBackend",
        secret_label="API key",
        secret_help="In SendGrid, under Settings → API Keys → Create API Key, with "
        "“Mail Send” access. It starts with SG.",
        default_api_url="https://api.sendgrid.com/v3/",
        api_hosts=("api.sendgrid.com", "api.eu.sendgrid.com"),
        verify_sender="In SendGrid, under Settings → Sender Authentication, verify the From "
        "address (Single Sender) or authenticate its domain.",
        sandbox="SendGrid is still reviewing this account: until it is approved, it sends only "
        "to a few addresses. Finish the account review in SendGrid.",
        console="SendGrid",
    ),
    Provider.POSTMARK: ProviderInfo(
        label="Postmark",
        backend="anymail.backends.postmark.EmailBackend",
        secret_label="Server API token",
        secret_help="In Postmark, open the server, then API Tokens: the Server API token "
        "(not the Account API token).",
        default_api_url="https://api.postmarkapp.com/",
        api_hosts=("api.postmarkapp.com",),
        verify_sender="In Postmark, under Sender Signatures, add and confirm the From "
        "address, or verify its domain.",
        sandbox="While a Postmark account is pending approval, it sends only to addresses of "
        "the From address's own domain. Request approval in Postmark.",
        console="Postmark",
    ),
    Provider.BREVO: ProviderInfo(
        label="Brevo",
        backend="anymail.backends.brevo.EmailBackend",
        secret_label="API key",
        secret_help="In Brevo, under your profile → SMTP & API → API keys → Generate a new "
        "API key (a v3 key, starting with xkeysib-).",
        default_api_url="https://api.brevo.com/v3/",
        api_hosts=("api.brevo.com", "api.sendinblue.com"),
        verify_sender="In Brevo, under Senders, Domains & Dedicated IPs, add and verify the "
        "From address or authenticate its domain.",
        sandbox="Brevo has not activated sending for this account yet. Ask Brevo's support to "
        "activate it (new accounts are reviewed).",
        console="Brevo",
    ),
    Provider.MAILJET: ProviderInfo(
        label="Mailjet",
        backend="anymail.backends.mailjet.EmailBackend",
        key_id_label="API key",
        key_id_help="In Mailjet, under Account settings → REST API → API Key Management: "
        "the API key (public part).",
        secret_label="Secret key",
        secret_help="Shown beside the API key in Mailjet's API Key Management.",
        default_api_url="https://api.mailjet.com/v3.1/",
        api_hosts=("api.mailjet.com", "api.us.mailjet.com"),
        verify_sender="In Mailjet, under Account settings → Sender addresses & domains, add "
        "and validate the From address or its domain.",
        sandbox="Mailjet is still reviewing this account: until it is activated, it sends "
        "only to a few addresses. Finish the account review in Mailjet.",
        console="Mailjet",
    ),
}


def api_url_allowed(provider: str, url: str) -> bool:
    """Whether an API URL is the provider's own (https, on its hosts)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower().rstrip(".")
    if parts.scheme != "https" or not host or parts.username or parts.password:
        return False
    for allowed in PROVIDERS[provider].api_hosts:
        if host == allowed or (allowed.startswith(".") and host.endswith(allowed)):
            return True
    return False
