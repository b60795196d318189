"""Celery tasks of the delivery engine: thin, ids only, the services do the work.

Never a credential through the broker: the worker reads the SMTP settings
(and decrypts the password) itself. Retries are not Celery retries but
deliveries' `next_attempt_at`, picked up by the task re-scheduling itself
or by the periodic sweep; run eagerly (no broker), nothing re-schedules.
"""

import time

from celery import shared_task
from django.core.cache import cache

from apps.delivery.hooks import sending_paused
from apps.delivery.queue import deliveries_next_due_at
from apps.delivery.services import (
    deliveries_send,
    deliveries_send_started,
    events_dispatch,
    events_sweep,
)
from config.celery import SWEEP_SECONDS

# A send task yields its worker after this long (queueing itself again), so
# one tenant's big fan-out does not starve the others.
SEND_TASK_SECONDS = 60


@shared_task
def events_dispatch_task(tenant_id: int) -> None:
    events_dispatch(tenant_id=tenant_id)


@shared_task
def deliveries_send_task(tenant_id: int) -> None:
    """Send the tenant's due deliveries, batch after batch, until none is due.

    Nothing is claimed in maintenance mode (a pause check operations registers in
    apps/delivery/hooks.py): the mail waits, queued, until
    switching it off (or the sweep after) queues this task again.
    """
    _planned_run_started(tenant_id)
    deliveries_send_started(tenant_id=tenant_id)
    eager = deliveries_send_task.app.conf.task_always_eager
    stop_at = time.monotonic() + SEND_TASK_SECONDS
    memo: dict = {}  # the tenant's connections, read once for every batch
    while (
        not (paused := sending_paused()) and deliveries_send(tenant_id=tenant_id, memo=memo).claimed
    ):
        if not eager and time.monotonic() > stop_at:
            deliveries_send_task.delay(tenant_id)
            return
    if not eager and not paused:
        _send_again_when_due(tenant_id)


# When the tenant's next run is planned (a Unix time), so the send tasks that
# finish at once queue one run for the next retry, not one each.
PLAN_KEY = "delivery:send-planned:{tenant_id}"
# A run is queued this long after the retry it is for is due, so it never starts before.
PLAN_MARGIN = 0.05
# A run starting up to this long before a planned one is taken for it (Celery's timer
# may fire a little early); the planned run then no longer blocks planning the next.
PLAN_EARLY = 1.0
# A plan whose time passed this long ago without its run starting (a lost task) is void.
PLAN_STALE = 5.0
clock = time.time  # the tests' clock goes where they want it


def _planned_run_started(tenant_id: int) -> None:
    """This run is the planned one (or comes in its stead): what it leaves gets planned anew."""
    key = PLAN_KEY.format(tenant_id=tenant_id)
    planned = cache.get(key)
    if planned is not None and planned <= clock() + PLAN_EARLY:
        cache.delete(key)


def _send_again_when_due(tenant_id: int) -> None:
    """Queue the next run for the tenant's earliest retry, if it comes before the next sweep.

    Unless a run is already planned that will start by then and has not
    started yet; a retry due before the planned run gets a run of its own.
    """
    due_at = deliveries_next_due_at(tenant_id=tenant_id)
    if due_at is None:
        return
    now = clock()
    run_at = max(due_at.timestamp(), now) + PLAN_MARGIN
    if run_at - now > SWEEP_SECONDS:
        return  # The sweep will.
    key = PLAN_KEY.format(tenant_id=tenant_id)
    planned = cache.get(key)
    if planned is not None and now - PLAN_STALE < planned <= run_at:
        return  # The planned run comes in time (and plans what is left when it ends).
    if planned is None:
        # Of the send tasks that finish at once, one queues the run.
        if not cache.add(key, run_at, timeout=SWEEP_SECONDS * 2):
            return
    else:
        cache.set(key, run_at, timeout=SWEEP_SECONDS * 2)
    deliveries_send_task.apply_async((tenant_id,), countdown=run_at - now)


@shared_task
def events_sweep_task() -> None:
    events_sweep()
