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

# `make test` lints the migrations (django-migration-linter): one that would hold a
# lock blocking writes on a busy table (CREATE INDEX without CONCURRENTLY, DROP
# INDEX, ...) fails the run on PostgreSQL. The migrations below were written before
# that rule and already ran; only newer ones are checked.
INSTALLED_APPS = [*INSTALLED_APPS, "django_migration_linter"]
MIGRATIONS_BEFORE_THE_LINTER = [
    "0001_initial",
    "0001_user_groups",
    "0002_initial",
    "0002_user_notifications_enabled",
    "0002_smtp_role",
    "0002_notificationrule_mandatory",
    "0002_pipeline_preferences_and_muted_events",
    "0002_organizations_projects_memberships",
    "0003_delivery_queued_at_lease_token",
    "0003_smtp_ehlo_name",
    "0003_suppression_reported_reasons",
    "0003_smtp_network_policy",
    "0004_delivery_fewer_indexes",
    "0005_delivery_status_opted_out",
    "0006_provider_message_id_and_reported_statuses",
    "0007_delivery_claim_count",
]
MIGRATION_LINTER_OPTIONS = {
    "ignore_name": MIGRATIONS_BEFORE_THE_LINTER,
    # Another project's migrations (Django's own are not linted).
    "exclude_apps": ["axes"],
    # The checks of a lock that blocks the table fail the run; the linter's other
    # errors (NOT NULL without a default, dropped columns, ...) fail it anyway.
    "warnings_as_errors": ["CREATE_INDEX", "CREATE_INDEX_EXCLUSIVE", "DROP_INDEX", "REINDEX"],
    "no_cache": True,
}
