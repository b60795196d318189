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


def _production(database, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in REQUIRED and k != "CELERY_BROKER_URL"}
    env |= {
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        **REQUIRED,
        "DATABASE_URL": f"sqlite:///{database}",
    }
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
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
    assert "The demo data is for development only" in result.stderr
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
    result = _production(database, "manage.py", "check", "--deploy", "--fail-level", "INFO")
    assert result.returncode == 0, result.stdout + result.stderr
