from django.db.models import QuerySet
from django.http import Http404
from django.shortcuts import get_object_or_404

from apps.tenancy.models import Tenant
from apps.webhooks.models import WebhookEndpoint


def webhook_endpoint_list(*, tenant: Tenant | None) -> QuerySet[WebhookEndpoint]:
    """The tenant's endpoints (None: the host's), newest first, revoked ones too."""
    if tenant is None:
        endpoints = WebhookEndpoint.objects.filter(tenant__isnull=True)
    else:
        endpoints = WebhookEndpoint.objects.for_tenant(tenant)
    return endpoints.select_related("created_by")


def webhook_endpoint_get(*, tenant: Tenant, pk: int) -> WebhookEndpoint:
    """The tenant's endpoint, or 404 (another tenant's too)."""
    return get_object_or_404(WebhookEndpoint.objects.for_tenant(tenant), pk=pk)


def webhook_endpoint_for_post(*, public_id, provider: str) -> WebhookEndpoint:
    """The active endpoint a provider posts to, with its tenant; 404 for any other."""
    endpoint = (
        WebhookEndpoint.objects.select_related("tenant")
        .filter(public_id=public_id, provider=provider, revoked_at__isnull=True)
        .first()
    )
    if endpoint is None or (endpoint.tenant is not None and not endpoint.tenant.is_active):
        raise Http404("No such webhook.")
    return endpoint
