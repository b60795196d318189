"""Postmaster end to end: from the events API call until the sink has accepted every message.

The call goes through Django's test client (the whole middleware stack and
the API, in this process). Without a broker the engine runs eagerly, inside
that call; with one, the Celery workers dispatch and send.
"""

import json
import time

from django.db.models import Count
from django.test import Client

from apps.delivery.models import Delivery, DeliveryStatus
from benchmarks.cpu import CpuMeter
from benchmarks.sink import Sink
from benchmarks.world import SMALL_FAN_OUT, World, event_body

# The sink hears a message a moment before the engine stores its outcome.
RECORDED_TIMEOUT = 30


class _Api:
    def __init__(self, world: World):
        self.client = Client()
        self.authorization = f"Bearer {world.token}"

    def post(self, body: dict) -> int:
        response = self.client.post(
            "/api/v1/events",
            json.dumps(body),
            content_type="application/json",
            HTTP_AUTHORIZATION=self.authorization,
        )
        if response.status_code != 202:
            raise SystemExit(
                f"The events API answered {response.status_code}: {response.content!r}"
            )
        return response.json()["id"]


def warm_up(world: World, sink: Sink, *, timeout: float) -> None:
    """One small event through the whole path: imports, templates, connections are ready."""
    sink.reset()
    _Api(world).post(event_body(world.small, 1))
    sink.wait_for(SMALL_FAN_OUT, timeout=timeout)


def fan_out(world: World, sink: Sink, *, engine_pids: list[int], timeout: float) -> dict:
    """One event to every member of the group.

    `engine_pids`: the processes the engine runs in (the workers, or this
    one), whose CPU time is counted.
    """
    api = _Api(world)
    expected = len(world.people)
    sink.reset()
    cpu = CpuMeter(engine_pids, sink)
    start = time.monotonic()
    event_id = api.post(event_body(world.fan_out, 1001))
    answered = time.monotonic()
    done = sink.wait_for(expected, timeout=timeout)
    return _figures(expected, done - start, [event_id], sink, cpu) | {
        "api_seconds": round(answered - start, 3)
    }


def small_events(
    world: World, sink: Sink, *, events: int, engine_pids: list[int], timeout: float
) -> dict:
    """`events` events one after the other, each to the rule's SMALL_FAN_OUT addresses."""
    api = _Api(world)
    expected = events * SMALL_FAN_OUT
    sink.reset()
    cpu = CpuMeter(engine_pids, sink)
    start = time.monotonic()
    ids = [api.post(event_body(world.small, 2000 + n)) for n in range(events)]
    posted = time.monotonic()
    done = sink.wait_for(expected, timeout=timeout)
    return _figures(expected, done - start, ids, sink, cpu) | {
        "events": events,
        "api_seconds": round(posted - start, 3),
    }


def _figures(
    expected: int, seconds: float, event_ids: list[int], sink: Sink, cpu: CpuMeter
) -> dict:
    return {
        "messages": expected,
        "seconds": round(seconds, 3),
        "per_second": round(expected / seconds),
        **cpu.per_message_ms(expected),
        **sink.stats(),
        "recorded_sent": _recorded_sent(event_ids, expected),
    }


def _recorded_sent(event_ids: list[int], expected: int) -> int:
    """How many of the events' deliveries the engine recorded as sent (waiting for the last)."""
    deadline = time.monotonic() + RECORDED_TIMEOUT
    while True:
        counts = dict(
            Delivery.objects.filter(event_id__in=event_ids)
            .values_list("status")
            .annotate(n=Count("pk"))
            .order_by()
        )
        sent = counts.get(DeliveryStatus.SENT, 0)
        if sent >= expected or time.monotonic() > deadline:
            return sent
        time.sleep(0.05)
