"""Access tokens for XOAUTH2: fetched with Authlib, cached encrypted, refreshed, never shown.

`access_token_for(smtp_settings)` is what the SMTP transport calls before it
signs in. It returns the cached token while it has more than
OAUTH_TOKEN_REFRESH_MARGIN seconds left, and otherwise asks the provider
for a new one: Microsoft with the client-credentials grant, Google with the
stored refresh token. Every failure is an `OAuthError` whose message says in
plain words what happened and what to redo; it never holds a secret.
"""

import logging
from datetime import timedelta
from urllib.parse import urlsplit

import requests
from authlib.common.security import generate_token
from authlib.integrations.base_client import OAuthError as AuthlibOAuthError
from authlib.integrations.requests_client import OAuth2Session
from django.conf import settings
from django.utils import timezone

from apps.connections.models import OAuthGrant, OAuthProvider
from apps.core.fields import Secret

logger = logging.getLogger(__name__)

MICROSOFT_SCOPE = "https://outlook.office365.com/.default"
GOOGLE_SCOPE = "https://mail.google.com/"
# Both providers take the client secret in the form body; so does the stand-in in tests.
CLIENT_AUTH = "client_secret_post"


class OAuthError(Exception):
    """A token could not be had. `message` and `hint` are plain words, safe to show.

    `reason` names the cause for code that decides what to do next
    ("invalid_grant", "invalid_client", "unreachable", "not_connected", ...);
    `transient` is True when trying again later, unchanged, may work.
    """

    def __init__(self, message: str, hint: str = "", *, reason: str, transient: bool = False):
        super().__init__(f"{message} {hint}".strip())
        self.message = message
        self.hint = hint
        self.reason = reason
        self.transient = transient


def provider_name(provider: str) -> str:
    return "Microsoft" if provider == OAuthProvider.MICROSOFT else "Google"


def settings_page(grant: OAuthGrant) -> str:
    """Where an administrator fixes this grant, for "what to redo" hints."""
    if grant.tenant_id is None:
        return "the host administration's OAuth2 sign-in page"
    return "the Email settings page (OAuth2 sign-in)"


def token_url(grant: OAuthGrant) -> str:
    if grant.provider == OAuthProvider.MICROSOFT:
        return settings.OAUTH_MICROSOFT_TOKEN_URL.format(tenant=grant.directory_id)
    return settings.OAUTH_GOOGLE_TOKEN_URL


def _session(grant: OAuthGrant, **kwargs) -> OAuth2Session:
    session = OAuth2Session(
        client_id=grant.client_id,
        client_secret=grant.client_secret.reveal() if grant.client_secret else "",
        token_endpoint_auth_method=CLIENT_AUTH,
        default_timeout=settings.OAUTH_TIMEOUT,
        **kwargs,
    )
    return session


def _verify() -> str | bool:
    # Per request: requests lets REQUESTS_CA_BUNDLE in the environment override a session's.
    return settings.OAUTH_CA_BUNDLE or True


# --- Plain words for what a token endpoint says --------------------------------------------

# Entra ID puts its precise cause in the description as an AADSTS code.
MICROSOFT_CAUSES = {
    "AADSTS90002": (
        "Microsoft does not know the directory (tenant) ID {directory}.",
        "Copy the Directory (tenant) ID from the app registration's Overview page in the "
        "Microsoft Entra admin center, then save it on {page}.",
    ),
    "AADSTS700016": (
        "Microsoft does not know an application with this client ID in directory {directory}.",
        "Copy the Application (client) ID from the app registration's Overview page, and "
        "check that the app is registered in this directory; then save it on {page}.",
    ),
    "AADSTS7000215": (
        "Microsoft refused the client secret.",
        "Enter the secret's Value (not its Secret ID) from Certificates & secrets in the app "
        "registration, or create a new secret there, and save it on {page}.",
    ),
    "AADSTS7000222": (
        "The client secret has expired.",
        "Create a new client secret under Certificates & secrets in the app registration and "
        "save it on {page}.",
    ),
}

WORDING = {
    (OAuthProvider.MICROSOFT, "invalid_client"): MICROSOFT_CAUSES["AADSTS7000215"],
    (OAuthProvider.MICROSOFT, "unauthorized_client"): MICROSOFT_CAUSES["AADSTS700016"],
    (OAuthProvider.MICROSOFT, "invalid_scope"): (
        "Microsoft does not let this app send mail through Exchange Online.",
        "In the app registration, add the API permission Office 365 Exchange Online > "
        "SMTP.SendAsApp (Application) and grant admin consent.",
    ),
    (OAuthProvider.GOOGLE, "invalid_grant"): (
        "Google no longer accepts the saved authorization (it was revoked, it expired, or "
        "the account's password changed).",
        "Connect Gmail again on {page}. If this happens every week, the app's OAuth consent "
        "screen is still in Testing: publish it, or make it Internal in Google Workspace.",
    ),
    (OAuthProvider.GOOGLE, "invalid_client"): (
        "Google refused the client ID or client secret.",
        "Check both in Google Cloud console > APIs & Services > Credentials, save them again "
        "on {page}, then connect Gmail again.",
    ),
    (OAuthProvider.GOOGLE, "unauthorized_client"): (
        "Google does not let this OAuth client use the saved authorization.",
        "The authorization belongs to another client ID: connect Gmail again on {page}.",
    ),
    (OAuthProvider.GOOGLE, "invalid_scope"): (
        "Google refused the permission to send mail (https://mail.google.com/).",
        "Add the Gmail scope https://mail.google.com/ to the OAuth consent screen, then "
        "connect Gmail again on {page}.",
    ),
}


def _first_line(text: str) -> str:
    return (text or "").strip().splitlines()[0] if (text or "").strip() else ""


def _error_for(grant: OAuthGrant, error: str, description: str) -> OAuthError:
    """An OAuthError for what the token endpoint answered (`error`, `error_description`)."""
    fields = {"directory": grant.directory_id, "page": settings_page(grant)}
    wording = None
    if grant.provider == OAuthProvider.MICROSOFT:
        code = _first_line(description).split(":")[0]
        wording = MICROSOFT_CAUSES.get(code)
    wording = wording or WORDING.get((grant.provider, error))
    if wording is None:
        detail = _first_line(description) or error
        wording = (
            f"{provider_name(grant.provider)} refused the sign-in ({{detail}}).",
            "Check the IDs and the secret on {page}.",
        )
        fields["detail"] = detail
    message, hint = wording
    return OAuthError(message.format(**fields), hint.format(**fields), reason=error or "refused")


def _unreachable(grant: OAuthGrant, error: Exception) -> OAuthError:
    host = urlsplit(token_url(grant)).hostname or "the token endpoint"
    name = provider_name(grant.provider)
    if isinstance(error, requests.exceptions.SSLError):
        return OAuthError(
            f"The TLS certificate of {name}'s sign-in service ({host}) is not trusted.",
            "Check that nothing between Postmaster and the internet intercepts HTTPS, "
            "or ask the operator of Postmaster to add its certificate authority to "
            "OAUTH_CA_BUNDLE.",
            reason="unreachable",
            transient=True,
        )
    if isinstance(error, requests.exceptions.HTTPError) and error.response is not None:
        status = error.response.status_code
        return OAuthError(
            f"{name}'s sign-in service ({host}) answered with an error (HTTP {status}).",
            "This is usually temporary: mail is retried later, or try again in a few minutes.",
            reason="provider_error",
            transient=True,
        )
    return OAuthError(
        f"{name}'s sign-in service ({host}) could not be reached.",
        f"Check that Postmaster's server may make outgoing HTTPS connections to {host}. "
        "Mail is retried later.",
        reason="unreachable",
        transient=True,
    )


def _request_token(grant: OAuthGrant, call) -> dict:
    """Run one token request; translate every way it can fail into an OAuthError."""
    try:
        token = call()
    except AuthlibOAuthError as error:
        raise _error_for(grant, error.error or "", error.description or "") from None
    except requests.exceptions.RequestException as error:
        # The exception's text can hold the URL only; still, log the class, not the text.
        logger.warning("OAuth2 token endpoint for %s unreachable: %s", grant, type(error).__name__)
        raise _unreachable(grant, error) from None
    except ValueError:
        raise OAuthError(
            f"{provider_name(grant.provider)}'s sign-in service gave an answer that is not a "
            "token.",
            "Check the token endpoint setting of Postmaster; try again later.",
            reason="provider_error",
            transient=True,
        ) from None
    if not token.get("access_token"):
        raise OAuthError(
            f"{provider_name(grant.provider)} answered without an access token.",
            f"Check the IDs and the secret on {settings_page(grant)}.",
            reason="provider_error",
        )
    return token


def _not_connected(grant: OAuthGrant) -> OAuthError:
    if grant.is_google and grant.client_id and grant.client_secret:
        return OAuthError(
            "Gmail is not connected yet.",
            f"Click “Connect with Google” on {settings_page(grant)} and allow Postmaster to "
            "send mail.",
            reason="not_connected",
        )
    return OAuthError(
        "The OAuth2 sign-in is not complete.",
        f"Enter the IDs and the client secret on {settings_page(grant)}.",
        reason="not_connected",
    )


# --- Fetching, caching, refreshing ---------------------------------------------------------


def fetch_token(grant: OAuthGrant) -> dict:
    """Ask the provider for a new access token (no cache): the grant's own way."""
    if not grant.is_connected:
        raise _not_connected(grant)
    if grant.provider == OAuthProvider.MICROSOFT:
        session = _session(grant)
        return _request_token(
            grant,
            lambda: session.fetch_token(
                token_url(grant),
                grant_type="client_credentials",
                scope=MICROSOFT_SCOPE,
                verify=_verify(),
            ),
        )
    session = _session(grant)
    return _request_token(
        grant,
        lambda: session.refresh_token(
            token_url(grant), refresh_token=grant.refresh_token.reveal(), verify=_verify()
        ),
    )


def _expiry(token: dict):
    expires_in = token.get("expires_in")
    try:
        seconds = int(expires_in)
    except (TypeError, ValueError):
        return None  # Unknown lifetime: use it once, do not cache it.
    return timezone.now() + timedelta(seconds=seconds)


def store_token(grant: OAuthGrant, token: dict) -> None:
    """Cache the access token (encrypted) and keep a refresh token the provider rotated."""
    grant.access_token = Secret(token["access_token"])
    grant.access_token_expires_at = _expiry(token)
    fields = ["access_token", "access_token_expires_at", "updated_at"]
    if grant.is_google and token.get("refresh_token"):
        grant.refresh_token = Secret(token["refresh_token"])
        fields.append("refresh_token")
    if grant.pk is not None:
        grant.save(update_fields=fields)


def cached_token(grant: OAuthGrant) -> str | None:
    """The cached access token while it has more than the margin left; else None."""
    if not grant.access_token or grant.access_token_expires_at is None:
        return None
    margin = timedelta(seconds=settings.OAUTH_TOKEN_REFRESH_MARGIN)
    if grant.access_token_expires_at - margin <= timezone.now():
        return None
    return grant.access_token.reveal()


def grant_for(smtp_settings) -> OAuthGrant | None:
    """The OAuth2 grant of these SMTP settings (saved ones only); None: password sign-in."""
    if smtp_settings is None or smtp_settings.pk is None:
        return None
    return OAuthGrant.objects.filter(smtp_settings_id=smtp_settings.pk).first()


def access_token_for(smtp_settings, *, fresh: bool = False) -> str:
    """An access token for XOAUTH2 with these SMTP settings, from the cache when it can.

    `fresh=True` skips the cache (the SMTP server refused the cached one).
    Raises OAuthError when the settings have no grant or no token can be had.
    """
    grant = grant_for(smtp_settings)
    if grant is None:
        raise OAuthError(
            "These SMTP settings do not use OAuth2 sign-in.",
            "Set up OAuth2 sign-in on the Email settings page, or sign in with a password.",
            reason="not_connected",
        )
    token = None if fresh else cached_token(grant)
    if token is None:
        fetched = fetch_token(grant)
        store_token(grant, fetched)
        token = fetched["access_token"]
    return token


# --- Google's consent page (authorization-code flow with PKCE) -----------------------------


def google_authorization(grant: OAuthGrant, *, redirect_uri: str, login_hint: str = "") -> dict:
    """Where to send the administrator to allow Postmaster to send mail as the account.

    Returns {"url", "state", "code_verifier"}: keep state and verifier in the
    session until the callback. `access_type=offline` and `prompt=consent`
    make Google issue a refresh token every time, not only the first.
    """
    session = _session(
        grant, redirect_uri=redirect_uri, scope=GOOGLE_SCOPE, code_challenge_method="S256"
    )
    code_verifier = generate_token(64)
    extra = {"access_type": "offline", "prompt": "consent"}
    if login_hint:
        extra["login_hint"] = login_hint
    url, state = session.create_authorization_url(
        settings.OAUTH_GOOGLE_AUTHORIZE_URL, code_verifier=code_verifier, **extra
    )
    return {"url": url, "state": state, "code_verifier": code_verifier}


def google_exchange_code(
    grant: OAuthGrant, *, code: str, code_verifier: str, redirect_uri: str
) -> dict:
    """Trade the consent page's code for tokens; the answer must hold a refresh token."""
    session = _session(grant, redirect_uri=redirect_uri)
    token = _request_token(
        grant,
        lambda: session.fetch_token(
            token_url(grant),
            grant_type="authorization_code",
            code=code,
            code_verifier=code_verifier,
            verify=_verify(),
        ),
    )
    if not token.get("refresh_token"):
        raise OAuthError(
            "Google allowed the sign-in but gave no refresh token, so Postmaster could not "
            "keep sending.",
            "Remove Postmaster's access at myaccount.google.com > Security > Third-party "
            "access, then click “Connect with Google” again.",
            reason="no_refresh_token",
        )
    return token
