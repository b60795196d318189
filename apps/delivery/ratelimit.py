"""Messages per minute per SMTP host (settings.DELIVERY_RATE_LIMITS), shared by every worker.

A sliding window: the limit holds over any 60 seconds, not per clock
minute (fixed windows let twice the limit through around a minute's turn).
The cache (Redis when several processes send) keeps, per host, the log of
the last minute's reservations, (when, how many). A worker reserves what it
wants to send before claiming, and gives back what it did not claim; what is
over the budget waits until the oldest reservation leaves the window,
nothing is dropped.

Reading and writing a host's log happens under a short lock taken with
`cache.add` (atomic in Redis, the database cache and the local-memory
cache alike), so concurrent workers never both spend the last of a budget.
"""

import time
import uuid
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.cache import cache

WINDOW = 60  # seconds
LOCK_SECONDS = 5  # a crashed holder's lock frees itself after this
LOCK_WAIT = 2.0  # seconds a worker waits for the lock before sending nothing this time


def rate_limit_for(host: str) -> int | None:
    return settings.DELIVERY_RATE_LIMITS.get(host.lower())


def _key(host: str) -> str:
    return f"delivery:rate-log:{host.lower()}"


class _Locked:
    """The host's log, read and written by one worker at a time."""

    def __init__(self, host: str):
        self.key = _key(host)
        self.lock = f"{self.key}:lock"
        self.token = uuid.uuid4().hex
        self.held = False

    def __enter__(self):
        deadline = time.monotonic() + LOCK_WAIT
        while not (held := cache.add(self.lock, self.token, timeout=LOCK_SECONDS)):
            if time.monotonic() > deadline:
                break
            time.sleep(0.005)
        self.held = held
        return self

    def __exit__(self, *exc):
        if self.held and cache.get(self.lock) == self.token:
            cache.delete(self.lock)

    def log(self, now: float) -> list[list[float]]:
        """[when, how many] of the reservations of the last WINDOW seconds before `now`."""
        return [entry for entry in cache.get(self.key) or [] if entry[0] > now - WINDOW]

    def save(self, log: list[list[float]]) -> None:
        cache.set(self.key, log, timeout=WINDOW * 2)


def rate_reserve(host: str, wanted: int, *, now: datetime) -> int:
    """How many of `wanted` messages may go to `host` now (all if unlimited).

    Never more than the limit over any WINDOW seconds: what the reservations
    of the last WINDOW seconds leave.
    """
    limit = rate_limit_for(host)
    if limit is None or wanted <= 0:
        return max(wanted, 0)
    at = now.timestamp()
    with _Locked(host) as locked:
        if not locked.held:
            return 0  # Busy: this batch waits (see rate_available_at) rather than overshoot.
        log = locked.log(at)
        granted = max(0, min(wanted, limit - sum(count for _, count in log)))
        if granted:
            log.append([at, granted])
            locked.save(log)
    return granted


def rate_return(host: str, count: int, *, now: datetime) -> None:
    """Give back `count` of what was reserved at `now` but not sent after all."""
    if count <= 0 or rate_limit_for(host) is None:
        return
    at = now.timestamp()
    with _Locked(host) as locked:
        if not locked.held:
            return  # The reservation stays counted: the budget is only lower for a minute.
        log = locked.log(at)
        for entry in reversed(log):
            if entry[0] == at:
                entry[1] = max(0, entry[1] - count)
                break
        locked.save([entry for entry in log if entry[1] > 0])


def rate_available_at(host: str, *, now: datetime) -> datetime:
    """When `host` may take a message again: as the oldest reservation of the window leaves it."""
    at = now.timestamp()
    log = sorted(cache.get(_key(host)) or [])
    log = [entry for entry in log if entry[0] > at - WINDOW]
    limit = rate_limit_for(host)
    used = sum(count for _, count in log)
    if limit is not None and used >= limit:
        for when, count in log:  # oldest first: the first one whose leaving makes room
            used -= count
            if used < limit:
                return datetime.fromtimestamp(when + WINDOW, tz=UTC) + timedelta(milliseconds=1)
    return now + timedelta(seconds=1)
