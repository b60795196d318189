"""Per-host rate limits (apps/delivery/ratelimit.py): a sliding 60-second window.

The clock is the `now` each call is given, so minutes pass without waiting.
"""

import threading
from datetime import UTC, datetime, timedelta

import pytest

from apps.delivery.ratelimit import WINDOW, rate_available_at, rate_reserve, rate_return

HOST = "smtp.limited.example"


@pytest.fixture
def limit(settings):
    settings.DELIVERY_RATE_LIMITS = {HOST: 90}
    return 90


def _clock(start: datetime, step: float):
    at = start
    while True:
        yield at
        at += timedelta(seconds=step)


def _most_in_any_window(grants: list[tuple[datetime, int]]) -> int:
    """The most messages granted in any WINDOW seconds (each window starting at a grant)."""
    return max(
        sum(n for t, n in grants if start <= t < start + timedelta(seconds=WINDOW))
        for start, _ in grants
    )


def test_the_limit_holds_over_any_60_seconds_across_a_minute_boundary(limit):
    # Three seconds before a minute starts; workers ask for 10 every half second.
    start = datetime(2026, 1, 1, 12, 0, 57, tzinfo=UTC)
    grants = []
    for now in _clock(start, 0.5):
        if now > start + timedelta(seconds=150):
            break
        if granted := rate_reserve(HOST, 10, now=now):
            grants.append((now, granted))

    assert _most_in_any_window(grants) == limit
    # Nothing is held back either: the budget is spent again as each minute passes.
    assert sum(n for _, n in grants) == 3 * limit


def test_a_reservation_given_back_can_be_used_by_the_next_batch(limit):
    now = datetime(2026, 1, 1, 12, 0, 30, tzinfo=UTC)
    assert rate_reserve(HOST, 80, now=now) == 80
    rate_return(HOST, 30, now=now)  # only 50 were claimed
    later = now + timedelta(seconds=1)
    assert rate_reserve(HOST, 100, now=later) == 40
    assert rate_reserve(HOST, 1, now=later) == 0


def test_the_rest_waits_until_the_oldest_reservation_leaves_the_window(limit):
    first = datetime(2026, 1, 1, 12, 0, 50, tzinfo=UTC)
    assert rate_reserve(HOST, 60, now=first) == 60
    second = first + timedelta(seconds=20)  # the next clock minute
    assert rate_reserve(HOST, 60, now=second) == 30

    available = rate_available_at(HOST, now=second)
    assert first + timedelta(seconds=WINDOW) < available < first + timedelta(seconds=WINDOW + 1)
    assert rate_reserve(HOST, 60, now=available - timedelta(seconds=1)) == 0
    assert rate_reserve(HOST, 100, now=available) == 60


def test_an_unlimited_host_is_not_counted(limit):
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert rate_reserve("smtp.other.example", 1000, now=now) == 1000


def _concurrently(limit: int) -> int:
    now = datetime(2026, 1, 1, 12, 0, 59, tzinfo=UTC)
    granted, lock = [], threading.Lock()

    def worker():
        for _ in range(40):
            n = rate_reserve(HOST, 1, now=now)
            with lock:
                granted.append(n)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return sum(granted)


def test_workers_reserving_at_once_never_share_out_more_than_the_limit(limit):
    assert _concurrently(limit) == limit


@pytest.mark.services
def test_workers_reserving_at_once_through_redis_never_exceed_the_limit(limit, settings):
    assert settings.CACHES["default"]["BACKEND"].endswith("RedisCache")
    assert _concurrently(limit) == limit
