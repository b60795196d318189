"""What pytest runs: SQLite in memory unless DATABASE_URL names a server."""

from .base import *  # noqa: F403
from .base import env

DEBUG = False
SECRET_KEY = "test-only-secret-key-not-for-production"
ALLOWED_HOSTS = ["*"]
DATABASES = {"default": env.db("DATABASE_URL", default="sqlite://:memory:")}
# Fast hashing: the tests create many users.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Two keys, so every test also exercises decrypting with more than one.
FIELD_ENCRYPTION_KEYS = [
    "nwDrjwepPvmtNDrdylEbX2HqnEywsbq2oRaEmnWnSsU=",
    "8_Ei8Jumjput-cbL56PXr66hnjG9nN_uZIOscqpB8BM=",
]
MAILCATCHER_ENABLED = True
DEMO_ENABLED = True
CONNECTION_TIMEOUT = 5
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# No test reaches a real identity provider: nothing listens on port 9, and the
# tests that need a token endpoint start the stand-in in tests/connections/oauth/.
OAUTH_MICROSOFT_TOKEN_URL = "https://127.0.0.1:9/{tenant}/oauth2/v2.0/token"
OAUTH_GOOGLE_TOKEN_URL = "https://127.0.0.1:9/token"
OAUTH_GOOGLE_AUTHORIZE_URL = "https://127.0.0.1:9/authorize"
if DEMO_ENABLED:
    # The demo seed and the providers' stand-in (apps/demo): development only.
    INSTALLED_APPS = [*INSTALLED_APPS, "apps.demo"]  # noqa: F405
