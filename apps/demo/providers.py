"""The demo's tenant on an email-service provider: Postmark, through the local stand-in."""

from django.conf import settings

from apps.connections.catalog import Provider
from apps.connections.models import ConnectionRole, ProviderSettings
from apps.connections.services import provider_settings_update, tenant_smtp_network_update
from apps.core.fields import Secret


def seed_provider_demo(tenant) -> None:
    """Put `tenant`'s mail on Postmark through the stand-in (idempotent: kept if it exists)."""
    if ProviderSettings.objects.filter(tenant=tenant, role=ConnectionRole.PRIMARY).exists():
        return
    if not tenant.smtp_private_network_allowed:
        # The stand-in is on 127.0.0.1, which tenants may not use unless allowed.
        tenant_smtp_network_update(
            tenant=tenant, private_allowed=True, extra_ports=tenant.smtp_extra_ports, actor=None
        )
    provider_settings_update(
        actor=None,
        provider_settings=ProviderSettings(
            tenant=tenant,
            role=ConnectionRole.PRIMARY,
            provider=Provider.POSTMARK,
            secret=Secret("demo-postmark-server-token"),
            # `make run` starts `manage.py provider_standin` there, relaying to the catcher.
            api_url=f"http://127.0.0.1:{settings.PROVIDER_STANDIN_PORT}/",
            from_email=f"notify@{tenant.slug}.test",
            from_name=f"{tenant.name} Notifications",
        ),
    )
