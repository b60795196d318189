import factory
from factory.django import DjangoModelFactory

from apps.core.fields import Secret
from apps.mailsettings.models import Security, SmtpSettings


class SmtpSettingsFactory(DjangoModelFactory):
    """The host's row by default; pass `tenant=` for a tenant's, `secret=` for a password."""

    class Meta:
        model = SmtpSettings

    class Params:
        secret = ""

    name = "Test SMTP server"
    host = "127.0.0.1"
    port = 25
    security = Security.NONE
    from_email = "postmaster@example.com"
    from_name = "Postmaster Alerts"
    timeout = 5
    password = factory.LazyAttribute(lambda row: Secret(row.secret) if row.secret else None)


def smtp_form_data(**overrides) -> dict:
    """What `SmtpSettingsForm` posts for the factory's values, as a browser sends them."""
    data = {
        "preset": "other",
        "name": "Test SMTP server",
        "host": "127.0.0.1",
        "port": "25",
        "security": "none",
        "timeout": "5",
        "username": "",
        "new_password": "",
        "smtp_domain": "",
        "from_email": "postmaster@example.com",
        "from_name": "Postmaster Alerts",
        "test_to": "",
        "test_subject": "Postmaster test email",
        "test_body": "Hello",
    }
    return data | overrides
