import re
from functools import wraps

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils.csp import CSP
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.csp import csp_override
from django.views.decorators.http import require_GET, require_POST

from apps.core.keyset import keyset_page
from apps.mailcatcher.parsing import message_parse
from apps.mailcatcher.selectors import caught_message_get, caught_message_list
from apps.mailcatcher.services import caught_messages_delete_all

PAGE_SIZE = 50
COUNT_CAP = 1000


def catcher_admin_required(view):
    """System administrators only, and only while the catcher is enabled."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not settings.MAILCATCHER_ENABLED:
            raise Http404("The mail catcher is turned off (MAILCATCHER_ENABLED).")
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not request.user.is_system_admin:
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return wrapper


@catcher_admin_required
def message_list(request):
    # By cursor, newest first; the count stops at COUNT_CAP ("more than …").
    page = keyset_page(
        request,
        caught_message_list(),
        ordering=("-received_at", "-id"),
        per_page=PAGE_SIZE,
        count_cap=COUNT_CAP,
    )
    return render(
        request,
        "mailcatcher/message_list.html",
        {
            "page": page,
            "catcher_address": f"{settings.MAILCATCHER_HOST}:{settings.MAILCATCHER_PORT}",
        },
    )


@catcher_admin_required
def message_detail(request, pk):
    message = caught_message_get(pk=pk)
    raw = bytes(message.raw)
    return render(
        request,
        "mailcatcher/message_detail.html",
        {
            "message": message,
            "parsed": message_parse(raw),
            "source": raw.decode("utf-8", errors="replace"),
        },
    )


# A caught email's HTML as its sender wrote it (inline styles, data: images),
# shown in a sandboxed frame of the detail page: nothing in it can run a
# script, load anything from the network, submit a form or reach the portal.
# Its links open in a new tab (<base target="_blank">), outside the sandbox,
# rather than inside the frame, where the page they lead to cannot work.
HTML_SANDBOX = ["allow-popups", "allow-popups-to-escape-sandbox"]
HTML_PART_CSP = {
    "default-src": [CSP.NONE],
    "style-src": [CSP.UNSAFE_INLINE],
    "img-src": ["data:"],
    "frame-ancestors": [CSP.SELF],
    "sandbox": HTML_SANDBOX,
}
LINKS_IN_NEW_TAB = '<base target="_blank">'
_HEAD = re.compile(r"<head\b[^>]*>", re.IGNORECASE)
_DOCTYPE = re.compile(r"\s*<!doctype[^>]*>", re.IGNORECASE)


def _links_in_new_tab(html: str) -> str:
    """`html` with its links opening in a new tab: a <base> first in its head.

    After the doctype, if any, so the document keeps its rendering mode.
    """
    found = _HEAD.search(html) or _DOCTYPE.match(html)
    at = found.end() if found else 0
    return html[:at] + LINKS_IN_NEW_TAB + html[at:]


@require_GET
@catcher_admin_required
@xframe_options_sameorigin
@csp_override(HTML_PART_CSP)
def message_html(request, pk):
    html = message_parse(bytes(caught_message_get(pk=pk).raw)).html
    if html is None:
        raise Http404("This message has no HTML part.")
    response = HttpResponse(_links_in_new_tab(html), content_type="text/html; charset=utf-8")
    response["Referrer-Policy"] = "no-referrer"
    return response


@require_POST
@catcher_admin_required
def message_delete_all(request):
    deleted = caught_messages_delete_all(actor=request.user, request=request)
    messages.success(request, f"Deleted {deleted} caught message{'' if deleted == 1 else 's'}.")
    return redirect("mailcatcher:list")
