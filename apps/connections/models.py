"""How mail leaves: SMTP settings, email-service providers and OAuth2 sign-in for SMTP (models).

Each part below keeps the notes it had; a connection is primary or failover (ConnectionRole)."""

from email.headerregistry import Address

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q, Value
from django.db.models.functions import Coalesce

from apps.connections.catalog import MAILGUN_REGIONS, PROVIDERS, Provider
from apps.connections.validators import one_line, validate_fqdn, validate_single_line
from apps.core.fields import EncryptedTextField
from apps.core.models import TenantQuerySet, TimeStampedModel


class ConnectionRole(models.TextChoices):
    PRIMARY = "primary", "Primary"
    SECONDARY = "secondary", "Secondary (failover)"


# --- SMTP settings -----------------------------------------------
# SMTP settings: the host's global row, and later one row per tenant.
#
# The row with no tenant is the host's: Django's own mail (password reset,
# admins' mail) goes through it. A tenant row is that tenant's own server; a
# missing tenant row means the tenant inherits the host's.
#
# Each scope has a *primary* row (the one above) and may have a *secondary*
# one, its failover connection. Every read means the primary unless it asks
# for the secondary.
PORT_ERROR = "Enter a port between 1 and 65535: usually 587 for STARTTLS, 465 for implicit TLS."
TIMEOUT_MIN, TIMEOUT_MAX = 1, 120
TIMEOUT_ERROR = f"Enter a timeout between {TIMEOUT_MIN} and {TIMEOUT_MAX} seconds."


class Security(models.TextChoices):
    # Named so nobody confuses STARTTLS (upgrade a plain connection) with
    # implicit TLS (encrypted from the first byte).
    NONE = "none", "None (no encryption)"
    STARTTLS = "starttls", "STARTTLS (usually port 587)"
    TLS = "tls", "Implicit TLS/SSL (usually port 465)"


class Preset(models.TextChoices):
    GMAIL = "gmail", "Gmail"
    MICROSOFT365 = "microsoft365", "Microsoft 365"
    OTHER = "other", "Other"


def default_timeout() -> int:
    # A callable, so the migration does not freeze one environment's value.
    return min(TIMEOUT_MAX, max(TIMEOUT_MIN, round(settings.CONNECTION_TIMEOUT)))


def connection_timeout(own: float | None = None) -> float:
    """Seconds before a server is given up on: settings.CONNECTION_TIMEOUT, or `own` if shorter.

    Every connection asks here when it is made (SMTP and providers, deliveries
    and test emails), so changing the setting changes existing rows' too.
    """
    return min(own, settings.CONNECTION_TIMEOUT) if own else settings.CONNECTION_TIMEOUT


class ConnectionSettings(TimeStampedModel):
    """What every way out shares: whose it is (no tenant: the host's), primary or failover
    (a tenant, or the host, has at most one of each per kind), and the sender."""

    tenant = models.ForeignKey(
        "tenancy.Tenant",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        help_text="Empty for the host's.",
    )
    # "secondary" is the failover connection.
    role = models.CharField(
        max_length=10,
        choices=ConnectionRole.choices,
        default=ConnectionRole.PRIMARY,
    )
    from_email = models.EmailField(
        "Default From address",
        validators=[validate_single_line],
        help_text="The email address from which Postmaster sends email.",
    )
    from_name = models.CharField(
        "Default From display name",
        max_length=100,
        blank=True,
        validators=[validate_single_line],
        help_text="The name recipients see as the sender, e.g. “Postmaster Notifications”.",
    )

    objects = TenantQuerySet.as_manager()

    class Meta:
        abstract = True

    @property
    def from_header(self) -> str:
        """The default From, with the display name: `Name <address>`."""
        # one_line: the form refuses line breaks; a row saved another way cannot add a header.
        return str(Address(display_name=one_line(self.from_name), addr_spec=self.from_email))


class SmtpSettings(ConnectionSettings):
    name = models.CharField(
        max_length=100,
        default="Outgoing mail",
        validators=[validate_single_line],
        help_text="A name to recognise these settings by, e.g. “Company Gmail”.",
    )
    preset = models.CharField(
        max_length=20,
        choices=Preset.choices,
        default=Preset.OTHER,
        help_text="Fills in the host, port and security for a known provider.",
    )
    host = models.CharField(
        "SMTP host",
        max_length=253,
        validators=[validate_single_line],
        help_text="The domain name of the SMTP server, without the port, e.g. smtp.example.com.",
    )
    port = models.PositiveIntegerField(
        "SMTP port",
        default=587,
        validators=[MinValueValidator(1, PORT_ERROR), MaxValueValidator(65535, PORT_ERROR)],
    )
    security = models.CharField(
        "Security",
        max_length=10,
        choices=Security.choices,
        default=Security.STARTTLS,
        help_text="TLS certificates are always verified.",
    )
    username = models.CharField(
        "SMTP username",
        max_length=254,
        blank=True,
        validators=[validate_single_line],
        help_text="The username of the SMTP server, if it requires authentication.",
    )
    password = EncryptedTextField("SMTP password")
    smtp_domain = models.CharField(
        "SMTP domain",
        max_length=253,
        blank=True,
        validators=[validate_single_line],
        help_text=(
            "Domain for the username, if the SMTP server requires authentication. "
            "When set, Postmaster signs in as DOMAIN\\username."
        ),
    )
    timeout = models.PositiveSmallIntegerField(
        "Connection timeout (seconds)",
        default=default_timeout,
        validators=[
            MinValueValidator(TIMEOUT_MIN, TIMEOUT_ERROR),
            MaxValueValidator(TIMEOUT_MAX, TIMEOUT_ERROR),
        ],
        help_text="How long to wait for the server before giving up.",
    )
    ehlo_name = models.CharField(
        "EHLO name",
        max_length=253,
        blank=True,
        validators=[validate_single_line, validate_fqdn],
        help_text=(
            "The name Postmaster greets this server with (HELO/EHLO), e.g. mail.example.com. "
            "Leave blank for the default. Set it when the server refuses our greeting name: "
            "some relays want a fully qualified domain name that resolves."
        ),
    )

    class Meta:
        verbose_name = "SMTP settings"
        verbose_name_plural = "SMTP settings"
        constraints = [
            # One row per scope and role (tenant NULL counts as 0). An
            # expression rather than `nulls_distinct=False`, which SQLite lacks
            # (Django would silently skip the constraint there).
            models.UniqueConstraint(
                Coalesce("tenant", Value(0)),
                "role",
                name="mailsettings_smtp_one_per_scope_and_role",
            ),
            models.CheckConstraint(
                condition=Q(role__in=ConnectionRole.values), name="mailsettings_smtp_role_valid"
            ),
            models.CheckConstraint(
                condition=Q(port__gte=1, port__lte=65535), name="mailsettings_smtp_port_range"
            ),
            models.CheckConstraint(
                condition=Q(timeout__gte=TIMEOUT_MIN, timeout__lte=TIMEOUT_MAX),
                name="mailsettings_smtp_timeout_range",
            ),
            models.CheckConstraint(
                condition=Q(security__in=Security.values), name="mailsettings_smtp_security_valid"
            ),
        ]

    def __str__(self):
        return self.name

    @property
    def login_username(self) -> str:
        """The name sent to the server: DOMAIN\\username when a domain is set."""
        if self.smtp_domain and self.username and "\\" not in self.username:
            return f"{self.smtp_domain}\\{self.username}"
        return self.username


# --- Email-service providers -------------------------------------
# Email-service provider connections: the host's (tenant NULL) and each tenant's.
#
# A tenant (or the host) has at most one *primary* provider connection, used
# instead of SMTP while it exists, and at most one *secondary* one, for
# failover. A missing primary row means mail goes through SMTP as before.
SES_REGION = RegexValidator(
    r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$",
    "Enter an AWS region like eu-west-1 or us-east-1.",
)


class ProviderSettings(ConnectionSettings):
    provider = models.CharField("Provider", max_length=20, choices=Provider.choices)
    # The non-secret half of a key pair: SES's access key ID, Mailjet's API key.
    key_id = models.CharField(
        "Key ID", max_length=128, blank=True, validators=[validate_single_line]
    )
    # The API key, server token or secret key: encrypted, never shown.
    secret = EncryptedTextField("API key or secret")
    # SES: an AWS region (eu-west-1); Mailgun: "us" or "eu".
    region = models.CharField(max_length=32, blank=True, validators=[validate_single_line])
    # Blank: the provider's own. Set for a provider's other region or a local stand-in.
    api_url = models.URLField("API URL", max_length=300, blank=True)
    sender_domain = models.CharField(
        "Sender domain", max_length=253, blank=True, validators=[validate_single_line]
    )

    class Meta:
        verbose_name = "email-service provider"
        verbose_name_plural = "email-service providers"
        constraints = [
            # One row per scope and role (tenant NULL counts as 0): an expression
            # rather than `nulls_distinct=False`, which SQLite lacks.
            models.UniqueConstraint(
                Coalesce("tenant", Value(0)), "role", name="providers_one_per_scope_and_role"
            ),
            models.CheckConstraint(
                condition=Q(role__in=ConnectionRole.values), name="providers_role_valid"
            ),
            models.CheckConstraint(
                condition=Q(provider__in=Provider.values), name="providers_provider_valid"
            ),
        ]

    def __str__(self):
        return f"{self.get_provider_display()} ({self.get_role_display().lower()})"

    @property
    def info(self):
        return PROVIDERS[self.provider]

    @property
    def endpoint(self) -> str:
        """The API address requests go to, for pages and messages ("" for SES's default)."""
        if self.api_url:
            return self.api_url
        if self.provider == Provider.MAILGUN:
            return MAILGUN_REGIONS.get(self.region or "us", MAILGUN_REGIONS["us"])
        if self.provider == Provider.AMAZON_SES and self.region:
            return f"https://email.{self.region}.amazonaws.com"
        return self.info.default_api_url


# --- OAuth2 sign-in for SMTP -------------------------------------
# OAuth2 sign-in (XOAUTH2) for one set of SMTP settings.
#
# Microsoft 365 signs in with the client-credentials grant of an app registered
# in the organisation's Entra ID; Google with a refresh token that an
# administrator obtains once through Google's consent page. Either way the
# SMTP server receives a short-lived access token instead of a password.
# The secrets, and the access token cached until shortly before it expires,
# are stored encrypted and never shown.
class OAuthProvider(models.TextChoices):
    MICROSOFT = "microsoft365", "Microsoft 365 (Exchange Online)"
    GOOGLE = "google", "Google (Gmail, Google Workspace)"


class OAuthGrant(TimeStampedModel):
    smtp_settings = models.OneToOneField(
        "connections.SmtpSettings", on_delete=models.CASCADE, related_name="oauth_grant"
    )
    # The settings' tenant, repeated so tenant-owned reads start with it; NULL for the host's.
    tenant = models.ForeignKey(
        "tenancy.Tenant", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    provider = models.CharField(max_length=20, choices=OAuthProvider.choices)
    directory_id = models.CharField(
        "Directory (tenant) ID",
        max_length=100,
        blank=True,
        validators=[validate_single_line],
        help_text="Microsoft 365 only.",
    )
    client_id = models.CharField("Client ID", max_length=255, validators=[validate_single_line])
    client_secret = EncryptedTextField("Client secret")
    # Google only: what the consent page gave, and who connected it when.
    refresh_token = EncryptedTextField("Refresh token")
    connected_at = models.DateTimeField(null=True, blank=True)
    connected_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    # The last access token, reused until shortly before `access_token_expires_at`.
    access_token = EncryptedTextField("Access token")
    access_token_expires_at = models.DateTimeField(null=True, blank=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        verbose_name = "OAuth2 sign-in"
        verbose_name_plural = "OAuth2 sign-in"
        indexes = [models.Index(fields=["tenant"], name="oauth_grant_tenant_idx")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(provider__in=OAuthProvider.values),
                name="oauth_grant_provider_valid",
            ),
        ]

    def __str__(self):
        return f"{self.get_provider_display()} sign-in for {self.smtp_settings}"

    @property
    def is_google(self) -> bool:
        return self.provider == OAuthProvider.GOOGLE

    @property
    def is_connected(self) -> bool:
        """Whether it can get a token: Google also needs the consent page done."""
        if not (self.client_id and self.client_secret):
            return False
        return bool(self.refresh_token) if self.is_google else bool(self.directory_id)
