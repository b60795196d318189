"""docs/deploy.md, done: production settings, gunicorn, WhiteNoise, workers, PostgreSQL, Redis.

One test walks the guide as an operator would: it writes the one environment file every
process reads, runs `deploy/manage migrate`, `collectstatic`, `check --deploy` and
`createsystemadmin` on a fresh database, starts the Procfile's web, worker and beat commands
with that environment, and checks what a person and a load balancer see. Then it stops them
with SIGTERM, as systemd does.
"""

import json
import logging
import os
import re
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
import requests
from cryptography.fernet import Fernet
from django.conf import settings
from psycopg import sql

from tests.delivery.workers import queue_delete, wait_until
from tests.smtp_servers import Sink, sink_server

# Migrates a new database and starts gunicorn, a worker and beat: minutes on a busy machine.
pytestmark = [pytest.mark.services, pytest.mark.timeout(600)]
logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
SITE = "postmaster.example.com"
ADMIN_PASSWORD = "a-long-operator-passphrase-7781"
METRICS_TOKEN = secrets.token_urlsafe(24)
# Web, worker and beat: the lines of deploy/Procfile.
PROCFILE = dict(
    line.split(":", 1)
    for line in (ROOT / "deploy/Procfile").read_text().splitlines()
    if line and not line.startswith("#")
)

# What an operator (or a pipeline) sets up next: the host's SMTP server, a tenant whose
# pipeline notifies someone, an events API token. Run through the services, in the new database.
SETUP = """
import json
from apps.connections.models import Security, SmtpSettings
from apps.connections.services import smtp_settings_update
from apps.pipelines.services import (
    notification_rule_create, pipeline_create, project_api_token_create,
)
from apps.tenancy.services import organization_create, project_create, tenant_create

smtp_settings_update(actor=None, smtp_settings=SmtpSettings(
    tenant=None, name="Relay", host="127.0.0.1", port={port}, security=Security.NONE,
    from_email="alerts@acme.example", from_name="Acme alerts",
))
tenant = tenant_create(name="Acme", slug="acme", actor=None)
organization = organization_create(tenant=tenant, name="Engineering", actor=None)
project = project_create(organization=organization, name="Checkout", actor=None)
pipeline = pipeline_create(project=project, name="Deploy prod", slug="deploy-prod", actor=None)
notification_rule_create(
    project=project, pipeline=pipeline, name="On call", event_types=["pipeline_failed"],
    addresses=["oncall@acme.example"], actor=None,
)
_, raw = project_api_token_create(project=project, name="CI", actor=None)
print(json.dumps({{"token": raw}}))
"""


def _free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        return probe.getsockname()[1]


@contextmanager
def _fresh_database() -> Iterator[str]:
    """A new, empty database on the test run's PostgreSQL server; its DATABASE_URL."""
    db = settings.DATABASES["default"]
    server = {
        "host": db["HOST"] or "127.0.0.1",
        "port": db["PORT"] or 5432,
        "user": db["USER"],
        "password": db["PASSWORD"] or None,
    }
    name = f"pm_deploy_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(dbname="postgres", autocommit=True, **server) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    password = f":{quote(server['password'], safe='')}" if server["password"] else ""
    try:
        yield f"postgres://{server['user']}{password}@{server['host']}:{server['port']}/{name}"
    finally:
        with psycopg.connect(dbname="postgres", autocommit=True, **server) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def _read_env_file(path: Path) -> dict[str, str]:
    """NAME=value lines, as systemd's EnvironmentFile reads them."""
    pairs = (line.split("=", 1) for line in path.read_text().splitlines())
    return {name: value for name, value in pairs if not name.startswith("#")}


@contextmanager
def _process(name: str, env: dict, log: Path) -> Iterator[subprocess.Popen]:
    """The Procfile's `name` line, with `env` only; stopped at the end if still running."""
    with log.open("ab") as output:
        process = subprocess.Popen(
            shlex.split(PROCFILE[name]), cwd=ROOT, env=env, stdout=output, stderr=output
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _stop(process: subprocess.Popen, log: Path) -> int:
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"still running 60 s after SIGTERM:\n{log.read_text()}") from None


def _get(port: int, path: str, *, https: bool = True, **options) -> requests.Response:
    headers = {"Host": SITE, **options.pop("headers", {})}
    if https:
        headers["X-Forwarded-Proto"] = "https"  # as deploy/nginx.conf sets it
    return requests.get(
        f"http://127.0.0.1:{port}{path}",
        headers=headers,
        allow_redirects=False,
        timeout=30,
        **options,
    )


@pytest.fixture
def deployment(tmp_path):
    """The environment file of docs/deploy.md, on a fresh database and the run's Redis."""
    queue = f"postmaster-deploy-{uuid.uuid4().hex[:12]}"
    broker = settings.CELERY_BROKER_URL
    with _fresh_database() as database_url:
        env_file = tmp_path / "postmaster.env"
        values = {
            "DJANGO_SETTINGS_MODULE": "config.settings.production",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "ALLOWED_HOSTS": SITE,
            "SITE_URL": f"https://{SITE}",
            "DATABASE_URL": database_url,
            "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
            "CELERY_BROKER_URL": broker,
            "CACHE_URL": os.environ.get("CACHE_URL") or broker,
            "STATIC_ROOT": str(tmp_path / "static"),
            "CELERY_BEAT_SCHEDULE_FILENAME": str(tmp_path / "state" / "celerybeat-schedule"),
            "GUNICORN_BIND": f"127.0.0.1:{_free_port()}",
            "WEB_CONCURRENCY": "2",
            "METRICS_TOKEN": METRICS_TOKEN,
            # This run's own queue: workers of other runs sharing the broker never take its tasks.
            "CELERY_TASK_DEFAULT_QUEUE": queue,
        }
        env_file.write_text("".join(f"{name}={value}\n" for name, value in values.items()))
        try:
            yield env_file
        finally:
            queue_delete(queue)


def _base_env() -> dict[str, str]:
    """A service's environment before its EnvironmentFile: nothing of this test run's."""
    bin_dir = str(Path(sys.executable).parent)
    return {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "HOME": os.environ.get("HOME", "/tmp"),
        "LANG": "C.UTF-8",
    }


def _manage(env_file: Path, *args: str, **extra: str) -> subprocess.CompletedProcess:
    env = _base_env() | {"POSTMASTER_ENV_FILE": str(env_file), "PYTHON": sys.executable} | extra
    result = subprocess.run(
        [str(ROOT / "deploy/manage"), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, f"deploy/manage {' '.join(args)}:\n{result.stderr}"
    return result


def test_production_as_docs_deploy_md_says(deployment, tmp_path):
    env_file = deployment
    env = _base_env() | _read_env_file(env_file)
    # The web unit's one variable of its own (docs/deploy.md, "Monitoring").
    (tmp_path / "prometheus").mkdir()
    web_env = env | {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prometheus")}
    port = int(env["GUNICORN_BIND"].rsplit(":", 1)[1])
    sink = Sink()

    # First start, in the documented order.
    _manage(env_file, "migrate", "--no-input")
    _manage(env_file, "collectstatic", "--no-input")
    check = _manage(env_file, "check", "--deploy")
    assert "System check identified no issues" in check.stdout, check.stdout + check.stderr
    _manage(
        env_file,
        *("createsystemadmin", "--email", "ops@example.com", "--no-input"),
        POSTMASTER_ADMIN_PASSWORD=ADMIN_PASSWORD,
    )

    with sink_server(sink) as relay:
        token = json.loads(
            _manage(env_file, "shell", "-c", SETUP.format(port=relay.port)).stdout.splitlines()[-1]
        )["token"]

        logs = {name: tmp_path / f"{name}.log" for name in PROCFILE}
        started = time.monotonic()
        with (
            _process("web", web_env, logs["web"]) as web,
            _process("worker", env, logs["worker"]) as worker,
            _process("beat", env, logs["beat"]) as beat,
        ):

            def answers() -> bool:
                assert web.poll() is None, f"gunicorn exited:\n{logs['web'].read_text()}"
                try:
                    return _get(port, "/health/", https=False).status_code == 200
                except requests.RequestException:  # not listening yet, or still loading
                    return False

            wait_until(answers, timeout=120, every=0.2)
            logger.info("gunicorn answered %.1f s after its start", time.monotonic() - started)

            # A load balancer's probe over plain HTTP is answered; everything else goes to https.
            health = _get(port, "/health/", https=False)
            assert health.status_code == 200
            assert health.json()["checks"]["database"]["status"] == "ok"
            home = _get(port, "/", https=False)
            assert home.status_code == 301
            assert home.headers["Location"] == f"https://{SITE}/"

            # The admin's sign-in page is styled: it links hashed CSS that loads, cached for ever.
            admin = _get(port, "/admin/login/")
            assert admin.status_code == 200
            assert "Strict-Transport-Security" in admin.headers
            stylesheets = re.findall(r'href="(/static/[^"]+\.[0-9a-f]{12}\.css)"', admin.text)
            assert stylesheets, admin.text
            for href in stylesheets:
                css = _get(port, href, headers={"Accept-Encoding": "gzip"})
                assert css.status_code == 200, href
                assert css.headers["Content-Type"].startswith("text/css")
                assert "max-age=315360000" in css.headers["Cache-Control"]
                assert "immutable" in css.headers["Cache-Control"]
                assert css.headers.get("Content-Encoding") == "gzip"
            assert "max-age=315360000" not in admin.headers.get("Cache-Control", "")

            # The first system administrator signs in (the cookies are Secure: sent by hand,
            # as a browser sends them to the https site).
            login_url = f"http://127.0.0.1:{port}/admin/login/"
            proxy = {"Host": SITE, "X-Forwarded-Proto": "https", "Referer": f"https://{SITE}/"}
            page = requests.get(login_url, headers=proxy, timeout=30)
            csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)[1]
            cookie = "; ".join(f"{c.name}={c.value}" for c in page.cookies)
            signed_in = requests.post(
                login_url,
                data={
                    "csrfmiddlewaretoken": csrf,
                    "username": "ops@example.com",
                    "password": ADMIN_PASSWORD,
                    "next": "/admin/",
                },
                headers={**proxy, "Cookie": cookie},
                allow_redirects=False,
                timeout=30,
            )
            assert signed_in.status_code == 302, signed_in.text
            assert signed_in.headers["Location"] == "/admin/"
            session_cookie = signed_in.cookies["sessionid"]
            assert "Secure" in signed_in.headers["Set-Cookie"]
            dashboard = _get(port, "/admin/", headers={"Cookie": f"sessionid={session_cookie}"})
            assert dashboard.status_code == 200
            assert "System administrators" in dashboard.text

            # An event through the API is delivered by the worker, through the relay.
            accepted = requests.post(
                f"http://127.0.0.1:{port}/api/v1/events",
                json={
                    "pipeline": "deploy-prod",
                    "event_type": "pipeline_failed",
                    "level": "error",
                    "run_id": "4711",
                    "run_url": "https://ci.example.com/runs/4711",
                },
                headers={"Host": SITE, "X-Forwarded-Proto": "https", **_bearer(token)},
                timeout=30,
            )
            assert accepted.status_code == 202, accepted.text
            assert accepted.json()["status_url"].startswith(f"https://{SITE}/")

            def delivered() -> bool:
                assert worker.poll() is None, f"the worker exited:\n{logs['worker'].read_text()}"
                return len(sink.accepted) == 1

            wait_until(delivered, timeout=90, every=0.2)
            assert b"oncall@acme.example" in sink.accepted[0]

            # Prometheus scrapes gunicorn directly, with the token; anyone else gets a 404.
            assert _get(port, "/metrics/", https=False).status_code == 404
            wrong = {"Authorization": "Bearer wrong"}
            assert _get(port, "/metrics/", https=False, headers=wrong).status_code == 404
            scrape = {"Authorization": f"Bearer {METRICS_TOKEN}"}
            sent = (
                'postmaster_messages_total{connection="host",kind="smtp",outcome="sent",'
                'tenant="acme"} 1.0'
            )
            # The worker adds its counts to the shared totals when its task ends.
            wait_until(
                lambda: sent in _get(port, "/metrics/", https=False, headers=scrape).text,
                timeout=60,
                every=0.5,
            )
            scraped = _get(port, "/metrics/", https=False, headers=scrape).text
            assert 'status="202"' in scraped
            # Both gunicorn processes' requests, summed: at least the two /health/ answers above.
            health_count = 'postmaster_http_requests_total{method="GET",status="200",view="health"}'
            counted = re.search(re.escape(health_count) + r" (\S+)", scraped)
            assert counted, scraped
            assert float(counted[1]) >= 2
            assert "postmaster_oldest_queued_delivery_age_seconds 0.0" in scraped
            assert "oncall@acme.example" not in scraped

            # Beat keeps its schedule where it is told, not in the repository.
            schedule_dir = Path(env["CELERY_BEAT_SCHEDULE_FILENAME"]).parent
            wait_until(lambda: schedule_dir.is_dir() and any(schedule_dir.iterdir()), timeout=60)
            assert not list(ROOT.glob("celerybeat-schedule*"))

            # systemd stops them with SIGTERM: each finishes and exits cleanly.
            for name, process in (("web", web), ("worker", worker), ("beat", beat)):
                assert _stop(process, logs[name]) == 0, logs[name].read_text()
        assert "Traceback" not in logs["worker"].read_text()
        assert "Traceback" not in logs["web"].read_text()


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
