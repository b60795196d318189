"""A planted SMTP password never leaves the encrypted column.

The foundation's canary (tests/connections/smtp/test_canary.py) covers the
settings pages. This one follows the password through a whole delivery, from
the events API to a real SMTP server that requires it, and looks for it
everywhere that could keep or show it: the API's answers and schema, the
delivery log and admin pages, the audit log, every row of every table, the
arguments of every Celery task, the messages that reach a real Redis broker,
and every log record at DEBUG level (all loggers), plus whatever went to
stdout/stderr.
"""

import base64
import json
import logging
import uuid

import pytest
from celery.signals import before_task_publish, task_prerun
from django.apps import apps
from django.conf import settings
from django.core import serializers
from django.test import Client
from django.urls import reverse

from apps.audit.models import AuditEntry
from apps.connections.models import Security
from apps.delivery.models import DeliveryStatus, Event
from apps.groups.services import user_group_create
from apps.pipelines.services import notification_rule_create
from config.celery import app
from tests.api.conftest import bearer, event_body, make_token
from tests.connections.smtp.factories import SmtpSettingsFactory
from tests.delivery.engine import make_pipeline
from tests.delivery.workers import publishing, queue_delete
from tests.factories import MembershipFactory, ProjectFactory, UserFactory
from tests.smtp_servers import smtp_server, write_ca_bundle

CANARY = "canary-Broker-W4-PLEASE-NEVER-SHOW"
# How the password looks in an AUTH PLAIN / AUTH LOGIN exchange.
CANARY_FORMS = [
    CANARY,
    base64.b64encode(b"\0ann\0" + CANARY.encode()).decode(),
    base64.b64encode(CANARY.encode()).decode(),
]


def assert_no_canary(text: str, where: str) -> None:
    for form in CANARY_FORMS:
        assert form not in text, f"the canary password shows in {where}"


@pytest.fixture
def every_logger_at_debug(caplog):
    """Every logger, even those configured quieter, records DEBUG into caplog."""
    caplog.set_level(logging.DEBUG)
    loggers = [logging.getLogger(name) for name in list(logging.root.manager.loggerDict)]
    before = [(logger, logger.level, logger.disabled) for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
        logger.disabled = False
    yield caplog
    for logger, level, disabled in before:
        logger.setLevel(level)
        logger.disabled = disabled


@pytest.fixture
def task_calls():
    """The arguments of every task run or published during the test."""
    seen: list[str] = []

    def ran(sender=None, args=None, kwargs=None, **extra):
        seen.append(f"{sender.name} {args!r} {kwargs!r}")

    def published(sender=None, body=None, headers=None, **extra):
        seen.append(f"{sender} {body!r} {headers!r}")

    task_prerun.connect(ran, weak=False)
    before_task_publish.connect(published, weak=False)
    yield seen
    task_prerun.disconnect(ran)
    before_task_publish.disconnect(published)


def _world(tenant, server):
    """Acme's own SMTP server requires the canary; a rule sends deploy-prod's failures to ops."""
    SmtpSettingsFactory(
        tenant=tenant,
        name="Acme mail",
        host=server.host,
        port=server.port,
        security=Security.STARTTLS,
        username="ann",
        secret=CANARY,
        from_email="alerts@acme.example",
    )
    project = ProjectFactory(organization__tenant=tenant, name="Payments", slug="payments")
    pipeline = make_pipeline(project, "Deploy prod", "deploy-prod")
    admin = UserFactory(email="owner@acme.example")
    members = [UserFactory(email=f"ops{n}@acme.example") for n in (1, 2)]
    for member in members:
        MembershipFactory(tenant=tenant, user=member)
    group = user_group_create(
        tenant=tenant, name="Ops", members=members, notify_all_members=True, actor=admin
    )
    notification_rule_create(
        project=project,
        pipeline=pipeline,
        name="Failures",
        event_types=["pipeline_failed"],
        groups=[group],
        actor=admin,
    )
    return project


def _all_rows() -> str:
    """Every row of every table, as Django would dump it (secrets as their masked str)."""
    dumps = []
    for model in apps.get_models():
        if model._meta.proxy or not model._meta.managed:
            continue
        dumps.append(serializers.serialize("json", model._default_manager.all()))
    return "".join(dumps)


@pytest.mark.django_db
def test_the_canary_never_leaves_the_encrypted_column(
    tenant,
    tenant_admin,
    admin_client,
    every_logger_at_debug,
    task_calls,
    capfd,
    tmp_path,
    settings,
    django_capture_on_commit_callbacks,
):
    settings.SMTP_CA_BUNDLE = write_ca_bundle(tmp_path)
    pages: list[tuple[str, str]] = []
    with smtp_server(tls="starttls", users={"ann": CANARY}) as server:
        project = _world(tenant, server)
        token = make_token(project)
        api = Client()
        # With eager tasks (as without a broker) the whole delivery runs inside this request.
        before = app.conf.task_always_eager
        app.conf.task_always_eager = True
        try:
            with django_capture_on_commit_callbacks(execute=True):
                answer = api.post(
                    "/api/v1/events",
                    event_body(),
                    content_type="application/json",
                    headers=bearer(token),
                )
        finally:
            app.conf.task_always_eager = before
        assert answer.status_code == 202, answer.content
        pages.append(("the API's answer to POST", answer.content.decode()))

        # The server required the password and the mail arrived: the canary was really used.
        assert server.logins == ["ann"]
        assert len(server.messages) == 2
    event = Event.objects.get()
    assert set(event.deliveries.values_list("status", flat=True)) == {DeliveryStatus.SENT}

    event_url = f"/api/v1/events/{event.pk}"
    for label, response in [
        ("the API's event", api.get(event_url, headers=bearer(token))),
        ("the OpenAPI schema", api.get("/api/v1/openapi.json")),
        ("the API docs", api.get("/api/v1/docs")),
    ]:
        assert response.status_code == 200, label
        pages.append((label, response.content.decode()))

    portal = Client()
    portal.force_login(tenant_admin)
    slug = tenant.slug
    for url in [
        reverse("tenancy:dashboard", args=[slug]),
        reverse("tenancy:delivery:log", args=[slug]),
        reverse("tenancy:delivery:event_detail", args=[slug, event.pk]),
        reverse("tenancy:delivery:event_progress", args=[slug, event.pk]),
        reverse("tenancy:mailsettings:edit", args=[slug]),
        reverse("tenancy:audit_log", args=[slug]),
    ]:
        response = portal.get(url)
        assert response.status_code == 200, url
        pages.append((url, response.content.decode()))

    admin_urls = [
        reverse("admin:delivery_event_changelist"),
        reverse("admin:delivery_event_change", args=[event.pk]),
        reverse("admin:delivery_delivery_changelist"),
        *(
            reverse("admin:delivery_delivery_change", args=[pk])
            for pk in event.deliveries.values_list("pk", flat=True)
        ),
        reverse("admin:audit_auditentry_changelist"),
        *(
            reverse("admin:audit_auditentry_change", args=[pk])
            for pk in AuditEntry.objects.values_list("pk", flat=True)
        ),
    ]
    for url in admin_urls:
        response = admin_client.get(url)
        assert response.status_code == 200, url
        pages.append((url, response.content.decode()))

    for where, text in pages:
        assert_no_canary(text, where)
    assert_no_canary(str(list(AuditEntry.objects.values_list("changes", "target_repr"))), "audit")
    assert_no_canary(_all_rows(), "a table")
    assert any("deliveries_send_task" in call for call in task_calls)  # tasks were watched
    assert_no_canary("\n".join(task_calls), "a task's arguments")
    records = every_logger_at_debug.records
    assert any(record.levelno == logging.DEBUG for record in records)  # DEBUG was captured
    logged = "\n".join(
        f"{record.name} {record.getMessage()} {record.args!r} {record.exc_text or ''}"
        for record in records
    )
    assert_no_canary(logged, "the logs")
    out, err = capfd.readouterr()
    assert_no_canary(out + err, "stdout/stderr")


def test_nothing_turns_on_smtplib_debug_output():
    """smtplib's debug output prints AUTH exchanges (the password in base64): never enabled."""
    found = [
        path
        for path in (settings.BASE_DIR / "apps").rglob("*.py")
        if "set_debuglevel" in path.read_text() or "debuglevel" in path.read_text()
    ]
    assert found == []


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_what_reaches_the_broker_carries_no_secret(tenant, task_calls):
    """Intake and dispatch publish on a real Redis broker; the raw messages there are read."""
    from apps.delivery.services import events_dispatch

    queue = f"canary-{uuid.uuid4().hex[:8]}"
    with smtp_server(tls="starttls", users={"ann": CANARY}) as server:
        project = _world(tenant, server)
        token = make_token(project)
        with publishing(broker_url=settings.CELERY_BROKER_URL, queue=queue):
            try:
                answer = Client().post(
                    "/api/v1/events",
                    event_body(),
                    content_type="application/json",
                    headers=bearer(token),
                )
                assert answer.status_code == 202
                # What a worker would do with the dispatch task: it queues the sending.
                events_dispatch(tenant_id=tenant.pk)
                with app.connection_for_write() as broker:
                    channel = broker.default_channel
                    raw = channel.client.lrange(queue, 0, -1)
            finally:
                queue_delete(queue)

    names = []
    for message in raw:
        assert_no_canary(message.decode(), "a raw broker message")
        envelope = json.loads(message)
        body = base64.b64decode(envelope["body"]).decode()
        assert_no_canary(body, "a task's body on the broker")
        names.append(envelope["headers"]["task"])
        args, kwargs, _ = json.loads(body)
        # Ids only: every argument is a number.
        assert all(isinstance(value, int) for value in [*args, *kwargs.values()]), body
    assert "apps.delivery.tasks.events_dispatch_task" in names
    assert "apps.delivery.tasks.deliveries_send_task" in names
    assert_no_canary("\n".join(task_calls), "a published task")
