"""Re-authentication ("sudo mode"): some pages need a password typed in the last few minutes.

Changing SMTP credentials or who administers the host must not be possible
from a browser someone left signed in. The pages are named in
settings.REAUTH_URL_NAMES (any request) and settings.REAUTH_POST_URL_NAMES
(only a POST: a list anyone may read whose actions change things). The
session remembers when the password was last typed: signing in counts, and
so does the "Confirm your password" page.
"""

import time

from django.conf import settings
from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver

SESSION_KEY = "accounts_password_confirmed_at"


def reauth_stamp(request) -> None:
    """The person just typed their password."""
    request.session[SESSION_KEY] = time.time()


def reauth_is_fresh(request) -> bool:
    confirmed = request.session.get(SESSION_KEY)
    return confirmed is not None and time.time() - confirmed < settings.REAUTH_WINDOW


def reauth_needed(request, view_name: str) -> bool:
    """Whether this request to `view_name` needs a recently typed password first."""
    user = request.user
    if not user.is_authenticated:
        return False  # the view sends them to sign in, which counts
    if view_name.startswith("admin:") and not user.is_system_admin:
        return False  # the admin turns them away anyway
    if view_name in settings.REAUTH_URL_NAMES:
        return not reauth_is_fresh(request)
    if view_name in settings.REAUTH_POST_URL_NAMES and request.method == "POST":
        return not reauth_is_fresh(request)
    return False


@receiver(user_logged_in)
def _signed_in(sender, request, user, **kwargs):
    # Any sign-in: the portal's and the admin's forms (and the tests' force_login).
    if request is not None and hasattr(request, "session"):
        reauth_stamp(request)
