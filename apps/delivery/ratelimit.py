"""Messages per minute per SMTP host (settings.DELIVERY_RATE_LIMITS), shared by every worker.

Minutes are fixed windows counted in the cache (Redis when several
processes send). A worker reserves what it wants to send before claiming,
and gives back what it did not claim; what is over the budget waits for
the next window, nothing is dropped.
"""

import contextlib
from datetime import UTC, datetime

from django.conf import settings
from django.core.cache import cache

WINDOW = 60  # seconds


def rate_limit_for(host: str) -> int | None:
    return settings.DELIVERY_RATE_LIMITS.get(host.lower())


def _key(host: str, now: datetime) -> str:
    return f"delivery:rate:{host.lower()}:{int(now.timestamp()) // WINDOW}"


def next_window(now: datetime) -> datetime:
    start = int(now.timestamp()) // WINDOW * WINDOW
    return datetime.fromtimestamp(start + WINDOW, tz=UTC)


def rate_reserve(host: str, wanted: int, *, now: datetime) -> int:
    """How many of `wanted` messages may go to `host` in the current window (all if unlimited)."""
    limit = rate_limit_for(host)
    if limit is None or wanted <= 0:
        return max(wanted, 0)
    key = _key(host, now)
    cache.add(key, 0, timeout=WINDOW * 2)
    try:
        total = cache.incr(key, wanted)
    except ValueError:  # expired between add and incr
        cache.set(key, wanted, timeout=WINDOW * 2)
        total = wanted
    granted = max(0, min(wanted, limit - (total - wanted)))
    if granted < wanted:
        cache.decr(key, wanted - granted)
    return granted


def rate_return(host: str, count: int, *, now: datetime) -> None:
    """Give back reserved messages that were not sent after all."""
    if count > 0 and rate_limit_for(host) is not None:
        # ValueError: the window is over, nothing to give back to.
        with contextlib.suppress(ValueError):
            cache.decr(_key(host, now), count)
