"""How mail leaves: SMTP settings, email-service providers and OAuth2 sign-in for SMTP (services).

Each part below keeps the notes it had; a connection is primary or failover (ConnectionRole)."""

import math
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from apps.audit.models import AuditEntry
from apps.audit.services import audit_record, field_changes
from apps.connections import netguard
from apps.connections.catalog import PROVIDERS, Provider, api_url_allowed
from apps.connections.models import (
    ConnectionRole,
    OAuthGrant,
    OAuthProvider,
    ProviderSettings,
    SmtpSettings,
)
from apps.connections.oauth_tokens import (
    OAuthError,
    fetch_token,
    google_exchange_code,
    provider_name,
    store_token,
)
from apps.connections.selectors import host_smtp_settings_forget
from apps.core.fields import Secret
from apps.tenancy.models import Tenant

# --- SMTP settings -----------------------------------------------
SMTP_AUDITED_FIELDS = (
    "role",
    "name",
    "preset",
    "host",
    "port",
    "security",
    "username",
    "password",
    "smtp_domain",
    "from_email",
    "from_name",
    "timeout",
    "ehlo_name",
)
SMTP_SECRET_FIELDS = frozenset({"password"})


def _smtp_snapshot(smtp_settings: SmtpSettings) -> dict:
    return {name: getattr(smtp_settings, name) for name in SMTP_AUDITED_FIELDS}


@transaction.atomic
def smtp_settings_update(*, actor, smtp_settings: SmtpSettings, request=None) -> SmtpSettings:
    """Save SMTP settings (new or changed, the host's or a tenant's) and audit the change.

    `smtp_settings` carries the new values (e.g. a valid `SmtpSettingsForm`'s
    instance); what it replaces is read from the database here, so the audit
    entry says what really changed. The password appears there only as "changed".
    """
    creating = smtp_settings.pk is None
    before = {}
    if not creating:
        before = _smtp_snapshot(SmtpSettings.objects.select_for_update().get(pk=smtp_settings.pk))
    smtp_settings.full_clean()
    smtp_settings.save()
    if smtp_settings.role == ConnectionRole.SECONDARY:
        secondary_replace(
            tenant_id=smtp_settings.tenant_id, keep=smtp_settings, actor=actor, request=request
        )
    audit_record(
        actor=actor,
        action="smtp_settings.create" if creating else "smtp_settings.update",
        target=smtp_settings,
        changes=field_changes(
            before, _smtp_snapshot(smtp_settings), secret_fields=SMTP_SECRET_FIELDS
        ),
        tenant=smtp_settings.tenant,
        request=request,
    )
    if smtp_settings.tenant_id is None:
        transaction.on_commit(host_smtp_settings_forget)
    return smtp_settings


def secondary_replace(*, tenant_id: int | None, keep, actor, request=None) -> None:
    """Remove the scope's other failover connection: there is one at a time.

    `keep` is the secondary row being saved (SMTP settings or a provider
    connection); the scope's secondary row of the other kind is deleted,
    credential included, and audited. Call inside the saving transaction.
    """

    if isinstance(keep, SmtpSettings):
        for row in ProviderSettings.objects.filter(
            tenant_id=tenant_id, role=ConnectionRole.SECONDARY
        ):
            provider_settings_delete(actor=actor, provider_settings=row, request=request)
    else:
        for row in SmtpSettings.objects.filter(tenant_id=tenant_id, role=ConnectionRole.SECONDARY):
            smtp_settings_delete(actor=actor, smtp_settings=row, request=request)


@transaction.atomic
def smtp_settings_delete(*, actor, smtp_settings: SmtpSettings, request=None) -> None:
    """Delete a tenant's own settings, password included: its mail goes through the host's again.

    Only tenant rows and failover (secondary) rows: Django's own mail needs
    the host's primary. The audit entry keeps the removed values, the
    password only as "changed".
    """
    if smtp_settings.tenant_id is None and smtp_settings.role == ConnectionRole.PRIMARY:
        raise ValidationError("The host's SMTP settings cannot be deleted: all mail needs them.")
    _audited_delete(
        smtp_settings,
        action="smtp_settings.delete",
        snapshot=_smtp_snapshot,
        secret_fields=SMTP_SECRET_FIELDS,
        actor=actor,
        request=request,
    )


def _audited_delete(row, *, action: str, snapshot, secret_fields, actor, request) -> None:
    """Delete `row` (locked and read again first), audited with the values it had, secrets
    only as "changed". Already deleted (a second click, say): nothing to do or to audit.
    Every connection row (SMTP settings, provider connections, OAuth2 grants) goes this way;
    call it inside the service's transaction."""
    current = type(row).objects.select_for_update().filter(pk=row.pk).first()
    if current is None:
        return
    audit_record(
        actor=actor,
        action=action,
        target=current,
        changes=field_changes(snapshot(current), {}, secret_fields=secret_fields),
        tenant=current.tenant,
        request=request,
    )
    current.delete()


NETWORK_FIELDS = ("smtp_private_network_allowed", "smtp_extra_ports")


@transaction.atomic
def tenant_smtp_network_update(
    *, tenant: Tenant, private_allowed: bool, extra_ports: str, actor, request=None
):
    """Set a tenant's exceptions to the SMTP network policy (system administrators only).

    `extra_ports` as typed ("1025, 2526"); stored normalised. Audited.
    """
    stored = Tenant.objects.select_for_update().get(pk=tenant.pk)
    before = {name: getattr(stored, name) for name in NETWORK_FIELDS}
    try:
        ports = netguard.parse_ports(extra_ports)
    except ValueError as error:
        raise ValidationError({"smtp_extra_ports": str(error)}) from None
    stored.smtp_private_network_allowed = private_allowed
    stored.smtp_extra_ports = ", ".join(str(port) for port in ports)
    after = {name: getattr(stored, name) for name in NETWORK_FIELDS}
    if after == before:
        return stored
    stored.save(update_fields=[*NETWORK_FIELDS, "updated_at"])
    audit_record(
        actor=actor,
        action="tenant.smtp_network_update",
        target=stored,
        changes=field_changes(before, after),
        tenant=stored,
        request=request,
    )
    for name in NETWORK_FIELDS:
        setattr(tenant, name, after[name])
    return stored


TEST_EMAIL_ACTION = "smtp_settings.test_sent"
# What the hourly test-email limits count: the settings pages' test emails, and
# the Test button of notification rules (apps.delivery.services.rule_test_send).
TEST_EMAIL_ACTIONS = (TEST_EMAIL_ACTION, "notification_rule.test_sent")
LIMIT_WINDOW = timedelta(hours=1)


class TestEmailLimitError(ValidationError):
    """Too many test emails in the last hour; the message says when to try again."""

    __test__ = False  # not a pytest test class, despite the name


def smtp_test_email_limit_check(*, user, tenant: Tenant | None) -> None:
    """Raise TestEmailLimitError if `user` (or `tenant`) sent its hour's test emails already.

    The audit log is the record: every test email writes one entry, in the
    database all processes share, so the count holds across workers and
    restarts and the window slides exactly (the oldest counted entry says
    when a slot frees up). Two requests at the very same moment can both
    pass the check; the limit is against abuse, not an exact quota.
    """
    now = timezone.now()
    recent = AuditEntry.objects.filter(
        action__in=TEST_EMAIL_ACTIONS, created_at__gt=now - LIMIT_WINDOW
    )
    checks = [
        (recent.filter(actor=user), settings.TEST_EMAIL_LIMIT_PER_USER_HOUR, "You have"),
    ]
    if tenant is not None:
        checks.append(
            (
                recent.filter(tenant=tenant),
                settings.TEST_EMAIL_LIMIT_PER_TENANT_HOUR,
                f"{tenant} has",
            )
        )
    for entries, limit, who in checks:
        times = list(entries.order_by("-created_at").values_list("created_at", flat=True)[:limit])
        if len(times) < limit:
            continue
        minutes = max(1, math.ceil((times[-1] + LIMIT_WINDOW - now).total_seconds() / 60))
        raise TestEmailLimitError(
            f"{who} sent {limit} test email{'s' if limit != 1 else ''} in the last hour. "
            f"Try again in {minutes} minute{'s' if minutes != 1 else ''}.",
            code="test_email_limit",
        )


def smtp_test_email_send(*, form, actor, request=None):
    """Send the test email of a valid, testing `SmtpSettingsForm`, within the limits, audited.

    The audit entry names the recipient, the server and the outcome; never
    the password. Raises TestEmailLimitError (nothing sent) past the limits.
    """
    smtp_settings = form.instance
    return audited_test_email_send(
        form=form,
        settings_row=smtp_settings,
        server=f"{smtp_settings.host}:{smtp_settings.port}",
        actor=actor,
        request=request,
    )


def audited_test_email_send(*, form, settings_row, server: str, actor, request=None):
    """Send a settings form's test email (SMTP or provider) within the hourly limits; audited.

    `settings_row` is the form's (perhaps unsaved) SMTP or provider settings;
    `server` names where the email went, for the audit entry.
    """
    tenant = settings_row.tenant if settings_row.tenant_id else None
    smtp_test_email_limit_check(user=actor, tenant=tenant)
    result = form.send_test_email()
    with transaction.atomic():
        audit_record(
            actor=actor,
            action=TEST_EMAIL_ACTION,
            target=settings_row if settings_row.pk else None,
            changes={
                "to": form.cleaned_data["test_to"],
                "server": server,
                "outcome": str(result.outcome),
            },
            tenant=tenant,
            request=request,
        )
    return result


# --- Email-service providers -------------------------------------
# Every write of provider connections, audited; secrets appear only as "changed".
PROVIDER_AUDITED_FIELDS = (
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
PROVIDER_SECRET_FIELDS = frozenset({"secret"})
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
    addresses (the network guard, `apps.connections.netguard`, checked again
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


def _provider_snapshot(provider_settings: ProviderSettings) -> dict:
    return {name: getattr(provider_settings, name) for name in PROVIDER_AUDITED_FIELDS}


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
        before = _provider_snapshot(stored)
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
        changes=field_changes(
            before, _provider_snapshot(provider_settings), secret_fields=PROVIDER_SECRET_FIELDS
        ),
        tenant=provider_settings.tenant,
        request=request,
    )
    return provider_settings


@transaction.atomic
def provider_settings_delete(*, actor, provider_settings: ProviderSettings, request=None) -> None:
    """Delete a provider connection, its secret included. For the primary: back to SMTP."""
    _audited_delete(
        provider_settings,
        action="provider_settings.delete",
        snapshot=_provider_snapshot,
        secret_fields=PROVIDER_SECRET_FIELDS,
        actor=actor,
        request=request,
    )


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


# --- OAuth2 sign-in for SMTP -------------------------------------
# Every write to an OAuth2 grant: one transaction each, audited with the acting user.
#
# Secrets appear in audit entries only as "changed". Token requests (HTTP)
# happen outside the transaction, so a slow provider never holds a row lock.
OAUTH_AUDITED_FIELDS = ("provider", "directory_id", "client_id", "client_secret", "refresh_token")
OAUTH_SECRET_FIELDS = frozenset({"client_secret", "refresh_token"})


def _oauth_snapshot(grant: OAuthGrant | None) -> dict:
    if grant is None:
        return {}
    return {name: getattr(grant, name) for name in OAUTH_AUDITED_FIELDS}


@transaction.atomic
def oauth_grant_save(
    *,
    actor,
    smtp_settings,
    provider: str,
    client_id: str,
    client_secret: str = "",
    directory_id: str = "",
    request=None,
) -> OAuthGrant:
    """Create or change the OAuth2 grant of saved SMTP settings.

    A blank `client_secret` keeps the stored one. Another provider, client or
    directory makes the stored refresh token (Google) worthless, so it is
    removed, and with any change the cached access token too.
    """
    if smtp_settings.pk is None:
        raise ValidationError("Save the SMTP settings first.")
    grant = OAuthGrant.objects.select_for_update().filter(smtp_settings_id=smtp_settings.pk).first()
    creating = grant is None
    if creating:
        grant = OAuthGrant(smtp_settings=smtp_settings)
    before = _oauth_snapshot(None if creating else grant)
    grant.tenant_id = smtp_settings.tenant_id
    identity_changed = (grant.provider, grant.client_id, grant.directory_id) != (
        provider,
        client_id,
        directory_id if provider == OAuthProvider.MICROSOFT else "",
    )
    grant.provider = provider
    grant.client_id = client_id
    grant.directory_id = directory_id if provider == OAuthProvider.MICROSOFT else ""
    if client_secret:
        grant.client_secret = Secret(client_secret)
    if identity_changed:
        if grant.provider != before.get("provider", provider) and not client_secret:
            raise ValidationError(
                {"client_secret": "Enter the client secret of the new provider's app."}
            )
        grant.refresh_token = None
        grant.connected_at = None
        grant.connected_by = None
    if identity_changed or client_secret:
        grant.access_token = None
        grant.access_token_expires_at = None
    if not grant.client_secret:
        raise ValidationError({"client_secret": "Enter the client secret."})
    grant.full_clean(exclude=["smtp_settings"])
    grant.save()
    audit_record(
        actor=actor,
        action="oauth_grant.create" if creating else "oauth_grant.update",
        target=grant,
        changes=field_changes(before, _oauth_snapshot(grant), secret_fields=OAUTH_SECRET_FIELDS),
        tenant=grant.tenant,
        request=request,
    )
    return grant


@transaction.atomic
def oauth_grant_delete(*, actor, grant: OAuthGrant, request=None) -> None:
    """Remove the grant with its secrets and tokens: the settings sign in with a password again."""
    _audited_delete(
        grant,
        action="oauth_grant.delete",
        snapshot=_oauth_snapshot,
        secret_fields=OAUTH_SECRET_FIELDS,
        actor=actor,
        request=request,
    )


def oauth_google_connect(
    *, actor, grant: OAuthGrant, code: str, code_verifier: str, redirect_uri: str, request=None
) -> OAuthGrant:
    """Finish Google's consent page: trade the code for a refresh token and keep it.

    Raises OAuthError in plain words; ValidationError when the grant changed
    (or went) while the administrator was at Google.
    """
    try:
        token = google_exchange_code(
            grant, code=code, code_verifier=code_verifier, redirect_uri=redirect_uri
        )
    except OAuthError as error:
        if error.reason == "invalid_grant":
            # Here it is the one-time code that was refused, not a saved authorization.
            raise OAuthError(
                "Google did not accept the sign-in code (it expired or was already used).",
                "Click “Connect with Google” again.",
                reason="invalid_grant",
            ) from None
        raise
    with transaction.atomic():
        current = OAuthGrant.objects.select_for_update().filter(pk=grant.pk).first()
        if current is None or (current.provider, current.client_id) != (
            OAuthProvider.GOOGLE,
            grant.client_id,
        ):
            raise ValidationError(
                "The OAuth2 settings changed while you were at Google: connect again."
            )
        before = _oauth_snapshot(current)
        current.connected_at = timezone.now()
        current.connected_by = actor
        store_token(current, token)  # Keeps the refresh token and caches the access token.
        current.save(update_fields=["connected_at", "connected_by", "updated_at"])
        audit_record(
            actor=actor,
            action="oauth_grant.connect",
            target=current,
            changes=field_changes(
                before, _oauth_snapshot(current), secret_fields=OAUTH_SECRET_FIELDS
            ),
            tenant=current.tenant,
            request=request,
        )
    return current


@dataclass(frozen=True)
class SignInTestResult:
    __test__ = False  # not a pytest test class, despite the name

    ok: bool
    message: str
    hint: str = ""


def oauth_sign_in_test(*, grant: OAuthGrant) -> SignInTestResult:
    """Ask the provider for a new token now (not from the cache) and say what happened.

    The token is kept for sending; it is never shown. Whether the SMTP server
    accepts it is what "Send test email" on the Email settings page checks.
    """
    name = provider_name(grant.provider)
    try:
        store_token(grant, fetch_token(grant))
    except OAuthError as error:
        return SignInTestResult(False, error.message, error.hint)
    return SignInTestResult(
        True,
        f"{name} issued an access token: the OAuth2 sign-in works.",
        "Send a test email from the Email settings page to check that the SMTP server "
        f"accepts it for {grant.smtp_settings.login_username or 'the SMTP username'}.",
    )
