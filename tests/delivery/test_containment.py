"""A bad day contained: one message that cannot be built, an error outside any message,
a delivery whose claims never end, a server that asks to slow down.

Real parts: aiosmtpd servers on 127.0.0.1 (`sink`), the database; the broken
things are stored rows as an older or newer version could have left them.
"""

import threading
from datetime import timedelta
from email.errors import HeaderParseError

import pytest
from django.db import connection
from django.utils import timezone

from apps.connections.models import SmtpSettings
from apps.delivery.models import Delivery, DeliveryAttempt, DeliveryStatus, Event
from apps.delivery.services import _attempt_record, _claim, deliveries_send, event_dispatch
from apps.operations.selectors import delivery_troubles
from tests.connections.smtp.factories import SmtpSettingsFactory
from tests.delivery.engine import make_event
from tests.delivery.workers import wait_until
from tests.factories import NotificationRuleFactory
from tests.smtp_servers import ACCEPT, closed_port, message_id

pytestmark = pytest.mark.django_db

SENT, FAILED, QUEUED, SENDING = (
    DeliveryStatus.SENT,
    DeliveryStatus.FAILED,
    DeliveryStatus.QUEUED,
    DeliveryStatus.SENDING,
)


def test_a_message_that_cannot_be_built_fails_alone_and_the_batch_goes_on(
    deploy_prod, mail_server, sink
):
    NotificationRuleFactory(pipeline=deploy_prod, addresses=[f"p{n}@x.example" for n in range(40)])
    before = make_event(deploy_prod, run_id="before")
    broken = make_event(deploy_prod, run_id="newer")
    after = make_event(deploy_prod, run_id="after")
    for event in (before, broken, after):
        event_dispatch(event_id=event.pk)
    # Its row now says what a newer version wrote: an event type with no headline here.
    Event.objects.filter(pk=broken.pk).update(event_type="release_published")

    report = deliveries_send(tenant_id=deploy_prod.tenant_id)  # one batch of 120

    assert (report.claimed, report.sent, report.failed) == (120, 80, 40)
    assert not Delivery.objects.filter(status__in=[QUEUED, SENDING]).exists()
    assert set(broken.deliveries.values_list("status", flat=True)) == {FAILED}
    good = Delivery.objects.exclude(event=broken)
    assert sink.accepted_ids == {d.message_id: 1 for d in good}
    attempt = DeliveryAttempt.objects.filter(delivery__event=broken).first()
    assert attempt.outcome == "other"
    assert attempt.via == "host"
    assert attempt.reply.startswith("Not sent: Postmaster could not build or send this message")
    assert "KeyError" in attempt.reply
    assert "worker's log" in attempt.reply
    assert "release_published" not in attempt.reply  # no raw Python value


@pytest.fixture
def unopenable(tenant):
    """The tenant's connection, with a From an older version let through: no batch can start."""
    row = SmtpSettingsFactory(tenant=tenant, host="127.0.0.1", port=closed_port(), security="none")
    SmtpSettings.objects.filter(pk=row.pk).update(from_email="alerts@@payments.example")
    return row


def test_an_error_outside_one_message_returns_the_untried_rest_at_once(
    deploy_prod, unopenable, sink
):
    NotificationRuleFactory(pipeline=deploy_prod, addresses=[f"p{n}@x.example" for n in range(5)])
    event = make_event(deploy_prod)
    event_dispatch(event_id=event.pk)

    with pytest.raises(HeaderParseError):  # the task fails (and says why in its log)
        deliveries_send(tenant_id=deploy_prod.tenant_id)

    deliveries = list(event.deliveries.all())
    # Not left claimed until the lease runs out: due again now.
    assert {(d.status, d.lease_token, d.next_attempt_at) for d in deliveries} == {
        (QUEUED, "", None)
    }
    assert {d.claim_count for d in deliveries} == {1}  # that claim counts


def test_a_delivery_claimed_again_and_again_without_an_outcome_fails(
    settings, deploy_prod, unopenable, sink
):
    settings.DELIVERY_MAX_CLAIMS = 3
    NotificationRuleFactory(pipeline=deploy_prod, addresses=[f"p{n}@x.example" for n in range(6)])
    event = make_event(deploy_prod)
    event_dispatch(event_id=event.pk)

    for _ in range(3):
        with pytest.raises(HeaderParseError):
            deliveries_send(tenant_id=deploy_prod.tenant_id)
    report = deliveries_send(tenant_id=deploy_prod.tenant_id)  # the fourth claim

    assert (report.claimed, report.failed) == (6, 6)
    assert deliveries_send(tenant_id=deploy_prod.tenant_id).claimed == 0  # never again
    for delivery in event.deliveries.all():
        assert delivery.status == FAILED
        assert delivery.finished_at is not None
        (attempt,) = delivery.attempts.all()
        assert attempt.reply.startswith("Not sent: it was claimed 3 times and each time")
        assert attempt.via == "own"
    # The failure alerts count them.
    (trouble,) = delivery_troubles(now=timezone.now())
    assert (trouble.tenant_id, trouble.via, trouble.failed) == (deploy_prod.tenant_id, "own", 6)


@pytest.mark.parametrize(
    "reply",
    [
        "421 4.7.0 Too many messages, slow down",
        "451 4.7.28 Our system has detected an unusual rate of mail",
        "450 Too many messages from your account, try again later",
    ],
)
def test_a_throttling_server_is_left_alone_for_a_while(
    settings, deploy_prod, mail_server, sink, reply
):
    settings.DELIVERY_THROTTLE_SECONDS = 120
    NotificationRuleFactory(pipeline=deploy_prod, addresses=[f"p{n}@x.example" for n in range(10)])
    event = make_event(deploy_prod)
    event_dispatch(event_id=event.pk)
    # Three messages go, then the server asks to slow down.
    sink.script = lambda number, content: reply if number == 3 else ACCEPT
    before = timezone.now()

    report = deliveries_send(tenant_id=deploy_prod.tenant_id)

    assert len(sink.offered) == 4  # nothing more after the reply
    assert (report.sent, report.retrying, report.throttled, report.failed) == (3, 1, 6, 0)
    deliveries = list(event.deliveries.order_by("pk"))
    throttled, rest = deliveries[3], deliveries[4:]
    assert throttled.status == QUEUED
    (attempt,) = throttled.attempts.all()
    assert attempt.reply.startswith(reply.split(",")[0])
    assert "the server asked to slow down" in attempt.reply
    assert "wait 120 seconds" in attempt.reply
    for delivery in [throttled, *rest]:
        assert delivery.next_attempt_at >= before + timedelta(seconds=119)
    # The rest were not tried: nothing counts against them.
    assert {(d.status, d.attempt_count, d.claim_count) for d in rest} == {(QUEUED, 0, 0)}
    assert not DeliveryAttempt.objects.filter(delivery__in=rest).exists()
    # Mail that becomes due meanwhile waits too: the connection is paused.
    Delivery.objects.filter(pk__in=[d.pk for d in rest]).update(next_attempt_at=None)
    assert deliveries_send(tenant_id=deploy_prod.tenant_id).claimed == 0
    assert len(sink.offered) == 4
    assert all(d.next_attempt_at >= before + timedelta(seconds=119) for d in rest)


def test_after_the_pause_the_rest_is_sent_once(settings, deploy_prod, mail_server, sink):
    settings.DELIVERY_THROTTLE_SECONDS = 1
    NotificationRuleFactory(pipeline=deploy_prod, addresses=[f"p{n}@x.example" for n in range(6)])
    event = make_event(deploy_prod)
    event_dispatch(event_id=event.pk)
    sink.script = lambda number, content: (
        "421 4.7.0 Try again later, closing connection" if number == 2 else ACCEPT
    )

    deliveries_send(tenant_id=deploy_prod.tenant_id)
    assert len(sink.offered) == 3

    # As the send task does when its next run is due.
    wait_until(
        lambda: not Delivery.objects.exclude(status=SENT).exists(),
        timeout=60,
        every=0.2,
        then=lambda: deliveries_send(tenant_id=deploy_prod.tenant_id),
    )

    assert set(event.deliveries.values_list("status", flat=True)) == {SENT}
    assert sink.accepted_ids == {d.message_id: 1 for d in event.deliveries.all()}
    assert len(sink.offered) == 7  # the throttled one twice, each other once


def test_an_outcome_learned_after_the_lease_ran_out_is_recorded(deploy_prod, mail_server):
    """A worker stopped longer than its lease (a paused VM) still records what it learned."""
    NotificationRuleFactory(pipeline=deploy_prod, addresses=["ann@x.example"])
    event = make_event(deploy_prod)
    event_dispatch(event_id=event.pk)
    now = timezone.now()
    first, (delivery,) = _claim(deploy_prod.tenant_id, 1, now)
    # Its lease ran out; another worker claimed it.
    Delivery.objects.update(lease_expires_at=now - timedelta(seconds=1))
    second, _ = _claim(deploy_prod.tenant_id, 1, now)
    assert second != first

    # The first worker learns that the server accepted it.
    record = {"code": 250, "retry_at": None, "via": "host"}
    _attempt_record(
        delivery, first, status=SENT, outcome="sent", reply="250 2.0.0 Ok: queued as A", **record
    )
    delivery.refresh_from_db()
    assert (delivery.status, delivery.lease_token, delivery.attempt_count) == (SENT, "", 1)
    # The second one's outcome comes after: recorded too, and "sent" stays the truth.
    _attempt_record(
        delivery,
        second,
        status=QUEUED,
        outcome="disconnected",
        reply="The server hung up.",
        **record | {"code": None},
    )
    delivery.refresh_from_db()
    assert (delivery.status, delivery.last_reply, delivery.attempt_count) == (
        SENT,
        "250 2.0.0 Ok: queued as A",
        2,
    )
    replies = list(delivery.attempts.values_list("outcome", "reply"))
    late = " (learned after this worker's claim on it had run out)"
    assert replies == [
        ("sent", "250 2.0.0 Ok: queued as A" + late),
        ("disconnected", "The server hung up." + late),
    ]


# Two database connections writing at once: PostgreSQL (SQLite in memory locks the other out).
@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_a_delivery_another_worker_took_meanwhile_is_not_sent(
    settings, deploy_prod, mail_server, sink
):
    """The lease is renewed as the batch goes; what another worker holds by then is left to it."""
    settings.DELIVERY_LEASE_SECONDS = 6  # renewed every 0.6 s; each exchange at most 0.2 s
    sink.delay = 0.05  # 25 messages take longer than a tenth of the lease
    NotificationRuleFactory(
        pipeline=deploy_prod, addresses=[f"p{n:02}@x.example" for n in range(30)]
    )
    event = make_event(deploy_prod)
    event_dispatch(event_id=event.pk)
    taken = list(event.deliveries.order_by("-pk").values_list("pk", flat=True)[:5])

    def steal():
        Delivery.objects.filter(pk__in=taken).update(
            lease_token="another-worker", lease_expires_at=timezone.now() + timedelta(hours=1)
        )
        connection.close()  # this thread's own database connection

    def another_worker_takes_the_last_five(number, content):
        if number == 0:  # a worker that found their lease lapsed (as if this one had stalled)
            thief = threading.Thread(target=steal)  # the server's loop is no place for the ORM
            thief.start()
            thief.join()
        return ACCEPT

    sink.script = another_worker_takes_the_last_five

    deliveries_send(tenant_id=deploy_prod.tenant_id)

    offered = {message_id(content) for content in sink.offered}
    stolen = Delivery.objects.filter(pk__in=taken)
    assert not offered & {d.message_id for d in stolen}
    assert {(d.status, d.lease_token) for d in stolen} == {(SENDING, "another-worker")}
    assert not DeliveryAttempt.objects.filter(delivery__in=stolen).exists()
    assert set(sink.accepted_ids.values()) == {1}


def test_the_log_line_of_a_message_that_cannot_be_built_names_its_delivery_and_event(
    deploy_prod, mail_server, sink, caplog
):
    import copy
    import json
    import logging.config

    from django.conf import settings as django_settings

    NotificationRuleFactory(pipeline=deploy_prod, addresses=["p0@x.example"])
    broken = make_event(deploy_prod, run_id="newer")
    event_dispatch(event_id=broken.pk)
    Event.objects.filter(pk=broken.pk).update(event_type="release_published")

    with caplog.at_level("ERROR", logger="apps.delivery.services"):
        deliveries_send(tenant_id=deploy_prod.tenant_id)

    (record,) = [r for r in caplog.records if "unexpected error" in r.getMessage()]
    delivery = broken.deliveries.get()
    json_formatter = copy.deepcopy(django_settings.LOGGING["formatters"]["json"])  # it is consumed
    formatter = logging.config.dictConfigClass({}).configure_formatter(json_formatter)
    line = json.loads(formatter.format(record))  # as LOG_FORMAT=json writes it
    assert (line["delivery_id"], line["event_id"]) == (delivery.pk, broken.pk)
