"""The delivery log in the tenant portal: `/t/<tenant-slug>/delivery/…`.

Tenant admins only. Deliveries carry other people's addresses and their mail
servers' replies, and a resend sends mail on the tenant's behalf, so members
see the dashboard's daily totals but not the log itself. System
administrators read every tenant's events and deliveries in the host
administration.
"""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from apps.core.keyset import keyset_page
from apps.delivery.forms import DeliveryFilterForm
from apps.delivery.models import DeliveryStatus, Event
from apps.delivery.selectors import (
    PROGRESS_PARTS,
    delivery_get,
    delivery_list,
    event_deliveries,
    event_get,
    event_progress,
)
from apps.delivery.services import delivery_resend, event_failed_resend
from apps.tenancy.decorators import tenant_view
from apps.tenancy.models import Role
from apps.tenancy.portal import actor

# An event's recipients by address; the (event, address) unique index serves it.
EVENT_RECIPIENTS_ORDER = ("address", "id")


def _event_url(request, event: Event) -> str:
    return reverse("tenancy:delivery:event_detail", args=[request.tenant.slug, event.pk])


def _back(request, default: str) -> str:
    """Where a resend returns to: the page it was posted from (the log keeps its filters)."""
    url = request.POST.get("next", "")
    allowed = url_has_allowed_host_and_scheme(
        url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return url if url and allowed else default


@tenant_view(role=Role.TENANT_ADMIN)
@require_GET
def delivery_log_view(request):
    form = DeliveryFilterForm(request.GET, tenant=request.tenant)
    filters = form.filters()
    # By cursor, newest first: the same cost on the first page and the thousandth.
    page = keyset_page(request, delivery_list(tenant=request.tenant, **filters), count_cap=1000)
    filtered = any(value not in ("", None) for value in filters.values())
    return render(request, "delivery/log.html", {"form": form, "page": page, "filtered": filtered})


@tenant_view(role=Role.TENANT_ADMIN)
@require_GET
def event_detail(request, pk: int):
    event = event_get(tenant=request.tenant, pk=pk)
    status = request.GET.get("status", "")
    if status not in DeliveryStatus.values:
        status = ""
    progress = event_progress(tenant=request.tenant, event=event)
    page = keyset_page(
        request,
        event_deliveries(tenant=request.tenant, event=event, status=status),
        ordering=EVENT_RECIPIENTS_ORDER,
    )
    context = {
        "event": event,
        "progress": progress,
        "page": page,
        "status": status,
        "progress_parts": [
            (s.value, s.label, progress.percent(getattr(progress, s.value))) for s in PROGRESS_PARTS
        ],
        "status_tabs": [
            ("", "All", progress.total),
            *((s.value, s.label, getattr(progress, s.value)) for s in DeliveryStatus),
        ],
    }
    return render(request, "delivery/event_detail.html", context)


@tenant_view(role=Role.TENANT_ADMIN)
@require_GET
@never_cache
def event_progress_view(request, pk: int):
    """What the event page polls while its event is being delivered."""
    event = event_get(tenant=request.tenant, pk=pk)
    return JsonResponse(event_progress(tenant=request.tenant, event=event).as_dict())


@tenant_view(role=Role.TENANT_ADMIN)
@require_POST
def delivery_resend_view(request, pk: int):
    delivery = delivery_get(tenant=request.tenant, pk=pk)
    back = _back(request, _event_url(request, delivery.event))
    try:
        # The service refuses anything but a failed delivery, in words.
        delivery_resend(delivery=delivery, **actor(request))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"The message to {delivery.address} will be sent again.")
    return redirect(back)


@tenant_view(role=Role.TENANT_ADMIN)
@require_POST
def event_resend_failed_view(request, pk: int):
    event = event_get(tenant=request.tenant, pk=pk)
    n = event_failed_resend(event=event, **actor(request))
    if n:
        messages.success(
            request, f"{n} failed deliver{'y' if n == 1 else 'ies'} will be sent again."
        )
    else:
        messages.info(request, "No delivery of this event has failed: nothing to send again.")
    return redirect(_event_url(request, event))
