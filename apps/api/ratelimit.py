"""Requests per token of the events API: a steady rate with a burst, shared by every process.

A generic cell rate algorithm (GCRA): each token has a "theoretical arrival
time" in the cache; a request moves it on by one interval (a minute divided
by API_RATE_LIMIT_PER_MINUTE) and is refused when that would put it more than
API_RATE_LIMIT_BURST intervals ahead of now. So an idle token may send a
burst at once, then the steady rate; a refusal says how long until the next
request fits. With Redis (production) the check is one Lua script: one round
trip, atomic, on Redis's own clock, so every web process counts the same.
Other caches (development) take the same steps in Python, per process.
"""

import logging
import math
import threading
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache

# KEYS[1]: the token's key. ARGV: the interval and the burst tolerance (burst times interval),
# in milliseconds. Answers {allowed (1/0), milliseconds until the next request fits}.
logger = logging.getLogger(__name__)

GCRA_LUA = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local next_tat = tat + interval
local wait = next_tat - tolerance - now
if wait > 0 then
  return {0, math.ceil(wait)}
end
local ttl = math.ceil(next_tat - now) + 1000
redis.call('SET', KEYS[1], string.format('%d', math.ceil(next_tat)), 'PX', ttl)
return {1, 0}
"""


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    # Whole seconds until a request fits again (0 when allowed): the Retry-After header.
    retry_after: int = 0


def _limits() -> tuple[float, float] | None:
    """(interval, tolerance) in milliseconds; None when the limit is off."""
    per_minute = settings.API_RATE_LIMIT_PER_MINUTE
    if per_minute <= 0:
        return None
    interval = 60_000 / per_minute
    return interval, interval * max(settings.API_RATE_LIMIT_BURST, 1)


def _key(token_id: int) -> str:
    return f"api:rate:{token_id}"


_script = None


def _redis_take(cache: RedisCache, key: str, interval: float, tolerance: float) -> tuple[int, int]:
    global _script
    full_key = cache.make_and_validate_key(key)
    client = cache._cache.get_client(full_key, write=True)
    if _script is None:
        # Sent as EVALSHA, and as EVAL once if Redis does not know the script yet.
        _script = client.register_script(GCRA_LUA)
    allowed, wait_ms = _script(keys=[full_key], args=[interval, tolerance], client=client)
    return int(allowed), int(wait_ms)


_lock = threading.Lock()


def _local_take(cache, key: str, interval: float, tolerance: float) -> tuple[int, int]:
    with _lock:
        now = time.time() * 1000
        tat = max(cache.get(key, 0), now)
        wait = tat + interval - tolerance - now
        if wait > 0:
            return 0, math.ceil(wait)
        cache.set(key, tat + interval, timeout=math.ceil((tat + interval - now) / 1000) + 1)
        return 1, 0


def api_rate_take(*, token_id: int) -> RateDecision:
    """Count one request of the token; refused (with the wait) when it is over its limit.

    A refused request is not counted: a client that waits as told gets through.
    """
    limits = _limits()
    if limits is None:
        return RateDecision(True)
    cache = caches["default"]
    take = _redis_take if isinstance(cache, RedisCache) else _local_take
    try:
        allowed, wait_ms = take(cache, _key(token_id), *limits)
    except Exception:
        # The cache server is down: events are still taken (the database decides), unlimited.
        logger.warning("The events API's rate limit could not be checked", exc_info=True)
        return RateDecision(True)
    if allowed:
        return RateDecision(True)
    return RateDecision(False, retry_after=max(1, math.ceil(wait_ms / 1000)))
