from django import template
from django.urls import reverse

from apps.operations.models import AlertCause
from apps.operations.selectors import delivery_alert_current

register = template.Library()


@register.inclusion_tag("operations/_delivery_alert_banner.html", takes_context=True)
def delivery_alert_banner(context):
    """The tenant's delivery trouble while it lasts; a link to the log for those who may read it."""
    request = context["request"]
    alert = delivery_alert_current(tenant=request.tenant)
    membership = getattr(request, "membership", None)
    log_url = ""
    if alert is not None:
        log_url = reverse("tenancy:delivery:log", args=[request.tenant.slug])
        if alert.cause == AlertCause.FAILURES:
            log_url += "?status=failed"
    return {
        "delivery_alert": alert,
        "can_view_log": membership is not None and membership.is_tenant_admin,
        "log_url": log_url,
    }
