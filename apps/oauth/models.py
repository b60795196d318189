"""OAuth2 sign-in (XOAUTH2) for one set of SMTP settings.

Microsoft 365 signs in with the client-credentials grant of an app registered
in the organisation's Entra ID; Google with a refresh token that an
administrator obtains once through Google's consent page. Either way the
SMTP server receives a short-lived access token instead of a password.
The secrets, and the access token cached until shortly before it expires,
are stored encrypted and never shown.
"""

from django.conf import settings
from django.db import models

from apps.core.fields import EncryptedTextField
from apps.core.models import TenantQuerySet, TimeStampedModel
from apps.mailsettings.validators import validate_single_line


class Provider(models.TextChoices):
    MICROSOFT = "microsoft365", "Microsoft 365 (Exchange Online)"
    GOOGLE = "google", "Google (Gmail, Google Workspace)"


class OAuthGrant(TimeStampedModel):
    smtp_settings = models.OneToOneField(
        "mailsettings.SmtpSettings", on_delete=models.CASCADE, related_name="oauth_grant"
    )
    # The settings' tenant, repeated so tenant-owned reads start with it; NULL for the host's.
    tenant = models.ForeignKey(
        "tenancy.Tenant", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    provider = models.CharField(max_length=20, choices=Provider.choices)
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
                condition=models.Q(provider__in=Provider.values), name="oauth_grant_provider_valid"
            ),
        ]

    def __str__(self):
        return f"{self.get_provider_display()} sign-in for {self.smtp_settings}"

    @property
    def is_google(self) -> bool:
        return self.provider == Provider.GOOGLE

    @property
    def is_connected(self) -> bool:
        """Whether it can get a token: Google also needs the consent page done."""
        if not (self.client_id and self.client_secret):
            return False
        return bool(self.refresh_token) if self.is_google else bool(self.directory_id)
