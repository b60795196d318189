"""The Celery side, run eagerly: accept → dispatch → send, the sweep, rollbacks, re-scheduling.

The same flow with a real broker and real workers is in test_workers.py.
"""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from kombu.exceptions import OperationalError

from apps.delivery import services, tasks
from apps.delivery.intake import event_accept
from apps.delivery.models import Delivery, DeliveryStatus, Event
from apps.delivery.services import event_dispatch, events_sweep
from apps.pipelines.models import EventType, Level
from apps.preferences.models import NotificationPreference, Suppression, SuppressionReason
from apps.tenancy.models import Tenant
from config.celery import app
from tests.delivery.engine import make_event
from tests.factories import MembershipFactory, NotificationRuleFactory, UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("eager")]


@pytest.fixture
def rule(deploy_prod):
    return NotificationRuleFactory(
        pipeline=deploy_prod, addresses=["ann@x.example", "bob@x.example"]
    )


def accept(pipeline, **fields):
    fields = {
        "event_type": EventType.PIPELINE_FAILED,
        "level": Level.ERROR,
        "run_id": "4711",
        "run_url": "https://ci.example.com/runs/4711",
        **fields,
    }
    return event_accept(pipeline=pipeline, **fields)[0]


def accept_then_fail(pipeline, **fields):
    with transaction.atomic():
        accept(pipeline, **fields)
        raise RuntimeError("the caller's transaction fails after accepting")


def test_an_accepted_event_is_dispatched_and_sent_after_commit(
    deploy_prod, rule, mail_server, sink, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        event = accept(deploy_prod)
        assert sink.offered == []  # nothing before the commit

    event.refresh_from_db()
    assert event.dispatched_at is not None
    assert set(event.deliveries.values_list("status", flat=True)) == {DeliveryStatus.SENT}
    assert len(sink.accepted) == 2


def test_an_event_whose_transaction_rolls_back_sends_nothing(
    deploy_prod, rule, mail_server, sink, django_capture_on_commit_callbacks
):
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
    ):
        accept_then_fail(deploy_prod)

    assert callbacks == []
    assert not Event.objects.exists()
    assert events_sweep(older_than=timedelta(0)).events == []
    assert sink.offered == []


def test_with_the_broker_down_the_event_is_kept_and_the_sweep_sends_it(
    deploy_prod, rule, mail_server, sink, monkeypatch, django_capture_on_commit_callbacks
):
    def broker_down(*args):
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    with monkeypatch.context() as m:
        m.setattr(tasks.events_dispatch_task, "delay", broker_down)
        with django_capture_on_commit_callbacks(execute=True):
            event = accept(deploy_prod)

    event.refresh_from_db()
    assert event.dispatched_at is None
    assert events_sweep().events == []  # too young: its own dispatch may still come

    with django_capture_on_commit_callbacks(execute=True):
        report = events_sweep(older_than=timedelta(0))

    assert report.events == [event.pk]
    event.refresh_from_db()
    assert event.dispatched_at is not None
    assert len(sink.accepted) == 2


def test_the_sweep_skips_disabled_tenants_and_kicks_due_deliveries(
    tenant, other_tenant, deploy_prod, rule, mail_server, sink
):
    waiting = make_event(deploy_prod)
    Event.objects.filter(pk=waiting.pk).update(created_at=timezone.now() - timedelta(minutes=1))
    Tenant.objects.filter(pk=tenant.pk).update(is_active=False)
    assert events_sweep() == type(events_sweep())()  # nothing for a disabled tenant

    Tenant.objects.filter(pk=tenant.pk).update(is_active=True)
    dispatched = make_event(deploy_prod, run_id="4712")
    event_dispatch(event_id=dispatched.pk)  # its send task "was lost"
    report = events_sweep()

    assert report.events == [waiting.pk]
    assert report.tenants == [tenant.pk]
    assert Delivery.objects.filter(status=DeliveryStatus.SENT).count() == 4
    assert len(sink.accepted) == 4


def test_a_send_task_works_through_every_batch(settings, deploy_prod, mail_server, sink):
    settings.DELIVERY_BATCH_SIZE = 2
    NotificationRuleFactory(pipeline=deploy_prod, addresses=[f"p{n}@x.example" for n in range(5)])
    event_dispatch(event_id=make_event(deploy_prod).pk)

    tasks.deliveries_send_task(deploy_prod.tenant_id)

    assert Delivery.objects.filter(status=DeliveryStatus.SENT).count() == 5
    assert sink.connections == 3  # one connection per batch


@pytest.fixture
def scheduled(monkeypatch):
    calls = []
    monkeypatch.setattr(
        tasks.deliveries_send_task, "apply_async", lambda args, countdown: calls.append(countdown)
    )
    return calls


def _retry_in(event, seconds):
    event_dispatch(event_id=event.pk)
    event.deliveries.update(next_attempt_at=timezone.now() + timedelta(seconds=seconds))


def test_with_a_broker_a_send_task_comes_back_for_the_next_retry_once(deploy_prod, rule, scheduled):
    app.conf.task_always_eager = False
    _retry_in(make_event(deploy_prod), 10)

    tasks._send_again_when_due(deploy_prod.tenant_id)
    tasks._send_again_when_due(deploy_prod.tenant_id)  # another task finishing: not twice

    assert len(scheduled) == 1
    assert 8 < scheduled[0] <= 10 + tasks.PLAN_MARGIN


@pytest.fixture
def clock(monkeypatch):
    """The send tasks' clock, moved by hand (Unix time)."""
    now = [float(int(timezone.now().timestamp()) + 1)]  # a whole second
    monkeypatch.setattr(tasks, "clock", lambda: now[0])
    return now


def _two_retries(deploy_prod, clock, *offsets):
    """Two deliveries due `offsets` seconds after the clock's time."""
    event_dispatch(event_id=make_event(deploy_prod).pk)
    first, second = Delivery.objects.order_by("pk")
    for delivery, offset in zip((first, second), offsets, strict=True):
        due = datetime.fromtimestamp(clock[0] + offset, tz=UTC)
        Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=due)
    return first, second


def _run_starts_at(clock, at, tenant_id, *, sends=None):
    """The planned run starts at `at`, sends what is given and finishes."""
    clock[0] = at
    tasks._planned_run_started(tenant_id)
    if sends is not None:
        Delivery.objects.filter(pk=sends.pk).update(status=DeliveryStatus.SENT)
    tasks._send_again_when_due(tenant_id)


def test_a_retry_due_later_in_the_same_second_gets_its_own_run(deploy_prod, rule, scheduled, clock):
    app.conf.task_always_eager = False
    start = clock[0]
    first, _ = _two_retries(deploy_prod, clock, 10.1, 10.6)

    tasks._send_again_when_due(deploy_prod.tenant_id)
    assert scheduled == [pytest.approx(10.1 + tasks.PLAN_MARGIN)]

    _run_starts_at(clock, start + scheduled[0], deploy_prod.tenant_id, sends=first)
    # The next run is queued for the second retry, not left to the sweep.
    assert len(scheduled) == 2
    assert scheduled[1] == pytest.approx(0.5)


def test_a_run_that_starts_early_queues_the_retry_it_came_too_early_for(
    deploy_prod, rule, scheduled, clock
):
    app.conf.task_always_eager = False
    start = clock[0]
    _two_retries(deploy_prod, clock, 10.0, 20.0)
    tasks._send_again_when_due(deploy_prod.tenant_id)
    assert len(scheduled) == 1

    # Celery runs it 0.3 s before the retry is due: nothing to send yet.
    _run_starts_at(clock, start + 9.7, deploy_prod.tenant_id)

    assert len(scheduled) == 2
    assert scheduled[1] == pytest.approx(0.3 + tasks.PLAN_MARGIN)


def test_a_run_queued_by_another_task_does_not_delay_the_planned_one(
    deploy_prod, rule, scheduled, clock
):
    app.conf.task_always_eager = False
    start = clock[0]
    _two_retries(deploy_prod, clock, 10.0, 20.0)
    tasks._send_again_when_due(deploy_prod.tenant_id)

    # A run for a new event, long before the retry: the planned run still comes, once.
    _run_starts_at(clock, start + 2, deploy_prod.tenant_id)
    assert len(scheduled) == 1


def test_a_planned_run_that_never_came_does_not_block_the_next(deploy_prod, rule, scheduled, clock):
    app.conf.task_always_eager = False
    start = clock[0]
    _two_retries(deploy_prod, clock, 10.0, 20.0)
    tasks._send_again_when_due(deploy_prod.tenant_id)

    # The queued run was lost (a broker restart, say); a later run plans the retry again.
    clock[0] = start + 10 + tasks.PLAN_STALE + 1
    tasks._send_again_when_due(deploy_prod.tenant_id)
    assert len(scheduled) == 2


def test_retries_after_the_next_sweep_are_left_to_the_sweep(deploy_prod, rule, scheduled):
    _retry_in(make_event(deploy_prod), 600)

    tasks._send_again_when_due(deploy_prod.tenant_id)

    assert scheduled == []


def test_run_eagerly_a_send_task_never_schedules_itself(
    settings, deploy_prod, rule, mail_server, sink, scheduled
):
    settings.DELIVERY_RETRY_DELAY = 5
    sink.script = lambda number, content: "451 4.3.0 Try again later"
    event_dispatch(event_id=make_event(deploy_prod).pk)

    tasks.deliveries_send_task(deploy_prod.tenant_id)

    assert scheduled == []
    assert len(sink.offered) == 2  # one try each; the retries wait for their time


@pytest.mark.django_db(transaction=True)
def test_really_committed_or_rolled_back(deploy_prod, rule, mail_server, sink):
    """Without the test's own transaction around it: the real commit and rollback."""
    with pytest.raises(RuntimeError):
        accept_then_fail(deploy_prod, run_id="rolled-back")
    assert sink.offered == []

    accept(deploy_prod, run_id="committed")

    assert list(Event.objects.values_list("run_id", flat=True)) == ["committed"]
    assert len(sink.accepted) == 2
    assert events_sweep(older_than=timedelta(0)).events == []


@pytest.fixture
def queued(monkeypatch):
    calls = []
    monkeypatch.setattr(
        "apps.delivery.services.task_delay", lambda name, *ids: calls.append((name, *ids)) or True
    )
    return calls


def test_small_events_share_one_queued_send_task(tenant, queued):
    from apps.delivery.services import deliveries_send_soon

    deliveries_send_soon(tenant_id=tenant.pk, count=10)
    deliveries_send_soon(tenant_id=tenant.pk, count=10)
    assert queued == [("deliveries_send_task", tenant.pk)]

    tasks.deliveries_send_task(tenant.pk)  # it starts: later ones need another
    deliveries_send_soon(tenant_id=tenant.pk, count=10)
    assert len(queued) == 2


def test_a_big_fan_out_is_shared_by_several_senders(settings, tenant, queued):
    from apps.delivery.services import deliveries_send_soon

    settings.DELIVERY_BATCH_SIZE, settings.DELIVERY_SENDERS = 100, 3

    deliveries_send_soon(tenant_id=tenant.pk, count=250)

    assert queued == [("deliveries_send_task", tenant.pk)] * 3


def test_events_arriving_together_share_one_dispatch_task(
    deploy_prod, rule, mail_server, sink, queued, django_capture_on_commit_callbacks
):
    tenant_id = deploy_prod.tenant_id
    with django_capture_on_commit_callbacks(execute=True):
        first = accept(deploy_prod, run_id="1")
        second = accept(deploy_prod, run_id="2")
    assert queued == [("events_dispatch_task", tenant_id)]  # the API's answer: a cache mark

    with django_capture_on_commit_callbacks(execute=True):
        tasks.events_dispatch_task(tenant_id)  # it starts: later events need another

    assert Event.objects.filter(pk__in=[first.pk, second.pk], dispatched_at=None).count() == 0
    assert Delivery.objects.filter(event__in=[first, second]).count() == 4
    assert queued[1:] == [("deliveries_send_task", tenant_id)]  # sending queued once
    with django_capture_on_commit_callbacks(execute=True):
        accept(deploy_prod, run_id="3")
    assert queued[2:] == [("events_dispatch_task", tenant_id)]


def test_a_dispatch_task_leaves_a_disabled_tenants_events_waiting(deploy_prod, rule, queued):
    waiting = make_event(deploy_prod)
    Tenant.objects.filter(pk=deploy_prod.tenant_id).update(is_active=False)

    tasks.events_dispatch_task(deploy_prod.tenant_id)

    waiting.refresh_from_db()
    assert waiting.dispatched_at is None
    assert queued == []


def test_a_dispatch_task_takes_the_same_queries_for_one_event_or_many(deploy_prod, rule, queued):
    def dispatch(events):
        for n in range(events):
            make_event(deploy_prod, run_id=str(n))
        with CaptureQueriesContext(connection) as queries:
            tasks.events_dispatch_task(deploy_prod.tenant_id)
        return len(queries)

    dispatch(1)  # the host's settings are read, then cached
    one, twenty = dispatch(1), dispatch(20)
    assert Delivery.objects.count() == 2 * 22
    assert Event.objects.filter(dispatched_at=None).count() == 0
    # Locked, resolved, inserted and marked together: settings, rules, groups,
    # preferences and suppressions are read once for all of them.
    assert twenty == one


def test_events_of_one_task_each_get_their_own_preferences(tenant, deploy_prod, queued):
    """What one task reads once is kept per event type and level, not reused across them."""
    ann = UserFactory(email="ann@payments.example")
    MembershipFactory(tenant=tenant, user=ann)
    NotificationPreference.objects.create(
        tenant=tenant, user=ann, level="all", muted_event_types=[EventType.STAGE_FAILED]
    )
    NotificationRuleFactory(
        pipeline=deploy_prod,
        addresses=["ann@payments.example"],
        event_types=[EventType.PIPELINE_FAILED, EventType.STAGE_FAILED],
    )
    pipeline_failed = make_event(deploy_prod)
    stage_failed = make_event(deploy_prod, event_type=EventType.STAGE_FAILED, stage="deploy")
    Suppression.objects.create(
        tenant=tenant, address="ann@payments.example", reason=SuppressionReason.UNSUBSCRIBED
    )

    tasks.events_dispatch_task(tenant.pk)

    def status(event):
        return Delivery.objects.get(event=event).status

    assert status(pipeline_failed) == DeliveryStatus.SUPPRESSED
    assert status(stage_failed) == DeliveryStatus.SUPPRESSED
    Suppression.objects.all().delete()
    again = [make_event(deploy_prod, run_id="again")]
    again.append(make_event(deploy_prod, event_type=EventType.STAGE_FAILED, stage="deploy"))

    tasks.events_dispatch_task(tenant.pk)

    assert [status(event) for event in again] == [DeliveryStatus.QUEUED, DeliveryStatus.OPTED_OUT]


def test_a_burst_of_big_events_commits_as_it_goes(deploy_prod, rule, queued, monkeypatch):
    """A transaction stops after the event that takes it past DISPATCH_DELIVERIES."""
    monkeypatch.setattr(services, "DISPATCH_DELIVERIES", 3)
    events = [make_event(deploy_prod, run_id=str(n)) for n in range(5)]
    commits = []
    monkeypatch.setattr(services, "_send_soon_after_commit", lambda *args: commits.append(args))
    transactions = []
    real = services._dispatch

    def counting(event_ids, memo):
        dispatched = real(event_ids, memo)
        transactions.append(dispatched.events)
        return dispatched

    monkeypatch.setattr(services, "_dispatch", counting)

    assert services.events_dispatch(tenant_id=deploy_prod.tenant_id) == 5

    assert transactions == [2, 2, 1]  # 4 deliveries > 3: commit, go on after the second
    assert Delivery.objects.filter(event__in=events).count() == 10
    assert commits == [(deploy_prod.tenant_id, 10)]  # sending queued once, for all


def test_a_send_task_reads_the_tenants_connections_once_for_all_its_batches(
    deploy_prod, rule, mail_server, sink, settings
):
    settings.DELIVERY_BATCH_SIZE = 1
    event_dispatch(event_id=make_event(deploy_prod).pk)  # two deliveries: two batches

    with CaptureQueriesContext(connection) as queries:
        tasks.deliveries_send_task(deploy_prod.tenant_id)

    assert len(sink.accepted) == 2
    reads = [q["sql"] for q in queries if "connections_providersettings" in q["sql"]]
    assert len(reads) == 1
