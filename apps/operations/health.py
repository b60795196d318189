"""The checks behind `/health/`: each one's status, a short reason, and how long it took.

Answers say ok/error and a few plain words, never a host, a port, a URL or
an exception's text: the page needs no sign-in. The checks of outside
services (broker, workers, SMTP) are cached for a few seconds in the shared
cache, so load balancers polling every web process cost little.
"""

import contextlib
import time
from dataclasses import asdict, dataclass

from django.conf import settings
from django.core.cache import cache
from django.db import connection

from apps.connections.selectors import host_smtp_settings
from apps.connections.smtp import Outcome, classify, smtp_probe
from apps.operations.selectors import maintenance_state

OK, ERROR, EAGER = "ok", "error", "eager"
# How long one check may wait for an outside service, in seconds.
CHECK_TIMEOUT = 2.0
WORKERS_TIMEOUT = 1.0
# How long the outside services' results are reused.
CACHE_SECONDS = 10


@dataclass
class Check:
    status: str
    ms: float = 0.0
    reason: str = ""
    # A required check that fails makes the whole answer 503.
    required: bool = False

    def as_dict(self) -> dict:
        found = asdict(self)
        if not self.reason:
            del found["reason"]
        return found


def health_report() -> tuple[bool, dict]:
    """(healthy, the JSON answer)."""
    broker = _cached("broker", _broker, required=bool(settings.CELERY_BROKER_URL))
    checks = {
        "database": _timed(_database, required=True),
        "broker": broker,
        "workers": _cached("workers", lambda: _workers(broker)),
        "smtp": _cached("smtp", _smtp),
    }
    healthy = all(c.status != ERROR for c in checks.values() if c.required)
    degraded = any(c.status == ERROR for c in checks.values())
    try:
        maintenance = maintenance_state().is_on
    except Exception:  # the database is down: said by its check
        maintenance = None
    body = {
        "status": "ok" if not degraded else ("degraded" if healthy else "down"),
        "maintenance": maintenance,
        "checks": {name: check.as_dict() for name, check in checks.items()},
    }
    return healthy, body


def _timed(probe, *, required=False) -> Check:
    started = time.perf_counter()
    try:
        check = probe()
    except Exception:
        check = Check(ERROR, reason="unexpected error")
    check.ms = round((time.perf_counter() - started) * 1000, 1)
    check.required = required
    return check


def _cached(name: str, probe, *, required=False) -> Check:
    key = f"operations:health:{name}"
    try:
        found = cache.get(key)
    except Exception:
        found = None
    if found is not None:
        return Check(**{**found, "required": required})
    check = _timed(probe, required=required)
    with contextlib.suppress(Exception):
        cache.set(key, asdict(check), CACHE_SECONDS)
    return check


def _database() -> Check:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception:
        return Check(ERROR, reason="unreachable")
    return Check(OK)


def _broker() -> Check:
    if not settings.CELERY_BROKER_URL:
        return Check(EAGER, reason="no broker: work runs in the web process")
    from config.celery import app

    try:
        with _broker_connection(app) as conn:
            conn.ensure_connection(max_retries=0, timeout=CHECK_TIMEOUT)
    except Exception:
        return Check(ERROR, reason="unreachable")
    return Check(OK)


def _workers(broker: Check) -> Check:
    if broker.status == EAGER:
        return Check(EAGER, reason="no broker: work runs in the web process")
    if broker.status != OK:
        return Check(ERROR, reason="broker unreachable")
    from config.celery import app

    try:
        with _broker_connection(app) as conn:
            replies = app.control.inspect(timeout=WORKERS_TIMEOUT, connection=conn).ping()
    except Exception:
        return Check(ERROR, reason="broker unreachable")
    if not replies:
        return Check(ERROR, reason="no worker answered")
    return Check(OK)


def _broker_connection(app):
    # The configured broker, named explicitly: what the settings say is what is checked.
    return app.connection_for_write(url=settings.CELERY_BROKER_URL, connect_timeout=CHECK_TIMEOUT)


# What a failed SMTP check says: plain words, no host, port or server reply.
SMTP_REASONS = {
    Outcome.CERTIFICATE_NOT_TRUSTED: "TLS failed: the server's certificate is not trusted",
    Outcome.TLS_HANDSHAKE_FAILED: "TLS failed: no encrypted connection could be set up",
    Outcome.STARTTLS_NOT_OFFERED: "TLS failed: the server does not offer STARTTLS",
    Outcome.HELO_REFUSED: "the server refused our greeting name (EHLO name)",
    Outcome.GREETING_REFUSED: "the server did not accept a mail session",
    Outcome.TIMED_OUT: "no answer in time",
    Outcome.NOT_ALLOWED: "the address is not allowed",
}


def _smtp() -> Check:
    """What sending needs, without signing in: greeting, EHLO, STARTTLS or the TLS handshake."""
    row = host_smtp_settings()
    if row is None:
        return Check(ERROR, reason="host email settings not set")
    budget = min(CHECK_TIMEOUT, row.timeout or CHECK_TIMEOUT)
    try:
        smtp_probe(row, budget=budget)
    except Exception as error:
        return Check(ERROR, reason=SMTP_REASONS.get(classify(error).outcome, "unreachable"))
    return Check(OK)
