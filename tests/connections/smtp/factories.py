import factory
from factory.django import DjangoModelFactory

from apps.connections.models import Security, SmtpSettings
from apps.core.fields import Secret


class SmtpSettingsFactory(DjangoModelFactory):
    """The host's row by default; pass `tenant=` for a tenant's, `secret=` for a password.

    A tenant's row points at a test server on 127.0.0.1, so its tenant is
    allowed private network addresses, unless `private_network=False` (the
    network policy's own tests).
    """

    class Meta:
        model = SmtpSettings
        skip_postgeneration_save = True

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

    @factory.post_generation
    def private_network(self, create, extracted, **kwargs):
        if self.tenant is not None and extracted is not False:
            allow_private_network(self.tenant, save=create)


def allow_private_network(tenant, *, save: bool = True):
    """What a system administrator does for a tenant whose SMTP server is on 127.0.0.1."""
    tenant.smtp_private_network_allowed = True
    if save:
        tenant.save(update_fields=["smtp_private_network_allowed"])
    return tenant


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
