"""The measurements that need no worker: the limit, the peer, recipient resolution.

Each returns a plain dict of figures (what `--json` prints).
"""

import os
import smtplib
import statistics
import time

from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.delivery.models import Event
from apps.delivery.resolution import event_recipients
from benchmarks.cpu import CpuMeter
from benchmarks.sink import Sink
from benchmarks.world import MessageShape, World, event_create


def _rate(count: int, seconds: float) -> dict:
    return {"messages": count, "seconds": round(seconds, 3), "per_second": round(count / seconds)}


def raw_smtplib(shape: MessageShape, addresses: list[str], sink: Sink, *, timeout: float) -> dict:
    """The limit: the same messages through smtplib over one connection, nothing else."""
    sink.reset()
    cpu = CpuMeter([os.getpid()], sink)
    start = time.monotonic()
    with smtplib.SMTP(sink.host, sink.port, timeout=30) as smtp:
        for number, address in enumerate(addresses):
            message = shape.message_bytes(address, f"<{number}.raw@payments.example>")
            smtp.sendmail(shape.from_email, [address], message)
    done = sink.wait_for(len(addresses), timeout=timeout)
    return _rate(len(addresses), done - start) | cpu.per_message_ms(len(addresses)) | sink.stats()


def post_office(shape: MessageShape, addresses: list[str], sink: Sink, *, timeout: float) -> dict:
    """The peer: django-post-office queues the same messages, then `send_queued` sends them.

    In its own defaults (batches of 100, 5 threads, each over its own
    connection, a log row per message), called until its queue is empty as
    its `send_queued_mail_until_done` does, without the lock file.
    """
    from post_office import mail
    from post_office.mail import get_queued, send_queued

    sink.reset()
    cpu = CpuMeter([os.getpid()], sink)
    start = time.monotonic()
    mail.send_many(
        [
            {
                "recipients": [address],
                "sender": shape.from_header,
                "subject": shape.subject,
                "message": shape.text,
                "html_message": shape.html,
                "headers": shape.headers,
            }
            for address in addresses
        ]
    )
    queued = time.monotonic()
    while get_queued().exists():
        send_queued()
    done = sink.wait_for(len(addresses), timeout=timeout)
    figures = _rate(len(addresses), done - start) | cpu.per_message_ms(len(addresses))
    figures |= sink.stats()
    return figures | {"queuing_seconds": round(queued - start, 3)}


def resolution(world: World, *, rounds: int = 5) -> dict:
    """Recipient resolution of one event of the fan-out pipeline: seconds (median) and queries."""
    pk = event_create(world.fan_out, 2).pk
    times, queries, found = [], 0, 0
    for _ in range(rounds):
        # As event_dispatch loads it; a fresh object each round, nothing cached on it.
        event = Event.objects.select_related("tenant", "project", "pipeline").get(pk=pk)
        with CaptureQueriesContext(connection) as captured:
            start = time.perf_counter()
            found = len(event_recipients(event))
            times.append(time.perf_counter() - start)
        queries = len(captured)
    return {
        "recipients": found,
        "seconds": round(statistics.median(times), 4),
        "best_seconds": round(min(times), 4),
        "queries": queries,
    }
