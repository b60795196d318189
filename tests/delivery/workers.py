"""Real Celery workers for the engine's service tests, on the test database and the real broker.

Each test run queues on its own queue, so workers of another run sharing the
broker never take its tasks (nor it theirs).
"""

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from django.db import connection

from config.celery import app

ROOT = Path(__file__).resolve().parents[2]


def _forget_connections() -> None:
    # The app keeps its broker connection pool, queues and routes once used
    # (kombu keeps the pools themselves, one per broker URL).
    app._pool = None
    app.amqp._producer_pool = None
    app.amqp._rtable = None
    for cached in ("queues", "default_queue", "router"):
        app.amqp.__dict__.pop(cached, None)


@contextmanager
def publishing(*, broker_url: str, queue: str) -> Iterator[None]:
    """Make this process queue tasks on `queue` of `broker_url` (not run them eagerly)."""
    conf = app.conf
    before = (conf.broker_url, conf.task_default_queue, conf.task_always_eager)
    conf.broker_url, conf.task_default_queue, conf.task_always_eager = broker_url, queue, False
    _forget_connections()
    try:
        yield
    finally:
        conf.broker_url, conf.task_default_queue, conf.task_always_eager = before
        _forget_connections()


def queue_delete(queue: str) -> None:
    """Remove the queue from the (Redis) broker: its messages, its routing keys, and the
    messages a killed worker left unacknowledged (Redis would requeue them in an hour).
    """
    with app.connection_for_write() as broker:
        channel = broker.default_channel
        redis = channel.client
        redis.delete(
            *(channel._q_for_pri(queue, priority) for priority in channel.priority_steps),
            f"_kombu.binding.{queue}",
            f"_kombu.binding_permanent.{queue}",
        )
        for tag, stored in redis.hgetall(channel.unacked_key).items():
            if json.loads(stored)[2] == queue:  # [message, exchange, routing key]
                redis.hdel(channel.unacked_key, tag)
                redis.zrem(channel.unacked_index_key, tag)


@contextmanager
def worker(*, queue: str, log: Path, **settings: str) -> Iterator[subprocess.Popen]:
    """`celery worker --pool=solo` on the test database, taking tasks from `queue`.

    `settings` are DELIVERY_* values for it, given through its environment.
    Stopped (warm shutdown, then killed) when the block ends, unless it is dead already.
    """
    db = connection.settings_dict
    env = (
        os.environ
        | settings
        | {
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            # The test database pytest-django created, not the configured one.
            "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
            "CELERY_TASK_DEFAULT_QUEUE": queue,
        }
    )
    command = [
        *(sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=solo"),
        *("--concurrency=1", f"--queues={queue}", f"--hostname={log.stem}@%h"),
        *("--without-heartbeat", "--without-gossip", "--without-mingle", "--loglevel=INFO"),
    ]
    with log.open("ab") as output:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_until(condition: Callable[[], bool], *, timeout: float, every: float = 0.1, then=None):
    """Poll `condition` (calling `then()` between polls) until true; fail after `timeout` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"still not done after {timeout} seconds")
        if then is not None:
            then()
        time.sleep(every)
