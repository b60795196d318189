"""Known providers: what their settings are, and what people trip over."""

from dataclasses import asdict, dataclass

from apps.connections.models import Preset, Security

GMAIL_APP_PASSWORD = (
    "Gmail needs an app password, not your Google account password: open your Google "
    "account → Security → 2-Step Verification → App passwords, choose Generate, and "
    "enter that 16-character password here. Use your Gmail address as the SMTP username."
)
MICROSOFT365_BASIC_AUTH = (
    "Microsoft turns SMTP basic authentication (username and password) off by default "
    "at the end of December 2026. Until then, authenticated SMTP must be enabled for the "
    "mailbox in the Microsoft 365 admin centre; plan to move to OAuth2."
)


@dataclass(frozen=True)
class ProviderPreset:
    key: str
    label: str
    host: str
    port: int | None
    security: str
    note: str


PRESETS = {
    Preset.GMAIL: ProviderPreset(
        Preset.GMAIL, "Gmail", "smtp.gmail.com", 587, Security.STARTTLS, GMAIL_APP_PASSWORD
    ),
    Preset.MICROSOFT365: ProviderPreset(
        Preset.MICROSOFT365,
        "Microsoft 365",
        "smtp.office365.com",
        587,
        Security.STARTTLS,
        MICROSOFT365_BASIC_AUTH,
    ),
    # "Other" fills nothing in: the values already in the form stay.
    Preset.OTHER: ProviderPreset(
        Preset.OTHER,
        "Other",
        "",
        None,
        "",
        "Enter the host, port and security mode your email provider gives you.",
    ),
}


def provider_for_host(host: str) -> Preset:
    """Which provider a host belongs to, for hints about its quirks."""
    host = host.lower().rstrip(".")
    if host == "smtp.gmail.com" or host.endswith((".gmail.com", ".googlemail.com")):
        return Preset.GMAIL
    if host.endswith((".office365.com", ".outlook.com")):
        return Preset.MICROSOFT365
    return Preset.OTHER


def presets_data() -> list[dict]:
    """For the page script (`json_script`) that fills the form."""
    return [asdict(preset) for preset in PRESETS.values()]
