"""With real workers on PostgreSQL and Redis: a killed worker, a stopped broker, two workers.

Run with DATABASE_URL (PostgreSQL) and CELERY_BROKER_URL (Redis); skipped
elsewhere, never in CI (see tests/conftest.py).
"""

import signal
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from django.db import transaction

from apps.connections.models import SmtpSettings
from apps.connections.selectors import host_smtp_settings_forget
from apps.delivery.intake import event_accept
from apps.delivery.models import Delivery, DeliveryAttempt, DeliveryStatus, Event
from apps.delivery.services import event_dispatch, events_sweep
from apps.pipelines.models import EventType, Level
from tests.delivery.workers import publishing, queue_delete, wait_until, worker
from tests.factories import NotificationRuleFactory
from tests.smtp_servers import ACCEPT, STALL, closed_port

# Real workers, some waiting out a stalled server or a lease: minutes on a busy machine.
pytestmark = [
    pytest.mark.services,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(600),
]

SENT = DeliveryStatus.SENT


@pytest.fixture
def queue():
    """This test's own queue on the real broker."""
    name = f"postmaster-test-{uuid.uuid4().hex[:12]}"
    with publishing(broker_url=settings.CELERY_BROKER_URL, queue=name):
        yield name
        queue_delete(name)


@pytest.fixture
def shared_mail_server(mail_server):
    # The workers read the host settings through the shared cache: no stale "none" there.
    host_smtp_settings_forget()
    return mail_server


def accept(pipeline, run_id: str) -> Event:
    event, _ = event_accept(
        pipeline=pipeline,
        event_type=EventType.PIPELINE_FAILED,
        level=Level.ERROR,
        run_id=run_id,
        run_url=f"https://ci.example.com/runs/{run_id}",
    )
    return event


def all_sent() -> bool:
    return not Delivery.objects.exclude(status=SENT).exists()


def test_a_worker_killed_mid_batch_loses_nothing(
    deploy_prod, shared_mail_server, sink, queue, tmp_path
):
    sink.delay = 0.01  # a server slow enough to kill the worker in the middle of a batch
    NotificationRuleFactory(
        pipeline=deploy_prod, addresses=[f"person{n}@x.example" for n in range(150)]
    )
    # A short lease (each exchange may take a thirtieth of it); retries due at once.
    engine = {
        "DELIVERY_LEASE_SECONDS": "6",
        "DELIVERY_BATCH_SIZE": "25",
        "DELIVERY_RETRY_DELAY": "0",
    }

    with worker(queue=queue, log=tmp_path / "first.log", **engine) as first:
        accept(deploy_prod, "4711")
        wait_until(lambda: len(sink.accepted) >= 40, timeout=60)
        first.send_signal(signal.SIGKILL)
        first.wait()
    stranded = Delivery.objects.exclude(status=SENT).count()
    assert stranded > 0
    assert Delivery.objects.filter(status=DeliveryStatus.SENDING).exists()  # its claimed batch

    # A new worker; the sweep (Celery beat in production) returns the lapsed lease's deliveries.
    with worker(queue=queue, log=tmp_path / "second.log", **engine):
        wait_until(all_sent, timeout=60, every=0.5, then=events_sweep)

    accepted = sink.accepted_ids
    assert set(accepted) == set(Delivery.objects.values_list("message_id", flat=True))
    # At most the message in flight when the worker died came twice, with the same Message-ID.
    assert sorted(accepted.values())[-2:] in ([1, 1], [1, 2])
    assert Delivery.objects.count() == 150


def test_events_accepted_while_the_broker_is_down_are_all_delivered(
    deploy_prod, shared_mail_server, sink, queue, tmp_path
):
    NotificationRuleFactory(pipeline=deploy_prod, addresses=["ann@x.example", "bob@x.example"])

    with publishing(broker_url=f"redis://127.0.0.1:{closed_port()}/0", queue=queue):
        for n in range(100):
            accept(deploy_prod, f"run-{n}")

    assert Event.objects.count() == 100
    assert not Event.objects.filter(dispatched_at__isnull=False).exists()

    # The broker is back: two workers share the work (never the same delivery).
    with (
        worker(queue=queue, log=tmp_path / "a.log"),
        worker(queue=queue, log=tmp_path / "b.log"),
    ):
        assert events_sweep(older_than=timedelta(0)).events  # what beat runs every 30 s
        wait_until(
            lambda: Delivery.objects.filter(status=SENT).count() == 200, timeout=90, every=0.5
        )

    assert not Event.objects.filter(dispatched_at__isnull=True).exists()
    assert sink.accepted_ids == {d.message_id: 1 for d in Delivery.objects.all()}


def sent() -> int:
    return Delivery.objects.filter(status=SENT).count()


def test_retries_go_when_due_not_at_the_next_sweep(
    deploy_prod, shared_mail_server, sink, queue, tmp_path
):
    """Two retries due in the same second, and a run that starts before either is due:
    each retry is sent by a run queued for it, within moments. Nothing sweeps here."""
    NotificationRuleFactory(pipeline=deploy_prod, addresses=["ann@x.example", "bob@x.example"])

    with worker(queue=queue, log=tmp_path / "worker.log"):
        accept(deploy_prod, "warm-up")
        wait_until(lambda: sent() == 2, timeout=60, every=0.2)  # the worker is up

        with transaction.atomic():  # its tasks are queued when the retries are set
            event = accept(deploy_prod, "4711")
            event_dispatch(event_id=event.pk)
            second = int(time.time()) + 2
            due = {"ann@x.example": second + 0.05, "bob@x.example": second + 0.95}
            for address, at in due.items():
                event.deliveries.filter(address=address).update(
                    next_attempt_at=datetime.fromtimestamp(at, tz=UTC)
                )
        # Well before the sweep's 30 seconds, on a busy machine too.
        wait_until(lambda: sent() == 4, timeout=20, every=0.2)

    for delivery in event.deliveries.all():
        (attempt,) = delivery.attempts.all()
        assert attempt.attempted_at.timestamp() >= due[delivery.address]


def test_a_server_slower_than_the_lease_never_gets_a_message_twice(
    deploy_prod, shared_mail_server, sink, queue, tmp_path
):
    """One message stalls longer than the lease: nobody else takes the batch, nothing is lost.

    Each exchange is bounded well inside the lease (a thirtieth of it) and the
    lease is renewed between messages, so the stalled exchange ends (timed out,
    recorded, retried) while its worker still holds the batch.
    """
    # The server waits longer than the lease before hanging up on the sixth message.
    sink.stall_seconds = 12
    sink.script = lambda number, content: STALL if number == 5 else ACCEPT
    SmtpSettings.objects.update(timeout=30)  # the settings would wait longer still
    host_smtp_settings_forget()
    NotificationRuleFactory(
        pipeline=deploy_prod, addresses=[f"person{n}@x.example" for n in range(60)]
    )
    engine = {
        "DELIVERY_LEASE_SECONDS": "9",
        "DELIVERY_BATCH_SIZE": "20",
        "DELIVERY_RETRY_DELAY": "0",
    }

    with (
        worker(queue=queue, log=tmp_path / "a.log", **engine),
        worker(queue=queue, log=tmp_path / "b.log", **engine),
    ):
        accept(deploy_prod, "4711")
        # The sweep (Celery beat) queues whatever a lapsed lease would give back.
        wait_until(
            lambda: Delivery.objects.filter(status=SENT).count() == 60,
            timeout=90,
            every=0.5,
            then=events_sweep,
        )

    deliveries = Delivery.objects.all()
    assert sink.accepted_ids == {d.message_id: 1 for d in deliveries}
    # Every outcome a worker learned is in the log: one attempt per message offered.
    assert DeliveryAttempt.objects.count() == len(sink.offered) == 61
    assert not DeliveryAttempt.objects.filter(reply__contains="claim on it had run out").exists()
