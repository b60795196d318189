"""The delivery records' life after sending: daily roll-ups, then retention.

Each day that is over is counted once into `DeliveryDay` (per tenant: sent and
failed, as the dashboard's chart counts them); the chart reads those and
counts only the days since from the deliveries. Retention then deletes a
tenant's finished deliveries (with their attempts) older than its period, and
the events left without deliveries: never a delivery still queued or sending,
never one of a day not rolled up yet. Both run from
apps.operations.services.data_retention_run.
"""

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Exists, OuterRef, Q
from django.utils import timezone

from apps.core.retention import Budget
from apps.delivery.models import (
    FAILED_STATUSES,
    FINAL_STATUSES,
    ROLLUP_ID,
    SENT_STATUSES,
    Delivery,
    DeliveryAttempt,
    DeliveryDay,
    DeliveryRollup,
    Event,
)
from apps.tenancy.models import Tenant

# A day is rolled up this long after it ended: an outcome recorded at its last
# moment has been written by then.
ROLLUP_GRACE = timedelta(hours=1)


def day_start(day: date) -> datetime:
    """Midnight of `day` in the current time zone (the chart's days)."""
    return timezone.make_aware(datetime.combine(day, time.min))


@dataclass(frozen=True)
class Finished:
    sent: int = 0
    failed: int = 0


def deliveries_finished_count(*, tenant_id: int, start: datetime, end: datetime) -> Finished:
    """The tenant's deliveries finished sent and failed in [start, end) (`delivery_finished`)."""
    counts = (
        Delivery.objects.for_tenant(tenant_id)
        .filter(
            finished_at__gte=start,
            finished_at__lt=end,
            status__in=[*SENT_STATUSES, *FAILED_STATUSES],
        )
        .aggregate(
            sent=Count("pk", filter=Q(status__in=SENT_STATUSES)),
            failed=Count("pk", filter=Q(status__in=FAILED_STATUSES)),
        )
    )
    return Finished(**counts)


@dataclass
class RolledUp:
    days: int = 0
    done: bool = True


def delivery_days_roll_up(*, now: datetime, budget: Budget) -> RolledUp:
    """Count each day that is over (and ROLLUP_GRACE more) into DeliveryDay, once.

    The first run starts at the day the oldest delivery finished. One transaction per
    day, for every tenant; at least one day per run, more while `budget` lasts.
    """
    last = timezone.localdate(now - ROLLUP_GRACE) - timedelta(days=1)
    state, _ = DeliveryRollup.objects.get_or_create(pk=ROLLUP_ID)
    if state.rolled_through is None:
        oldest = _oldest_finished()
        if oldest is None:
            _rolled(state, last)
            return RolledUp()
        _rolled(state, timezone.localdate(oldest) - timedelta(days=1))
    report = RolledUp()
    tenant_ids = list(Tenant.objects.order_by("pk").values_list("pk", flat=True))
    while True:
        with transaction.atomic():
            # One roll-up at a time: a second run waits here, then finds the day done.
            locked = DeliveryRollup.objects.select_for_update().get(pk=ROLLUP_ID)
            day = locked.rolled_through + timedelta(days=1)
            if day > last:
                return report
            start, end = day_start(day), day_start(day + timedelta(days=1))
            rows = []
            for tenant_id in tenant_ids:
                finished = deliveries_finished_count(tenant_id=tenant_id, start=start, end=end)
                if finished.sent or finished.failed:
                    rows.append(
                        DeliveryDay(
                            tenant_id=tenant_id, day=day, sent=finished.sent, failed=finished.failed
                        )
                    )
            DeliveryDay.objects.bulk_create(rows)
            _rolled(locked, day)
        report.days += 1
        if not budget.left():
            report.done = day >= last
            return report


def _oldest_finished() -> datetime | None:
    """When the first delivery finished: each tenant's through `delivery_finished`."""
    firsts = (
        Delivery.objects.for_tenant(tenant_id)
        .filter(finished_at__isnull=False)
        .order_by("finished_at")
        .values_list("finished_at", flat=True)
        .first()
        for tenant_id in Tenant.objects.values_list("pk", flat=True)
    )
    return min((first for first in firsts if first is not None), default=None)


def _rolled(state: DeliveryRollup, day: date) -> None:
    state.rolled_through = day
    state.rolled_before = day_start(day + timedelta(days=1))
    state.save(update_fields=["rolled_through", "rolled_before"])


@dataclass
class DeliveriesPurged:
    deliveries: int = 0
    attempts: int = 0
    events: int = 0
    done: bool = True


def deliveries_purge(*, now: datetime, batch_size: int, budget: Budget) -> DeliveriesPurged:
    """Delete every tenant's finished deliveries, their attempts and events past retention.

    A tenant's period is its own `delivery_retention_days`, or the host's
    DELIVERY_RETENTION_DAYS. Deliveries go `batch_size` at a time, each batch
    in its own short transaction (rows another transaction holds are skipped,
    for the next run); only those finished on a day already rolled up. An
    event goes once it is past the period and has no delivery left.
    """
    report = DeliveriesPurged()
    rolled_before = (
        DeliveryRollup.objects.filter(pk=ROLLUP_ID).values_list("rolled_before", flat=True).first()
    )
    if rolled_before is None:
        return report  # nothing rolled up yet: the chart still needs every row
    tenants = Tenant.objects.order_by("pk").values_list("pk", "delivery_retention_days")
    for tenant_id, days in tenants:
        cutoff = now - timedelta(days=days or settings.DELIVERY_RETENTION_DAYS)
        while True:
            deleted, attempts = _deliveries_batch(tenant_id, cutoff, rolled_before, batch_size)
            report.deliveries += deleted
            report.attempts += attempts
            if deleted < batch_size:
                break
            if not budget.left():
                report.done = False
                return report
        while True:
            deleted = _events_batch(tenant_id, cutoff, batch_size)
            report.events += deleted
            if deleted < batch_size:
                break
            if not budget.left():
                report.done = False
                return report
    return report


def _deliveries_batch(
    tenant_id: int, cutoff: datetime, rolled_before: datetime, batch_size: int
) -> tuple[int, int]:
    """One batch of old finished deliveries and their attempts: (deliveries, attempts).

    Served by the `delivery_log` index (tenant, status, created_at).
    """
    with transaction.atomic():
        ids = list(
            Delivery.objects.for_tenant(tenant_id)
            .filter(status__in=FINAL_STATUSES, created_at__lt=cutoff)
            .filter(Q(finished_at__lt=rolled_before) | Q(finished_at__isnull=True))
            .order_by()
            .select_for_update(skip_locked=True)
            .values_list("pk", flat=True)[:batch_size]
        )
        if not ids:
            return 0, 0
        attempts = (
            DeliveryAttempt.objects.for_tenant(tenant_id).filter(delivery_id__in=ids).delete()[0]
        )
        # Their attempts are gone, so no cascade to collect: one plain DELETE.
        deliveries = Delivery.objects.filter(pk__in=ids)._raw_delete(Delivery.objects.db)
    return deliveries, attempts


def _events_batch(tenant_id: int, cutoff: datetime, batch_size: int) -> int:
    """One batch of old dispatched events with no delivery left (index `delivery_event_recent`)."""
    with transaction.atomic():
        ids = list(
            Event.objects.for_tenant(tenant_id)
            .filter(created_at__lt=cutoff, dispatched_at__isnull=False)
            .exclude(Exists(Delivery.objects.filter(event=OuterRef("pk"))))
            .order_by()
            .select_for_update(skip_locked=True)
            .values_list("pk", flat=True)[:batch_size]
        )
        if not ids:
            return 0
        return Event.objects.filter(pk__in=ids)._raw_delete(Event.objects.db)
