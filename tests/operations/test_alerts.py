"""Failure alerts: a tenant's mail starts failing against a real SMTP server; its admins
are emailed through the host's settings (another real server), at most once an hour, and
the dashboard shows a banner while it lasts."""

from datetime import timedelta
from email import message_from_bytes
from email.policy import default as default_policy
from io import StringIO

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from apps.audit.models import AuditEntry
from apps.connections.selectors import host_smtp_settings_forget
from apps.delivery.models import DeliveryAttempt, DeliveryStatus
from apps.delivery.services import deliveries_send, event_dispatch
from apps.operations import tasks
from apps.operations.models import AlertCause, DeliveryAlert
from apps.operations.selectors import WATERMARKS_KEY
from apps.operations.services import failure_alerts_check
from apps.pipelines.models import Pipeline
from apps.tenancy.models import Role
from config.celery import app
from tests.connections.smtp.factories import SmtpSettingsFactory
from tests.delivery.engine import make_event
from tests.factories import MembershipFactory, NotificationRuleFactory, ProjectFactory, UserFactory
from tests.smtp_servers import ACCEPT, Sink, sink_server, smtp_server

pytestmark = pytest.mark.django_db

ADDRESSES = [f"oncall{n}@x.example" for n in range(6)]


@pytest.fixture
def second_admin(tenant):
    user = UserFactory(email="second-admin@acme.example")
    MembershipFactory(tenant=tenant, user=user, role=Role.TENANT_ADMIN)
    return user


@pytest.fixture
def pipeline(tenant):
    project = ProjectFactory(organization__tenant=tenant, name="Payments", slug="payments")
    pipeline = Pipeline.objects.create(
        tenant=tenant, project=project, name="Deploy prod", slug="deploy-prod"
    )
    NotificationRuleFactory(pipeline=pipeline, addresses=ADDRESSES)
    return pipeline


@pytest.fixture
def provider():
    """The tenant's own SMTP server: its password was changed at the provider."""
    with smtp_server(users={"ann": "new-password"}, auth_over_plain=True) as server:
        yield server


@pytest.fixture
def own_settings(tenant, provider):
    return SmtpSettingsFactory(
        tenant=tenant, **provider.connection, username="ann", secret="old-password"
    )


def send_once(pipeline, run_id="4711"):
    event = make_event(pipeline, run_id=run_id)
    event_dispatch(event_id=event.pk)
    deliveries_send(tenant_id=pipeline.tenant_id)
    return event


def alerts_received(host_sink):
    return [message_from_bytes(raw, policy=default_policy) for raw in host_sink.accepted]


@pytest.mark.usefixtures("host_server", "own_settings", "tenant_member")
def test_a_refused_login_emails_the_tenant_admins_once_an_hour(
    pipeline, provider, host_sink, tenant_admin, second_admin
):
    event = send_once(pipeline)
    assert set(event.deliveries.values_list("status", flat=True)) == {DeliveryStatus.QUEUED}
    assert provider.messages == []

    report = failure_alerts_check()
    assert report.failing == report.emailed == [pipeline.tenant_id]

    received = alerts_received(host_sink)
    assert sorted(m["To"] for m in received) == [tenant_admin.email, second_admin.email]
    message = received[0]
    assert "postmaster@host.example" in message["From"]  # through the host's settings
    assert message["Subject"] == "Mail from Acme is failing (The SMTP server refuses the login)"
    body = message.get_content()
    assert "Your SMTP server refuses Postmaster's login" in body
    assert "535" in body  # what the server said
    assert "password was changed" in body
    assert "http://127.0.0.1:8000/t/acme/delivery/" in body
    assert "old-password" not in body

    alert = DeliveryAlert.objects.get(tenant=pipeline.tenant)
    assert alert.cause == AlertCause.AUTH
    assert alert.is_failing
    entry = AuditEntry.objects.get(action="delivery_alert.emailed")
    assert entry.tenant == pipeline.tenant
    assert entry.changes == {"cause": "auth", "recipients": 2}

    # Still failing a little later: the banner stays, no second email within the hour.
    send_once(pipeline, run_id="4712")
    report = failure_alerts_check()
    assert report.failing == [pipeline.tenant_id]
    assert report.emailed == []
    assert len(host_sink.accepted) == 2

    # An hour after the email, still failing: they are reminded.
    DeliveryAlert.objects.update(emailed_at=alert.emailed_at - timedelta(minutes=61))
    send_once(pipeline, run_id="4713")
    assert failure_alerts_check().emailed == [pipeline.tenant_id]
    assert len(host_sink.accepted) == 4


@pytest.mark.usefixtures("host_server", "own_settings")
def test_the_dashboard_shows_the_banner_while_it_lasts(
    pipeline, provider, client, tenant_admin, tenant_member, other_tenant_admin
):
    dashboard = reverse("tenancy:dashboard", args=["acme"])
    log = reverse("tenancy:delivery:log", args=["acme"])
    client.force_login(tenant_admin)
    assert 'id="delivery-alert"' not in client.get(dashboard).text

    send_once(pipeline)
    failure_alerts_check()
    page = client.get(dashboard).text
    assert 'id="delivery-alert"' in page
    assert "refuses Postmaster&#x27;s login" in page
    assert f'href="{log}"' in page

    # Members see it too (their notifications are not arriving), without the admin's link.
    client.force_login(tenant_member)
    page = client.get(dashboard).text
    assert 'id="delivery-alert"' in page
    assert f'href="{log}"' not in page

    # Another tenant's dashboard says nothing.
    client.force_login(other_tenant_admin)
    assert (
        'id="delivery-alert"' not in client.get(reverse("tenancy:dashboard", args=["globex"])).text
    )

    # The password is fixed at the provider: the mail goes out and the banner goes away.
    provider.recorder.users["ann"] = "old-password"
    deliveries_send(tenant_id=pipeline.tenant_id)
    assert len(provider.messages) == len(ADDRESSES)
    report = failure_alerts_check()
    assert report.recovered == [pipeline.tenant_id]
    client.force_login(tenant_admin)
    assert 'id="delivery-alert"' not in client.get(dashboard).text


def rejecting(first: int):
    """A server refusing the first `first` messages for good (5xx), accepting the rest."""
    return Sink(
        script=lambda n, content: "554 5.7.1 Message rejected as spam" if n < first else ACCEPT
    )


@pytest.mark.usefixtures("host_server", "tenant_admin")
def test_many_failed_deliveries_alert_with_the_share_and_a_link_to_the_failures(
    tenant, pipeline, host_sink
):
    with sink_server(rejecting(len(ADDRESSES))) as server:
        SmtpSettingsFactory(tenant=tenant, **server.connection)
        event = send_once(pipeline)
    assert set(event.deliveries.values_list("status", flat=True)) == {DeliveryStatus.FAILED}
    assert failure_alerts_check().emailed == [tenant.pk]
    body = alerts_received(host_sink)[0].get_content()
    assert "6 of the 6 messages of Acme" in body
    assert "554 5.7.1 Message rejected as spam" in body
    assert "/t/acme/delivery/?status=failed" in body


@pytest.mark.usefixtures("host_server", "tenant_admin")
@pytest.mark.parametrize(
    ("refused", "recipients"),
    [(4, ADDRESSES), (5, ADDRESSES + [f"more{n}@x.example" for n in range(6)])],
    ids=["too-few-failures", "too-small-a-share"],
)
def test_a_few_failures_are_no_alarm(tenant, pipeline, host_sink, refused, recipients):
    pipeline.rules.update(addresses=recipients)
    with sink_server(rejecting(refused)) as server:
        SmtpSettingsFactory(tenant=tenant, **server.connection)
        send_once(pipeline)
    report = failure_alerts_check()
    assert report.failing == []
    assert host_sink.accepted == []


@pytest.mark.usefixtures("own_settings", "tenant_admin", "host_mailer")
def test_an_alert_the_host_server_could_not_send_is_tried_again_later(pipeline, host_sink):
    # No host settings yet: the alert cannot go out, and is not taken as sent.
    send_once(pipeline)
    report = failure_alerts_check()
    assert report.failing == [pipeline.tenant_id]
    assert report.emailed == []
    assert DeliveryAlert.objects.get().emailed_at is None
    assert not AuditEntry.objects.filter(action="delivery_alert.emailed").exists()

    with sink_server(host_sink) as server:
        SmtpSettingsFactory(host=server.host, port=server.port)
        host_smtp_settings_forget()
        # Not at every check (each would wait for the server): a few minutes later.
        assert failure_alerts_check().emailed == []
        cache.delete(f"operations:alert-email-failed:{pipeline.tenant_id}")
        assert failure_alerts_check().emailed == [pipeline.tenant_id]
    assert len(host_sink.accepted) == 1


@pytest.mark.usefixtures("host_server", "own_settings", "tenant_admin")
def test_the_sweep_command_runs_the_check(pipeline, host_sink, settings):
    # Retries wait as in production: the sweep (run inline here) would retry at once, forever.
    settings.DELIVERY_RETRY_DELAY = 60
    send_once(pipeline)
    out = StringIO()
    call_command("delivery_sweep", stdout=out)
    assert "Failure alerts emailed for 1 tenants." in out.getvalue()
    assert len(host_sink.accepted) == 1


def test_beat_runs_the_check_every_minute():
    entry = app.conf.beat_schedule["failure-alerts"]
    assert entry["task"] == "apps.operations.tasks.failure_alerts_check_task"
    assert tasks.failure_alerts_check_task.name == entry["task"]
    assert entry["schedule"] == 60


@pytest.mark.usefixtures("host_server", "own_settings", "tenant_admin")
def test_the_check_reads_only_attempts_after_the_last_watermark_before_the_window(pipeline):
    send_once(pipeline)
    highest = DeliveryAttempt.objects.order_by("-pk").values_list("pk", flat=True).first()
    # A check 16 minutes ago saw every attempt so far: they are older than the window.
    long_ago = timezone.now() - timedelta(minutes=16)
    cache.set(WATERMARKS_KEY, [(long_ago.timestamp(), highest)])
    assert failure_alerts_check().failing == []
    # New failures, after that mark, are found.
    send_once(pipeline, run_id="4712")
    assert failure_alerts_check().failing == [pipeline.tenant_id]
