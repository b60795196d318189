"""The engine's counters for Prometheus: messages sent, failed and retried, by tenant and
connection.

Each worker counts in memory and adds its counts to one Redis hash (the shared cache,
CACHE_URL) at most FLUSH_SECONDS apart and when a task ends, so every web process reports
the same totals. Labels are ids and names of connections, never an address or a secret.
A failure to record a count is logged and costs the count, never the mail.
"""

import logging
import threading
import time
from collections import Counter

from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache

from apps.delivery.models import DeliveryStatus

logger = logging.getLogger(__name__)

HASH_KEY = "postmaster:metrics:messages"
FLUSH_SECONDS = 5.0
OUTCOMES = {
    DeliveryStatus.SENT: "sent",
    DeliveryStatus.FAILED: "failed",
    DeliveryStatus.QUEUED: "retried",  # a temporary failure: tried again later
}

_lock = threading.Lock()
_pending: Counter = Counter()
_flushed_at = time.monotonic()
# Without Redis (one process, `make run`) the totals live here.
_local: Counter = Counter()


def message_counted(*, tenant_id: int, carrier, status: str) -> None:
    """Count one message's outcome (`carrier`: apps.delivery.sending.Carrier, or None)."""
    outcome = OUTCOMES.get(status)
    if outcome is None:
        return
    if carrier is None:
        connection, kind = "none", "none"
    else:
        connection = carrier.via
        kind = carrier.settings.provider if carrier.is_provider else "smtp"
    with _lock:
        _pending[f"{tenant_id}|{connection}|{kind}|{outcome}"] += 1
        due = time.monotonic() - _flushed_at >= FLUSH_SECONDS
    if due:
        messages_flush()


def _redis():
    backend = caches["default"]
    if isinstance(backend, RedisCache):
        return backend._cache.get_client(write=True)
    return None


def _hash_key() -> str:
    """With the cache's KEY_PREFIX, as every cache key."""
    return caches["default"].make_key(HASH_KEY)


def messages_flush() -> None:
    """Add what this process counted to the shared totals."""
    global _flushed_at
    with _lock:
        pending = dict(_pending)
        _pending.clear()
        _flushed_at = time.monotonic()
    if not pending:
        return
    try:
        client = _redis()
        if client is None:
            with _lock:
                _local.update(pending)
            return
        pipe = client.pipeline(transaction=False)
        for key, count in pending.items():
            pipe.hincrby(_hash_key(), key, count)
        pipe.execute()
    except Exception:
        logger.warning("Message counts for the metrics were not recorded (Redis unreachable).")


def messages_totals() -> dict[tuple[int, str, str, str], int]:
    """{(tenant_id, connection, kind, outcome): count} over every process."""
    client = _redis()
    if client is None:
        with _lock:
            raw = dict(_local)
    else:
        raw = {k.decode(): int(v) for k, v in client.hgetall(_hash_key()).items()}
    totals = {}
    for key, count in raw.items():
        tenant_id, connection, kind, outcome = key.split("|")
        totals[(int(tenant_id), connection, kind, outcome)] = count
    return totals
