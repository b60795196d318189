import factory
from factory.django import DjangoModelFactory

from apps.connections.catalog import Provider
from apps.connections.models import ConnectionRole, ProviderSettings
from apps.core.fields import Secret

# Credentials the stand-in accepts in the tests (see conftest.standin).
KEYS = {
    Provider.AMAZON_SES: ("AKIAIOSFODNN7EXAMPLE", "ses-secret-wJalrXUtnFEMI"),
    Provider.MAILGUN: ("", "mailgun-key-3ax6xnjp29jd6fds4gc373sgvjxteol0"),
    Provider.SENDGRID: ("", "SG.sendgrid-key-canary"),
    Provider.POSTMARK: ("", "postmark-token-canary"),
    Provider.BREVO: ("", "xkeysib-brevo-key-canary"),
    Provider.MAILJET: ("mailjetapikey0001", "mailjet-secret-canary"),
}
SECRETS = [secret for _, secret in KEYS.values()]


def standin_credentials() -> dict[str, str]:
    """What the stand-in checks: the secret; Mailjet key:secret; SES the access key ID."""
    credentials = {}
    for provider, (key_id, secret) in KEYS.items():
        if provider == Provider.MAILJET:
            credentials[provider] = f"{key_id}:{secret}"
        elif provider == Provider.AMAZON_SES:
            credentials[provider] = key_id
        else:
            credentials[provider] = secret
    return credentials


class ProviderSettingsFactory(DjangoModelFactory):
    """The host's primary Postmark row by default; `tenant=`, `provider=`, `api_url=`."""

    class Meta:
        model = ProviderSettings
        skip_postgeneration_save = True

    role = ConnectionRole.PRIMARY
    provider = Provider.POSTMARK
    key_id = factory.LazyAttribute(lambda row: KEYS[row.provider][0])
    secret = factory.LazyAttribute(lambda row: Secret(KEYS[row.provider][1]))
    region = factory.LazyAttribute(
        lambda row: {"amazon_ses": "eu-west-1", "mailgun": "eu"}.get(row.provider, "")
    )
    sender_domain = factory.LazyAttribute(
        lambda row: "mg.example.com" if row.provider == Provider.MAILGUN else ""
    )
    api_url = ""
    from_email = "notify@example.com"
    from_name = "Example Notifications"

    @factory.post_generation
    def private_network(self, create, extracted, **kwargs):
        # A tenant's row points at the stand-in on 127.0.0.1.
        if self.tenant is not None and extracted is not False:
            self.tenant.smtp_private_network_allowed = True
            if create:
                self.tenant.save(update_fields=["smtp_private_network_allowed"])


def provider_form_data(provider: str = Provider.POSTMARK, *, api_url: str = "", **overrides):
    """What the provider form posts for `provider` with the test keys, as a browser sends it."""
    key_id, secret = KEYS[provider]
    data = {
        "provider": provider,
        "from_email": "notify@example.com",
        "from_name": "Example Notifications",
        f"{provider}_secret": secret,
        f"{provider}_api_url": api_url,
        "test_to": "",
        "test_subject": "Postmaster test email",
        "test_body": "It works.",
    }
    if key_id:
        data[f"{provider}_key_id"] = key_id
    if provider == Provider.AMAZON_SES:
        data["amazon_ses_region"] = "eu-west-1"
    if provider == Provider.MAILGUN:
        data |= {"mailgun_region": "eu", "mailgun_sender_domain": "mg.example.com"}
    data.update(overrides)
    return data
