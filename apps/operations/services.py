"""Writes of the operations app: switching maintenance mode, raising delivery alerts.

`failure_alerts_check()` runs from the periodic sweep (Celery beat and
`manage.py delivery_sweep`); anything else that learns of trouble with a
tenant's mail (failover) may call it too.
"""

import contextlib
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from importlib import import_module

from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.conf import settings
from django.contrib.sessions.models import Session
from django.core.cache import cache
from django.core.mail import EmailMessage, mailers
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from apps.accounts.models import User
from apps.audit.models import WEBHOOK_REFUSED_ACTION, AuditEntry
from apps.audit.services import audit_record, field_changes
from apps.core.retention import Budget, oldest_rows_purge, rows_purge
from apps.delivery.lifecycle import deliveries_purge, delivery_days_roll_up
from apps.mailcatcher.models import CaughtMessage
from apps.operations.models import (
    MAINTENANCE_ID,
    AlertCause,
    DeliveryAlert,
    MaintenanceMode,
)
from apps.operations.selectors import (
    ALERT_WINDOW,
    Trouble,
    delivery_alerts_publish,
    delivery_troubles,
    maintenance_forget,
)
from apps.tenancy.models import Role, Tenant

logger = logging.getLogger(__name__)

# Tenant admins hear about continuing trouble at most this often.
ALERT_EMAIL_INTERVAL = timedelta(hours=1)
# After the host server could not send an alert, wait this long before trying again.
ALERT_EMAIL_RETRY = timedelta(minutes=5)


# Maintenance ------------------------------------------------------------------------------


def maintenance_update(*, actor, is_on: bool, message: str, request=None) -> MaintenanceMode:
    """Switch maintenance mode on or off, or change its message; audited.

    Every process sees the change at its next request (the cached flag is
    dropped on commit). Switching off queues the mail that waited.
    """
    with transaction.atomic():
        row, _ = MaintenanceMode.objects.select_for_update().get_or_create(pk=MAINTENANCE_ID)
        before = {"is_on": row.is_on, "message": row.message}
        row.is_on, row.message = is_on, message
        row.save()
        changes = field_changes(before, {"is_on": is_on, "message": message})
        if changes:
            if "is_on" in changes:
                action = "maintenance.switched_on" if is_on else "maintenance.switched_off"
            else:
                action = "maintenance.message_changed"
            audit_record(actor=actor, action=action, target=row, changes=changes, request=request)
        # Now (this transaction reads the new row) and again on commit (a reader
        # that cached the old row meanwhile is corrected).
        maintenance_forget()
        transaction.on_commit(maintenance_forget)
        if before["is_on"] and not is_on:
            transaction.on_commit(_resume_delivery)
    return row


def _resume_delivery() -> None:
    # Late import: the delivery engine's tasks read the maintenance flag from this app.
    from apps.delivery.services import events_sweep

    events_sweep(older_than=timedelta(0))


# Failure alerts ---------------------------------------------------------------------------


@dataclass
class AlertsReport:
    """What one `failure_alerts_check` found and did, as tenant ids."""

    failing: list[int] = field(default_factory=list)
    emailed: list[int] = field(default_factory=list)
    recovered: list[int] = field(default_factory=list)


def failure_alerts_check(*, now: datetime | None = None) -> AlertsReport:
    """Find tenants whose mail is in trouble; tell their admins, at most once an hour.

    Marks each troubled tenant's `DeliveryAlert` as failing (the dashboard
    shows a banner while it is), emails the tenant admins through the host
    settings when the last email is an hour old or more, and clears the
    mark of tenants whose trouble is over.
    """
    now = now or timezone.now()
    report = AlertsReport()
    troubles = {t.tenant_id: t for t in delivery_troubles(now=now)}
    tenants = Tenant.objects.filter(pk__in=troubles, is_active=True).in_bulk()
    for tenant_id, trouble in troubles.items():
        if tenant_id not in tenants:
            continue
        report.failing.append(tenant_id)
        if delivery_alert_raise(tenant=tenants[tenant_id], trouble=trouble, now=now):
            report.emailed.append(tenant_id)
    over = DeliveryAlert.objects.filter(failing_since__isnull=False).exclude(
        tenant_id__in=report.failing
    )
    report.recovered = list(over.values_list("tenant_id", flat=True))
    over.update(failing_since=None, checked_at=now)
    delivery_alerts_publish()
    return report


def failure_alerts_sweep() -> str:
    """`failure_alerts_check()` after a `manage.py delivery_sweep` (apps/delivery/hooks.py)."""
    alerts = failure_alerts_check()
    if alerts.emailed:
        return f"Failure alerts emailed for {len(alerts.emailed)} tenants."
    return ""


def delivery_alert_raise(*, tenant: Tenant, trouble: Trouble, now: datetime) -> bool:
    """Record the tenant's trouble; email its admins unless they were told within the hour.

    True when the email went out. One check at a time per tenant (a cache
    lock), so two sweeps running side by side send one email.
    """
    lock = f"operations:alert-lock:{tenant.pk}"
    if not cache.add(lock, 1, timeout=60):
        return False
    try:
        summary = alert_summary(trouble, tenant=tenant)
        alert, _ = DeliveryAlert.objects.get_or_create(
            tenant=tenant,
            defaults={"cause": trouble.cause, "summary": summary, "checked_at": now},
        )
        alert.failing_since = alert.failing_since or trouble.first_at or now
        alert.cause, alert.summary, alert.checked_at = trouble.cause, summary, now
        alert.save(update_fields=["failing_since", "cause", "summary", "checked_at"])
        due = alert.emailed_at is None or now - alert.emailed_at >= ALERT_EMAIL_INTERVAL
        retry_key = f"operations:alert-email-failed:{tenant.pk}"
        if not due or cache.get(retry_key):
            return False
        if not _alert_email(alert, tenant):
            cache.set(retry_key, 1, timeout=int(ALERT_EMAIL_RETRY.total_seconds()))
            return False
        alert.emailed_at = now
        alert.save(update_fields=["emailed_at"])
        return True
    finally:
        cache.delete(lock)


def _alert_email(alert: DeliveryAlert, tenant: Tenant) -> bool:
    """Email each active tenant admin (one message each); False when it could not be sent."""
    admins = list(
        User.objects.filter(
            memberships__tenant=tenant, memberships__role=Role.TENANT_ADMIN, is_active=True
        )
        .distinct()
        .order_by("email")
        .values_list("email", flat=True)
    )
    if not admins:
        return True  # Nobody to tell; the banner still shows.
    log_path = reverse("tenancy:delivery:log", args=[tenant.slug])
    if alert.cause == AlertCause.FAILURES:
        log_path += "?status=failed"
    context = {
        "tenant": tenant,
        "alert": alert,
        "log_url": _site_url(log_path),
        "settings_url": _site_url(reverse("tenancy:mailsettings:edit", args=[tenant.slug])),
        "interval_hours": int(ALERT_EMAIL_INTERVAL.total_seconds() // 3600),
    }
    subject = render_to_string("operations/email/delivery_alert_subject.txt", context).strip()
    body = render_to_string("operations/email/delivery_alert.txt", context)
    messages = [EmailMessage(subject, body, None, [address]) for address in admins]
    try:
        mailers["default"].send_messages(messages)
    except Exception as exc:
        logger.warning("Delivery alert for tenant %s not sent: %s", tenant.pk, exc)
        return False
    audit_record(
        actor=None,
        action="delivery_alert.emailed",
        target=alert,
        tenant=tenant,
        changes={"cause": alert.cause, "recipients": len(admins)},
    )
    return True


def _site_url(path: str) -> str:
    return settings.SITE_URL.rstrip("/") + path


def alert_summary(trouble: Trouble, *, tenant: Tenant) -> str:
    """What is wrong, in plain words, for the email and the banner."""
    own = trouble.via == "own"
    server = "Your SMTP server" if own else "The host's SMTP server"
    if trouble.via not in ("own", "host"):
        server = f"The SMTP connection “{trouble.via}”"
    said = f" It answered: “{trouble.reply}”." if trouble.reply else ""
    fix = (
        "Check the login under Email settings; once it works the waiting mail goes out."
        if own
        else "The system administrators manage that server and have to fix it."
    )
    retried = f"Mail waits and is retried for up to {_hours(settings.DELIVERY_MAX_AGE)}."
    if trouble.cause == AlertCause.AUTH:
        return (
            f"{server} refuses Postmaster's login, so no mail of {tenant.name} goes out.{said} "
            "This usually means the password was changed or revoked at the mail provider. "
            f"{retried} {fix}"
        )
    if trouble.cause == AlertCause.CONNECTION:
        return f"{server} cannot be reached, so no mail of {tenant.name} goes out.{said} {retried}"
    minutes = int(ALERT_WINDOW.total_seconds() // 60)
    latest = f" The latest refusal: “{trouble.reply}”." if trouble.reply else ""
    return (
        f"{trouble.failed} of the {trouble.finished} messages of {tenant.name} finished in the "
        f"last {minutes} minutes failed.{latest} The delivery log says why for each."
    )


def _hours(seconds: int) -> str:
    hours = round(seconds / 3600)
    return f"{hours} hour{'s' if hours != 1 else ''}" if hours else f"{seconds} seconds"


# Data retention ---------------------------------------------------------------------------

RETENTION_LOCK_KEY = "operations:retention-lock"
# The last run's figures, for /metrics/ (apps/operations/metrics.py).
RETENTION_LAST_RUN_KEY = "operations:retention-last-run"


@dataclass
class RetentionReport:
    """What one `data_retention_run` did: rows deleted per table, days rolled up."""

    deleted: dict[str, int] = field(default_factory=dict)
    days_rolled_up: int = 0
    # False when the budget ran out first: the next run goes on.
    finished: bool = True
    # Another run held the lock: this one did nothing.
    skipped: bool = False

    def __str__(self) -> str:
        if self.skipped:
            return "Retention: another run is under way; nothing done."
        deleted = ", ".join(f"{n:,} {table}" for table, n in self.deleted.items() if n)
        return (
            f"Retention: deleted {deleted or 'nothing'}; {self.days_rolled_up} days rolled up"
            + ("." if self.finished else "; the rest goes in the next run.")
        )


# `manage.py delivery_sweep` (no Celery beat) runs retention at most every RETENTION_SECONDS,
# for at most this long: the same loop sends the retries, so it never waits long for it.
RETENTION_SWEPT_KEY = "operations:retention-swept"
RETENTION_BUDGET_IN_SWEEP = 5


def data_retention_sweep() -> str:
    """`data_retention_run()` after a `manage.py delivery_sweep` (apps/delivery/hooks.py), when
    the last one there is RETENTION_SECONDS old; a line for its output, or ""."""
    from config.celery import RETENTION_SECONDS

    if not cache.add(RETENTION_SWEPT_KEY, 1, timeout=RETENTION_SECONDS):
        return ""
    report = data_retention_run(
        budget_seconds=min(settings.RETENTION_TIME_BUDGET, RETENTION_BUDGET_IN_SWEEP)
    )
    return str(report) if any(report.deleted.values()) else ""


def data_retention_run(
    *,
    now: datetime | None = None,
    batch_size: int | None = None,
    budget_seconds: float | None = None,
) -> RetentionReport:
    """Roll up the days that are over, then delete what is past its retention period.

    Deliveries, attempts and events (apps.delivery.lifecycle); audit entries
    (AUDIT_RETENTION_DAYS; refused webhook posts WEBHOOK_REFUSAL_RETENTION_DAYS);
    caught mail; expired sessions; django-axes' sign-in records. Each table is
    deleted `batch_size` rows at a time (RETENTION_BATCH_SIZE), each batch its
    own transaction; the run stops after `budget_seconds` (RETENTION_TIME_BUDGET),
    having done at least one batch of each table, and the next run resumes.
    One run at a time (a cache lock). Logs what it deleted, and returns it.
    """
    now = now or timezone.now()
    batch_size = batch_size or settings.RETENTION_BATCH_SIZE
    seconds = settings.RETENTION_TIME_BUDGET if budget_seconds is None else budget_seconds
    try:
        locked = cache.add(RETENTION_LOCK_KEY, 1, timeout=int(seconds) + 600)
    except Exception:
        logger.warning("Cache unreachable; data retention runs without its lock.")
        locked = None
    if locked is False:
        logger.info(str(report := RetentionReport(skipped=True)))
        return report
    try:
        report = _retention(now=now, batch_size=batch_size, budget=Budget(seconds))
    finally:
        if locked:
            with contextlib.suppress(Exception):
                cache.delete(RETENTION_LOCK_KEY)
    logger.info(str(report))
    last_run = {"at": now.timestamp(), "deleted": report.deleted, "finished": report.finished}
    with contextlib.suppress(Exception):  # a figure for the metrics, never a reason to fail
        cache.set(RETENTION_LAST_RUN_KEY, last_run, timeout=None)
    return report


def _retention(*, now: datetime, batch_size: int, budget: Budget) -> RetentionReport:
    report = RetentionReport()
    rolled = delivery_days_roll_up(now=now, budget=budget)
    report.days_rolled_up = rolled.days
    purged = deliveries_purge(now=now, batch_size=batch_size, budget=budget)
    report.deleted.update(
        deliveries=purged.deliveries, attempts=purged.attempts, events=purged.events
    )
    finished = rolled.done and purged.done

    def days_ago(days: int) -> datetime:
        return now - timedelta(days=days)

    def purge(table: str, rows) -> None:
        nonlocal finished
        done = rows_purge(rows=rows, batch_size=batch_size, budget=budget)
        report.deleted[table] = report.deleted.get(table, 0) + done.deleted
        finished = finished and done.done

    refusals = AuditEntry.objects.filter(action=WEBHOOK_REFUSED_ACTION)
    purge(
        "webhook refusals",
        refusals.filter(created_at__lt=days_ago(settings.WEBHOOK_REFUSAL_RETENTION_DAYS)),
    )
    purge(
        "audit entries",
        AuditEntry.objects.filter(created_at__lt=days_ago(settings.AUDIT_RETENTION_DAYS)),
    )
    purge(
        "caught mail",
        CaughtMessage.objects.filter(received_at__lt=days_ago(settings.CAUGHT_MAIL_RETENTION_DAYS)),
    )
    if settings.SESSION_ENGINE in DATABASE_SESSION_ENGINES:
        purge("sessions", Session.objects.filter(expire_date__lt=now))
    else:  # sessions kept elsewhere: what `manage.py clearsessions` does
        import_module(settings.SESSION_ENGINE).SessionStore.clear_expired()
    # Failed sign-ins per account: a row's time moves with each new failure, so it is
    # read by its time (a small table: one row per account that failed lately).
    purge(
        "sign-in failures",
        AccessAttempt.objects.filter(attempt_time__lt=days_ago(settings.SIGNIN_LOG_RETENTION_DAYS)),
    )
    for table, model in SIGNIN_LOGS.items():
        done = oldest_rows_purge(
            model=model,
            time_field="attempt_time",
            before=days_ago(settings.SIGNIN_LOG_RETENTION_DAYS),
            batch_size=batch_size,
            budget=budget,
        )
        report.deleted[table] = done.deleted
        finished = finished and done.done
    report.finished = finished
    return report


DATABASE_SESSION_ENGINES = (
    "django.contrib.sessions.backends.db",
    "django.contrib.sessions.backends.cached_db",
)
# Written once each, so their oldest rows come first by primary key.
SIGNIN_LOGS = {"sign-in logs": AccessLog, "sign-in failure logs": AccessFailureLog}
