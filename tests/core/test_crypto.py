import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

from apps.core import crypto
from apps.core.fields import Secret


def test_round_trip_does_not_store_plaintext():
    token = crypto.encrypt("hunter2-canary")
    assert "hunter2-canary" not in token
    assert crypto.decrypt(token) == "hunter2-canary"


def test_old_key_still_decrypts_and_rotate_moves_to_newest(settings):
    old_key = Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [old_key]
    token = crypto.encrypt("s3cret")

    new_key = Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [new_key, old_key]
    assert crypto.decrypt(token) == "s3cret"
    rotated = crypto.rotate(token)

    settings.FIELD_ENCRYPTION_KEYS = [new_key]
    assert crypto.decrypt(rotated) == "s3cret"
    with pytest.raises(ImproperlyConfigured, match="key that encrypted it is missing"):
        crypto.decrypt(token)


def test_missing_or_malformed_keys_name_the_fix(settings):
    settings.FIELD_ENCRYPTION_KEYS = []
    with pytest.raises(ImproperlyConfigured, match=r"Fernet\.generate_key"):
        crypto.encrypt("x")
    settings.FIELD_ENCRYPTION_KEYS = ["not-a-key"]
    with pytest.raises(ImproperlyConfigured, match="not a Fernet key"):
        crypto.encrypt("x")


def test_secret_never_shows_itself():
    secret = Secret("hunter2-canary")
    assert "hunter2-canary" not in str(secret)
    assert "hunter2-canary" not in repr(secret)
    assert "hunter2-canary" not in f"{secret} {[secret]}"
    assert secret.reveal() == "hunter2-canary"
