"""System checks production starts with: `manage.py check --deploy` reports them,
and config/wsgi.py (and asgi.py) refuse to serve while one is an error.

Checks tagged STARTUP run at every production start, so each stays cheap: a
query or two, never a password hash. The ones that read the database are
deploy checks, so `manage.py check` on a laptop or in a build step without a
database never runs them.
"""

from cryptography.fernet import Fernet
from django.apps import apps
from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, connections

from apps.core.fields import EncryptedTextField

# What a production start runs (besides being part of `check --deploy`).
STARTUP = "startup"


def startup_check() -> None:
    """Refuse a production start while a STARTUP check reports an error.

    Development (DEMO_ENABLED) skips it: `runserver` runs every check itself.
    """
    if settings.DEMO_ENABLED:
        return
    messages = checks.run_checks(tags=[STARTUP], include_deployment_checks=True)
    errors = [m for m in messages if m.is_serious() and not m.is_silenced()]
    if errors:
        # Each once: an unreachable database is every database check's error.
        lines = dict.fromkeys(" ".join(filter(None, [e.msg, e.hint, f"({e.id})"])) for e in errors)
        raise ImproperlyConfigured(
            "Postmaster refuses to start:\n" + "\n".join(f"- {line}" for line in lines)
        )


def database_unreachable(alias: str) -> checks.Error:
    return checks.Error(
        f"The database ({alias}) could not be reached, so what it holds could not be checked "
        "(the demo's accounts, the stored secrets).",
        hint="Start the database or correct DATABASE_URL, then start again.",
        id="core.E003",
    )


@checks.register(checks.Tags.security, STARTUP)
def encryption_keys_check(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """Every FIELD_ENCRYPTION_KEYS entry is a Fernet key (the key itself is never shown)."""
    keys = settings.FIELD_ENCRYPTION_KEYS
    if not keys:
        return [
            checks.Error(
                "FIELD_ENCRYPTION_KEYS is empty: stored secrets cannot be encrypted.",
                hint="Make a key with `python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'` and set it.",
                id="core.E001",
            )
        ]
    errors = []
    for number, key in enumerate(keys, start=1):
        try:
            Fernet(key)
        except (ValueError, TypeError):
            errors.append(
                checks.Error(
                    f"FIELD_ENCRYPTION_KEYS: key {number} of {len(keys)} is not a Fernet key.",
                    hint="A key is 44 characters of url-safe base64; make one with "
                    "`python -c 'from cryptography.fernet import Fernet; "
                    "print(Fernet.generate_key().decode())'`.",
                    id="core.E001",
                )
            )
    return errors


@checks.register(checks.Tags.security, STARTUP, deploy=True)
def stored_secrets_check(app_configs=None, databases=None, **kwargs):
    """The newest stored secret of each encrypted field decrypts with FIELD_ENCRYPTION_KEYS.

    Catches a key replaced instead of rotated (the old one dropped) at start,
    not at the first delivery. One small query per encrypted field.
    """
    if encryption_keys_check():
        return []  # reported already
    fields = [
        (model, field)
        for model in apps.get_models()
        for field in model._meta.concrete_fields
        if isinstance(field, EncryptedTextField)
    ]
    errors = []
    for alias in databases or []:
        try:
            tables = set(connections[alias].introspection.table_names())
            unreadable = []
            for model, field in fields:
                if model._meta.db_table not in tables:
                    continue  # not migrated yet: nothing stored
                newest = (
                    model._base_manager.using(alias)
                    .exclude(**{field.name: ""})
                    .order_by("-pk")
                    .values_list(field.name, flat=True)[:1]
                )
                try:
                    list(newest)
                except ImproperlyConfigured:
                    unreadable.append(f"{model._meta.verbose_name} ({field.verbose_name})")
        except DatabaseError:
            errors.append(database_unreachable(alias))
            continue
        if unreadable:
            errors.append(
                checks.Error(
                    "Stored secrets cannot be decrypted with FIELD_ENCRYPTION_KEYS: "
                    f"{', '.join(unreadable)}. The key that encrypted them is not in the list.",
                    hint="Put the previous key back after the new one (newest first), start, "
                    "and run `manage.py rotate_encryption_keys` before removing it.",
                    id="core.E002",
                )
            )
    return errors


@checks.register(checks.Tags.security, deploy=True)
def site_url_check(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """Links in mail (password resets, invitations, unsubscribe) are built from SITE_URL."""
    if settings.DEMO_ENABLED or settings.SITE_URL.startswith("https://"):
        return []
    return [
        checks.Error(
            f"SITE_URL ({settings.SITE_URL}) is not an https:// address: password-reset, "
            "invitation and unsubscribe links in the mail Postmaster sends would travel in "
            "clear text.",
            hint="Set SITE_URL to the https:// address people use, e.g. "
            "https://postmaster.example.com.",
            id="core.E004",
        )
    ]


@checks.register(deploy=True)
def broker_check(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """Production sends mail from workers: the broker must be named and answer.

    Only `check --deploy` runs this (not every process start): a broker that
    is down for a moment must not keep the portal from starting, since the
    sweep queues what was accepted meanwhile.
    """
    if settings.DEMO_ENABLED:
        return []
    if not settings.CELERY_BROKER_URL:
        return [
            checks.Error(
                "CELERY_BROKER_URL is not set: mail would be sent inside web requests, with no "
                "retries in the background.",
                hint="Set CELERY_BROKER_URL to the Redis broker the workers read (docs/deploy.md).",
                id="core.E005",
            )
        ]
    from config.celery import app  # here: the checks module loads before Celery's app is needed

    try:
        with app.connection_for_write(settings.CELERY_BROKER_URL) as connection:
            connection.ensure_connection(max_retries=1, timeout=3)
    except Exception:  # any failure to connect reads the same; the URL holds the password
        return [
            checks.Error(
                "The message broker (CELERY_BROKER_URL) cannot be reached.",
                hint="Start it, or correct CELERY_BROKER_URL; workers and beat need the same "
                "value as the web processes.",
                id="core.E006",
            )
        ]
    return []
