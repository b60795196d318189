"""Settings for `python -m benchmarks`: the test settings, plus what only the benchmark needs.

The runner (benchmarks.__main__) sets the environment before Django starts,
for itself and for the Celery workers and the WSGI server it spawns:
DATABASE_URL names the scratch database, POSTMASTER_BENCH_SINK the SMTP
sink that django-post-office sends to, POSTMASTER_BENCH_RUN this run (its
cache keys and queue are its own).
"""

import os

from config.settings.test import *  # noqa: F403
from config.settings.test import CACHES, DATABASES, INSTALLED_APPS, LOGGING, MAILERS

# The peer the engine is compared with.
INSTALLED_APPS = [*INSTALLED_APPS, "post_office"]
ROOT_URLCONF = "benchmarks.urls"
# As in production: a worker thread keeps its database connection.
DATABASES["default"]["CONN_MAX_AGE"] = 60

_sink_host, _, _sink_port = os.environ.get("POSTMASTER_BENCH_SINK", "127.0.0.1:25").partition(":")
MAILERS = {
    **MAILERS,
    "sink": {
        "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "OPTIONS": {"host": _sink_host, "port": int(_sink_port), "timeout": 30},
    },
}
# django-post-office's own defaults otherwise (batches of 100, 5 threads, a log row per mail).
POST_OFFICE = {"DEFAULT_MAILER": "sink"}

# Keys of this run only: a shared Redis may hold another run's "send task queued" marks.
CACHES = {
    "default": {**CACHES["default"], "KEY_PREFIX": os.environ.get("POSTMASTER_BENCH_RUN", "bench")}
}
# The API's per-token limit stays on (its check is measured) but never refuses here.
API_RATE_LIMIT_PER_MINUTE = 10**9

# Only what goes wrong: the engine logs nothing per message, Celery and gunicorn do.
LOGGING = {
    **LOGGING,
    "root": {**LOGGING["root"], "level": "WARNING"},
    # Configured here, django-post-office does not add its own INFO line per batch.
    "loggers": {
        "post_office": {"handlers": ["console"], "level": "WARNING", "propagate": False},
        # Celery 5.7 makes a (never connected) broker connection even for an eager task:
        # kombu warns once that the empty broker URL has no host name.
        "kombu.connection": {"level": "ERROR"},
    },
}
