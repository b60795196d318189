"""A server that asks to slow down: which replies say so, and the pause they earn.

A reply like "421 4.7.0 Too many messages, slow down" means "back off": the
engine stops the batch, and nothing more goes over that connection (its
settings row: the host's is shared by every tenant on it) until
DELIVERY_THROTTLE_SECONDS have passed. The pause is a cache entry holding
its end; claims for that connection move due mail to then. Without the
cache the pause is not kept (the engine still stops the batch).
"""

import logging
import re
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache

from apps.connections.smtp import SmtpReply

logger = logging.getLogger(__name__)

# Enhanced status code 4.7.x (RFC 3463: security or policy, which throttling is).
POLICY_DEFERRAL = re.compile(r"\s*4\.7\.\d{1,3}\b")
# Greylisting (often 4.7.1) defers one sender and recipient, not the connection.
GREYLISTING = re.compile(r"grey ?list|gray ?list", re.IGNORECASE)
RATE_WORDS = re.compile(
    r"too many|\brate\b|rate[- ]limit|throttl|slow(ing)? down|limit exceeded", re.IGNORECASE
)


def throttle_reply(reply: SmtpReply | None, *, greeting: bool = False) -> bool:
    """Whether a server's reply asks the client to slow down.

    421 (the server is closing the connection: busy, or too many of ours),
    a 4.7.x enhanced code (but greylisting), or 450/451 with rate wording ("too many", "rate",
    "throttled", "slow down"). At the greeting (`greeting`), a 421 alone
    means the server is not available (the engine fails over); only rate
    wording or 4.7.x there says "too many connections".
    """
    if reply is None or not 400 <= reply.code < 500 or GREYLISTING.search(reply.text):
        return False
    if POLICY_DEFERRAL.match(reply.text):
        return True
    if reply.code == 421 and not greeting:
        return True
    return reply.code in (421, 450, 451) and bool(RATE_WORDS.search(reply.text))


def _key(carrier) -> str:
    kind = "provider" if carrier.is_provider else "smtp"
    return f"delivery:throttled:{kind}:{carrier.settings.pk}"


def throttle_set(carrier, *, now: datetime) -> datetime:
    """Pause the connection for DELIVERY_THROTTLE_SECONDS from `now`; when it ends."""
    seconds = settings.DELIVERY_THROTTLE_SECONDS
    until = now + timedelta(seconds=seconds)
    try:
        cache.set(_key(carrier), until.timestamp(), timeout=max(1, int(seconds) + 1))
    except Exception:
        logger.exception("The pause of a throttling server could not be kept in the cache.")
    return until


def throttled_until(carrier, *, now: datetime) -> datetime | None:
    """When the connection's pause ends, if it is paused now."""
    try:
        stamp = cache.get(_key(carrier))
    except Exception:
        logger.exception("The pause of a throttling server could not be read from the cache.")
        return None
    if stamp is None:
        return None
    until = datetime.fromtimestamp(stamp, tz=now.tzinfo)
    return until if until > now else None
