"""The page behind a notification's unsubscribe link: no sign-in, the signed token is the key.

GET only says what will happen and asks to confirm, so the link scanners of
mail filters, which open every link, unsubscribe nobody. POST unsubscribes:
the Confirm button, or a mail program's one-click (RFC 8058) sending
`List-Unsubscribe=One-Click` without any cookie or CSRF token.
"""

from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from apps.preferences.unsubscribe import LinkInvalidError, unsubscribe_apply, unsubscribe_link_read


@csrf_exempt  # Authenticated by the signed token; mail programs post without a CSRF token.
@never_cache
@require_http_methods(["GET", "POST"])
def unsubscribe_link(request, token: str):
    try:
        link = unsubscribe_link_read(token)
    except LinkInvalidError as invalid:
        status = 410 if invalid.gone else 400
        return render(request, "preferences/unsubscribe_invalid.html", status=status)
    if request.method == "POST":
        result = unsubscribe_apply(link=link, request=request)
        return render(request, "preferences/unsubscribe_done.html", {"result": result})
    return render(request, "preferences/unsubscribe_confirm.html", {"link": link})
