"""The signed-in user's own account: password, email address, the tenants they are in."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods

from apps.accounts import services
from apps.accounts.email_change import email_change_for
from apps.accounts.forms import EmailChangeForm, PasswordChangeForm, ReauthForm, SetPasswordForm
from apps.accounts.reauth import reauth_stamp
from apps.accounts.selectors import user_tenant_roles
from apps.tenancy.portal import form_page


@login_required
@require_http_methods(["GET"])
def account(request):
    context = {"tenants": user_tenant_roles(user=request.user)}
    return render(request, "accounts/account.html", context)


class PasswordChangeView(auth_views.PasswordChangeView):
    """Django's view, through our service so the change is audited (never the password)."""

    form_class = PasswordChangeForm
    template_name = "accounts/password_change.html"
    success_url = reverse_lazy("account:overview")

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "request": self.request}

    def form_valid(self, form):
        services.user_password_change(
            user=form.user, password=form.cleaned_data["new_password1"], request=self.request
        )
        # Stay signed in here; other sessions of this account are signed out.
        update_session_auth_hash(self.request, form.user)
        reauth_stamp(self.request)  # the current password was just typed
        messages.success(self.request, "Your password was changed.")
        return HttpResponseRedirect(self.get_success_url())


@login_required
@require_http_methods(["GET", "POST"])
def email_change(request):
    form = EmailChangeForm(request.POST or None, user=request.user, request=request)

    def save(data):
        services.user_email_change_request(
            user=request.user, new_email=data["email"], request=request
        )
        return data["email"]

    return form_page(
        request,
        form,
        save=save,
        done=lambda new_email: (
            f"We sent a confirmation link to {new_email}. Your address changes when you "
            "open it; until then, sign in with your current address.",
            reverse("account:overview"),
        ),
        template="accounts/email_change.html",
    )


@login_required
@require_http_methods(["GET", "POST"])
def email_confirm(request, token: str):
    """GET asks to confirm (a link scanner opening it changes nothing); POST changes it."""
    error = ""
    try:
        change = email_change_for(user=request.user, token=token)
        if request.method == "POST":
            services.user_email_change_confirm(user=request.user, token=token, request=request)
            messages.success(request, f"Your email address is now {change.new}.")
            return redirect("account:overview")
    except ValidationError as exc:
        error = " ".join(exc.messages)
        change = None
    status = 400 if error else 200
    context = {"change": change, "error": error}
    return render(request, "accounts/email_confirm.html", context, status=status)


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    """Django's view; the new password is audited and lifts a sign-in lockout."""

    form_class = SetPasswordForm
    success_url = reverse_lazy("accounts:password_reset_complete")

    def form_valid(self, form):
        response = super().form_valid(form)
        services.user_password_reset(user=form.user, request=self.request)
        return response


def _safe_next(request, next_url: str | None) -> str:
    allowed = url_has_allowed_host_and_scheme(
        next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return next_url if next_url and allowed else reverse("account:overview")


def reauth_page(request, *, next_url: str, interrupted: bool = False, form=None):
    """The "Confirm your password" page.

    `interrupted`: a form was sent after the confirmation expired; it was not
    carried out (status 403), and the page says so.
    """
    context = {
        "form": form or ReauthForm(),
        "next": _safe_next(request, next_url),
        "interrupted": interrupted,
        "reauth_minutes": max(1, settings.REAUTH_WINDOW // 60),
    }
    return render(request, "accounts/reauth.html", context, status=403 if interrupted else 200)


@login_required
@require_http_methods(["GET", "POST"])
def reauth(request):
    """Type the password again before a sensitive page (see apps.accounts.reauth)."""
    next_url = request.POST.get("next") or request.GET.get("next")
    if request.method == "GET":
        return reauth_page(request, next_url=next_url)
    form = ReauthForm(request.POST)
    if form.is_valid():
        if services.user_reauthenticate(
            user=request.user, password=form.cleaned_data["password"], request=request
        ):
            return redirect(_safe_next(request, next_url))
        form.add_error(
            "password",
            "That is not your password. Type it again, or sign out and reset your password.",
        )
    return reauth_page(request, next_url=next_url, form=form)
