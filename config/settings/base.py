"""Settings shared by every environment.

This is the one place that reads the environment (django-environ). The
modules beside it only choose defaults: `dev` embeds everything a laptop
needs, `test` is what pytest runs, `production` has no defaults for what
production must be given, so a missing value stops the start loudly.
"""

from datetime import timedelta
from pathlib import Path

import environ
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

BASE_DIR = Path(__file__).resolve().parent.parent.parent
env = environ.Env()
if (BASE_DIR / ".env").is_file():
    environ.Env.read_env(BASE_DIR / ".env")

VAR_DIR = BASE_DIR / "var"

INSTALLED_APPS = [
    "apps.core.admin_site.PostmasterAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    # Its index types (the delivery log's trigram search); harmless on SQLite.
    "django.contrib.postgres",
    "crispy_forms",
    "crispy_bootstrap5",
    "axes",
    "apps.core",
    "apps.accounts",
    "apps.audit",
    "apps.tenancy",
    "apps.groups",
    "apps.connections",
    "apps.mailcatcher",
    "apps.pipelines",
    "apps.delivery",
    "apps.preferences",
    "apps.webhooks",
    "apps.api",
    "apps.operations",
    # Only so the API docs page serves ninja's own copy of Swagger UI, not a CDN's.
    "ninja",
]

MIDDLEWARE = [
    # First: the events API answers JSON for any error, even one raised in a middleware below.
    "apps.api.errors.ApiErrorMiddleware",
    # Counts and times every request for /metrics/ (apps/operations/metrics.py).
    "apps.operations.metrics.RequestMetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Maintenance mode: refuses changes (after sign-in is known, so system administrators pass).
    "apps.operations.middleware.MaintenanceModeMiddleware",
    "apps.accounts.middleware.ReauthMiddleware",
    # Last, as django-axes asks: turns a locked-out sign-in into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "apps.core.context_processors.portal",
                "apps.operations.context_processors.maintenance",
            ],
        },
    },
]

AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "accounts:login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
PASSWORD_RESET_TIMEOUT = 60 * 60 * 24

# Sign-in lockout (django-axes): SIGNIN_FAILURE_LIMIT wrong passwords for one
# account, each within SIGNIN_LOCKOUT_MINUTES of the last, pause its sign-in
# until SIGNIN_LOCKOUT_MINUTES after the last one. Counted per account, never
# per client address, so a forged X-Forwarded-For changes nothing (see
# apps/accounts/lockout.py). A password reset lifts the pause.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("SIGNIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("SIGNIN_LOCKOUT_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = ["username"]
AXES_USERNAME_CALLABLE = "apps.accounts.lockout.lockout_username"
AXES_CLIENT_IP_CALLABLE = "apps.accounts.lockout.client_ip"
AXES_LOCKOUT_CALLABLE = "apps.accounts.lockout.lockout_response"
AXES_RESET_ON_SUCCESS = True
# Attempts while paused do not push the end of the pause back: the time the
# lockout page names stays true.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
# axes.W006 warns that without 'ip_address' rotating User-Agents dodges the
# count; not so here: the count is summed over every row of the account.
SILENCED_SYSTEM_CHECKS = ["axes.W006"]

# Re-authentication ("sudo mode", apps/accounts/reauth.py, which lists the
# actions): the password typed within REAUTH_WINDOW seconds (signing in counts).
REAUTH_WINDOW = env.int("REAUTH_WINDOW_SECONDS", default=10 * 60)

# Headers. Everything the pages load comes from this site: no inline script
# or style (static files set what is dynamic), no plugins, no framing.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF],
    "style-src": [CSP.SELF],
    # Bootstrap's form controls and Swagger UI draw icons from data: URLs.
    "img-src": [CSP.SELF, "data:"],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
}
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

CRISPY_ALLOWED_TEMPLATE_PACKS = "bootstrap5"
CRISPY_TEMPLATE_PACK = "bootstrap5"

# Every mail Django itself sends (password reset, invitations, admins'
# mail) goes through the host SMTP settings stored in the database.
MAILERS = {"default": {"BACKEND": "apps.connections.backends.HostSettingsBackend"}}
# A placeholder the host backend replaces with the stored default From.
DEFAULT_FROM_EMAIL = "postmaster@localhost"
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# Secrets at rest: Fernet keys, newest first. Older keys still decrypt, so a
# key is rotated by putting a new one in front and running
# `manage.py rotate_encryption_keys`.
FIELD_ENCRYPTION_KEYS = env.list("FIELD_ENCRYPTION_KEYS", default=[])


def fernet_keys(keys: list[str]) -> list[str]:
    """The keys, each checked, so a wrong one stops the start (never printed: it is a secret)."""
    if not keys:
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEYS is empty. Make a key with `python -c 'from cryptography.fernet "
            "import Fernet; print(Fernet.generate_key().decode())'` and set it."
        )
    for number, key in enumerate(keys, start=1):
        try:
            Fernet(key)
        except ValueError:
            raise ImproperlyConfigured(
                f"FIELD_ENCRYPTION_KEYS: key {number} of {len(keys)} is not a Fernet key "
                "(44 characters of url-safe base64). Make one with `python -c 'from "
                "cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`."
            ) from None
    return keys


# Demo data (`manage.py seed_demo`: known passwords, a published API token) is
# for development only; production never creates it and refuses to start with it.
DEMO_ENABLED = False

CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="")
# Without a broker the work runs in the web process, so one machine needs
# nothing but Python; with one, separate workers do it.
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_CONNECTION_TIMEOUT = 5
# Where tasks are queued: lets several installations (or test runs) share one broker.
CELERY_TASK_DEFAULT_QUEUE = env("CELERY_TASK_DEFAULT_QUEUE", default="celery")
# JSON logs: workers keep the LOGGING below instead of Celery's own handlers.
CELERY_WORKER_HIJACK_ROOT_LOGGER = env("LOG_FORMAT", default="plain") != "json"
# Where Celery beat keeps its schedule (when each periodic task last ran): never in
# the repository. The directory is created when beat starts.
CELERY_BEAT_SCHEDULE_FILENAME = env(
    "CELERY_BEAT_SCHEDULE_FILENAME", default=str(VAR_DIR / "celerybeat-schedule")
)

# The delivery engine (apps.delivery). Seconds unless said otherwise.
# A delivery that keeps failing temporarily (4xx, disconnects, timeouts) is
# retried with exponential backoff, from DELIVERY_RETRY_DELAY up to
# DELIVERY_RETRY_MAX_DELAY, until it is DELIVERY_MAX_AGE old; then it fails.
DELIVERY_MAX_AGE = env.int("DELIVERY_MAX_AGE", default=24 * 60 * 60)
DELIVERY_RETRY_DELAY = env.float("DELIVERY_RETRY_DELAY", default=60)
DELIVERY_RETRY_MAX_DELAY = env.float("DELIVERY_RETRY_MAX_DELAY", default=60 * 60)
# Messages claimed at once and sent over one SMTP connection.
DELIVERY_BATCH_SIZE = env.int("DELIVERY_BATCH_SIZE", default=200)
# How many workers may send one event's deliveries at once (each over its
# own connection to the SMTP server).
DELIVERY_SENDERS = env.int("DELIVERY_SENDERS", default=2)
# How long a worker holds the deliveries it claimed; a crashed worker's
# return to the queue after it. A worker renews it while it sends a batch,
# and waits for a server at most a thirtieth of it per exchange, so one
# message can never outlast it.
DELIVERY_LEASE_SECONDS = env.int("DELIVERY_LEASE_SECONDS", default=300)
# A delivery claimed this many times without any outcome (its worker died or
# crashed each time) fails instead of being claimed again.
DELIVERY_MAX_CLAIMS = env.int("DELIVERY_MAX_CLAIMS", default=5)
# A server that asks to slow down (421, a 4.7.x code, "too many" / rate wording)
# gets nothing more over that connection for this long: the rest of the batch,
# and whatever else is due for it, waits.
DELIVERY_THROTTLE_SECONDS = env.int("DELIVERY_THROTTLE_SECONDS", default=60)
# Data retention (apps.operations.services.data_retention_run, every RETENTION_SECONDS
# from Celery beat or `delivery_sweep`), in days. Deliveries, their attempts and their
# events: a tenant's own period (set by system administrators on the tenant) or
# DELIVERY_RETENTION_DAYS; a delivery still queued or sending is never deleted. The
# dashboard's chart reads daily roll-ups (DeliveryDay), which are kept.
DELIVERY_RETENTION_DAYS = env.int("DELIVERY_RETENTION_DAYS", default=90)
AUDIT_RETENTION_DAYS = env.int("AUDIT_RETENTION_DAYS", default=365)
# Refused delivery-webhook posts (audit entries "webhook.refused").
WEBHOOK_REFUSAL_RETENTION_DAYS = env.int("WEBHOOK_REFUSAL_RETENTION_DAYS", default=30)
CAUGHT_MAIL_RETENTION_DAYS = env.int("CAUGHT_MAIL_RETENTION_DAYS", default=7)
# django-axes' sign-in records (access logs, failed attempts); keep it longer than
# SIGNIN_LOCKOUT_MINUTES.
SIGNIN_LOG_RETENTION_DAYS = env.int("SIGNIN_LOG_RETENTION_DAYS", default=30)
# Rows deleted per statement (each its own short transaction), and the seconds one run
# may take: what is left is deleted by the next run.
RETENTION_BATCH_SIZE = env.int("RETENTION_BATCH_SIZE", default=5000)
RETENTION_TIME_BUDGET = env.float("RETENTION_TIME_BUDGET", default=60)
# Failover: a temporary failure of the primary connection on a message's Nth attempt
# sends it (and the rest of its batch) through the secondary connection, when there
# is one; connection and sign-in failures fail over at once. After a failover the
# tenant's batches start on the secondary for DELIVERY_FAILOVER_SECONDS.
DELIVERY_FAILOVER_AFTER = env.int("DELIVERY_FAILOVER_AFTER", default=1)
DELIVERY_FAILOVER_SECONDS = env.int("DELIVERY_FAILOVER_SECONDS", default=60)
# Messages per minute per SMTP host name (lower case); a host not named
# here is unlimited. Microsoft 365 accepts 30 a minute per mailbox. Add
# more as DELIVERY_RATE_LIMITS=smtp.example.com=120,other.example.com=60.
DELIVERY_RATE_LIMITS = {"smtp.office365.com": 30} | env.dict(
    "DELIVERY_RATE_LIMITS", cast={"value": int}, default={}
)

# Rate limits, the failover flag and maintenance mode live in the cache: with
# more than one process it must be one they share (production requires it).
LOCAL_CACHE_BACKENDS = {
    "django.core.cache.backends.locmem.LocMemCache",
    "django.core.cache.backends.dummy.DummyCache",
}


def cache_config(config: dict) -> dict:
    if config["BACKEND"] == "django.core.cache.backends.redis.RedisCache":
        # The same, without a new redis-py client per cache call (see apps/core/cache.py).
        config["BACKEND"] = "apps.core.cache.PostmasterRedisCache"
    return config


CACHES = {"default": cache_config(env.cache("CACHE_URL", default="locmemcache://"))}

# The events API's limit per token (apps/api/ratelimit.py): a steady rate per
# minute, and a burst an idle token may send at once on top of it. Past it
# the API answers 429 with Retry-After. 0 per minute turns the limit off.
API_RATE_LIMIT_PER_MINUTE = env.int("API_RATE_LIMIT_PER_MINUTE", default=600)
API_RATE_LIMIT_BURST = env.int("API_RATE_LIMIT_BURST", default=120)

# The local mail catcher (`manage.py mailcatcher`) and its pages.
MAILCATCHER_ENABLED = env.bool("MAILCATCHER_ENABLED", default=False)
MAILCATCHER_HOST = env("MAILCATCHER_HOST", default="127.0.0.1")
MAILCATCHER_PORT = env.int("MAILCATCHER_PORT", default=1025)
# `make run`'s stand-in for the email-service providers' APIs (the demo's Initech uses it).
PROVIDER_STANDIN_PORT = env.int("PROVIDER_STANDIN_PORT", default=8025)

# Links in emails are absolute, built from this: the engine runs without a request.
SITE_URL = env("SITE_URL", default="http://127.0.0.1:8000")
# How long the unsubscribe links in notifications work, in days.
UNSUBSCRIBE_LINK_DAYS = env.int("UNSUBSCRIBE_LINK_DAYS", default=60)

# Seconds before a mail server or a provider's API is given up on, on every connection
# (deliveries and test emails, SMTP and providers); read each time, so a change applies
# to existing connection settings too. A connection's own timeout can only shorten it.
# SMTP_DEFAULT_TIMEOUT is its former name.
CONNECTION_TIMEOUT = env.float(
    "CONNECTION_TIMEOUT", default=env.float("SMTP_DEFAULT_TIMEOUT", default=15)
)
# A PEM bundle of extra certificate authorities to trust for SMTP TLS.
SMTP_CA_BUNDLE = env("SMTP_CA_BUNDLE", default="")
# The name Postmaster greets SMTP servers with (EHLO). Empty: the host of
# SITE_URL. Relays that check it want a fully qualified domain name that
# resolves; SMTP settings can name their own (their "EHLO name").
SMTP_EHLO_NAME = env("SMTP_EHLO_NAME", default="")
# Test emails (SMTP and provider settings pages, and rules' Test) in any hour: per
# user, and per tenant.
TEST_EMAIL_LIMIT_PER_USER_HOUR = env.int("TEST_EMAIL_LIMIT_PER_USER_HOUR", default=10)
TEST_EMAIL_LIMIT_PER_TENANT_HOUR = env.int("TEST_EMAIL_LIMIT_PER_TENANT_HOUR", default=30)
# A notification rule's Test counts as one test email against those limits, and
# mails at most this many of the rule's recipients.
RULE_TEST_MAX_RECIPIENTS = env.int("RULE_TEST_MAX_RECIPIENTS", default=50)

# OAuth2 sign-in for SMTP (apps.connections). The providers' endpoints, overridable
# so tests (and a sovereign cloud) can point elsewhere; {tenant} is the
# Microsoft directory (tenant) ID.
OAUTH_MICROSOFT_TOKEN_URL = env(
    "OAUTH_MICROSOFT_TOKEN_URL",
    default="https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token",
)
OAUTH_GOOGLE_AUTHORIZE_URL = env(
    "OAUTH_GOOGLE_AUTHORIZE_URL", default="https://accounts.google.com/o/oauth2/v2/auth"
)
OAUTH_GOOGLE_TOKEN_URL = env(
    "OAUTH_GOOGLE_TOKEN_URL", default="https://oauth2.googleapis.com/token"
)
# Seconds to wait for a token endpoint; a cached access token is renewed this
# many seconds before it expires; a PEM bundle of extra CAs for the endpoints.
OAUTH_TIMEOUT = env.int("OAUTH_TIMEOUT", default=10)
OAUTH_TOKEN_REFRESH_MARGIN = env.int("OAUTH_TOKEN_REFRESH_MARGIN", default=300)
OAUTH_CA_BUNDLE = env("OAUTH_CA_BUNDLE", default="")

# Prometheus metrics at /metrics/ (apps/operations/metrics.py): only for a request with
# "Authorization: Bearer <METRICS_TOKEN>" or from an address (or network) in
# METRICS_ALLOWED_IPS; a 404 for everyone else, and for all when neither is set.
METRICS_TOKEN = env("METRICS_TOKEN", default="")
METRICS_ALLOWED_IPS = env.list("METRICS_ALLOWED_IPS", default=[])

# LOG_FORMAT=json: one JSON object a line (python-json-logger), with the Celery task and
# its event_id / tenant_id as fields (apps/core/logging.py); "plain" otherwise.
LOG_FORMAT = env("LOG_FORMAT", default="plain")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "filters": {"context": {"()": "apps.core.logging.ContextFilter"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_FORMAT == "json" else "plain",
            "filters": ["context"],
        }
    },
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    # django-axes says something at INFO on every sign-in; failures and lockouts are WARNING.
    "loggers": {"axes": {"level": "WARNING"}},
}
