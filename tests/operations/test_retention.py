"""Data retention of the other tables, its schedule, and the tenant's own period (host admin).

What it does to deliveries, attempts, events and the roll-ups: tests/delivery/test_lifecycle.py.
"""

from datetime import timedelta

import pytest
from axes.models import AccessAttempt, AccessLog
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone

from apps.audit.models import AuditEntry
from apps.audit.services import audit_record
from apps.mailcatcher.models import CaughtMessage
from apps.operations import tasks
from apps.operations.services import RETENTION_LOCK_KEY, data_retention_run
from apps.tenancy.services import tenant_retention_update
from apps.webhooks.services import REFUSED_ACTION
from config.celery import RETENTION_SECONDS, app

pytestmark = pytest.mark.django_db


def ago(days: float):
    return timezone.now() - timedelta(days=days)


def audit_entry(days: float, action: str = "tenant.updated") -> AuditEntry:
    entry = audit_record(actor=None, action=action)
    AuditEntry.objects.filter(pk=entry.pk).update(created_at=ago(days))
    return entry


def caught(days: float) -> CaughtMessage:
    return CaughtMessage.objects.create(
        received_at=ago(days), raw=b"Subject: hi\r\n\r\nhi", size=18
    )


def signin(model, days: float, username: str = "ann"):
    fields = {"failures_since_start": 1} if model is AccessAttempt else {}
    row = model.objects.create(
        user_agent="test", ip_address="127.0.0.1", username=username, **fields
    )
    model.objects.filter(pk=row.pk).update(attempt_time=ago(days))
    return row


def session(expires_in: timedelta) -> str:
    store = SessionStore()
    store["x"] = 1
    store.create()
    Session.objects.filter(pk=store.session_key).update(expire_date=timezone.now() + expires_in)
    return store.session_key


def kept(*rows) -> list[bool]:
    return [type(row).objects.filter(pk=row.pk).exists() for row in rows]


def test_each_table_is_kept_for_its_own_period(settings):
    settings.AUDIT_RETENTION_DAYS = 365
    settings.WEBHOOK_REFUSAL_RETENTION_DAYS = 30
    settings.CAUGHT_MAIL_RETENTION_DAYS = 7
    settings.SIGNIN_LOG_RETENTION_DAYS = 30
    audit_old, audit_young = audit_entry(400), audit_entry(300)
    refusal_old, refusal_young = audit_entry(40, REFUSED_ACTION), audit_entry(20, REFUSED_ACTION)
    caught_old, caught_young = caught(8), caught(6)
    log_old, log_young = signin(AccessLog, 31), signin(AccessLog, 29)
    attempt_old = signin(AccessAttempt, 31)
    expired, live = session(-timedelta(minutes=1)), session(timedelta(days=1))

    report = data_retention_run()

    assert kept(audit_old, audit_young) == [False, True]
    assert kept(refusal_old, refusal_young) == [False, True]
    assert kept(caught_old, caught_young) == [False, True]
    assert kept(log_old, log_young, attempt_old) == [False, True, False]
    assert list(Session.objects.values_list("pk", flat=True)) == [live]
    assert expired != live
    assert report.deleted == {
        "deliveries": 0,
        "attempts": 0,
        "events": 0,
        "webhook refusals": 1,
        "audit entries": 1,
        "caught mail": 1,
        "sessions": 1,
        "sign-in logs": 1,
        "sign-in failures": 1,
        "sign-in failure logs": 0,
    }
    assert report.finished


def test_a_failed_sign_in_renewed_lately_does_not_keep_older_ones(settings):
    settings.SIGNIN_LOG_RETENTION_DAYS = 30
    # Axes moves a row's time with each new failure: the first row is the youngest.
    renewed = signin(AccessAttempt, 1)
    old = signin(AccessAttempt, 31, username="bob")

    data_retention_run()

    assert kept(renewed, old) == [True, False]


def test_a_small_batch_and_budget_resume_in_the_next_run(settings):
    settings.CAUGHT_MAIL_RETENTION_DAYS = 7
    for _ in range(5):
        caught(10)
        signin(AccessLog, 40)
    young = caught(1)

    first = data_retention_run(batch_size=2, budget_seconds=0)

    assert not first.finished
    assert (first.deleted["caught mail"], first.deleted["sign-in logs"]) == (2, 2)
    runs = [first]
    while not runs[-1].finished and len(runs) < 10:
        runs.append(data_retention_run(batch_size=2, budget_seconds=0))
    assert runs[-1].finished
    assert sum(run.deleted["caught mail"] for run in runs) == 5
    assert list(CaughtMessage.objects.all()) == [young]
    assert not AccessLog.objects.exists()


def test_one_run_at_a_time(settings):
    caught(30)
    cache.set(RETENTION_LOCK_KEY, 1)

    report = data_retention_run()

    assert report.skipped
    assert CaughtMessage.objects.exists()


def test_beat_runs_retention_every_ten_minutes_through_a_thin_task(settings):
    entry = app.conf.beat_schedule["data-retention"]
    assert entry["task"] == "apps.operations.tasks.data_retention_run_task"
    assert tasks.data_retention_run_task.name == entry["task"]
    assert entry["schedule"] == RETENTION_SECONDS == 600
    settings.CAUGHT_MAIL_RETENTION_DAYS = 7
    caught(10)

    deleted = tasks.data_retention_run_task.apply().get()

    assert deleted["caught mail"] == 1


def test_the_task_raises_when_retention_fails(monkeypatch):
    def broken(**kwargs):
        raise RuntimeError("database gone")

    monkeypatch.setattr("apps.operations.services.delivery_days_roll_up", broken)
    with pytest.raises(RuntimeError):
        tasks.data_retention_run_task.apply().get()
    # The lock is let go: the next run is not refused.
    assert cache.get(RETENTION_LOCK_KEY) is None


def test_a_system_administrator_sets_a_tenants_period_audited(tenant, system_admin):
    tenant_retention_update(tenant=tenant, days=30, actor=system_admin)
    tenant_retention_update(tenant=tenant, days=30, actor=system_admin)  # no change, no entry
    tenant_retention_update(tenant=tenant, days=None, actor=system_admin)

    tenant.refresh_from_db()
    assert tenant.delivery_retention_days is None
    entries = AuditEntry.objects.filter(action="tenant.retention_updated").order_by("pk")
    assert [e.changes for e in entries] == [
        {"delivery_retention_days": [None, 30]},
        {"delivery_retention_days": [30, None]},
    ]
    assert {e.actor for e in entries} == {system_admin}


def test_the_host_admin_changes_a_tenants_period(client, tenant, system_admin):
    client.force_login(system_admin)
    url = reverse("admin:tenancy_tenant_change", args=[tenant.pk])
    page = client.get(url)
    assert b"Data retention" in page.content
    data = {
        "name": tenant.name,
        "is_active": "on",
        "smtp_extra_ports": "",
        "delivery_retention_days": "45",
    }

    response = client.post(url, data)

    assert response.status_code == 302, response.content
    tenant.refresh_from_db()
    assert tenant.delivery_retention_days == 45
    assert AuditEntry.objects.filter(action="tenant.retention_updated").count() == 1
