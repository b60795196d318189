from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode

from apps.accounts.reauth import reauth_needed
from apps.accounts.views import reauth_page


def _back_to(request) -> str:
    """Where to go once confirmed after a refused POST: the page the form was on.

    That is the Referer when it is this site's (a form posted from a list,
    like "New API token", has no page of its own to GET); else this path.
    """
    referer = request.headers.get("Referer")
    if referer and url_has_allowed_host_and_scheme(
        referer, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return referer
    return request.get_full_path()


class ReauthMiddleware:
    """Ask for the password again before the actions in apps.accounts.reauth.SENSITIVE_ACTIONS.

    A GET is sent to "Confirm your password" and back, so the form is shown
    only once the password is fresh. A POST that comes after the window
    (the form stayed open too long) is not carried out: it gets the confirm
    page, which says the changes were not saved. What was typed is never
    copied into that page, so no secret is echoed.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        match = request.resolver_match
        if match is None or not reauth_needed(request, match.view_name, view_func, view_kwargs):
            return None
        if request.method in ("GET", "HEAD"):
            query = urlencode({"next": request.get_full_path()})
            return redirect(f"{reverse('account:reauth')}?{query}")
        return reauth_page(request, next_url=_back_to(request), interrupted=True)
