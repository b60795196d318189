"""A production start, for real: production settings in a subprocess on a migrated SQLite file.

The demo's data is never created there, and a database that holds it (seeded by
`make run`, or copied from one) stops `manage.py check --deploy` and the WSGI start.
"""

import os
import shutil
import subprocess
import sys

import pytest

from tests.core.test_settings import REQUIRED, ROOT

ADD_DEMO_ADMIN = (
    "import django; django.setup();"
    "from apps.accounts.models import User;"
    "User.objects.create_superuser('admin@postmaster.test', 'a-password-of-its-own')"
)
ADD_REAL_ADMIN = ADD_DEMO_ADMIN.replace("admin@postmaster.test", "ops@example.com")
COUNT_USERS = (
    "import django; django.setup();"
    "from apps.accounts.models import User; print(User.objects.count())"
)
START_WSGI = "import config.wsgi; print('serving')"


def _production(database, *args: str, timeout: int = 300, **extra) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in REQUIRED and k != "CELERY_BROKER_URL"}
    env |= {
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        **REQUIRED,
        "DATABASE_URL": database if "://" in str(database) else f"sqlite:///{database}",
        **extra,
    }
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="module")
def migrated(tmp_path_factory):
    database = tmp_path_factory.mktemp("production") / "migrated.sqlite3"
    result = _production(database, "manage.py", "migrate", "--no-input", "-v", "0")
    assert result.returncode == 0, result.stderr
    return database


@pytest.fixture
def database(migrated, tmp_path):
    copy = tmp_path / "db.sqlite3"
    shutil.copy(migrated, copy)
    return copy


def test_seed_demo_refuses_under_production_settings(database):
    result = _production(database, "manage.py", "seed_demo")
    assert result.returncode != 0
    # The demo app is not installed there at all (apps/demo, DEMO_ENABLED).
    assert "Unknown command: 'seed_demo'" in result.stderr
    assert "Traceback" not in result.stderr
    assert _production(database, "-c", COUNT_USERS).stdout.strip() == "0"


def test_check_deploy_reports_the_demo_administrator(database):
    assert _production(database, "-c", ADD_DEMO_ADMIN).returncode == 0
    result = _production(database, "manage.py", "check", "--deploy")
    assert result.returncode != 0
    assert "operations.E001" in result.stderr
    assert "admin@postmaster.test" in result.stderr


def test_the_wsgi_start_refuses_the_demo_administrator(database):
    assert _production(database, "-c", ADD_DEMO_ADMIN).returncode == 0
    result = _production(database, "-c", START_WSGI)
    assert result.returncode != 0
    assert "Postmaster refuses to start" in result.stderr
    assert "The demo's accounts are in the database (admin@postmaster.test)" in result.stderr
    assert "serving" not in result.stdout


def test_the_wsgi_start_serves_a_real_installation(database):
    assert _production(database, "-c", ADD_REAL_ADMIN).returncode == 0
    result = _production(database, "-c", START_WSGI)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "serving"
    # kombu's in-memory broker answers like a reachable one, without needing Redis here.
    result = _production(
        database,
        *("manage.py", "check", "--deploy", "--fail-level", "INFO"),
        CELERY_BROKER_URL="memory://",
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_worker_refuses_the_demo_administrator(database):
    assert _production(database, "-c", ADD_DEMO_ADMIN).returncode == 0
    # Nothing listens on port 9: a worker that did not refuse would wait for its broker.
    worker = ["-m", "celery", "-A", "config", "worker", "--pool", "solo"]
    try:
        result = _production(
            database, *worker, timeout=120, CELERY_BROKER_URL="redis://127.0.0.1:9/0"
        )
    except subprocess.TimeoutExpired:
        pytest.fail("the worker started with the demo's administrator in the database")
    assert result.returncode != 0
    assert "Postmaster refuses to start" in result.stderr
    assert "operations.E001" in result.stderr


def test_the_wsgi_start_refuses_when_the_database_cannot_be_reached():
    # Nothing listens on port 9: what the database holds cannot be checked.
    result = _production("postgres://postmaster@127.0.0.1:9/postmaster", "-c", START_WSGI)
    assert result.returncode != 0
    assert "The database (default) could not be reached" in result.stderr
    assert result.stderr.count("could not be reached") == 1
    assert "serving" not in result.stdout
