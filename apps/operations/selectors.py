"""Reads of the operations app: the maintenance flag (cached) and tenants' delivery trouble."""

import contextlib
import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from django.core.cache import cache
from django.db.models import Count, Max, Min, Q

from apps.connections.smtp import Outcome
from apps.delivery.models import DeliveryAttempt, DeliveryStatus
from apps.operations.models import MAINTENANCE_ID, AlertCause, DeliveryAlert, MaintenanceMode

logger = logging.getLogger(__name__)

# Maintenance ------------------------------------------------------------------------------

MAINTENANCE_CACHE_KEY = "operations:maintenance"
# Switching is written through at once (on commit); this only bounds a race's staleness.
MAINTENANCE_CACHE_SECONDS = 300


@dataclass(frozen=True)
class Maintenance:
    is_on: bool = False
    message: str = ""


def maintenance_state() -> Maintenance:
    """The host's maintenance switch, from the shared cache: no query in the common case."""
    try:
        cached = cache.get(MAINTENANCE_CACHE_KEY)
    except Exception:  # The cache server is down: the database still answers.
        logger.warning("Cache unreachable; reading the maintenance flag from the database.")
        cached = None
    if cached is not None:
        return Maintenance(*cached)
    row = MaintenanceMode.objects.filter(pk=MAINTENANCE_ID).values_list("is_on", "message")
    state = Maintenance(*row[0]) if row else Maintenance()
    with contextlib.suppress(Exception):
        cache.set(MAINTENANCE_CACHE_KEY, (state.is_on, state.message), MAINTENANCE_CACHE_SECONDS)
    return state


def maintenance_is_on() -> bool:
    return maintenance_state().is_on


def maintenance_cache_off() -> None:
    """Cache "off" without reading the row: for a new database (tests), where it is."""
    cache.set(MAINTENANCE_CACHE_KEY, (False, ""), MAINTENANCE_CACHE_SECONDS)


def maintenance_forget() -> None:
    """Drop the cached flag; every process reads the new one at its next request."""
    cache.delete(MAINTENANCE_CACHE_KEY)


# Delivery trouble -------------------------------------------------------------------------

# The window the check looks at, and the thresholds for "many messages fail".
ALERT_WINDOW = timedelta(minutes=15)
ALERT_MIN_FAILED = 5
ALERT_MIN_SHARE = 0.5
# A server unreachable (without a message getting through) for this long is trouble;
# a shorter blip is left to the retries.
CONNECTION_GRACE = timedelta(minutes=5)

AUTH_OUTCOMES = [Outcome.AUTH_FAILED, Outcome.AUTH_REQUIRED, Outcome.AUTH_NOT_OFFERED]
CONNECTION_OUTCOMES = [
    Outcome.CONNECTION_REFUSED,
    Outcome.NAME_NOT_RESOLVED,
    Outcome.TIMED_OUT,
    Outcome.TLS_HANDSHAKE_FAILED,
    Outcome.CERTIFICATE_NOT_TRUSTED,
    Outcome.STARTTLS_NOT_OFFERED,
]

# (time, highest attempt id then), oldest first: lets the check read only the window's
# attempts through the primary key; without one (a cache flush) the window is read
# through the attempts' time index (`delivery_attempt_time`), never the whole table.
WATERMARKS_KEY = "operations:attempt-watermarks"


@dataclass(frozen=True)
class Trouble:
    """What is wrong with one tenant's mail through one connection (`via`)."""

    tenant_id: int
    via: str
    cause: AlertCause
    failed: int = 0  # deliveries failed for good in the window
    finished: int = 0  # sent or failed in the window
    first_at: datetime | None = None  # the earliest failure of this kind in the window
    reply: str = ""  # the latest failure's reply, as the delivery log shows it


def _window_attempts(since: datetime, now: datetime):
    """Attempts from `since` on; bounded by id when an earlier check left a watermark."""
    attempts = DeliveryAttempt.objects.filter(attempted_at__gte=since)
    try:
        marks = cache.get(WATERMARKS_KEY) or []
    except Exception:
        marks = None
    if marks is None:
        return attempts
    before = [mark for mark in marks if mark[0] <= since.timestamp()]
    if before:
        # Ids up to this were taken before the window opened.
        attempts = attempts.filter(pk__gt=before[-1][1])
    highest = DeliveryAttempt.objects.aggregate(highest=Max("pk"))["highest"] or 0
    kept = before[-1:] + [mark for mark in marks if mark[0] > since.timestamp()]
    kept.append((now.timestamp(), highest))
    with contextlib.suppress(Exception):
        cache.set(WATERMARKS_KEY, kept[-100:], timeout=int(ALERT_WINDOW.total_seconds() * 3))
    return attempts


def delivery_troubles(*, now: datetime) -> list[Trouble]:
    """Every tenant connection whose mail is in trouble now, at most one per tenant.

    Trouble is, in this order: the server refused the login and nothing was
    sent since; the server has been unreachable for CONNECTION_GRACE with
    nothing sent since; or at least ALERT_MIN_FAILED deliveries failed for
    good in ALERT_WINDOW, ALERT_MIN_SHARE or more of those finished.
    """
    since = now - ALERT_WINDOW
    attempts = _window_attempts(since, now)
    sent = Q(outcome=Outcome.SENT)
    auth = Q(outcome__in=AUTH_OUTCOMES)
    unreachable = Q(outcome__in=CONNECTION_OUTCOMES)
    rows = (
        attempts.order_by()
        .values("tenant_id", "via")
        .annotate(
            sent=Count("pk", filter=sent),
            last_sent=Max("attempted_at", filter=sent),
            first_auth=Min("attempted_at", filter=auth),
            last_auth=Max("attempted_at", filter=auth),
            first_unreachable=Min("attempted_at", filter=unreachable),
            last_unreachable=Max("attempted_at", filter=unreachable),
            failed=Count(
                "delivery_id",
                filter=Q(delivery__status=DeliveryStatus.FAILED, delivery__finished_at__gte=since),
                distinct=True,
            ),
        )
    )
    found: dict[int, Trouble] = {}
    for row in rows:
        trouble = _trouble(row, now)
        if trouble is None:
            continue
        known = found.get(trouble.tenant_id)
        if known is None or _rank(trouble) < _rank(known):
            found[trouble.tenant_id] = trouble
    return [_with_reply(trouble, attempts) for trouble in found.values()]


def _trouble(row: dict, now: datetime) -> Trouble | None:
    last_sent = row["last_sent"]
    key = {"tenant_id": row["tenant_id"], "via": row["via"]}
    if row["last_auth"] and (last_sent is None or row["last_auth"] > last_sent):
        return Trouble(**key, cause=AlertCause.AUTH, first_at=row["first_auth"])
    unreachable_long = row["first_unreachable"] and row["first_unreachable"] <= (
        now - CONNECTION_GRACE
    )
    nothing_sent_lately = last_sent is None or last_sent <= now - CONNECTION_GRACE
    if (
        unreachable_long
        and nothing_sent_lately
        and (last_sent is None or row["last_unreachable"] > last_sent)
    ):
        return Trouble(**key, cause=AlertCause.CONNECTION, first_at=row["first_unreachable"])
    failed, finished = row["failed"], row["failed"] + row["sent"]
    if failed >= ALERT_MIN_FAILED and failed >= ALERT_MIN_SHARE * finished:
        return Trouble(**key, cause=AlertCause.FAILURES, failed=failed, finished=finished)
    return None


def _rank(trouble: Trouble) -> int:
    return [AlertCause.AUTH, AlertCause.CONNECTION, AlertCause.FAILURES].index(trouble.cause)


def _with_reply(trouble: Trouble, attempts) -> Trouble:
    outcomes = {
        AlertCause.AUTH: Q(outcome__in=AUTH_OUTCOMES),
        AlertCause.CONNECTION: Q(outcome__in=CONNECTION_OUTCOMES),
        AlertCause.FAILURES: ~Q(outcome=Outcome.SENT),
    }[trouble.cause]
    reply = (
        attempts.filter(outcomes, tenant_id=trouble.tenant_id, via=trouble.via)
        .order_by("-pk")
        .values_list("reply", flat=True)
        .first()
    )
    return replace(trouble, reply=reply or "")


# {tenant id: (cause, summary, failing since)} of the tenants failing now, as the last
# check found them: the dashboard reads it without a query. Kept for the check's window:
# should the checks stop, the banners do not outlive what they know.
FAILING_KEY = "operations:failing-tenants"


def delivery_alerts_publish() -> None:
    """Put the failing tenants' alerts where the dashboards read them."""
    failing = DeliveryAlert.objects.filter(failing_since__isnull=False).values_list(
        "tenant_id", "cause", "summary", "failing_since"
    )
    found = {tenant_id: (cause, summary, since) for tenant_id, cause, summary, since in failing}
    cache.set(FAILING_KEY, found, int(ALERT_WINDOW.total_seconds()))


def delivery_alert_current(*, tenant) -> DeliveryAlert | None:
    """The tenant's delivery trouble while it lasts (the dashboard's banner); no query."""
    try:
        found = (cache.get(FAILING_KEY) or {}).get(tenant.pk)
    except Exception:
        logger.warning("Cache unreachable; the dashboard shows no delivery alert.")
        return None
    if found is None:
        return None
    cause, summary, since = found
    return DeliveryAlert(tenant=tenant, cause=cause, summary=summary, failing_since=since)
