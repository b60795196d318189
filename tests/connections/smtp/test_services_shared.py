"""On the real services: what several processes share (PostgreSQL, the Redis cache)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import IntegrityError, connection, transaction

from apps.connections.models import SmtpSettings
from apps.connections.services import smtp_settings_update
from tests.connections.smtp.factories import SmtpSettingsFactory

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[3]
READ_HOST = (
    "import django; django.setup();"
    "from apps.connections.selectors import host_smtp_settings;"
    "print(host_smtp_settings().host)"
)


def _host_seen_by_another_process() -> str:
    """What a separate web process or worker reads, through the shared cache."""
    db = connection.settings_dict
    env = os.environ | {
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        # The test database pytest-django created, not the configured one.
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
    }
    result = subprocess.run(
        [sys.executable, "-c", READ_HOST],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout.strip()


def test_a_saved_change_reaches_other_processes_at_once(system_admin):
    row = SmtpSettingsFactory(host="old.example.com")
    assert _host_seen_by_another_process() == "old.example.com"  # now cached in Redis

    row.host = "new.example.com"
    smtp_settings_update(actor=system_admin, smtp_settings=row)

    assert _host_seen_by_another_process() == "new.example.com"


def test_postgresql_enforces_one_host_row():
    assert connection.vendor == "postgresql"
    SmtpSettingsFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        # Bypass the model validation: the database itself must refuse.
        SmtpSettings.objects.bulk_create([SmtpSettingsFactory.build()])
    assert SmtpSettings.objects.filter(tenant=None).count() == 1
