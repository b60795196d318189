"""Helpers for the delivery engine's tests: pipelines, events, group members, sending it all."""

from apps.delivery.models import Delivery, Event
from apps.delivery.services import deliveries_send, event_dispatch
from apps.groups.models import UserGroupMember
from apps.pipelines.models import EventType, Level, Pipeline
from tests.factories import UserFactory


def make_pipeline(project, name, slug, **fields) -> Pipeline:
    return Pipeline.objects.create(
        tenant=project.tenant, project=project, name=name, slug=slug, **fields
    )


def make_event(pipeline, **fields) -> Event:
    fields = {
        "event_type": EventType.PIPELINE_FAILED,
        "level": Level.ERROR,
        "run_id": "4711",
        "run_url": "https://ci.example.com/payments/deploy-prod/runs/4711",
        "message": "Migration 0042 failed.",
        **fields,
    }
    return Event.objects.create(
        tenant=pipeline.tenant, project=pipeline.project, pipeline=pipeline, **fields
    )


def add_members(group, *emails, active=True) -> list:
    users = [UserFactory(email=email, is_active=active) for email in emails]
    UserGroupMember.objects.bulk_create(
        UserGroupMember(tenant=group.tenant, group=group, user=user) for user in users
    )
    return users


def send_all(tenant_id, *, rounds=50) -> None:
    """Send until nothing is due (retries are due at once in these tests)."""
    for _ in range(rounds):
        if not deliveries_send(tenant_id=tenant_id).claimed:
            return
    raise AssertionError(f"deliveries were still due after {rounds} rounds")


def deliver(event) -> list[Delivery]:
    """Dispatch the event and send everything; its deliveries, by address."""
    event_dispatch(event_id=event.pk)
    send_all(event.tenant_id)
    return list(event.deliveries.order_by("address"))
