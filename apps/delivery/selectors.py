"""Reads of events and deliveries for people: the delivery log, an event's progress, the chart.

Every read takes the tenant explicitly; another tenant's event or delivery
is a 404, like a missing one.
"""

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.db.models import Count, Prefetch, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce, TruncDate
from django.shortcuts import get_object_or_404
from django.utils import timezone

from apps.delivery.models import (
    FAILED_STATUSES,
    ROLLUP_ID,
    SENT_STATUSES,
    Delivery,
    DeliveryAttempt,
    DeliveryDay,
    DeliveryRollup,
    DeliveryStatus,
    Event,
)
from apps.pipelines.models import Pipeline
from apps.tenancy.models import Tenant

CHART_DAYS = 14
# The parts of an event's progress bar; what is queued or sending is the empty rest.
PROGRESS_PARTS = (
    DeliveryStatus.DELIVERED,
    DeliveryStatus.SENT,
    DeliveryStatus.UNSUBSCRIBED,
    DeliveryStatus.COMPLAINED,
    DeliveryStatus.BOUNCED,
    DeliveryStatus.REJECTED,
    DeliveryStatus.FAILED,
    DeliveryStatus.SUPPRESSED,
    DeliveryStatus.OPTED_OUT,
)
# What an email-service provider reported later (apps.webhooks), in the summary's words.
_REPORTED = (
    (DeliveryStatus.DELIVERED, "delivered"),
    (DeliveryStatus.BOUNCED, "bounced"),
    (DeliveryStatus.REJECTED, "rejected by the provider"),
    (DeliveryStatus.COMPLAINED, "marked as spam"),
    (DeliveryStatus.UNSUBSCRIBED, "unsubscribed"),
)


def _day_start(day: date) -> datetime:
    """Midnight of `day` in the current time zone: date filters keep using the index."""
    return timezone.make_aware(datetime.combine(day, time.min))


def delivery_list(
    *,
    tenant: Tenant,
    status: str = "",
    pipeline: Pipeline | None = None,
    event_id: int | None = None,
    recipient: str = "",
    date_from: date | None = None,
    date_to: date | None = None,
) -> QuerySet[Delivery]:
    """The delivery log, newest first; each filter narrows it when given.

    `recipient` matches part of the address, any case; the dates are whole
    days (both included) of when the delivery was created.
    """
    deliveries = (
        Delivery.objects.for_tenant(tenant)
        .select_related("event__pipeline__project")
        .order_by("-created_at", "-id")
    )
    if status:
        deliveries = deliveries.filter(status=status)
    if pipeline is not None:
        deliveries = deliveries.filter(event__pipeline=pipeline)
    if event_id is not None:
        deliveries = deliveries.filter(event_id=event_id)
    if recipient:
        deliveries = deliveries.filter(address__icontains=recipient.strip())
    if date_from is not None:
        deliveries = deliveries.filter(created_at__gte=_day_start(date_from))
    if date_to is not None:
        deliveries = deliveries.filter(created_at__lt=_day_start(date_to + timedelta(days=1)))
    return deliveries


def delivery_get(*, tenant: Tenant, pk: int) -> Delivery:
    return get_object_or_404(Delivery.objects.for_tenant(tenant).select_related("event"), pk=pk)


def event_get(*, tenant: Tenant, pk: int) -> Event:
    return get_object_or_404(
        Event.objects.for_tenant(tenant).select_related("pipeline__project"), pk=pk
    )


def event_deliveries(*, tenant: Tenant, event: Event, status: str = "") -> QuerySet[Delivery]:
    """An event's deliveries by address, optionally of one status.

    Each one's attempts are prefetched for the rows of a page only: one more
    query per page, whatever its length.
    """
    attempts = DeliveryAttempt.objects.for_tenant(tenant).order_by("attempted_at", "id")
    deliveries = (
        Delivery.objects.for_tenant(tenant)
        .filter(event=event)
        .prefetch_related(Prefetch("attempts", queryset=attempts))
        .order_by("address", "id")
    )
    return deliveries.filter(status=status) if status else deliveries


@dataclass(frozen=True)
class EventProgress:
    """How far an event's delivery has come, from one aggregate query."""

    dispatched: bool
    total: int
    queued: int
    sending: int
    sent: int
    failed: int
    suppressed: int
    opted_out: int
    # Reported by an email-service provider after it took the mail.
    delivered: int = 0
    bounced: int = 0
    rejected: int = 0
    complained: int = 0
    unsubscribed: int = 0

    _REPORTED_STATUSES = frozenset(status for status, _ in _REPORTED)

    @property
    def left(self) -> int:
        """Mail that left: sent, and what a provider reported about it since."""
        return self.sent + sum(getattr(self, status) for status, _ in _REPORTED)

    @property
    def pending(self) -> int:
        return self.queued + self.sending

    @property
    def running(self) -> bool:
        """Still moving: recipients not resolved yet, or deliveries waiting or being sent."""
        return not self.dispatched or self.pending > 0

    def percent(self, count: int) -> float:
        return round(100 * count / self.total, 1) if self.total else 0.0

    @property
    def summary(self) -> str:
        """ "812 of 1,000 sent, 3 failed, 2 suppressed, 1 opted out": the outcomes there are."""
        if not self.dispatched:
            return "Finding the recipients…"
        if not self.total:
            return "No recipients: no rule matched, or everyone was filtered out."
        parts = [f"{self.left:,} of {self.total:,} sent"]
        outcomes = [
            *((words, getattr(self, status)) for status, words in _REPORTED),
            ("failed", self.failed),
            ("suppressed", self.suppressed),
            ("opted out", self.opted_out),
        ]
        parts += [f"{n:,} {what}" for what, n in outcomes if n]
        if self.pending:
            parts.append(f"{self.pending:,} to go")
        return ", ".join(parts)

    def as_dict(self) -> dict:
        counts = {
            "total": self.total,
            "queued": self.queued,
            "sending": self.sending,
            "sent": self.sent,
            "failed": self.failed,
            "suppressed": self.suppressed,
            "opted_out": self.opted_out,
            **{status.value: getattr(self, status) for status, _ in _REPORTED},
        }
        return {
            **counts,
            "dispatched": self.dispatched,
            "running": self.running,
            "summary": self.summary,
            # A provider's reports only once there are some: most tenants send over SMTP.
            "percent": {
                s.value: self.percent(counts[s])
                for s in PROGRESS_PARTS
                if counts[s] or s not in self._REPORTED_STATUSES
            },
        }


def event_progress(*, tenant: Tenant | int, event: Event) -> EventProgress:
    counts = (
        Delivery.objects.for_tenant(tenant)
        .filter(event=event)
        .aggregate(
            total=Count("id"),
            **{s.value: Count("id", filter=Q(status=s)) for s in DeliveryStatus},
        )
    )
    return EventProgress(dispatched=event.dispatched_at is not None, **counts)


@dataclass(frozen=True)
class DayCount:
    day: date
    sent: int
    failed: int


def delivery_daily_counts(*, tenant: Tenant, days: int = CHART_DAYS) -> list[DayCount]:
    """Deliveries finished sent and failed per day, the last `days` days up to today.

    Days already rolled up come from DeliveryDay (they outlive the deliveries:
    retention); the days since (today, and yesterday in its first hour) are
    counted from the deliveries through the `delivery_finished` index. One
    query, whatever the history. Days without any are there with zeros, so a
    chart has every day.
    """
    today = timezone.localdate()
    first = today - timedelta(days=days - 1)
    rollup = DeliveryRollup.objects.filter(pk=ROLLUP_ID)
    rolled = (
        DeliveryDay.objects.for_tenant(tenant)
        .filter(day__gte=first, day__lte=Subquery(rollup.values("rolled_through")))
        .values_list("day", "sent", "failed")
        .order_by()
    )
    since = _day_start(first)
    live = (
        Delivery.objects.for_tenant(tenant)
        .filter(status__in=[*SENT_STATUSES, *FAILED_STATUSES], finished_at__gte=since)
        .filter(finished_at__gte=Coalesce(Subquery(rollup.values("rolled_before")), Value(since)))
        .annotate(day=TruncDate("finished_at"))
        .values("day")
        .annotate(
            sent=Count("id", filter=Q(status__in=SENT_STATUSES)),
            failed=Count("id", filter=Q(status__in=FAILED_STATUSES)),
        )
        .values_list("day", "sent", "failed")
        .order_by()
    )
    # The rolled-up days end where the live ones start: no day is in both.
    by_day = {day: (sent, failed) for day, sent, failed in rolled.union(live, all=True).order_by()}
    result = []
    for n in range(days):
        day = first + timedelta(days=n)
        sent, failed = by_day.get(day, (0, 0))
        result.append(DayCount(day=day, sent=sent, failed=failed))
    return result
