"""Taking in an event: stored in the transaction that accepts it, dispatched after.

Nothing accepted is lost: if the broker cannot be reached when the
transaction commits, the event stays undispatched and the periodic sweep
(`events_sweep`) dispatches it later.
"""

from datetime import timedelta

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from apps.delivery.models import Event
from apps.delivery.services import events_dispatch_soon
from apps.pipelines.models import Pipeline

# The same idempotency key within this window answers the same event.
IDEMPOTENCY_WINDOW = timedelta(hours=24)


def _dispatch_later(tenant_id: int) -> None:
    # Mostly a cache mark: one dispatch task takes all of the tenant's new events.
    # If the broker is down, the sweep dispatches the event later.
    events_dispatch_soon(tenant_id=tenant_id)


def event_accept(
    *,
    pipeline: Pipeline,
    event_type: str,
    level: str,
    run_id: str,
    run_url: str,
    message: str = "",
    stage: str = "",
    idempotency_key: str | None = None,
) -> tuple[Event, bool]:
    """Store an event and schedule its dispatch; (event, created).

    With an idempotency key seen within the window, the earlier event is
    answered and nothing is created. Input is validated by the caller (the
    API's schema); the database constraints are the last word.
    """
    fields = {
        "tenant_id": pipeline.tenant_id,
        "project_id": pipeline.project_id,
        "pipeline": pipeline,
        "event_type": event_type,
        "level": level,
        "run_id": run_id,
        "run_url": run_url,
        "message": message,
        "stage": stage,
    }
    key = idempotency_key or None
    if key is None:
        # One INSERT: atomic on its own, no transaction or savepoint needed.
        event = _insert(fields)
    else:
        event, created = _accept_once(pipeline, key, fields)
        if not created:
            return event, False
    tenant_id = event.tenant_id
    transaction.on_commit(lambda: _dispatch_later(tenant_id))
    return event, True


# The events API's one write, in SQL written once: Model.save() spends more CPU
# building this INSERT than the database spends running it, on every event posted
# (`make bench --only api`). A column added without a database default fails here
# loudly, in every intake test.
_INSERTED = (
    "tenant_id",
    "project_id",
    "pipeline_id",
    "event_type",
    "level",
    "run_id",
    "run_url",
    "message",
    "stage",
    "created_at",
)
_INSERT_SQL = (
    f"INSERT INTO {Event._meta.db_table} ({', '.join(_INSERTED)}, recipient_count) "  # noqa: S608
    f"VALUES ({', '.join(['%s'] * len(_INSERTED))}, 0) RETURNING id"
)


def _insert(fields: dict) -> Event:
    event = Event(**fields, created_at=timezone.now())
    values = [getattr(event, column) for column in _INSERTED]
    values[-1] = connection.ops.adapt_datetimefield_value(event.created_at)
    with connection.cursor() as cursor:
        cursor.execute(_INSERT_SQL, values)
        event.pk = cursor.fetchone()[0]
    event._state.adding = False
    event._state.db = connection.alias
    return event


@transaction.atomic
def _accept_once(pipeline: Pipeline, key: str, fields: dict) -> tuple[Event, bool]:
    earlier = Event.objects.filter(project_id=pipeline.project_id, idempotency_key=key).first()
    if earlier is not None:
        if earlier.created_at >= timezone.now() - IDEMPOTENCY_WINDOW:
            return earlier, False
        # Expired: the key is free again.
        earlier.idempotency_key = None
        earlier.save(update_fields=["idempotency_key"])
    try:
        with transaction.atomic():
            return Event.objects.create(**fields, idempotency_key=key), True
    except IntegrityError:
        # A concurrent request with the same key was first: answer its event.
        return Event.objects.get(project_id=pipeline.project_id, idempotency_key=key), False
