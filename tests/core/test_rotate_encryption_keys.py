import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import connection

from apps.connections.models import SmtpSettings
from tests.connections.smtp.factories import SmtpSettingsFactory

pytestmark = pytest.mark.django_db


def _stored_token(row) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT password FROM {SmtpSettings._meta.db_table} WHERE id = %s", [row.pk]
        )
        return cursor.fetchone()[0]


def test_rotation_re_encrypts_every_secret_under_the_newest_key(settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [old]
    row = SmtpSettingsFactory(username="ann", secret="rotate-me-Zx9")
    token_before = _stored_token(row)

    settings.FIELD_ENCRYPTION_KEYS = [new, old]
    call_command("rotate_encryption_keys")

    assert _stored_token(row) != token_before
    assert "rotate-me-Zx9" not in _stored_token(row)
    # The old key can go now: everything decrypts with the new one alone.
    settings.FIELD_ENCRYPTION_KEYS = [new]
    assert SmtpSettings.objects.get(pk=row.pk).password.reveal() == "rotate-me-Zx9"


def test_without_rotation_dropping_the_old_key_says_what_is_missing(settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [old]
    row = SmtpSettingsFactory(username="ann", secret="rotate-me-Zx9")

    settings.FIELD_ENCRYPTION_KEYS = [new]
    with pytest.raises(ImproperlyConfigured, match="key that encrypted it is missing"):
        SmtpSettings.objects.get(pk=row.pk)
