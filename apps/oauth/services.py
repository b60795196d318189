"""Every write to an OAuth2 grant: one transaction each, audited with the acting user.

Secrets appear in audit entries only as "changed". Token requests (HTTP)
happen outside the transaction, so a slow provider never holds a row lock.
"""

from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from apps.audit.services import audit_record, field_changes
from apps.core.fields import Secret
from apps.oauth.models import OAuthGrant, Provider
from apps.oauth.tokens import (
    OAuthError,
    fetch_token,
    google_exchange_code,
    provider_name,
    store_token,
)

AUDITED_FIELDS = ("provider", "directory_id", "client_id", "client_secret", "refresh_token")
SECRET_FIELDS = frozenset({"client_secret", "refresh_token"})


def _snapshot(grant: OAuthGrant | None) -> dict:
    if grant is None:
        return {}
    return {name: getattr(grant, name) for name in AUDITED_FIELDS}


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
    before = _snapshot(None if creating else grant)
    grant.tenant_id = smtp_settings.tenant_id
    identity_changed = (grant.provider, grant.client_id, grant.directory_id) != (
        provider,
        client_id,
        directory_id if provider == Provider.MICROSOFT else "",
    )
    grant.provider = provider
    grant.client_id = client_id
    grant.directory_id = directory_id if provider == Provider.MICROSOFT else ""
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
        changes=field_changes(before, _snapshot(grant), secret_fields=SECRET_FIELDS),
        tenant=grant.tenant,
        request=request,
    )
    return grant


@transaction.atomic
def oauth_grant_delete(*, actor, grant: OAuthGrant, request=None) -> None:
    """Remove the grant with its secrets and tokens: the settings sign in with a password again."""
    current = OAuthGrant.objects.select_for_update().filter(pk=grant.pk).first()
    if current is None:
        return  # Already removed, e.g. by a second click.
    audit_record(
        actor=actor,
        action="oauth_grant.delete",
        target=current,
        changes=field_changes(_snapshot(current), {}, secret_fields=SECRET_FIELDS),
        tenant=current.tenant,
        request=request,
    )
    current.delete()


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
            Provider.GOOGLE,
            grant.client_id,
        ):
            raise ValidationError(
                "The OAuth2 settings changed while you were at Google: connect again."
            )
        before = _snapshot(current)
        current.connected_at = timezone.now()
        current.connected_by = actor
        store_token(current, token)  # Keeps the refresh token and caches the access token.
        current.save(update_fields=["connected_at", "connected_by", "updated_at"])
        audit_record(
            actor=actor,
            action="oauth_grant.connect",
            target=current,
            changes=field_changes(before, _snapshot(current), secret_fields=SECRET_FIELDS),
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
