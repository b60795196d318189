"""The engine against real relays: the greeting name they check, one login per connection.

Real aiosmtpd servers on 127.0.0.1 as a tenant's own SMTP server; one round
of sending each (a retried delivery is due again at once in these tests).
"""

import pytest

from apps.delivery.models import DeliveryAttempt, DeliveryStatus
from apps.delivery.services import deliveries_send, event_dispatch
from apps.preferences.models import Suppression
from tests.connections.smtp.factories import SmtpSettingsFactory
from tests.delivery.engine import deliver, make_event
from tests.factories import NotificationRuleFactory
from tests.smtp_servers import smtp_server

pytestmark = pytest.mark.django_db

ADDRESSES = ["ann@payments.example", "bob@payments.example"]


@pytest.fixture
def event(deploy_prod):
    NotificationRuleFactory(pipeline=deploy_prod, addresses=ADDRESSES)
    return make_event(deploy_prod)


def send_once(event):
    event_dispatch(event_id=event.pk)
    deliveries_send(tenant_id=event.tenant_id)
    return list(event.deliveries.order_by("address"))


@pytest.mark.parametrize("where", ["ehlo", "rcpt"])
def test_a_refused_greeting_name_is_explained_on_the_attempt_not_blamed_on_the_recipient(
    tenant, event, settings, where
):
    settings.SITE_URL = "http://127.0.0.1:8000"
    settings.SMTP_EHLO_NAME = ""
    with smtp_server(fqdn_helo=where) as server:
        SmtpSettingsFactory(tenant=tenant, **server.connection)
        deliveries = send_once(event)

    assert server.messages == []
    # Our settings, not the addresses: retried later, never suppressed.
    assert {d.status for d in deliveries} == {DeliveryStatus.QUEUED}
    assert not Suppression.objects.filter(tenant=tenant).exists()
    attempts = DeliveryAttempt.objects.filter(delivery__event=event)
    assert {a.outcome for a in attempts} == {"helo_refused"}
    for attempt in attempts:
        assert attempt.reply.startswith("127.0.0.1 refused our greeting name ([127.0.0.1])")
        assert "not the recipient" in attempt.reply
        assert "set the EHLO name" in attempt.reply.replace("Set", "set")
        assert "Helo command rejected" in attempt.reply


@pytest.mark.parametrize("where", ["ehlo", "rcpt"])
def test_the_connections_ehlo_name_gets_the_mail_through(tenant, event, settings, where):
    settings.SITE_URL = "http://127.0.0.1:8000"
    with smtp_server(fqdn_helo=where) as server:
        SmtpSettingsFactory(tenant=tenant, ehlo_name="mail.payments.example", **server.connection)
        deliveries = deliver(event)

    assert [d.status for d in deliveries] == [DeliveryStatus.SENT] * 2
    assert set(server.greeting_names) == {"mail.payments.example"}


def test_the_host_of_site_url_greets_by_default(tenant, event, settings):
    settings.SITE_URL = "https://postmaster.example.com"
    settings.SMTP_EHLO_NAME = ""
    with smtp_server(fqdn_helo="rcpt") as server:
        SmtpSettingsFactory(tenant=tenant, **server.connection)
        deliveries = deliver(event)

    assert [d.status for d in deliveries] == [DeliveryStatus.SENT] * 2
    assert set(server.greeting_names) == {"postmaster.example.com"}


def test_a_wrong_password_is_one_failed_login_per_connection(tenant, event):
    with smtp_server(users={"sender": "right"}, auth_over_plain=True) as server:
        SmtpSettingsFactory(tenant=tenant, username="sender", secret="wrong", **server.connection)
        deliveries = send_once(event)

    assert {d.status for d in deliveries} == {DeliveryStatus.QUEUED}
    assert server.failed_logins == 1
    assert server.auth_mechanisms == ["PLAIN"]


def test_530_starttls_first_says_the_server_requires_encryption(tenant, event):
    with smtp_server(tls="starttls", require_starttls=True) as server:
        SmtpSettingsFactory(tenant=tenant, host=server.host, port=server.port, security="none")
        send_once(event)

    attempts = DeliveryAttempt.objects.filter(delivery__event=event)
    assert {a.outcome for a in attempts} == {"encryption_required"}
    for attempt in attempts:
        assert attempt.reply.startswith("127.0.0.1 requires an encrypted connection")
        assert "“STARTTLS” on port 587" in attempt.reply
        assert "530 Must issue a STARTTLS command first" in attempt.reply
