from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import urlencode

from apps.accounts.reauth import reauth_needed
from apps.accounts.views import reauth_page


class ReauthMiddleware:
    """Ask for the password again before the pages named in REAUTH_URL_NAMES.

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
        if match is None or not reauth_needed(request, match.view_name):
            return None
        if request.method in ("GET", "HEAD"):
            query = urlencode({"next": request.get_full_path()})
            return redirect(f"{reverse('account:reauth')}?{query}")
        return reauth_page(request, next_url=request.get_full_path(), interrupted=True)
