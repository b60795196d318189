"""Start-up checks of apps/core/checks.py: encryption keys and the secrets they must decrypt."""

import pytest
from cryptography.fernet import Fernet
from django.core.checks import run_checks
from django.core.exceptions import ImproperlyConfigured

from apps.connections.models import Security, SmtpSettings
from apps.core.checks import (
    STARTUP,
    encryption_keys_check,
    startup_check,
    stored_secrets_check,
)
from apps.core.fields import Secret


def _store_a_secret() -> None:
    SmtpSettings.objects.create(
        tenant=None,
        name="Host",
        host="smtp.example.com",
        port=587,
        security=Security.STARTTLS,
        username="postmaster",
        password=Secret("the-smtp-password"),
        from_email="postmaster@example.com",
    )


def test_a_malformed_key_is_an_error_that_does_not_show_it(settings):
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode(), "short-secret-value"]
    [error] = encryption_keys_check()
    assert error.id == "core.E001"
    assert "FIELD_ENCRYPTION_KEYS: key 2 of 2 is not a Fernet key" in error.msg
    assert "short-secret-value" not in error.msg + error.hint


def test_good_keys_pass(settings):
    assert encryption_keys_check() == []


@pytest.mark.django_db
def test_stored_secrets_that_the_keys_cannot_decrypt_are_an_error(settings):
    _store_a_secret()
    old_keys = list(settings.FIELD_ENCRYPTION_KEYS)
    assert stored_secrets_check(databases=["default"]) == []  # the keys that encrypted it

    # The key replaced instead of rotated: the old one is gone from the list.
    new_key = Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [new_key]
    [error] = stored_secrets_check(databases=["default"])
    assert error.id == "core.E002"
    assert "cannot be decrypted with FIELD_ENCRYPTION_KEYS" in error.msg
    assert "(SMTP password)" in error.msg
    assert new_key not in error.msg + error.hint

    # Rotated properly (new key first, the old ones after it): fine again.
    settings.FIELD_ENCRYPTION_KEYS = [new_key, *old_keys]
    assert stored_secrets_check(databases=["default"]) == []


@pytest.mark.django_db
def test_nothing_stored_passes(settings):
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    assert stored_secrets_check(databases=["default"]) == []


@pytest.mark.django_db
def test_the_production_start_refuses_on_an_error(settings):
    _store_a_secret()
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    settings.DEMO_ENABLED = False
    assert [m.id for m in run_checks(tags=[STARTUP], include_deployment_checks=True)] == [
        "core.E002"
    ]
    with pytest.raises(ImproperlyConfigured, match=r"Postmaster refuses to start:\n- Stored"):
        startup_check()

    settings.DEMO_ENABLED = True  # development: runserver runs the checks itself
    startup_check()


def test_check_deploy_wants_site_url_over_https(settings):
    from apps.core.checks import site_url_check

    settings.DEMO_ENABLED = False
    settings.SITE_URL = "http://postmaster.example.com"
    [error] = site_url_check()
    assert error.id == "core.E004"
    assert "https://" in error.hint
    settings.SITE_URL = "https://postmaster.example.com"
    assert site_url_check() == []


def test_check_deploy_wants_a_broker_that_answers(settings):
    from apps.core.checks import broker_check
    from tests.smtp_servers import closed_port

    settings.DEMO_ENABLED = False
    settings.CELERY_BROKER_URL = ""
    [error] = broker_check()
    assert error.id == "core.E005"

    settings.CELERY_BROKER_URL = f"redis://:secret-word@127.0.0.1:{closed_port()}/0"
    [error] = broker_check()
    assert error.id == "core.E006"
    assert "secret-word" not in error.msg + error.hint
