"""Events and deliveries as the engine leaves them, for the delivery log's tests."""

from datetime import datetime

from django.utils import timezone

from apps.delivery.models import Delivery, DeliveryAttempt, DeliveryStatus, Event
from apps.pipelines.models import Pipeline
from apps.tenancy.models import Tenant
from tests.delivery import engine
from tests.factories import ProjectFactory


def make_pipeline(tenant: Tenant, *, name: str = "Deploy prod", project: str = "Payments"):
    """A pipeline in a project of its own, "Payments / Deploy prod" by default."""
    project_row = ProjectFactory(
        organization__tenant=tenant, name=project, slug=f"{tenant.slug}-{project.lower()}"
    )
    return engine.make_pipeline(project_row, name, name.lower().replace(" ", "-"))


def make_event(pipeline: Pipeline, *, dispatched: bool = True, **fields) -> Event:
    """An event whose recipients were found (unless told), as the log usually sees one."""
    return engine.make_event(
        pipeline, dispatched_at=timezone.now() if dispatched else None, **fields
    )


def make_deliveries(
    event: Event,
    status: str = DeliveryStatus.QUEUED,
    count: int = 1,
    *,
    prefix: str = "person",
    created_at: datetime | None = None,
    finished_at: datetime | None = None,
    **fields,
) -> list[Delivery]:
    """`count` deliveries of `event` in `status`; a final one is finished now unless told when."""
    if finished_at is None and status in (DeliveryStatus.SENT, DeliveryStatus.FAILED):
        finished_at = timezone.now()
    if status == DeliveryStatus.FAILED:
        fields = {"last_code": 550, "last_reply": "5.1.1 User unknown", **fields}
    deliveries = Delivery.objects.bulk_create(
        Delivery(
            tenant=event.tenant,
            event=event,
            address=f"{prefix}{n}@example.com",
            reason="You are on the rule “On call”.",
            status=status,
            message_id=f"<{event.pk}.{status}.{prefix}{n}@postmaster.test>",
            finished_at=finished_at,
            **fields,
        )
        for n in range(count)
    )
    if created_at is not None:
        # auto_now_add ignores a value given at creation.
        Delivery.objects.filter(pk__in=[d.pk for d in deliveries]).update(created_at=created_at)
    return deliveries


def make_attempts(deliveries: list[Delivery], *replies: tuple[str, int | None, str]) -> None:
    """One attempt per (outcome, code, reply) for each delivery, in that order."""
    now = timezone.now()
    DeliveryAttempt.objects.bulk_create(
        DeliveryAttempt(
            tenant=d.tenant,
            delivery=d,
            attempted_at=now,
            outcome=outcome,
            code=code,
            reply=reply,
            via="host",
        )
        for d in deliveries
        for outcome, code, reply in replies
    )
