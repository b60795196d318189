from django.db import models

from apps.core.models import TimeStampedModel


class Tenant(TimeStampedModel):
    """An organisation's own space in Postmaster, with its own settings and people."""

    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=50, unique=True)
    is_active = models.BooleanField("active", default=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name
