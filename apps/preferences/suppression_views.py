"""The suppression list in the tenant portal: `/t/<tenant-slug>/suppressions/…`, tenant admins only.

The list holds other people's addresses and the replies of their mail
servers, like the delivery log, so members do not see it.
"""

from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from apps.core.keyset import keyset_page
from apps.preferences.suppression import (
    suppression_add,
    suppression_get,
    suppression_list,
    suppression_remove,
)
from apps.preferences.suppression_forms import SuppressionAddForm
from apps.tenancy.decorators import tenant_view
from apps.tenancy.models import Role
from apps.tenancy.portal import actor, form_page


def _list_url(request) -> str:
    return reverse("tenancy:suppressions:list", args=[request.tenant.slug])


@tenant_view(role=Role.TENANT_ADMIN)
@require_GET
def suppression_list_view(request):
    search = request.GET.get("q", "").strip()[:254]
    page = keyset_page(
        request, suppression_list(tenant=request.tenant, search=search), count_cap=1000
    )
    return render(request, "preferences/suppression_list.html", {"page": page, "search": search})


@tenant_view(role=Role.TENANT_ADMIN)
@require_http_methods(["GET", "POST"])
def suppression_add_view(request):
    return form_page(
        request,
        SuppressionAddForm(request.POST or None),
        save=lambda data: suppression_add(tenant=request.tenant, **data, **actor(request)),
        done=lambda suppression: (
            f"{suppression.address} is on the suppression list: notifications skip it.",
            _list_url(request),
        ),
        title="Add an address to the suppression list",
        submit="Add",
        cancel_url=_list_url(request),
    )


@tenant_view(role=Role.TENANT_ADMIN)
@require_http_methods(["GET", "POST"])
def suppression_remove_view(request, pk: int):
    suppression = suppression_get(tenant=request.tenant, pk=pk)
    if request.method == "POST":
        suppression_remove(suppression=suppression, **actor(request))
        messages.success(
            request,
            f"{suppression.address} was removed from the suppression list: "
            "notifications reach it again.",
        )
        return redirect(_list_url(request))
    context = {"suppression": suppression, "cancel_url": _list_url(request)}
    return render(request, "preferences/suppression_remove.html", context)
