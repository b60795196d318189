"""/health/: JSON for load balancers and monitoring, with real servers behind each check."""

import json
import secrets

import pytest
from django.core.cache import cache
from django.db import connection

from apps.connections.models import SmtpSettings
from apps.connections.selectors import host_smtp_settings_forget
from apps.operations.services import maintenance_update
from tests.connections.smtp.factories import SmtpSettingsFactory
from tests.delivery.workers import publishing, queue_delete, wait_until, worker
from tests.smtp_servers import (
    UNTRUSTED_CA,
    closed_port,
    silent_server,
    smtp_server,
    write_ca_bundle,
)

pytestmark = pytest.mark.django_db

URL = "/health/"


def health(client):
    response = client.get(URL)
    assert response["Content-Type"] == "application/json"
    assert "no-cache" in response["Cache-Control"]
    return response, response.json()


def test_healthy_without_a_broker_and_with_the_mail_server_up(client, host_server, settings):
    settings.CELERY_BROKER_URL = ""
    response, body = health(client)
    assert response.status_code == 200
    assert body["status"] == "ok"
    assert body["maintenance"] is False
    checks = body["checks"]
    assert checks["database"]["status"] == "ok"
    assert checks["database"]["required"] is True
    assert checks["broker"]["status"] == "eager"
    assert checks["workers"]["status"] == "eager"
    assert checks["smtp"]["status"] == "ok"
    for check in checks.values():
        assert isinstance(check["ms"], int | float)
        assert check["ms"] >= 0


def test_an_unreachable_mail_server_is_reported_without_failing_the_balancer(client, db):
    port = closed_port()
    SmtpSettingsFactory(host="127.0.0.1", port=port, username="ann", secret="s3cret-pw")
    response, body = health(client)
    assert response.status_code == 200
    assert body["status"] == "degraded"
    assert body["checks"]["smtp"] == {
        "status": "error",
        "ms": body["checks"]["smtp"]["ms"],
        "reason": "unreachable",
        "required": False,
    }
    # Nothing about where the server is, nor who signs in to it.
    for secret in [str(port), "127.0.0.1", "ann", "s3cret-pw"]:
        assert secret not in response.text


def test_missing_host_settings_are_said(client, db):
    _, body = health(client)
    assert body["checks"]["smtp"]["reason"] == "host email settings not set"


def test_slow_checks_are_cached_for_a_few_seconds(client, host_server):
    _, first = health(client)
    assert first["checks"]["smtp"]["status"] == "ok"
    # The host settings now point where nothing listens.
    SmtpSettings.objects.filter(tenant=None).update(port=closed_port())
    host_smtp_settings_forget()
    _, again = health(client)
    assert again["checks"]["smtp"]["status"] == "ok"  # the cached answer
    cache.delete("operations:health:smtp")
    _, fresh = health(client)
    assert fresh["checks"]["smtp"]["status"] == "error"


def test_the_maintenance_flag_is_reported(client, host_server, system_admin):
    maintenance_update(actor=system_admin, is_on=True, message="Back soon.")
    response, body = health(client)
    assert response.status_code == 200
    assert body["maintenance"] is True


def test_only_reading(client, db):
    assert client.head(URL).status_code in (200, 503)
    assert client.post(URL).status_code == 405


@pytest.mark.usefixtures("host_server")
def test_a_broker_that_cannot_be_reached_answers_503_without_its_address(client, settings):
    port = closed_port()
    url = f"redis://:broker-s3cret@127.0.0.1:{port}/0"
    settings.CELERY_BROKER_URL = url
    with publishing(broker_url=url, queue="health-test"):
        response, body = health(client)
    assert response.status_code == 503, body
    assert body["status"] == "down"
    assert body["checks"]["broker"]["status"] == "error"
    assert body["checks"]["broker"]["reason"] == "unreachable"
    assert body["checks"]["broker"]["required"] is True
    assert body["checks"]["workers"]["status"] == "error"
    assert body["checks"]["database"]["status"] == "ok"
    assert "broker-s3cret" not in response.text
    assert str(port) not in response.text


@pytest.mark.services
@pytest.mark.usefixtures("host_server")
def test_with_postgresql_redis_and_a_real_worker_everything_is_ok(client, settings, tmp_path):
    assert connection.vendor == "postgresql"
    queue = f"health-{secrets.token_hex(4)}"
    try:
        with (
            publishing(broker_url=settings.CELERY_BROKER_URL, queue=queue),
            worker(queue=queue, log=tmp_path / "health-worker.log"),
        ):

            def workers_answer() -> bool:
                cache.delete("operations:health:workers")
                return health(client)[1]["checks"]["workers"]["status"] == "ok"

            wait_until(workers_answer, timeout=30, every=0.5)
            response, body = health(client)
    finally:
        queue_delete(queue)
    assert response.status_code == 200, json.dumps(body)
    assert body["status"] == "ok"
    assert {name: check["status"] for name, check in body["checks"].items()} == {
        "database": "ok",
        "broker": "ok",
        "workers": "ok",
        "smtp": "ok",
    }


# The SMTP check does what sending needs (EHLO, TLS), without signing in ------------------


def host_settings_for(server, **fields):
    SmtpSettingsFactory(**server.connection, **fields)
    host_smtp_settings_forget()


@pytest.mark.parametrize("tls", ["starttls", "implicit"])
def test_smtp_tls_with_an_untrusted_certificate_fails_the_check_in_plain_words(client, db, tls):
    with smtp_server(tls=tls, certificate=UNTRUSTED_CA) as server:
        host_settings_for(server)
        response, body = health(client)

    assert response.status_code == 200  # SMTP is not required for the balancer
    assert body["status"] == "degraded"
    smtp = body["checks"]["smtp"]
    assert smtp["status"] == "error"
    assert smtp["reason"] == "TLS failed: the server's certificate is not trusted"
    assert str(server.port) not in response.text


def test_smtp_starttls_the_server_does_not_offer_fails_the_check(client, db):
    with smtp_server() as server:
        SmtpSettingsFactory(host=server.host, port=server.port, security="starttls")
        host_smtp_settings_forget()
        _, body = health(client)

    assert body["checks"]["smtp"]["status"] == "error"
    assert body["checks"]["smtp"]["reason"] == "TLS failed: the server does not offer STARTTLS"


@pytest.mark.parametrize("tls", ["starttls", "implicit"])
def test_smtp_tls_that_works_is_ok_and_nobody_signs_in(client, db, settings, tmp_path, tls):
    settings.SMTP_CA_BUNDLE = write_ca_bundle(tmp_path)
    with smtp_server(tls=tls, users={"ann": "s3cret-pw"}) as server:
        host_settings_for(server, username="ann", secret="s3cret-pw")
        _, body = health(client)

    assert body["checks"]["smtp"]["status"] == "ok"
    assert server.greetings >= 1
    assert server.auth_mechanisms == []


def test_smtp_a_refused_greeting_name_fails_the_check(client, db, settings):
    settings.SITE_URL = "http://127.0.0.1:8000"
    settings.SMTP_EHLO_NAME = ""
    with smtp_server(fqdn_helo="ehlo") as server:
        host_settings_for(server)
        _, body = health(client)

    assert body["checks"]["smtp"]["status"] == "error"
    assert body["checks"]["smtp"]["reason"] == "the server refused our greeting name (EHLO name)"


def test_smtp_a_server_that_never_greets_fails_the_check_within_its_budget(client, db):
    with silent_server() as server:
        SmtpSettingsFactory(host=server.host, port=server.port, timeout=60)
        host_smtp_settings_forget()
        _, body = health(client)

    smtp = body["checks"]["smtp"]
    assert smtp["status"] == "error"
    assert smtp["reason"] == "no answer in time"
