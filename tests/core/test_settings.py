"""Production refuses to start without what it must be given; dev needs nothing."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[2]
REQUIRED = {
    "SECRET_KEY": "a-production-secret-key-that-is-long-enough-0123456789abcdef",
    "ALLOWED_HOSTS": "postmaster.example.com",
    "DATABASE_URL": "postgres://postmaster@db.example.com:5432/postmaster",
    "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
    "SITE_URL": "https://postmaster.example.com",
    "CACHE_URL": "redis://cache.example.com:6379/1",
}


def _start(settings_module: str, env: dict) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in REQUIRED and k != "CELERY_BROKER_URL"}
    clean |= {"DJANGO_SETTINGS_MODULE": settings_module, **env}
    code = "import django; django.setup(); from django.conf import settings; print(settings.DEBUG)"
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("missing", sorted(REQUIRED))
def test_production_refuses_to_start_without(missing):
    env = {k: v for k, v in REQUIRED.items() if k != missing}
    result = _start("config.settings.production", env)
    assert result.returncode != 0
    assert f"Set the {missing} environment variable" in result.stderr


@pytest.mark.parametrize("url", ["locmemcache://", "dummycache://"])
def test_production_refuses_a_cache_each_process_keeps_for_itself(url):
    # Rate limits, the failover flag and maintenance mode must hold across processes.
    result = _start("config.settings.production", REQUIRED | {"CACHE_URL": url})
    assert result.returncode != 0
    assert "CACHE_URL names a cache that each process keeps for itself" in result.stderr


@pytest.mark.parametrize("settings_module", ["config.settings.production", "config.settings.dev"])
def test_a_malformed_encryption_key_refuses_to_start(settings_module):
    good = Fernet.generate_key().decode()
    bad = "not-a-fernet-key-but-a-secret-all-the-same"
    result = _start(settings_module, REQUIRED | {"FIELD_ENCRYPTION_KEYS": f"{good},{bad}"})
    assert result.returncode != 0
    assert "FIELD_ENCRYPTION_KEYS: key 2 of 2 is not a Fernet key" in result.stderr
    # The value is a secret: neither key is printed.
    assert bad not in result.stderr
    assert good not in result.stderr


def test_production_starts_with_everything_it_needs():
    result = _start("config.settings.production", REQUIRED)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_dev_settings_need_no_configuration(tmp_path):
    result = _start("config.settings.dev", {})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"


def test_dev_sqlite_lets_several_processes_write(tmp_path):
    # make run's portal, catcher and sweep share the file: WAL and immediate transactions.
    code = (
        "import django; django.setup(); from django.db import connection;"
        "cursor = connection.cursor(); cursor.execute('PRAGMA journal_mode');"
        "print(cursor.fetchone()[0])"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.dev"}
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'dev.sqlite3'}"
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "wal"
