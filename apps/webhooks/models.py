"""Delivery webhooks: one URL per tenant and email-service provider.

A provider posts what happened to the mail it accepted (delivered, bounced,
marked as spam, ...) to `/webhooks/<public_id>/<provider>/tracking/`; anymail
parses it (apps.webhooks.receivers) and apps.webhooks.services applies it to
the tenant's deliveries and suppression list. The URL's id is unguessable and
every post must carry the endpoint's HTTP basic-auth credentials (and, where
the provider signs its posts, a valid signature).
"""

import uuid

from django.conf import settings
from django.db import models
from django.urls import reverse

from apps.connections.catalog import Provider
from apps.core.fields import EncryptedTextField
from apps.core.models import TenantQuerySet
from apps.tenancy.models import Tenant


class WebhookEndpoint(models.Model):
    # Null: the host's endpoint (system administrators), for mail sent through the host
    # settings; it may match the deliveries of every tenant.
    tenant = models.ForeignKey(
        Tenant, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    provider = models.CharField(max_length=20, choices=Provider.choices)
    # In the URL: unguessable, and says nothing about the tenant.
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    # HTTP basic auth: the user name is not secret (it tells endpoints apart), the password is.
    username = models.CharField(max_length=40)
    password = EncryptedTextField()
    # Mailgun's HTTP webhook signing key, or SendGrid's signed-webhook verification key.
    signing_key = EncryptedTextField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # When the provider last posted something we accepted (at most once a minute).
    last_event_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["tenant", "-created_at"], name="webhooks_endpoint_list")]

    def __str__(self):
        return f"{self.get_provider_display()} webhook {self.username}"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    @property
    def path(self) -> str:
        return reverse(
            "webhooks_receiver:tracking",
            kwargs={"public_id": self.public_id, "provider": self.provider},
        )

    @property
    def url(self) -> str:
        """The URL to give the provider, without credentials (safe to show again)."""
        return settings.SITE_URL.rstrip("/") + self.path

    def url_with_credentials(self, password: str) -> str:
        """The URL with `user:password@`, as most providers take basic auth: shown once."""
        scheme, rest = self.url.split("://", 1)
        return f"{scheme}://{self.username}:{password}@{rest}"
