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
