"""Reads for the events API, always within the token's tenant and project."""

from django.db import connection

from apps.delivery.models import Delivery, Event
from apps.pipelines.models import Pipeline, ProjectApiToken

# Written once, as for the token: the ORM would spend more building this
# query than the database spends answering it, on every event posted.
_PIPELINE_SQL = f"""
    SELECT id, tenant_id, project_id, slug FROM {Pipeline._meta.db_table}
    WHERE tenant_id = %s AND project_id = %s AND slug = %s
"""  # noqa: S608 (no input is formatted in, only the model's table name)


def api_pipeline_get(*, token: ProjectApiToken, slug: str) -> Pipeline | None:
    """The token's project's pipeline `slug`; its other fields load on first use."""
    with connection.cursor() as cursor:
        cursor.execute(_PIPELINE_SQL, [token.tenant_id, token.project_id, slug])
        row = cursor.fetchone()
    if row is None:
        return None
    return Pipeline.from_db(connection.alias, ["id", "tenant_id", "project_id", "slug"], list(row))


def api_event_get(*, token: ProjectApiToken, event_id: int) -> Event | None:
    return (
        Event.objects.for_tenant(token.tenant_id)
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
