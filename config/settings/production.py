"""Production: no defaults for what must be given, so a missing value fails at start."""

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import LOCAL_CACHE_BACKENDS, cache_config, env, fernet_keys

DEBUG = False
SECRET_KEY = env("SECRET_KEY")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS")
DATABASES = {"default": env.db("DATABASE_URL")}
FIELD_ENCRYPTION_KEYS = fernet_keys(env.list("FIELD_ENCRYPTION_KEYS"))
# Shared by every web process and worker: rate limits, the failover flag, maintenance mode.
CACHES = {"default": cache_config(env.cache("CACHE_URL"))}
if CACHES["default"]["BACKEND"] in LOCAL_CACHE_BACKENDS:
    raise ImproperlyConfigured(
        "CACHE_URL names a cache that each process keeps for itself; production needs one "
        "every web process and worker shares, e.g. CACHE_URL=redis://127.0.0.1:6379/1."
    )
# Never the demo's data: seed_demo refuses, and a start with its accounts fails.
DEMO_ENABLED = False
# Links in notifications (the run, unsubscribe, My notifications) are built from it.
SITE_URL = env("SITE_URL")
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 365)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
