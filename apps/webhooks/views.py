"""Delivery webhooks in the tenant portal (tenant admins): list, create (shown once), revoke."""

from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.tenancy.decorators import tenant_view
from apps.tenancy.models import Role
from apps.tenancy.portal import actor, delete_page, form_submit, paginate
from apps.webhooks import services
from apps.webhooks.forms import WebhookEndpointForm
from apps.webhooks.models import Provider
from apps.webhooks.providers import PROVIDERS
from apps.webhooks.selectors import webhook_endpoint_get, webhook_endpoint_list


def _page(request, form: WebhookEndpointForm, **context):
    context = {
        "page": paginate(request, webhook_endpoint_list(tenant=request.tenant)),
        "form": form,
        "providers": [(p.label, PROVIDERS[p].setup) for p in Provider],
        **context,
    }
    return render(request, "webhooks/endpoint_list.html", context)


@tenant_view(role=Role.TENANT_ADMIN)
@require_GET
def endpoint_list(request):
    return _page(request, WebhookEndpointForm())


@tenant_view(role=Role.TENANT_ADMIN)
@require_POST
def endpoint_create(request):
    """The password is in this response only: it is stored encrypted, and never shown again."""
    form = WebhookEndpointForm(request.POST)
    created = form_submit(
        form,
        lambda data: services.webhook_endpoint_create(
            tenant=request.tenant, **data, **actor(request)
        ),
    )
    if created is None:
        return _page(request, form)
    endpoint, password = created
    return _page(
        request,
        WebhookEndpointForm(),
        new_endpoint=endpoint,
        new_url=endpoint.url_with_credentials(password),
        new_password=password,
        new_setup=PROVIDERS[endpoint.provider].setup,
    )


@tenant_view(role=Role.TENANT_ADMIN)
@require_http_methods(["GET", "POST"])
def endpoint_revoke(request, pk: int):
    endpoint = webhook_endpoint_get(tenant=request.tenant, pk=pk)
    back = reverse("webhooks:list", args=[request.tenant.slug])
    return delete_page(
        request,
        obj=endpoint,
        kind="delivery webhook",
        goes_with_it={},
        delete=lambda: services.webhook_endpoint_revoke(endpoint=endpoint, **actor(request)),
        cancel_url=back,
        success_url=back,
        verb=("Revoke", "revoked"),
    )
