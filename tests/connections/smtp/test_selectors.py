import pickle

import pytest
from cryptography.fernet import Fernet
from django.core.cache import cache

from apps.connections.selectors import (
    HOST_SETTINGS_CACHE_KEY,
    host_smtp_settings,
    smtp_settings_for,
)
from tests.connections.smtp.factories import SmtpSettingsFactory

pytestmark = pytest.mark.django_db


def test_host_settings_are_read_once_then_cached(django_assert_num_queries):
    SmtpSettingsFactory(host="smtp.example.com", secret="Pw-123")
    with django_assert_num_queries(1):
        host_smtp_settings()

    with django_assert_num_queries(0):
        row = host_smtp_settings()

    assert row.host == "smtp.example.com"
    assert row.password.reveal() == "Pw-123"


def test_the_cache_holds_the_encrypted_token_never_the_plaintext():
    SmtpSettingsFactory(secret="Pw-123")
    host_smtp_settings()

    cached = cache.get(HOST_SETTINGS_CACHE_KEY)

    assert cached["password"].startswith("gAAAAA")  # a Fernet token
    assert b"Pw-123" not in pickle.dumps(cached)


def test_no_host_row_is_none_and_cached_too(django_assert_num_queries):
    assert host_smtp_settings() is None
    with django_assert_num_queries(0):
        assert host_smtp_settings() is None


def test_host_settings_ignore_tenant_rows(tenant):
    SmtpSettingsFactory(tenant=tenant)

    assert host_smtp_settings() is None


def test_smtp_settings_for_a_tenant_is_its_own_row(tenant, other_tenant):
    host = SmtpSettingsFactory(host="host.example")
    own = SmtpSettingsFactory(tenant=tenant, host="acme.example")

    assert smtp_settings_for(tenant) == own
    assert smtp_settings_for(other_tenant) is None
    assert smtp_settings_for(None) == host


def test_a_token_cached_under_a_rotated_away_key_is_read_again_from_the_database():
    SmtpSettingsFactory(secret="Pw-123")
    host_smtp_settings()
    stale = cache.get(HOST_SETTINGS_CACHE_KEY)
    old_key = Fernet(Fernet.generate_key())
    cache.set(HOST_SETTINGS_CACHE_KEY, stale | {"password": old_key.encrypt(b"x").decode()})

    assert host_smtp_settings().password.reveal() == "Pw-123"
