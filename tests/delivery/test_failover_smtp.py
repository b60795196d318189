"""Failing over to a secondary SMTP server, and what a secondary row leaves alone.

Real aiosmtpd servers and refusing sockets on 127.0.0.1.
"""

from collections import Counter

import pytest
from django.core.mail import send_mail

from apps.connections.models import ConnectionRole
from apps.connections.selectors import (
    effective_smtp_settings,
    host_smtp_settings,
    host_smtp_settings_forget,
    smtp_settings_for,
)
from apps.delivery.models import DeliveryAttempt, DeliveryStatus
from tests.connections.smtp.factories import SmtpSettingsFactory
from tests.delivery.engine import deliver, make_event
from tests.factories import NotificationRuleFactory
from tests.smtp_servers import closed_port, message_id, smtp_server

pytestmark = pytest.mark.django_db

ADDRESSES = ["ann@payments.example", "bob@payments.example", "cy@payments.example"]
SECONDARY = ConnectionRole.SECONDARY


@pytest.fixture
def event(deploy_prod):
    NotificationRuleFactory(pipeline=deploy_prod, addresses=ADDRESSES)
    return make_event(deploy_prod)


def received_ids(server) -> Counter:
    return Counter(message_id(m.content) for m in server.messages)


@pytest.mark.parametrize("primary_trouble", ["closed", "535"])
def test_a_failing_primary_fails_over_to_an_smtp_server_once_per_message(
    tenant, event, primary_trouble
):
    with (
        smtp_server(users={"sender": "right"}, auth_over_plain=True) as login_server,
        smtp_server() as secondary,
    ):
        port = closed_port() if primary_trouble == "closed" else login_server.port
        SmtpSettingsFactory(
            tenant=tenant,
            host="127.0.0.1",
            port=port,
            security="none",
            username="sender",
            secret="wrong",
        )
        SmtpSettingsFactory(tenant=tenant, role=SECONDARY, **secondary.connection)

        deliveries = deliver(event)

    assert [d.status for d in deliveries] == [DeliveryStatus.SENT] * 3
    ids = received_ids(secondary)
    assert sorted(ids) == sorted(d.message_id for d in deliveries)
    assert set(ids.values()) == {1}
    assert sorted(rcpt for m in secondary.messages for rcpt in m.rcpt_tos) == ADDRESSES
    assert login_server.messages == []
    attempts = list(DeliveryAttempt.objects.order_by("pk").values_list("via", "outcome"))
    assert attempts[0][0] == "own"
    assert attempts[0][1] != "sent"
    assert attempts[1:] == [("own-failover", "sent")] * 3


def test_the_hosts_smtp_secondary_backs_a_tenant_on_the_host_settings(tenant, event):
    with smtp_server() as secondary:
        SmtpSettingsFactory(host="127.0.0.1", port=closed_port(), security="none")
        SmtpSettingsFactory(role=SECONDARY, **secondary.connection)
        host_smtp_settings_forget()

        deliveries = deliver(event)

    assert [d.status for d in deliveries] == [DeliveryStatus.SENT] * 3
    assert set(received_ids(secondary).values()) == {1}
    assert len(secondary.messages) == 3
    vias = list(DeliveryAttempt.objects.order_by("pk").values_list("via", flat=True))
    assert vias == ["host"] + ["host-failover"] * 3


def test_a_healthy_primary_carries_everything_and_the_secondary_nothing(tenant, event):
    with smtp_server() as primary, smtp_server() as secondary:
        SmtpSettingsFactory(tenant=tenant, **primary.connection)
        SmtpSettingsFactory(tenant=tenant, role=SECONDARY, **secondary.connection)

        deliver(event)

    assert len(primary.messages) == 3
    assert secondary.messages == []


def test_reads_of_a_scopes_settings_mean_the_primary(tenant):
    # The secondary rows are created first, so "the first row" would be wrong.
    SmtpSettingsFactory(role=SECONDARY, host="backup.host.example")
    SmtpSettingsFactory(tenant=tenant, role=SECONDARY, host="backup.acme.example")
    assert smtp_settings_for(tenant) is None
    assert effective_smtp_settings(tenant)[0] is None
    host_smtp_settings_forget()
    assert host_smtp_settings() is None
    SmtpSettingsFactory(host="smtp.host.example")
    own = SmtpSettingsFactory(tenant=tenant, host="smtp.acme.example")
    host_smtp_settings_forget()
    assert host_smtp_settings().host == "smtp.host.example"
    assert smtp_settings_for(tenant) == own
    assert smtp_settings_for(tenant, role=SECONDARY).host == "backup.acme.example"
    assert smtp_settings_for(None, role=SECONDARY).host == "backup.host.example"


def test_djangos_own_mail_goes_through_the_hosts_primary_only(host_mailer):
    with smtp_server() as primary, smtp_server() as secondary:
        SmtpSettingsFactory(role=SECONDARY, **secondary.connection)
        SmtpSettingsFactory(**primary.connection)
        host_smtp_settings_forget()
        send_mail("Password reset", "Hello", None, ["ann@example.com"])

    assert len(primary.messages) == 1
    assert secondary.messages == []
