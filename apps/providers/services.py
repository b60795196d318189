"""Every write of provider connections, audited; secrets appear only as "changed"."""

from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.db import transaction

from apps.audit.services import audit_record, field_changes
from apps.mailsettings import netguard
from apps.mailsettings.services import audited_test_email_send, secondary_replace
from apps.providers.catalog import PROVIDERS, Provider, api_url_allowed
from apps.providers.models import ConnectionRole, ProviderSettings

AUDITED_FIELDS = (
    "role",
    "provider",
    "key_id",
    "secret",
    "region",
    "api_url",
    "sender_domain",
    "from_email",
    "from_name",
)
SECRET_FIELDS = frozenset({"secret"})
# Which fields each provider uses; the others are blanked on save, so a row
# never keeps another provider's leftovers.
USED_FIELDS = {
    Provider.AMAZON_SES: {"key_id", "secret", "region", "api_url"},
    Provider.MAILGUN: {"secret", "region", "api_url", "sender_domain"},
    Provider.SENDGRID: {"secret", "api_url"},
    Provider.POSTMARK: {"secret", "api_url"},
    Provider.BREVO: {"secret", "api_url"},
    Provider.MAILJET: {"key_id", "secret", "api_url"},
}
OPTIONAL_FIELDS = frozenset({"key_id", "secret", "region", "api_url", "sender_domain"})


def api_url_error(provider_settings: ProviderSettings) -> str | None:
    """Why a tenant may not use this API URL, or None.

    A tenant's requests (with its key) go only to the provider's own HTTPS
    addresses, on port 443, and only where the name resolves to public
    addresses (the network guard, `apps.mailsettings.netguard`, checked again
    at every connection), unless a system administrator allowed the tenant
    private network addresses (the demo and tests: a stand-in on 127.0.0.1).
    The host's connection may use any address.
    """
    s = provider_settings
    if not s.api_url or s.tenant_id is None:
        return None
    info = PROVIDERS[s.provider]
    if not s.tenant.smtp_private_network_allowed and not api_url_allowed(s.provider, s.api_url):
        hosts = " or ".join(h.lstrip(".") for h in info.api_hosts)
        return (
            f"Enter an https:// address at {info.label} ({hosts}), or leave the API URL blank "
            f"for {info.label}'s own. Other addresses need a system administrator's permission."
        )
    parts = urlsplit(s.api_url)
    try:
        port = parts.port or (80 if parts.scheme == "http" else 443)
        netguard.check_host(parts.hostname or "", port, netguard.api_policy_for(s))
    except ValueError:
        return "Enter the API URL with a port between 1 and 65535, or without a port."
    except netguard.PortNotAllowedError:
        return (
            f"Port {port} is not allowed: {info.label}'s API answers on the HTTPS port, 443. "
            "Leave the port out of the API URL."
        )
    except netguard.AddressNotAllowedError as error:
        return error.message
    return None


def _snapshot(provider_settings: ProviderSettings) -> dict:
    return {name: getattr(provider_settings, name) for name in AUDITED_FIELDS}


def _blank_unused(provider_settings: ProviderSettings) -> None:
    used = USED_FIELDS[provider_settings.provider]
    for name in OPTIONAL_FIELDS - used:
        setattr(provider_settings, name, None if name == "secret" else "")


@transaction.atomic
def provider_settings_update(
    *, actor, provider_settings: ProviderSettings, request=None
) -> ProviderSettings:
    """Save a provider connection (new or changed, the host's or a tenant's) and audit it.

    `provider_settings` carries the new values (e.g. a valid form's instance);
    what it replaces is read here, so the audit entry says what really changed.
    """
    if provider_settings.provider not in PROVIDERS:
        raise ValidationError({"provider": "Choose one of the providers in the list."})
    _blank_unused(provider_settings)
    error = api_url_error(provider_settings)
    if error:
        raise ValidationError({"api_url": error})
    if not provider_settings.secret:
        label = PROVIDERS[provider_settings.provider].secret_label
        raise ValidationError({"secret": f"Enter the {label}."})
    creating = provider_settings.pk is None
    before = {}
    if not creating:
        stored = ProviderSettings.objects.select_for_update().get(pk=provider_settings.pk)
        before = _snapshot(stored)
    provider_settings.full_clean()
    provider_settings.save()
    if provider_settings.role == ConnectionRole.SECONDARY:
        secondary_replace(
            tenant_id=provider_settings.tenant_id,
            keep=provider_settings,
            actor=actor,
            request=request,
        )
    audit_record(
        actor=actor,
        action="provider_settings.create" if creating else "provider_settings.update",
        target=provider_settings,
        changes=field_changes(before, _snapshot(provider_settings), secret_fields=SECRET_FIELDS),
        tenant=provider_settings.tenant,
        request=request,
    )
    return provider_settings


@transaction.atomic
def provider_settings_delete(*, actor, provider_settings: ProviderSettings, request=None) -> None:
    """Delete a provider connection, its secret included. For the primary: back to SMTP."""
    current = ProviderSettings.objects.select_for_update().filter(pk=provider_settings.pk).first()
    if current is None:
        return  # Already deleted, e.g. by a second click: nothing to do or to audit.
    audit_record(
        actor=actor,
        action="provider_settings.delete",
        target=current,
        changes=field_changes(_snapshot(current), {}, secret_fields=SECRET_FIELDS),
        tenant=current.tenant,
        request=request,
    )
    current.delete()


def provider_test_email_send(*, form, actor, request=None):
    """Send the test email of a valid, testing `ProviderSettingsForm`, within the limits, audited.

    Test emails through a provider count with the SMTP ones against the same
    hourly limits; the audit entry names the provider, never a key.
    """
    provider_settings = form.instance
    return audited_test_email_send(
        form=form,
        settings_row=provider_settings,
        server=provider_settings.get_provider_display(),
        actor=actor,
        request=request,
    )
