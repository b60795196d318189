"""Sending through an email-service provider, and failing over to the secondary connection.

Real parts: aiosmtpd servers and refusing sockets on 127.0.0.1 for the SMTP
side, the providers' stand-in (an HTTP server on 127.0.0.1) for the API side.
"""

from collections import Counter
from email import message_from_bytes
from email.policy import default

import pytest

from apps.connections.catalog import Provider
from apps.connections.models import ConnectionRole
from apps.connections.selectors import host_smtp_settings_forget
from apps.delivery.models import DeliveryAttempt, DeliveryStatus
from apps.delivery.services import deliveries_send, event_dispatch
from apps.demo.standin import ProviderStandin
from apps.operations.services import failure_alerts_check
from apps.preferences.models import Suppression
from tests.connections.providers.factories import ProviderSettingsFactory, standin_credentials
from tests.connections.smtp.factories import SmtpSettingsFactory
from tests.delivery.engine import deliver, make_event
from tests.factories import NotificationRuleFactory
from tests.smtp_servers import Sink, closed_port, greeting_server, sink_server, smtp_server

pytestmark = pytest.mark.django_db

ADDRESSES = ["ann@payments.example", "bob@payments.example", "cy@payments.example"]


@pytest.fixture
def standin():
    with ProviderStandin(credentials=standin_credentials()) as server:
        yield server


@pytest.fixture
def event(deploy_prod):
    NotificationRuleFactory(pipeline=deploy_prod, addresses=ADDRESSES)
    return make_event(deploy_prod)


def provider(tenant, standin, role=ConnectionRole.PRIMARY, **fields):
    return ProviderSettingsFactory(
        tenant=tenant, role=role, provider=Provider.POSTMARK, api_url=standin.url, **fields
    )


def received_message_ids(standin) -> Counter:
    """How many times the provider took each Message-ID (Postmark's JSON "Headers")."""
    ids = Counter()
    for received in standin.received:
        headers = {h["Name"]: h["Value"] for h in received.body.get("Headers", [])}
        ids[headers.get("Message-ID")] += 1
    return ids


def test_mail_goes_out_through_a_provider_with_its_message_id_kept(tenant, event, standin):
    provider(tenant, standin)

    deliveries = deliver(event)

    assert [d.status for d in deliveries] == [DeliveryStatus.SENT] * 3
    ids = received_message_ids(standin)
    assert sorted(ids) == sorted(d.message_id for d in deliveries)
    assert set(ids.values()) == {1}
    sent_ids = {r.message_id for r in standin.received}
    assert {d.provider_message_id for d in deliveries} == sent_ids
    first = standin.received[0].body
    # The message as built: both parts, the unsubscribe headers, the provider's From.
    assert first["From"] == "Example Notifications <notify@example.com>"
    assert "Pipeline failed" in first["Subject"]
    assert first["TextBody"]
    assert first["HtmlBody"]
    header_names = {h["Name"] for h in first["Headers"]}
    assert {"List-Unsubscribe", "List-Unsubscribe-Post", "Message-ID"} <= header_names
    assert set(DeliveryAttempt.objects.values_list("via", flat=True)) == {"own"}


def test_a_recipient_the_provider_refuses_fails_and_is_suppressed(tenant, event, standin):
    provider(tenant, standin)
    standin.answers[Provider.POSTMARK] = "rejected_recipient"

    deliveries = deliver(event)

    assert {d.status for d in deliveries} == {DeliveryStatus.FAILED}
    assert all(d.attempt_count == 1 for d in deliveries)  # permanent: tried once
    assert Suppression.objects.filter(tenant=tenant).count() == 3


@pytest.mark.parametrize("primary_trouble", ["closed", "421", "535"])
def test_a_failing_primary_fails_over_and_each_message_goes_once(
    tenant, event, standin, primary_trouble
):
    with smtp_server(users={"sender": "right"}, auth_over_plain=True) as login_server:
        port = {
            "closed": lambda: closed_port(),
            "535": lambda: login_server.port,
        }
        with greeting_server(b"421 4.3.2 Service not available, closing channel\r\n") as busy:
            port["421"] = lambda: busy
            SmtpSettingsFactory(
                tenant=tenant,
                host="127.0.0.1",
                port=port[primary_trouble](),
                security="none",
                username="sender",
                secret="wrong",
            )
            provider(tenant, standin, role=ConnectionRole.SECONDARY)

            deliveries = deliver(event)

    assert [d.status for d in deliveries] == [DeliveryStatus.SENT] * 3
    assert set(received_message_ids(standin).values()) == {1}
    assert len(standin.received) == 3
    attempts = list(DeliveryAttempt.objects.order_by("pk").values_list("via", "outcome"))
    # The primary's failure is recorded once (the failure alerts read it); then the failover.
    assert attempts[0][0] == "own"
    assert attempts[0][1] != "sent"
    assert attempts[1:] == [("own-failover", "sent")] * 3


def test_after_a_failover_the_next_batch_starts_on_the_secondary(
    tenant, deploy_prod, event, standin
):
    SmtpSettingsFactory(tenant=tenant, host="127.0.0.1", port=closed_port(), security="none")
    provider(tenant, standin, role=ConnectionRole.SECONDARY)
    deliver(event)

    later = make_event(deploy_prod, run_id="later")
    deliveries = deliver(later)

    assert [d.status for d in deliveries] == [DeliveryStatus.SENT] * 3
    vias = DeliveryAttempt.objects.filter(delivery__event=later).values_list("via", flat=True)
    assert list(vias) == ["own-failover"] * 3  # no new attempt on the closed primary


def test_a_permanent_refusal_never_fails_over(tenant, event, standin):
    with smtp_server(reject="rcpt") as refusing:
        SmtpSettingsFactory(tenant=tenant, **refusing.connection)
        provider(tenant, standin, role=ConnectionRole.SECONDARY)

        deliveries = deliver(event)

    assert {d.status for d in deliveries} == {DeliveryStatus.FAILED}
    assert standin.received == []
    assert set(DeliveryAttempt.objects.values_list("via", flat=True)) == {"own"}


def test_without_a_secondary_a_closed_primary_means_retrying_later(tenant, event):
    SmtpSettingsFactory(tenant=tenant, host="127.0.0.1", port=closed_port(), security="none")
    event_dispatch(event_id=event.pk)

    report = deliveries_send(tenant_id=tenant.pk)

    assert (report.claimed, report.retrying, report.sent) == (3, 3, 0)


def test_a_failover_tells_the_tenant_admins_through_the_failure_alerts(
    tenant, tenant_admin, event, standin, host_mailer
):
    """The primary's refused login is recorded, so the alert check finds it: one email."""
    host_sink = Sink()
    with (
        sink_server(host_sink) as host,
        smtp_server(users={"sender": "new"}, auth_over_plain=True) as primary,
    ):
        SmtpSettingsFactory(host=host.host, port=host.port, from_email="postmaster@host.example")
        host_smtp_settings_forget()
        SmtpSettingsFactory(tenant=tenant, **primary.connection, username="sender", secret="old")
        provider(tenant, standin, role=ConnectionRole.SECONDARY)
        deliveries = deliver(event)

        report = failure_alerts_check()
        failure_alerts_check()  # again within the hour: no second email

    assert [d.status for d in deliveries] == [DeliveryStatus.SENT] * 3
    assert report.emailed == [tenant.pk]
    alerts = [message_from_bytes(raw, policy=default) for raw in host_sink.accepted]
    assert [str(alert["To"]) for alert in alerts] == [tenant_admin.email]
