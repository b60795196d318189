from apps.mailsettings.models import SmtpSettings
from apps.oauth.models import OAuthGrant
from apps.providers.models import ConnectionRole


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
