"""Email-service provider connections: the host's (tenant NULL) and each tenant's.

A tenant (or the host) has at most one *primary* provider connection, used
instead of SMTP while it exists, and at most one *secondary* one, for
failover. A missing primary row means mail goes through SMTP as before.
"""

from email.headerregistry import Address

from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q, Value
from django.db.models.functions import Coalesce

from apps.core.fields import EncryptedTextField
from apps.core.models import TenantQuerySet, TimeStampedModel
from apps.mailsettings.validators import validate_single_line
from apps.providers.catalog import MAILGUN_REGIONS, PROVIDERS, Provider

SES_REGION = RegexValidator(
    r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$",
    "Enter an AWS region like eu-west-1 or us-east-1.",
)


class ConnectionRole(models.TextChoices):
    PRIMARY = "primary", "Primary"
    SECONDARY = "secondary", "Secondary (failover)"


class ProviderSettings(TimeStampedModel):
    tenant = models.ForeignKey(
        "tenancy.Tenant",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        help_text="Empty for the host's connection.",
    )
    role = models.CharField(
        max_length=10, choices=ConnectionRole.choices, default=ConnectionRole.PRIMARY
    )
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
    def from_header(self) -> str:
        """The default From, with the display name: `Name <address>`."""
        return str(Address(display_name=self.from_name, addr_spec=self.from_email))

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
