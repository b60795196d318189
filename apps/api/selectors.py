"""Reads for the events API, always within the token's tenant and project."""

from apps.delivery.models import Delivery, Event
from apps.pipelines.models import Pipeline, ProjectApiToken


def api_pipeline_get(*, token: ProjectApiToken, slug: str) -> Pipeline | None:
    return (
        Pipeline.objects.for_tenant(token.tenant)
        .filter(project_id=token.project_id, slug=slug)
        .first()
    )


def api_event_get(*, token: ProjectApiToken, event_id: int) -> Event | None:
    return (
        Event.objects.for_tenant(token.tenant)
        .filter(project_id=token.project_id, pk=event_id)
        .select_related("pipeline")
        .first()
    )


def event_deliveries_page(*, event: Event, limit: int, offset: int) -> list[Delivery]:
    deliveries = (
        Delivery.objects.for_tenant(event.tenant_id)
        .filter(event=event)
        .order_by("id")
        .only("address", "status", "attempt_count", "last_code", "last_reply", "finished_at")
    )
    return list(deliveries[offset : offset + limit])
