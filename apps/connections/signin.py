"""How SMTP settings sign in, which connection carries the mail, and when to warn about it.

Microsoft 365 and Gmail are ending password sign-in for SMTP: settings for
them that still sign in with a password get a notice on the Email settings
page (tenant and host) with a link to OAuth2 sign-in.
"""

from dataclasses import dataclass

from apps.connections.models import Preset, SmtpSettings
from apps.connections.presets import provider_for_host

MICROSOFT365_NOTICE = (
    "Microsoft 365 turns SMTP basic authentication (username and password) off by default "
    "at the end of December 2026. From then on it refuses the password with “550 5.7.30 "
    "Basic authentication is not supported”, and mail stops. Switch to OAuth2 sign-in before "
    "then."
)
GMAIL_NOTICE = (
    "Gmail does not accept the Google account's password for SMTP: it needs an app password "
    "(which needs 2-Step Verification, and stops working when the account's password "
    "changes) or OAuth2. OAuth2 sign-in is the lasting choice."
)


@dataclass(frozen=True)
class PasswordSignInNotice:
    provider: str  # "Microsoft 365" or "Gmail"
    title: str
    text: str


def mailbox_provider(smtp_settings: SmtpSettings) -> str:
    """Preset.GMAIL, Preset.MICROSOFT365 or Preset.OTHER: by host, else by the chosen preset."""
    provider = provider_for_host(smtp_settings.host)
    if provider == Preset.OTHER and smtp_settings.preset in Preset.values:
        provider = Preset(smtp_settings.preset)
    return provider


def password_sign_in_notice(
    smtp_settings: SmtpSettings | None, grant
) -> PasswordSignInNotice | None:
    """The notice for Microsoft 365 or Gmail settings without OAuth2 sign-in; else None."""
    if smtp_settings is None or grant is not None:
        return None
    provider = mailbox_provider(smtp_settings)
    if provider == Preset.MICROSOFT365:
        return PasswordSignInNotice(
            "Microsoft 365",
            "Microsoft 365 is ending password sign-in for SMTP.",
            MICROSOFT365_NOTICE,
        )
    if provider == Preset.GMAIL:
        return PasswordSignInNotice(
            "Gmail", "Gmail signs in to SMTP with an app password or OAuth2 only.", GMAIL_NOTICE
        )
    return None


def connection_words(smtp_settings: SmtpSettings | None, grant, provider=None) -> str:
    """Which connection carries the mail, in a few words (never a secret)."""
    if provider is not None:
        return f"Email-service provider: {provider.get_provider_display()}"
    if smtp_settings is None:
        return "SMTP (not set up)"
    if grant is not None:
        return f"SMTP with OAuth2 sign-in ({grant.get_provider_display()})"
    if smtp_settings.username and smtp_settings.password:
        return "SMTP with password sign-in"
    if smtp_settings.username:
        return "SMTP with password sign-in (no password stored)"
    return "SMTP without sign-in"
