"""Reads of provider connections."""

from apps.providers.models import ConnectionRole, ProviderSettings


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
