"""OAuth2 sign-in pages: a tenant's own SMTP settings here, the host's in admin.py.

Both go through the same functions below with a `Place` saying whose SMTP
settings they are and where the pages are. "Connect with Google" saves the
form, keeps a random `state` and a PKCE verifier in the session and sends
the administrator to Google; `google_callback` (one redirect URI for every
tenant, so it is registered once per Google client) checks the state, checks
again that the user may change these settings, and trades the code for a
refresh token.
"""

import logging
from dataclasses import dataclass

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.crypto import constant_time_compare
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.connections.models import OAuthGrant, OAuthProvider, SmtpSettings
from apps.connections.oauth_forms import OAuthGrantForm
from apps.connections.oauth_tokens import OAuthError, google_authorization
from apps.connections.selectors import oauth_grant_for, tenant_smtp_settings
from apps.connections.services import (
    oauth_google_connect,
    oauth_grant_delete,
    oauth_grant_save,
    oauth_sign_in_test,
)
from apps.tenancy.decorators import tenant_view
from apps.tenancy.models import Role
from apps.tenancy.portal import actor
from apps.tenancy.selectors import membership_for_request

logger = logging.getLogger(__name__)

CONNECT_BUTTON = "_connect"
FLOW_SESSION_KEY = "oauth:google-flow"


@dataclass(frozen=True)
class Place:
    """Whose SMTP settings a page is about, and the URLs of its pages."""

    smtp_settings: SmtpSettings | None
    page_url: str
    test_url: str
    disconnect_url: str
    smtp_settings_url: str
    # Words for "the host's" or "your" SMTP settings.
    owner: str

    @property
    def grant(self) -> OAuthGrant | None:
        return oauth_grant_for(smtp_settings=self.smtp_settings)


def google_redirect_uri() -> str:
    """The one redirect URI to register with every Google OAuth client."""
    return settings.SITE_URL.rstrip("/") + reverse("oauth:google_callback")


def _context(place: Place, grant, form, **extra) -> dict:
    smtp = place.smtp_settings
    return {
        "place": place,
        "smtp": smtp,
        "grant": grant,
        "form": form,
        "providers": OAuthProvider,
        "connect_button": CONNECT_BUTTON,
        "redirect_uri": google_redirect_uri(),
        "needs_username": smtp is not None and not smtp.username,
        **extra,
    }


def setup_page(request, place: Place, template: str, **extra) -> object:
    """GET: status and form. POST: save; with CONNECT_BUTTON, then go to Google's consent page."""
    grant = place.grant
    if place.smtp_settings is None:
        return render(request, template, _context(place, None, None, **extra))
    initial = None if grant else {"provider": _likely_provider(place.smtp_settings)}
    form = OAuthGrantForm(request.POST or None, grant=grant, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            grant = oauth_grant_save(
                smtp_settings=place.smtp_settings,
                provider=data["provider"],
                client_id=data["client_id"],
                client_secret=data["client_secret"],
                directory_id=data["directory_id"],
                **actor(request),
            )
        except ValidationError as error:
            form.add_error(None, error)
        else:
            if CONNECT_BUTTON in request.POST and grant.is_google:
                return _start_google_flow(request, place, grant)
            messages.success(request, _saved_message(grant))
            return redirect(place.page_url)
    return render(request, template, _context(place, grant, form, **extra))


def _likely_provider(smtp_settings: SmtpSettings) -> str:
    """Preselect the provider the SMTP server belongs to: Gmail's host or preset means Google."""
    google = smtp_settings.preset == "gmail" or "gmail" in smtp_settings.host.lower()
    return OAuthProvider.GOOGLE if google else OAuthProvider.MICROSOFT


def _saved_message(grant: OAuthGrant) -> str:
    if grant.is_google and not grant.refresh_token:
        return (
            "The Google OAuth client was saved. Now click “Save and connect with Google” and "
            "allow Postmaster to send mail as the account."
        )
    return "The OAuth2 sign-in settings were saved. Click “Test sign-in” to check them."


def _start_google_flow(request, place: Place, grant: OAuthGrant):
    flow = google_authorization(
        grant,
        redirect_uri=google_redirect_uri(),
        login_hint=place.smtp_settings.username,
    )
    request.session[FLOW_SESSION_KEY] = {
        "state": flow["state"],
        "code_verifier": flow["code_verifier"],
        "grant_id": grant.pk,
        "client_id": grant.client_id,
        "return_url": place.page_url,
    }
    # A page that moves on by itself, not a redirect: the site's CSP
    # (form-action 'self') blocks a form submission redirected to Google.
    context = {"google_url": flow["url"], "account": place.smtp_settings.username}
    return render(request, "connections/oauth/google_continue.html", context)


def test_page(request, place: Place, template: str, **extra):
    """POST: get a new token now and show the result on the setup page."""
    grant = place.grant
    if grant is None:
        result = None
        messages.info(request, "Set up OAuth2 sign-in first, then test it.")
    else:
        result = oauth_sign_in_test(grant=grant)
    form = OAuthGrantForm(grant=grant) if place.smtp_settings is not None else None
    return render(request, template, _context(place, grant, form, test_result=result, **extra))


def disconnect_page(request, place: Place, template: str, **extra):
    """GET: confirm. POST: remove the grant with its secrets and tokens."""
    grant = place.grant
    if grant is None:
        messages.info(request, "OAuth2 sign-in is not set up for these SMTP settings.")
        return redirect(place.page_url)
    if request.method == "POST":
        oauth_grant_delete(grant=grant, **actor(request))
        messages.success(
            request,
            "OAuth2 sign-in was removed, with its secret and tokens. The SMTP settings sign "
            "in with their username and password again.",
        )
        return redirect(place.page_url)
    return render(request, template, {"place": place, "grant": grant, **extra})


# --- The tenant's pages ---------------------------------------------------------------------


def _tenant_place(request) -> Place:
    slug = request.tenant.slug
    return Place(
        smtp_settings=tenant_smtp_settings(request.tenant),
        page_url=reverse("mailsettings_oauth:setup", args=[slug]),
        test_url=reverse("mailsettings_oauth:test", args=[slug]),
        disconnect_url=reverse("mailsettings_oauth:disconnect", args=[slug]),
        smtp_settings_url=reverse("tenancy:mailsettings:edit", args=[slug]),
        owner="your own SMTP server",
    )


@tenant_view(role=Role.TENANT_ADMIN)
@require_http_methods(["GET", "POST"])
def tenant_setup(request):
    return setup_page(request, _tenant_place(request), "connections/oauth/tenant_setup.html")


@tenant_view(role=Role.TENANT_ADMIN)
@require_POST
def tenant_test(request):
    return test_page(request, _tenant_place(request), "connections/oauth/tenant_setup.html")


@tenant_view(role=Role.TENANT_ADMIN)
@require_http_methods(["GET", "POST"])
def tenant_disconnect(request):
    return disconnect_page(
        request, _tenant_place(request), "connections/oauth/tenant_disconnect.html"
    )


# --- Google's redirect back -----------------------------------------------------------------


def _may_change(user, grant: OAuthGrant) -> bool:
    """The same check the setup page made, made again: the flow may have started long ago."""
    if grant.tenant_id is None:
        return getattr(user, "is_system_admin", False)
    membership = membership_for_request(user=user, tenant_slug=grant.tenant.slug)
    return membership is not None and membership.tenant.is_active and membership.is_tenant_admin


@login_required
@require_GET
def google_callback(request):
    flow = request.session.pop(FLOW_SESSION_KEY, None)
    state = request.GET.get("state", "")
    if not flow or not state or not constant_time_compare(state, flow["state"]):
        logger.warning("Google OAuth2 callback refused: no flow or wrong state")
        return render(request, "connections/oauth/callback_invalid.html", status=400)
    grant = (
        OAuthGrant.objects.select_related("tenant", "smtp_settings")
        .filter(pk=flow["grant_id"], client_id=flow["client_id"])
        .first()
    )
    if grant is None or not _may_change(request.user, grant):
        return render(request, "connections/oauth/callback_invalid.html", status=400)
    return_url = flow["return_url"]
    if request.GET.get("error"):
        error = request.GET["error"]
        if error == "access_denied":
            messages.error(
                request,
                "Gmail was not connected: access was not allowed on Google's page. Click "
                "“Save and connect with Google” to try again, and choose Allow.",
            )
        else:
            messages.error(request, f"Google did not connect Gmail ({error}). Try again.")
        return redirect(return_url)
    if not request.GET.get("code"):
        messages.error(
            request, "Google sent no sign-in code back. Click “Save and connect with Google” again."
        )
        return redirect(return_url)
    try:
        oauth_google_connect(
            grant=grant,
            code=request.GET.get("code", ""),
            code_verifier=flow["code_verifier"],
            redirect_uri=google_redirect_uri(),
            **actor(request),
        )
    except OAuthError as error:
        messages.error(request, f"{error.message} {error.hint}")
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(
            request,
            "Gmail is connected: Postmaster now signs in to "
            f"{grant.smtp_settings.host} with OAuth2 as "
            f"{grant.smtp_settings.login_username or 'the SMTP username'}.",
        )
    return redirect(return_url)
