"""Celery tasks of the delivery engine: thin, ids only, the services do the work.

Never a credential through the broker: the worker reads the SMTP settings
(and decrypts the password) itself. Retries are not Celery retries but
deliveries' `next_attempt_at`, picked up by the task re-scheduling itself
or by the periodic sweep; run eagerly (no broker), nothing re-schedules.
"""

import time

from celery import shared_task
from django.core.cache import cache
from django.utils import timezone

from apps.delivery.queue import deliveries_next_due_at
from apps.delivery.services import (
    deliveries_send,
    deliveries_send_started,
    event_dispatch,
    events_dispatch,
    events_sweep,
)
from apps.operations.selectors import maintenance_is_on
from config.celery import SWEEP_SECONDS

# A send task yields its worker after this long (queueing itself again), so
# one tenant's big fan-out does not starve the others.
SEND_TASK_SECONDS = 60


@shared_task
def event_dispatch_task(event_id: int) -> None:
    # Tasks queued before dispatch was coalesced per tenant (events_dispatch_task).
    event_dispatch(event_id=event_id)


@shared_task
def events_dispatch_task(tenant_id: int) -> None:
    events_dispatch(tenant_id=tenant_id)


@shared_task
def deliveries_send_task(tenant_id: int) -> None:
    """Send the tenant's due deliveries, batch after batch, until none is due.

    Nothing is claimed in maintenance mode: the mail waits, queued, until
    switching it off (or the sweep after) queues this task again.
    """
    deliveries_send_started(tenant_id=tenant_id)
    eager = deliveries_send_task.app.conf.task_always_eager
    stop_at = time.monotonic() + SEND_TASK_SECONDS
    memo: dict = {}  # the tenant's connections, read once for every batch
    while (
        not (paused := maintenance_is_on())
        and deliveries_send(tenant_id=tenant_id, memo=memo).claimed
    ):
        if not eager and time.monotonic() > stop_at:
            deliveries_send_task.delay(tenant_id)
            return
    if not eager and not paused:
        _send_again_when_due(tenant_id)


def _send_again_when_due(tenant_id: int) -> None:
    """Queue the next run for the tenant's earliest retry, if it comes before the next sweep."""
    due_at = deliveries_next_due_at(tenant_id=tenant_id)
    if due_at is None:
        return
    countdown = max(1.0, (due_at - timezone.now()).total_seconds())
    if countdown > SWEEP_SECONDS:
        return  # The sweep will.
    # One scheduled run per tenant and second, however many tasks finish now.
    key = f"delivery:send-at:{tenant_id}:{int(due_at.timestamp())}"
    if cache.add(key, 1, timeout=SWEEP_SECONDS * 2):
        deliveries_send_task.apply_async((tenant_id,), countdown=countdown)


@shared_task
def events_sweep_task() -> None:
    events_sweep()
