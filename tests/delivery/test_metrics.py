"""The engine counts messages sent, failed and retried by tenant and connection; /metrics/
shows them, with the queue, only to Prometheus (a token or an allowed address)."""

import pytest
from django.urls import reverse

from apps.delivery import metrics
from apps.delivery.services import event_dispatch
from tests.delivery.engine import deliver, make_event
from tests.factories import NotificationRuleFactory

TOKEN = "metrics-token-for-the-tests-0123456789"


@pytest.fixture(autouse=True)
def _fresh_counts():
    """Counts live in Redis (CI) or this process: each test starts from none."""
    metrics.messages_flush()
    client = metrics._redis()
    if client is not None:
        client.delete(metrics._hash_key())
    metrics._local.clear()
    yield
    metrics._pending.clear()
    metrics._local.clear()


@pytest.fixture
def scrape(client, settings):
    settings.METRICS_TOKEN = TOKEN

    def get():
        response = client.get(reverse("metrics"), HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
        assert response.status_code == 200
        return response.content.decode()

    return get


def test_sent_failed_and_retried_are_counted_by_tenant_and_connection(
    deploy_prod, mail_server, sink, scrape
):
    replies = iter(["550 5.1.1 No such user", "451 4.3.0 Try again later"])
    sink.script = lambda number, content: next(replies, "accept")
    NotificationRuleFactory(
        pipeline=deploy_prod, addresses=["a@x.example", "b@x.example", "c@x.example"]
    )
    deliver(make_event(deploy_prod))
    metrics.messages_flush()

    totals = metrics.messages_totals()
    tenant_id = deploy_prod.tenant_id
    assert totals[(tenant_id, "host", "smtp", "failed")] == 1
    assert totals[(tenant_id, "host", "smtp", "retried")] == 1
    assert totals[(tenant_id, "host", "smtp", "sent")] == 2  # one at once, one on its retry

    text = scrape()
    assert (
        'postmaster_messages_total{connection="host",kind="smtp",outcome="sent",tenant="acme"} 2.0'
    ) in text
    assert "x.example" not in text  # never an address


def test_the_queue_and_its_oldest_delivery(deploy_prod, scrape):
    NotificationRuleFactory(pipeline=deploy_prod, addresses=["a@x.example", "b@x.example"])
    event_dispatch(event_id=make_event(deploy_prod).pk)  # no SMTP settings: they wait, queued

    text = scrape()
    assert 'postmaster_deliveries_queued{tenant="acme"} 2.0' in text
    age = next(
        line
        for line in text.splitlines()
        if line.startswith("postmaster_oldest_queued_delivery_age_seconds ")
    )
    assert float(age.split()[1]) >= 0
    assert "postmaster_http_requests_total" in text


@pytest.mark.django_db
def test_metrics_are_hidden_from_everyone_else(client, settings):
    url = reverse("metrics")
    settings.METRICS_TOKEN, settings.METRICS_ALLOWED_IPS = "", []
    assert client.get(url).status_code == 404  # nobody, when neither is set

    settings.METRICS_TOKEN = TOKEN
    assert client.get(url).status_code == 404
    assert client.get(url, HTTP_AUTHORIZATION="Bearer wrong").status_code == 404
    assert client.get(url, HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 200

    settings.METRICS_TOKEN, settings.METRICS_ALLOWED_IPS = "", ["10.0.0.0/8"]
    assert client.get(url, REMOTE_ADDR="10.1.2.3").status_code == 200
    assert client.get(url, REMOTE_ADDR="192.0.2.1").status_code == 404
    assert (
        client.get(url, REMOTE_ADDR="10.1.2.3", HTTP_X_FORWARDED_FOR="1.2.3.4").status_code == 200
    )
    assert (
        client.get(url, REMOTE_ADDR="192.0.2.1", HTTP_X_FORWARDED_FOR="10.1.2.3").status_code == 404
    )


def test_retention_progress(deploy_prod, scrape):
    from datetime import timedelta

    from django.utils import timezone

    from apps.delivery.models import Delivery
    from apps.operations.services import data_retention_run

    assert "postmaster_retention_last_run_timestamp_seconds" not in scrape()  # never ran yet
    NotificationRuleFactory(pipeline=deploy_prod, addresses=["a@x.example"])
    event_dispatch(event_id=make_event(deploy_prod).pk)
    Delivery.objects.update(created_at=timezone.now() - timedelta(days=3))

    report = data_retention_run()

    text = scrape()
    assert "postmaster_retention_last_run_timestamp_seconds " in text
    assert "postmaster_retention_caught_up 1.0" in text
    for table, count in report.deleted.items():
        assert f'postmaster_retention_deleted_rows{{table="{table}"}} {float(count)}' in text
    age = next(
        line for line in text.splitlines() if line.startswith("postmaster_oldest_delivery_age")
    )
    assert float(age.split()[1]) >= timedelta(days=3).total_seconds()
