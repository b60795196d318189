from django.db import models


class TimeStampedModel(models.Model):
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class TenantQuerySet(models.QuerySet):
    """The way into every tenant-owned table: `Model.objects.for_tenant(tenant)`."""

    def for_tenant(self, tenant):
        return self.filter(tenant=tenant)
