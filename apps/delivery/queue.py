"""Reads of the engine's queue: what a worker may claim, and when next."""

from datetime import datetime

from django.db.models import Count, Min, Q
from django.utils import timezone

from apps.delivery.models import Delivery, DeliveryStatus


def deliveries_due_q(now: datetime) -> Q:
    """Deliveries a worker may claim: queued and due, or claimed by a worker whose lease ran out."""
    queued_due = Q(status=DeliveryStatus.QUEUED) & (
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    )
    return queued_due | Q(status=DeliveryStatus.SENDING, lease_expires_at__lt=now)


def deliveries_next_due_at(*, tenant_id: int) -> datetime | None:
    """When the tenant's next delivery may be claimed; None when nothing waits."""
    queued = Q(status=DeliveryStatus.QUEUED)
    sending = Q(status=DeliveryStatus.SENDING)
    found = Delivery.objects.filter(queued | sending, tenant_id=tenant_id).aggregate(
        now=Count("pk", filter=queued & Q(next_attempt_at__isnull=True)),
        retry=Min("next_attempt_at", filter=queued),
        lease=Min("lease_expires_at", filter=sending),
    )
    if found["now"]:
        return timezone.now()
    times = [found["retry"], found["lease"]]
    return min((t for t in times if t is not None), default=None)


def deliveries_next_due_anywhere() -> datetime | None:
    """When any tenant's next queued delivery is due (None: nothing waits for a time)."""
    return Delivery.objects.filter(
        status=DeliveryStatus.QUEUED, next_attempt_at__isnull=False
    ).aggregate(at=Min("next_attempt_at"))["at"]
