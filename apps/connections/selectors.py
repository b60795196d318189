"""How mail leaves: SMTP settings, email-service providers and OAuth2 sign-in for SMTP (selectors).

Each part below keeps the notes it had; a connection is primary or failover (ConnectionRole)."""

from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from django.db import models

from apps.connections.models import ConnectionRole, OAuthGrant, ProviderSettings, SmtpSettings

# --- SMTP settings -----------------------------------------------
# Reads of SMTP settings.
#
# The host's row is read for every email Django sends, so it is cached. The
# cache holds the row's stored values, the password still as its Fernet token:
# a cache server never sees a plaintext password.
HOST_SETTINGS_CACHE_KEY = "mailsettings:host-smtp-settings:v1"
# A safety net for changes made outside the service (a shell, a data migration).
HOST_SETTINGS_CACHE_SECONDS = 300


def smtp_settings_for(tenant, *, role: str = ConnectionRole.PRIMARY) -> SmtpSettings | None:
    """A tenant's own settings (None for the host's row) in this role; None when there is none.

    The primary row by default: the one the scope's mail goes through. The
    secondary row is its failover connection.
    """
    return SmtpSettings.objects.filter(tenant=tenant, role=role).first()


class SmtpSource(models.TextChoices):
    """Where a tenant's effective SMTP settings come from."""

    OWN = "own", "Your own SMTP server"
    HOST = "host", "Host settings"


def effective_smtp_settings(tenant) -> tuple[SmtpSettings | None, SmtpSource]:
    """The settings all of a tenant's mail goes through, and where they come from.

    The tenant's own row when it has one; otherwise the host's (None when
    the host has none yet). A missing tenant row means "inherit the host's".
    Never show a tenant the host's row: only that the host's server is used.
    """
    if tenant is None:
        raise ValueError("effective_smtp_settings() needs a tenant; use host_smtp_settings().")
    own = smtp_settings_for(tenant)
    if own is not None:
        return own, SmtpSource.OWN
    return host_smtp_settings(), SmtpSource.HOST


def host_smtp_settings() -> SmtpSettings | None:
    """The host's (primary) settings, from the cache when it has them (an unsaved-looking copy)."""
    stored = cache.get(HOST_SETTINGS_CACHE_KEY)
    if stored is not None:
        try:
            return _from_stored_values(stored)
        except ImproperlyConfigured:
            pass  # Cached under a key since rotated away; the row has a newer token.
    stored = _stored_values(smtp_settings_for(None))
    cache.set(HOST_SETTINGS_CACHE_KEY, stored, HOST_SETTINGS_CACHE_SECONDS)
    return _from_stored_values(stored)


def host_smtp_settings_forget() -> None:
    """Drop the cached host row; the next read goes to the database."""
    cache.delete(HOST_SETTINGS_CACHE_KEY)


def _password_field():
    return SmtpSettings._meta.get_field("password")


def _stored_values(row: SmtpSettings | None) -> dict:
    # An empty dict caches "there is no host row" too.
    if row is None:
        return {}
    values = {field.attname: field.value_from_object(row) for field in row._meta.concrete_fields}
    values["password"] = _password_field().get_prep_value(row.password)
    return values


def _from_stored_values(values: dict) -> SmtpSettings | None:
    if not values:
        return None
    token = values["password"]
    return SmtpSettings(
        **{**values, "password": _password_field().from_db_value(token, None, None)}
    )


# --- Email-service providers -------------------------------------
# Reads of provider connections.
def provider_settings_for(
    *, tenant_id: int | None, role: str = ConnectionRole.PRIMARY
) -> ProviderSettings | None:
    """The tenant's (None: the host's) provider connection in this role, or None.

    None for the primary role means the tenant sends through SMTP (its own
    server or the host's), exactly as before providers existed.
    """
    return (
        ProviderSettings.objects.select_related("tenant")
        .filter(tenant_id=tenant_id, role=role)
        .first()
    )


def provider_connections_for(*, tenant_id: int | None) -> dict[str, ProviderSettings]:
    """Both of a tenant's (or the host's) rows by role; roles without a row are missing."""
    rows = ProviderSettings.objects.filter(tenant_id=tenant_id)
    return {row.role: row for row in rows}


# --- OAuth2 sign-in for SMTP -------------------------------------
def tenant_smtp_settings(tenant) -> SmtpSettings | None:
    """The SMTP settings an OAuth2 grant would belong to: the tenant's own (None: the host's)."""
    return SmtpSettings.objects.filter(tenant=tenant, role=ConnectionRole.PRIMARY).first()


def oauth_grant_for(*, smtp_settings: SmtpSettings | None) -> OAuthGrant | None:
    if smtp_settings is None or smtp_settings.pk is None:
        return None
    return (
        OAuthGrant.objects.for_tenant(smtp_settings.tenant_id)
        .filter(smtp_settings=smtp_settings)
        .select_related("connected_by")
        .first()
    )
