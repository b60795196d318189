"""Dispatching and sending against real SMTP servers: outcomes, retries, leases, rate limits."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from apps.audit.models import AuditEntry
from apps.connections.models import SmtpSettings
from apps.delivery.models import Delivery, DeliveryAttempt, DeliveryStatus
from apps.delivery.services import deliveries_send, delivery_resend, event_dispatch
from apps.tenancy.models import Tenant
from tests.connections.smtp.factories import SmtpSettingsFactory
from tests.delivery.engine import deliver, make_event, send_all
from tests.factories import NotificationRuleFactory
from tests.smtp_servers import ACCEPT, DROP, QUEUED_REPLY, STALL, closed_port, message_id

pytestmark = pytest.mark.django_db

SENT, QUEUED, FAILED, SENDING = (
    DeliveryStatus.SENT,
    DeliveryStatus.QUEUED,
    DeliveryStatus.FAILED,
    DeliveryStatus.SENDING,
)


def addresses(n: int) -> list[str]:
    return [f"person{i}@x.example" for i in range(n)]


@pytest.fixture
def event(deploy_prod):
    NotificationRuleFactory(pipeline=deploy_prod, addresses=addresses(3))
    return make_event(deploy_prod)


@pytest.fixture
def dispatched(event):
    event_dispatch(event_id=event.pk)
    return event


def attempts(delivery) -> list[tuple]:
    return list(delivery.attempts.values_list("outcome", "code", "reply"))


def by_address(event) -> dict[str, Delivery]:
    return {d.address: d for d in event.deliveries.all()}


# Dispatch ------------------------------------------------------------------------------


def test_dispatch_happens_once(event):
    assert event_dispatch(event_id=event.pk) == 3
    assert event_dispatch(event_id=event.pk) is None

    event.refresh_from_db()
    assert event.dispatched_at is not None
    assert event.recipient_count == 3
    assert event.deliveries.count() == 3
    assert len(set(event.deliveries.values_list("message_id", flat=True))) == 3


def test_a_disabled_tenants_events_wait_until_it_is_enabled(tenant, event, mail_server, sink):
    Tenant.objects.filter(pk=tenant.pk).update(is_active=False)

    assert event_dispatch(event_id=event.pk) is None
    event.refresh_from_db()
    assert event.dispatched_at is None

    Tenant.objects.filter(pk=tenant.pk).update(is_active=True)
    assert event_dispatch(event_id=event.pk) == 3
    Tenant.objects.filter(pk=tenant.pk).update(is_active=False)
    assert deliveries_send(tenant_id=tenant.pk).claimed == 0  # and its mail waits too
    assert sink.offered == []


# Outcomes ------------------------------------------------------------------------------


def test_accepted_messages_are_sent_with_the_servers_reply(event, mail_server, sink):
    deliveries = deliver(event)

    assert [d.status for d in deliveries] == [SENT] * 3
    for d in deliveries:
        assert (d.last_code, d.last_reply, d.attempt_count) == (250, QUEUED_REPLY, 1)
        assert d.finished_at is not None
        assert attempts(d) == [("sent", 250, QUEUED_REPLY)]
        assert d.attempts.get().via == "host"
    assert sorted(sink.accepted_ids.values()) == [1, 1, 1]
    assert sink.connections == 1  # the whole batch over one connection


def test_a_temporary_refusal_is_retried_later_with_backoff(
    settings, event, dispatched, mail_server, sink
):
    settings.DELIVERY_RETRY_DELAY = 60
    sink.script = lambda number, content: "451 4.7.1 Greylisted, try again later"
    before = timezone.now()

    report = deliveries_send(tenant_id=event.tenant_id)

    assert (report.claimed, report.retrying, report.sent) == (3, 3, 0)
    for d in event.deliveries.all():
        assert d.status == QUEUED
        assert (d.last_code, d.last_reply) == (451, "451 4.7.1 Greylisted, try again later")
        # The first retry waits between half and all of DELIVERY_RETRY_DELAY (jitter).
        assert before + timedelta(seconds=29) < d.next_attempt_at < before + timedelta(seconds=61)
        assert attempts(d) == [("message_rejected", 451, "451 4.7.1 Greylisted, try again later")]
    # Not due yet: nothing is claimed.
    assert deliveries_send(tenant_id=event.tenant_id).claimed == 0


def test_backoff_grows_exponentially_up_to_the_maximum(settings):
    from apps.delivery.services import retry_delay

    settings.DELIVERY_RETRY_DELAY, settings.DELIVERY_RETRY_MAX_DELAY = 60, 600
    delays = [retry_delay(n) for n in (1, 2, 3, 4, 5, 10)]

    assert 30 <= delays[0] <= 60
    assert 60 <= delays[1] <= 120
    assert 120 <= delays[2] <= 240
    assert 240 <= delays[3] <= 480
    assert 300 <= delays[4] <= 600
    assert 300 <= delays[5] <= 600


def test_temporary_failures_fail_for_good_after_the_maximum_age(settings, event, mail_server, sink):
    settings.DELIVERY_MAX_AGE = 0
    sink.script = lambda number, content: "451 4.3.0 Mailbox busy"

    deliver(event)

    for d in event.deliveries.all():
        assert d.status == FAILED
        assert d.last_code == 451
        assert d.last_reply == "Gave up after retrying for 0 seconds. Last: 451 4.3.0 Mailbox busy"
        assert d.attempt_count == 1


@pytest.mark.parametrize(
    ("where", "reply"),
    [
        ("data", "554 5.7.1 Message rejected as spam"),
        ("rcpt", "550 5.1.1 Recipient address rejected: User unknown"),
    ],
)
def test_a_permanent_refusal_fails_at_once_with_code_and_text(
    event, mail_server, sink, where, reply
):
    if where == "data":
        sink.script = lambda number, content: reply
    else:
        sink.refuse = dict.fromkeys(addresses(3), reply)

    deliver(event)

    for d in event.deliveries.all():
        assert (d.status, d.last_code, d.last_reply, d.attempt_count) == (
            FAILED,
            int(reply[:3]),
            reply,
            1,
        )
        assert len(attempts(d)) == 1
    assert sink.accepted == []


def test_one_refused_recipient_of_three_affects_only_that_one(event, mail_server, sink):
    sink.refuse = {"person1@x.example": "550 5.1.1 User unknown"}

    deliver(event)
    send_all(event.tenant_id)  # again: nothing more goes out

    statuses = {a: d.status for a, d in by_address(event).items()}
    assert statuses == {
        "person0@x.example": SENT,
        "person1@x.example": FAILED,
        "person2@x.example": SENT,
    }
    assert sorted(sink.accepted_ids.values()) == [1, 1]
    assert sink.connections == 1


def test_after_a_disconnect_the_rest_of_the_batch_goes_over_a_new_connection(
    event, dispatched, mail_server, sink
):
    sink.script = lambda number, content: DROP if number == 1 else ACCEPT

    report = deliveries_send(tenant_id=event.tenant_id)

    assert (report.sent, report.retrying) == (2, 1)
    assert sink.connections == 2
    dropped = by_address(event)["person1@x.example"]
    assert dropped.status == QUEUED
    assert attempts(dropped) == [
        ("disconnected", None, f"{mail_server.host} closed the connection unexpectedly.")
    ]
    send_all(event.tenant_id)
    assert {d.status for d in event.deliveries.all()} == {SENT}
    # Never sent twice: each Message-ID accepted once.
    assert sorted(sink.accepted_ids.values()) == [1, 1, 1]


def test_a_server_that_stops_answering_times_out_and_is_retried(settings, event, mail_server, sink):
    settings.CONNECTION_TIMEOUT = 0.3
    sink.stall_seconds = 1
    sink.script = lambda number, content: STALL if number == 0 else ACCEPT

    deliver(event)

    assert {d.status for d in event.deliveries.all()} == {SENT}
    first = by_address(event)["person0@x.example"]
    assert [a[0] for a in attempts(first)] == ["timed_out", "sent"]
    assert sorted(sink.accepted_ids.values()) == [1, 1, 1]


def test_a_server_that_cannot_be_reached_leaves_the_batch_queued(
    settings, event, dispatched, mail_server
):
    settings.DELIVERY_RETRY_DELAY = 60
    SmtpSettings.objects.filter(tenant=None).update(port=closed_port())

    report = deliveries_send(tenant_id=event.tenant_id)

    assert report.retrying == 3
    for d in event.deliveries.all():
        assert d.status == QUEUED
        outcome, code, reply = attempts(d)[0]
        assert (outcome, code) == ("connection_refused", None)
        assert "refused the connection" in reply


def test_without_any_smtp_settings_deliveries_wait_and_say_why(settings, event):
    settings.DELIVERY_RETRY_DELAY = 60
    event_dispatch(event_id=event.pk)

    deliveries_send(tenant_id=event.tenant_id)

    d = event.deliveries.first()
    assert d.status == QUEUED
    assert d.last_reply.startswith("No SMTP settings")


def test_the_tenants_own_settings_carry_its_mail(tenant, event, sink, mail_server):
    from tests.smtp_servers import Sink, sink_server

    own = Sink()
    with sink_server(own) as server:
        SmtpSettingsFactory(tenant=tenant, host=server.host, port=server.port)
        deliver(event)

    assert len(own.accepted) == 3
    assert sink.accepted == []
    assert set(DeliveryAttempt.objects.values_list("via", flat=True)) == {"own"}


# Claims and leases ----------------------------------------------------------------------


def test_claimed_deliveries_are_not_claimed_again_until_their_lease_expires(event, mail_server):
    from apps.delivery.services import _claim

    event_dispatch(event_id=event.pk)
    now = timezone.now()

    token, first = _claim(event.tenant_id, 2, now)
    _, second = _claim(event.tenant_id, 10, now)
    _, third = _claim(event.tenant_id, 10, now)

    assert len(first) == 2
    assert len(second) == 1
    assert {d.pk for d in first}.isdisjoint({d.pk for d in second})
    assert third == []
    assert all(d.status == SENDING and d.lease_token == token for d in first)
    # A crashed worker: its lease runs out, and the deliveries are claimed again.
    later = now + timedelta(seconds=301)
    _, reclaimed = _claim(event.tenant_id, 10, later)
    assert len(reclaimed) == 3


def test_an_expired_lease_is_sent_by_the_next_worker(event, mail_server, sink):
    event_dispatch(event_id=event.pk)
    Delivery.objects.update(
        status=SENDING,
        lease_token="dead-worker",
        lease_expires_at=timezone.now() - timedelta(seconds=1),
    )

    send_all(event.tenant_id)

    assert {d.status for d in event.deliveries.all()} == {SENT}
    assert len(sink.accepted) == 3


# Issue 11 changed this on purpose: such an outcome used to be dropped silently.
@pytest.mark.parametrize("learned", ["sent", "deferred"])
def test_a_worker_whose_lease_was_taken_over_still_records_what_it_learned(
    event, mail_server, learned
):
    from apps.delivery.services import _attempt_record

    event_dispatch(event_id=event.pk)
    d = event.deliveries.first()
    Delivery.objects.filter(pk=d.pk).update(status=SENDING, lease_token="other-worker")
    outcome = {
        "sent": {"status": SENT, "outcome": "sent", "code": 250, "reply": "250 Ok"},
        "deferred": {"status": QUEUED, "outcome": "message_rejected", "code": 451, "reply": "451"},
    }[learned]

    _attempt_record(d, "my-old-lease", retry_at=None, via="host", **outcome)

    d.refresh_from_db()
    (attempt,) = d.attempts.all()
    assert (attempt.outcome, attempt.code) == (outcome["outcome"], outcome["code"])
    assert attempt.reply.endswith("(learned after this worker's claim on it had run out)")
    assert d.attempt_count == 1
    if learned == "sent":
        # "Sent" is the truth: the delivery is finished (the other worker's outcome is late).
        assert (d.status, d.lease_token, d.last_code) == (SENT, "", 250)
    else:
        # Anything else leaves the state to the worker that holds it now.
        assert (d.status, d.lease_token, d.last_code) == (SENDING, "other-worker", None)


# Rate limit ------------------------------------------------------------------------------


def test_the_rate_limit_defers_without_dropping(settings, event, mail_server, sink, monkeypatch):
    from apps.delivery import ratelimit

    settings.DELIVERY_RATE_LIMITS = {"127.0.0.1": 2}
    event_dispatch(event_id=event.pk)

    send_all(event.tenant_id)

    assert len(sink.accepted) == 2
    (waiting,) = event.deliveries.filter(status=QUEUED)
    # It waits until the first two leave the sliding 60-second window.
    available = ratelimit.rate_available_at("127.0.0.1", now=timezone.now())
    assert waiting.next_attempt_at == available
    assert timezone.now() + timedelta(seconds=55) < available
    assert available < timezone.now() + timedelta(seconds=ratelimit.WINDOW + 1)
    assert waiting.attempt_count == 0
    assert not waiting.attempts.exists()

    # A minute later: the budget is there again.
    next_minute = waiting.next_attempt_at
    monkeypatch.setattr("apps.delivery.services.timezone.now", lambda: next_minute)
    send_all(event.tenant_id)
    assert len(sink.accepted) == 3


def test_the_rate_limit_is_shared_by_every_tenant_on_the_same_host(
    settings, tenant, other_tenant, deploy_prod, mail_server, sink
):
    from tests.delivery.engine import make_pipeline
    from tests.factories import ProjectFactory

    settings.DELIVERY_RATE_LIMITS = {"127.0.0.1": 4}
    theirs = make_pipeline(ProjectFactory(organization__tenant=other_tenant), "CI", "ci")
    for pipeline in (deploy_prod, theirs):
        NotificationRuleFactory(pipeline=pipeline, addresses=addresses(3))
        event_dispatch(event_id=make_event(pipeline).pk)

    send_all(tenant.pk)
    send_all(other_tenant.pk)

    assert len(sink.accepted) == 4
    assert Delivery.objects.filter(status=QUEUED).count() == 2


def test_microsoft_365_is_limited_to_30_a_minute_by_default():
    from apps.delivery.ratelimit import rate_limit_for

    assert rate_limit_for("SMTP.Office365.com") == 30
    assert rate_limit_for("smtp.example.com") is None


# Resend ---------------------------------------------------------------------------------


def test_a_failed_delivery_can_be_resent_and_goes_out_again(
    tenant, tenant_admin, event, mail_server, sink
):
    sink.refuse = {"person0@x.example": "550 5.1.1 User unknown"}
    deliver(event)
    failed = by_address(event)["person0@x.example"]
    sink.refuse = {}

    delivery_resend(delivery=failed, actor=tenant_admin)

    failed.refresh_from_db()
    assert (failed.status, failed.finished_at) == (QUEUED, None)
    entry = AuditEntry.objects.get(action="delivery.resent")
    assert (entry.actor, entry.tenant, entry.changes) == (
        tenant_admin,
        tenant,
        {"status": ["Failed", "Queued"]},
    )
    send_all(event.tenant_id)
    failed.refresh_from_db()
    assert failed.status == SENT
    assert message_id(sink.accepted[-1]) == failed.message_id


def test_only_failed_deliveries_can_be_resent(tenant_admin, event, mail_server):
    deliver(event)
    sent = event.deliveries.first()

    with pytest.raises(ValidationError, match="Only failed deliveries can be sent again"):
        delivery_resend(delivery=sent, actor=tenant_admin)
    assert not AuditEntry.objects.filter(action="delivery.resent").exists()
