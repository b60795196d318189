"""A laptop: everything embedded, nothing to configure."""

import base64
import hashlib

from .base import *  # noqa: F403
from .base import BASE_DIR, env, fernet_keys

DEBUG = env.bool("DEBUG", default=True)
SECRET_KEY = env("SECRET_KEY", default="django-insecure-postmaster-dev-only")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'var' / 'db.sqlite3'}")
}
MAILCATCHER_ENABLED = env.bool("MAILCATCHER_ENABLED", default=True)
# `make run` seeds the demo (known passwords, a published API token).
DEMO_ENABLED = True

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The portal, the mail catcher and the sweep write to one file side by side:
    # WAL lets readers and a writer overlap, and IMMEDIATE takes the write lock up
    # front, so a second writer waits instead of failing with "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
        }
    )

# A key derived from the development SECRET_KEY, so a laptop needs no setup;
# production must name its own keys (see production.py).
FIELD_ENCRYPTION_KEYS = fernet_keys(
    env.list(
        "FIELD_ENCRYPTION_KEYS",
        default=[base64.urlsafe_b64encode(hashlib.sha256(SECRET_KEY.encode()).digest()).decode()],
    )
)

# The SQLite file and other local state live in var/ (git-ignored).
(BASE_DIR / "var").mkdir(exist_ok=True)
if DEMO_ENABLED:
    # The demo seed and the providers' stand-in (apps/demo): development only.
    INSTALLED_APPS = [*INSTALLED_APPS, "apps.demo"]  # noqa: F405
