"""Maintenance mode: while it is on, only system administrators change anything.

Reading is never refused; an unsafe request (POST, PUT, PATCH, DELETE) from
anyone else gets a 503 page saying that nothing was changed. The flag is
read from the shared cache, and only for unsafe requests, so the common
case costs no query.
"""

from django.shortcuts import render
from django.utils.http import url_has_allowed_host_and_scheme

from apps.operations.selectors import maintenance_state

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})

EXEMPT_VIEWS = frozenset(
    {
        # Signing in or out changes nothing shared, and a system administrator must be
        # able to sign in to switch maintenance off.
        "accounts:login",
        "accounts:logout",
        "admin:login",
        "admin:logout",
        # One-click unsubscribe (RFC 8058): mail providers post it without a person to
        # try again later, and someone who asked to stop getting mail must be heard.
        "unsubscribe:link",
        # Email-service providers' delivery reports (bounces, complaints): machines that
        # are not changing settings; they keep the log and the suppression list true.
        "webhooks_receiver:tracking",
    }
)
# The pipelines' API: an event reported during maintenance is stored and its mail goes
# out when maintenance ends; CI systems seldom retry, so refusing it would lose it.
EXEMPT_NAMESPACES = frozenset({"api"})
# Seconds a refused client is told to wait: maintenance has no known end.
RETRY_AFTER = 300


def maintenance_exempt(view):
    """Let this view's POSTs through during maintenance (like machine-to-machine webhooks)."""
    view.maintenance_exempt = True
    return view


class MaintenanceModeMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        if request.method in SAFE_METHODS or _exempt(request, view_func):
            return None
        state = maintenance_state()
        if not state.is_on or getattr(request.user, "is_system_admin", False):
            return None
        context = {"maintenance": state, "back_url": _back_url(request)}
        response = render(request, "operations/maintenance_refused.html", context, status=503)
        response["Retry-After"] = str(RETRY_AFTER)
        return response


def _exempt(request, view_func) -> bool:
    if getattr(view_func, "maintenance_exempt", False):
        return True
    match = request.resolver_match
    return match is not None and (
        match.view_name in EXEMPT_VIEWS or not EXEMPT_NAMESPACES.isdisjoint(match.namespaces)
    )


def _back_url(request) -> str:
    referer = request.headers.get("referer", "")
    safe = url_has_allowed_host_and_scheme(
        referer, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return referer if safe else "/"
