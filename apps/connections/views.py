"""The tenant portal's Email settings page: the host's SMTP form, presets and test email, reused.

A tenant uses the host's settings (no row of its own: inherit) or its own
SMTP server (one row). Going back to the host's deletes the tenant's row,
so no unused credential is kept. The host's settings are never shown here,
only the fact that they are used.
"""

import copy

from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from apps.connections.forms import TEST_BUTTON, UNENCRYPTED_WARNING, SmtpSettingsForm
from apps.connections.models import SmtpSettings
from apps.connections.presets import presets_data
from apps.connections.selectors import (
    SmtpSource,
    effective_smtp_settings,
    provider_settings_for,
    smtp_settings_for,
)
from apps.connections.services import (
    TestEmailLimitError,
    smtp_settings_delete,
    smtp_settings_update,
    smtp_test_email_send,
)
from apps.connections.signin import connection_words, password_sign_in_notice
from apps.tenancy.decorators import tenant_view
from apps.tenancy.models import Role
from apps.tenancy.portal import actor, form_submit


def _page_url(request) -> str:
    return reverse("tenancy:mailsettings:edit", args=[request.tenant.slug])


@tenant_view(role=Role.TENANT_ADMIN)
@require_http_methods(["GET", "POST"])
def tenant_settings(request):
    """Show the effective settings; set up, change or test the tenant's own server."""
    tenant = request.tenant
    effective, source = effective_smtp_settings(tenant)
    uses_own = source == SmtpSource.OWN
    # The form writes the typed values onto its instance while validating;
    # a copy keeps the "in use now" summary showing what is saved.
    instance = copy.copy(effective) if uses_own else SmtpSettings(tenant=tenant)
    form = SmtpSettingsForm(request.POST or None, instance=instance)
    test_result = None
    if request.method == "POST":
        if form.testing:
            test_result = _send_test(request, form)
        elif form_submit(
            form, lambda _: smtp_settings_update(smtp_settings=form.instance, **actor(request))
        ):
            _show_warnings(request, form)
            messages.success(
                request,
                "Your SMTP settings were saved."
                if uses_own
                else f"Mail for {tenant.name} now goes through your own SMTP server.",
            )
            return redirect(_page_url(request))
        _show_warnings(request, form)
    # OAuth2 sign-in belongs to the tenant's own saved settings; a primary
    # provider connection carries the mail instead of any SMTP settings.
    grant = form.grant if uses_own else None
    provider = provider_settings_for(tenant_id=tenant.pk)
    own = effective if uses_own else None
    context = {
        "form": form,
        "grant": grant,
        "provider": provider,
        "connection_words": connection_words(own, grant, provider)
        if uses_own or provider
        else "The host's connection (run by the operators of Postmaster)",
        "sign_in_notice": None if provider else password_sign_in_notice(own, grant),
        "source": source,
        "uses_own": uses_own,
        # Whether the host has settings at all, never what they are.
        "host_configured": uses_own or effective is not None,
        "own": own,
        "presets": presets_data(),
        "test_button": TEST_BUTTON,
        "test_result": test_result,
        "unencrypted_warning": UNENCRYPTED_WARNING,
    }
    return render(request, "connections/smtp/tenant_settings.html", context)


@tenant_view(role=Role.TENANT_ADMIN)
@require_http_methods(["GET", "POST"])
def tenant_use_host_settings(request):
    """Confirm, then delete the tenant's own settings: its mail goes through the host's again."""
    tenant = request.tenant
    own = smtp_settings_for(tenant)
    if own is None:
        messages.info(request, f"{tenant.name} already uses the host settings.")
        return redirect(_page_url(request))
    if request.method == "POST":
        smtp_settings_delete(smtp_settings=own, **actor(request))
        messages.success(
            request,
            f"Mail for {tenant.name} now goes through the host settings. "
            "Your SMTP server settings and password were removed.",
        )
        return redirect(_page_url(request))
    context = {"own": own, "cancel_url": _page_url(request)}
    return render(request, "connections/smtp/tenant_use_host.html", context)


def _send_test(request, form):
    """The test email's result, or None (the form or the limit says why)."""
    if not form.is_valid():
        return None
    try:
        return smtp_test_email_send(form=form, **actor(request))
    except TestEmailLimitError as error:
        form.add_error(None, error)
        return None


def _show_warnings(request, form) -> None:
    for warning in form.warnings:
        messages.warning(request, warning)
