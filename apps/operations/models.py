"""Running the service: the host's maintenance switch, and tenants' delivery trouble.

`MaintenanceMode` is one row (id 1). `DeliveryAlert` is one row per tenant
whose mail ever got into trouble: what the periodic check last found, and
when the tenant admins were last emailed about it.
"""

from django.db import models
from django.db.models import Q

from apps.core.models import TenantQuerySet
from apps.tenancy.models import Tenant

MAINTENANCE_ID = 1


class MaintenanceMode(models.Model):
    id = models.PositiveSmallIntegerField(primary_key=True, default=MAINTENANCE_ID, editable=False)
    is_on = models.BooleanField(
        "maintenance mode is on",
        default=False,
        help_text="While on, only system administrators can change anything, and no mail is "
        "sent (it waits and goes out once this is switched off). Pipelines can still report "
        "events.",
    )
    message = models.CharField(
        max_length=500,
        blank=True,
        help_text="Shown at the top of every page while maintenance mode is on, e.g. "
        "“Upgrading the database; back by 14:00 UTC.”",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "maintenance mode"
        verbose_name_plural = "maintenance mode"
        constraints = [
            models.CheckConstraint(
                condition=Q(id=MAINTENANCE_ID), name="operations_maintenance_one_row"
            )
        ]

    def __str__(self):
        return "Maintenance mode (on)" if self.is_on else "Maintenance mode (off)"


class AlertCause(models.TextChoices):
    AUTH = "auth", "The SMTP server refuses the login"
    CONNECTION = "connection", "The SMTP server cannot be reached"
    FAILURES = "failures", "Many messages fail"


class DeliveryAlert(models.Model):
    tenant = models.OneToOneField(Tenant, on_delete=models.CASCADE, related_name="+")
    cause = models.CharField(max_length=20, choices=AlertCause.choices)
    # What is wrong, in plain words, as the email and the dashboard banner say it.
    summary = models.CharField(max_length=1000)
    # Set while the trouble lasts; cleared by the check that no longer finds it.
    failing_since = models.DateTimeField(null=True, blank=True)
    checked_at = models.DateTimeField()
    # The tenant admins are emailed at most once an hour (ALERT_EMAIL_INTERVAL).
    emailed_at = models.DateTimeField(null=True, blank=True)

    objects = TenantQuerySet.as_manager()

    def __str__(self):
        return f"{self.tenant}: {self.get_cause_display()}"

    @property
    def is_failing(self) -> bool:
        return self.failing_since is not None
