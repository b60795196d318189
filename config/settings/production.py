"""Production: no defaults for what must be given, so a missing value fails at start."""

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import BASE_DIR, LOCAL_CACHE_BACKENDS, MIDDLEWARE, cache_config, env, fernet_keys

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

SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
# HSTS: browsers use only https for a year, on every subdomain too, and the site may be
# submitted to the browsers' preload list. Start lower (e.g. 3600) and without subdomains
# or preload where other sites under the same domain still speak plain HTTP.
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 365)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True

# Behind a reverse proxy that terminates TLS (deploy/nginx.conf): it sets
# X-Forwarded-Proto on every request, so one it received over https is known as https.
# Turn it off (TRUST_X_FORWARDED_PROTO=false) where clients reach gunicorn directly:
# they could then claim https by sending the header themselves.
if env.bool("TRUST_X_FORWARDED_PROTO", default=True):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
else:
    SECURE_PROXY_SSL_HEADER = None
# Load balancers probe /health/ and Prometheus scrapes /metrics/ (from the inside, not
# through the proxy) over plain HTTP: answer them there, redirect the rest.
SECURE_REDIRECT_EXEMPT = [r"^health/$", r"^metrics/$"]

# Static files: `manage.py collectstatic` writes them to STATIC_ROOT with hashed,
# compressed names, and WhiteNoise serves them from gunicorn with a far-future cache header.
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "staticfiles")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "apps.core.storage.StaticFilesStorage"},
}
# WhiteNoise right after SecurityMiddleware, as its documentation asks.
_security = MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1
MIDDLEWARE = [
    *MIDDLEWARE[:_security],
    "whitenoise.middleware.WhiteNoiseMiddleware",
    *MIDDLEWARE[_security:],
]
