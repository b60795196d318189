"""Retention of deliveries, attempts and events, and the daily roll-ups the dashboard keeps.

The whole run is apps.operations.services.data_retention_run (roll-ups first, then
deletion); these tests look at what it does to the delivery tables.
"""

import re
import threading
from datetime import timedelta
from importlib import import_module
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from apps.core.migration_operations import AddIndexConcurrently
from apps.core.retention import Budget
from apps.delivery.lifecycle import ROLLUP_GRACE, deliveries_purge
from apps.delivery.models import (
    FINAL_STATUSES,
    Delivery,
    DeliveryAttempt,
    DeliveryDay,
    DeliveryRollup,
    DeliveryStatus,
    Event,
)
from apps.delivery.selectors import delivery_daily_counts
from apps.operations.services import data_retention_run
from apps.tenancy.services import tenant_retention_update
from tests.delivery.log_records import make_attempts, make_deliveries, make_event, make_pipeline

pytestmark = pytest.mark.django_db

SENT, FAILED, QUEUED, SENDING = (
    DeliveryStatus.SENT,
    DeliveryStatus.FAILED,
    DeliveryStatus.QUEUED,
    DeliveryStatus.SENDING,
)
ATTEMPT = ("sent", 250, "2.0.0 OK")


def ago(days: float):
    return timezone.now() - timedelta(days=days)


def old_event(pipeline, days: float, **fields) -> Event:
    event = make_event(pipeline, **fields)
    Event.objects.filter(pk=event.pk).update(created_at=ago(days))
    return event


def old_deliveries(event, status, count, days: float, prefix: str, **fields):
    at = ago(days)
    finished = at if status not in (QUEUED, SENDING) else None
    return make_deliveries(
        event, status, count, prefix=prefix, created_at=at, finished_at=finished, **fields
    )


def exists(rows) -> list[bool]:
    return [type(row).objects.filter(pk=row.pk).exists() for row in rows]


def test_old_finished_deliveries_go_with_their_attempts_and_events_the_rest_stays(
    tenant, deploy_prod
):
    gone_event = old_event(deploy_prod, 100)
    gone = old_deliveries(gone_event, SENT, 2, 100, "sent")
    gone += old_deliveries(gone_event, FAILED, 1, 100, "failed")
    make_attempts(gone, ATTEMPT)
    # Still being retried, although it is as old: kept, with its attempts and its event.
    retried_event = old_event(deploy_prod, 100, run_id="4712")
    retried = old_deliveries(
        retried_event, QUEUED, 1, 100, "retried", next_attempt_at=timezone.now()
    )
    make_attempts(retried, ("timed_out", None, "The server did not answer."))
    done_too = old_deliveries(retried_event, SENT, 1, 100, "done")
    sending_event = old_event(deploy_prod, 100, run_id="4713")
    sending = old_deliveries(sending_event, SENDING, 1, 100, "sending")
    # Recent: kept.
    recent_event = make_event(deploy_prod, run_id="4714")
    recent = make_deliveries(recent_event, SENT, 2, prefix="recent")
    make_attempts(recent, ATTEMPT)
    # Old, but its recipients were never resolved: the sweep still owes it a dispatch.
    undispatched = old_event(deploy_prod, 100, run_id="4715", dispatched=False)

    report = data_retention_run()

    assert report.deleted["deliveries"] == 4
    assert report.deleted["attempts"] == 3
    assert report.deleted["events"] == 1
    assert report.finished
    assert exists(gone) == [False] * 3
    assert exists(done_too) == [False]
    assert not Event.objects.filter(pk=gone_event.pk).exists()
    assert exists([*retried, *sending, *recent]) == [True] * 4
    assert exists([retried_event, sending_event, recent_event, undispatched]) == [True] * 4
    assert DeliveryAttempt.objects.filter(delivery__in=retried).count() == 1
    assert DeliveryAttempt.objects.filter(delivery__in=recent).count() == 2


def test_a_tenants_own_period_wins_over_the_host_default(
    settings, tenant, other_tenant, deploy_prod, system_admin
):
    settings.DELIVERY_RETENTION_DAYS = 90
    tenant_retention_update(tenant=tenant, days=30, actor=system_admin)
    ours = old_deliveries(make_event(deploy_prod), SENT, 1, 40, "ours")
    theirs = old_deliveries(make_event(make_pipeline(other_tenant)), SENT, 1, 40, "theirs")
    ours_young = old_deliveries(make_event(deploy_prod, run_id="2"), SENT, 1, 20, "young")

    data_retention_run()

    assert exists([*ours, *theirs, *ours_young]) == [False, True, True]
    # Longer than the host's default: kept past it.
    tenant_retention_update(tenant=other_tenant, days=365, actor=system_admin)
    older = old_deliveries(
        make_event(make_pipeline(other_tenant, project="Web")), SENT, 1, 200, "o"
    )
    data_retention_run()
    assert exists([*theirs, *older]) == [True, True]
    tenant_retention_update(tenant=other_tenant, days=None, actor=system_admin)
    data_retention_run()
    assert exists([*theirs, *older]) == [True, False]


def test_the_dashboards_chart_is_the_same_after_the_deliveries_are_deleted(
    settings, client, tenant, tenant_admin, deploy_prod
):
    settings.DELIVERY_RETENTION_DAYS = 2
    for days, sent, failed in [(1, 3, 1), (4, 2, 0), (9, 0, 2), (13, 5, 1), (20, 7, 7)]:
        event = old_event(deploy_prod, days, run_id=str(days))
        old_deliveries(event, SENT, sent, days, "s")
        old_deliveries(event, FAILED, failed, days, "f")
    today = make_event(deploy_prod, run_id="today")
    make_deliveries(today, SENT, 4, prefix="today")
    make_deliveries(today, DeliveryStatus.BOUNCED, 1, prefix="bounced", finished_at=timezone.now())
    client.force_login(tenant_admin)
    url = reverse("tenancy:dashboard", args=[tenant.slug])
    before = delivery_daily_counts(tenant=tenant)
    chart_before = client.get(url).context["delivery_chart"]

    report = data_retention_run()

    assert report.deleted["deliveries"] >= 2 + 2 + 6 + 14
    assert not Delivery.objects.filter(created_at__lt=ago(3)).exists()
    assert delivery_daily_counts(tenant=tenant) == before
    chart_after = client.get(url).context["delivery_chart"]
    assert chart_after == chart_before
    assert (chart_after.total_sent, chart_after.total_failed) == (3 + 2 + 5 + 4, 1 + 2 + 1 + 1)
    # Each day that is over was counted once; the next run adds nothing.
    rolled = DeliveryRollup.objects.get()
    assert rolled.rolled_through == timezone.localdate(timezone.now() - ROLLUP_GRACE) - timedelta(
        days=1
    )
    days = list(DeliveryDay.objects.values_list("day", "sent", "failed"))
    assert data_retention_run().days_rolled_up == 0
    assert list(DeliveryDay.objects.values_list("day", "sent", "failed")) == days
    assert delivery_daily_counts(tenant=tenant) == before


def test_the_chart_counts_today_live_and_earlier_days_from_the_roll_up(tenant, event_today):
    data_retention_run()
    # Mail finished today after the roll-up is on the chart at once.
    make_deliveries(event_today, FAILED, 2, prefix="later")
    assert delivery_daily_counts(tenant=tenant)[-1].failed == 2
    # A day rolled up is read from DeliveryDay, not from the deliveries.
    yesterday = timezone.localdate() - timedelta(days=1)
    DeliveryRollup.objects.update(rolled_through=yesterday)
    DeliveryDay.objects.create(tenant=tenant, day=yesterday, sent=11, failed=1)
    counts = delivery_daily_counts(tenant=tenant)
    assert (counts[-2].sent, counts[-2].failed) == (11, 1)


@pytest.fixture
def event_today(deploy_prod):
    return make_event(deploy_prod)


def test_a_small_batch_and_budget_stop_a_run_and_the_next_goes_on(tenant, deploy_prod):
    event = old_event(deploy_prod, 100)
    deliveries = old_deliveries(event, SENT, 7, 100, "many")
    make_attempts(deliveries, ATTEMPT)

    first = data_retention_run(batch_size=3, budget_seconds=0)

    assert not first.finished
    assert first.deleted["deliveries"] == 3
    assert first.deleted["attempts"] == 3
    assert "the rest goes in the next run" in str(first)
    runs = [first]
    while not runs[-1].finished and len(runs) < 200:
        runs.append(data_retention_run(batch_size=3, budget_seconds=0))
    assert runs[-1].finished
    assert sum(run.deleted["deliveries"] for run in runs) == 7
    assert sum(run.deleted["events"] for run in runs) == 1
    assert not Delivery.objects.exists()
    assert not Event.objects.exists()


def test_nothing_is_deleted_before_its_day_is_rolled_up(settings, tenant, deploy_prod):
    settings.DELIVERY_RETENTION_DAYS = 1
    kept = old_deliveries(make_event(deploy_prod), SENT, 2, 3, "kept")
    # The roll-up never got past four days ago (it had not run since).
    DeliveryRollup.objects.create(
        rolled_through=timezone.localdate() - timedelta(days=4),
        rolled_before=timezone.now() - timedelta(days=4),
    )
    purged = deliveries_purge(now=timezone.now(), batch_size=10, budget=Budget(60))

    assert purged.deliveries == 0
    assert exists(kept) == [True, True]


@pytest.mark.usefixtures("mail_server")
def test_the_sweep_runs_retention(tenant, deploy_prod, eager):
    gone = old_deliveries(old_event(deploy_prod, 100), SENT, 2, 100, "gone")
    out = StringIO()

    call_command("delivery_sweep", stdout=out)

    assert exists(gone) == [False, False]
    assert "Retention: deleted 2 deliveries, 1 events" in out.getvalue()


@pytest.mark.services
def test_on_postgresql_indexes_built_concurrently_serve_the_chart_retention_and_alerts(tenant):
    migration = import_module("apps.delivery.migrations.0009_delivery_lifecycle_indexes")
    assert migration.Migration.atomic is False
    assert all(isinstance(op, AddIndexConcurrently) for op in migration.Migration.operations)
    now = timezone.now()
    # Either index that starts with the tenant and the filtered column serves (the planner
    # picks between them by their sizes).
    today = Delivery.objects.filter(tenant=tenant, status__in=[SENT], finished_at__gte=now)
    assert re.search(r"using (delivery_finished|delivery_status_recent) ", _plan(today))
    old = Delivery.objects.filter(tenant=tenant, status__in=FINAL_STATUSES, created_at__lt=now)
    assert re.search(r"using (delivery_status_recent|delivery_recent) ", _plan(old))
    window = DeliveryAttempt.objects.filter(attempted_at__gte=now)
    assert "delivery_attempt_time" in _plan(window)
    # The chart reads the deliveries only from where the roll-up ends, through the index.
    with CaptureQueriesContext(connection) as chart:
        delivery_daily_counts(tenant=tenant)
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN {chart.captured_queries[-1]['sql']}")
        plan = [row[0] for row in cursor.fetchall()]
    # On a table this small the planner may pick either tenant index; never the whole table.
    assert not any("Seq Scan on delivery_delivery" in line for line in plan), plan
    scans = [n for n, line in enumerate(plan) if "on delivery_delivery" in line]
    assert scans, plan
    if "using delivery_finished" in plan[scans[0]]:
        assert "COALESCE" in plan[scans[0] + 1]  # its Index Cond: after the rolled-up days
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_index WHERE indisvalid AND indexrelid::regclass::text "
            "IN ('delivery_finished', 'delivery_attempt_time')"
        )
        assert cursor.fetchone()[0] == 2


def _plan(rows) -> str:
    """The plan PostgreSQL would choose were the table big (no sequential scan)."""
    sql, params = rows.order_by().query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN {sql}", params)
        return "\n".join(row[0] for row in cursor.fetchall())


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_retention_never_waits_for_a_delivery_the_engine_holds(tenant, deploy_prod):
    event = old_event(deploy_prod, 100)
    held, *free = old_deliveries(event, SENT, 3, 100, "held")
    DeliveryRollup.objects.create(rolled_through=timezone.localdate(), rolled_before=timezone.now())
    locked, release = threading.Event(), threading.Event()

    def engine():
        try:
            with transaction.atomic():
                Delivery.objects.select_for_update().get(pk=held.pk)
                locked.set()
                release.wait(timeout=30)
        finally:
            connections.close_all()

    worker = threading.Thread(target=engine)
    worker.start()
    try:
        assert locked.wait(timeout=10)
        purged = deliveries_purge(now=timezone.now(), batch_size=10, budget=Budget(60))
    finally:
        release.set()
        worker.join(timeout=10)

    assert purged.deliveries == 2
    assert exists([held, *free]) == [True, False, False]
    # The next run takes it, and then its event.
    purged = deliveries_purge(now=timezone.now(), batch_size=10, budget=Budget(60))
    assert (purged.deliveries, purged.events) == (1, 1)
