"""The signed-in user's own account: password, email address, the tenants they are in."""

from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.views.decorators.http import require_http_methods

from apps.accounts import services
from apps.accounts.email_change import email_change_for
from apps.accounts.forms import EmailChangeForm, PasswordChangeForm
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

    def form_valid(self, form):
        services.user_password_change(
            user=form.user, password=form.cleaned_data["new_password1"], request=self.request
        )
        # Stay signed in here; other sessions of this account are signed out.
        update_session_auth_hash(self.request, form.user)
        messages.success(self.request, "Your password was changed.")
        return HttpResponseRedirect(self.get_success_url())


@login_required
@require_http_methods(["GET", "POST"])
def email_change(request):
    form = EmailChangeForm(request.POST or None, user=request.user)

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
