from django.conf import settings
from django.db import models

from apps.core.models import TenantQuerySet

# A refused delivery-webhook post (apps.webhooks): kept for its own, shorter period
# (WEBHOOK_REFUSAL_RETENTION_DAYS), so retention (apps.operations) names it too.
WEBHOOK_REFUSED_ACTION = "webhook.refused"


class AuditEntry(models.Model):
    """One change: who, when, from where, what changed.

    Rows are written only by services, inside the transaction of the change,
    and never edited. Secrets appear in `changes` only as "changed".
    """

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    # Null for host-level changes (settings, tenants, system administrators).
    tenant = models.ForeignKey(
        "tenancy.Tenant", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Kept as text too, so the entry still says who after the user is deleted.
    actor_email = models.CharField(max_length=254, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    action = models.CharField(max_length=100, db_index=True)
    target_type = models.CharField(max_length=100, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    target_repr = models.CharField(max_length=255, blank=True)
    changes = models.JSONField(default=dict, blank=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "audit entries"
        indexes = [
            models.Index(fields=["tenant", "-created_at"]),
            # The tenant's audit log of one action, by cursor (apps.core.keyset).
            models.Index(
                fields=["tenant", "action", "-created_at", "-id"], name="audit_tenant_action_recent"
            ),
        ]

    def __str__(self):
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.actor_email or 'system'} {self.action}"
