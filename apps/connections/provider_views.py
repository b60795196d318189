"""The Provider pages: a tenant's here, the host's in admin.py, through the same functions.

A `Place` says whose connection a page is about (tenant or host, primary or
secondary) and where its pages are. Saving a primary connection makes the
provider carry the mail instead of SMTP; removing it ("Switch back to SMTP")
deletes the row with its secret. A secondary connection is for failover:
an email-service provider (`provider_page`) or an SMTP server
(`smtp_secondary_page`, the SMTP settings form reused), one at a time.
"""

import copy
from dataclasses import dataclass

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from apps.connections.catalog import PROVIDERS
from apps.connections.forms import TEST_BUTTON as SMTP_TEST_BUTTON
from apps.connections.forms import UNENCRYPTED_WARNING, SmtpSettingsForm
from apps.connections.models import ConnectionRole, ProviderSettings, SmtpSettings
from apps.connections.presets import presets_data
from apps.connections.provider_forms import TEST_BUTTON, ProviderSettingsForm
from apps.connections.selectors import (
    effective_smtp_settings,
    host_smtp_settings,
    provider_connections_for,
    smtp_settings_for,
)
from apps.connections.services import (
    TestEmailLimitError,
    provider_settings_delete,
    provider_settings_update,
    provider_test_email_send,
    smtp_settings_delete,
    smtp_settings_update,
    smtp_test_email_send,
)
from apps.tenancy.decorators import tenant_view
from apps.tenancy.models import Role
from apps.tenancy.portal import actor


@dataclass(frozen=True)
class Place:
    tenant: object  # a Tenant, or None for the host
    role: str
    page_url: str
    remove_url: str
    primary_url: str
    secondary_url: str
    smtp_url: str
    smtp_secondary_url: str = ""
    smtp_secondary_remove_url: str = ""

    @property
    def is_primary(self) -> bool:
        return self.role == ConnectionRole.PRIMARY


def _smtp_words(tenant) -> str:
    """Which SMTP settings carry the mail when no provider does."""
    if tenant is None:
        return "SMTP: the host's SMTP settings" if host_smtp_settings() else "SMTP (not set up)"
    _, source = effective_smtp_settings(tenant)
    return f"SMTP: {source.label.lower()}"


def _context(place: Place, form, rows: dict, **extra) -> dict:
    primary, secondary = rows.get(ConnectionRole.PRIMARY), rows.get(ConnectionRole.SECONDARY)
    return {
        "place": place,
        "form": form,
        "row": rows.get(place.role),
        "primary": primary,
        "secondary": secondary,
        "smtp_secondary": smtp_settings_for(place.tenant, role=ConnectionRole.SECONDARY),
        "smtp_words": _smtp_words(place.tenant),
        "test_button": TEST_BUTTON,
        "providers": PROVIDERS,
        **extra,
    }


def provider_page(request, place: Place, template: str, **extra):
    """GET: what is in use and the form. POST: save, or send a test email (saving nothing)."""
    tenant_id = place.tenant.pk if place.tenant else None
    rows = provider_connections_for(tenant_id=tenant_id)
    stored = rows.get(place.role)
    # The form writes the typed values onto its instance while validating; a
    # copy keeps the "in use now" summary showing what is saved.
    instance = (
        copy.copy(stored) if stored else ProviderSettings(tenant=place.tenant, role=place.role)
    )
    form = ProviderSettingsForm(request.POST or None, instance=instance)
    test_result = None
    if request.method == "POST":
        if form.testing:
            if form.is_valid():
                try:
                    test_result = provider_test_email_send(form=form, **actor(request))
                except TestEmailLimitError as error:
                    form.add_error(None, error)
        elif form.is_valid():
            try:
                saved = provider_settings_update(provider_settings=form.instance, **actor(request))
            except ValidationError as error:
                form.add_service_error(error)
            else:
                messages.success(request, _saved_message(place, saved, created=stored is None))
                return redirect(place.page_url)
    return render(request, template, _context(place, form, rows, test_result=test_result, **extra))


def _saved_message(place: Place, row: ProviderSettings, *, created: bool) -> str:
    label = row.get_provider_display()
    if not created:
        return f"The {label} settings were saved."
    if place.is_primary:
        return f"Mail now goes through {label}. Send a test email to check it."
    return f"{label} is set up as the secondary (failover) connection."


def remove_page(request, place: Place, template: str, **extra):
    """GET: confirm. POST: delete the connection with its secret (primary: back to SMTP)."""
    tenant_id = place.tenant.pk if place.tenant else None
    row = provider_connections_for(tenant_id=tenant_id).get(place.role)
    if row is None:
        messages.info(request, "There is no provider connection to remove.")
        return redirect(place.page_url)
    if request.method == "POST":
        provider_settings_delete(provider_settings=row, **actor(request))
        if place.is_primary:
            label = row.get_provider_display()
            text = (
                f"Mail goes through {_smtp_words(place.tenant)} again. The {label} settings and "
                "their key were removed."
            )
        else:
            text = f"The secondary connection through {row.get_provider_display()} was removed."
        messages.success(request, text)
        return redirect(place.page_url)
    context = {"place": place, "row": row, "smtp_words": _smtp_words(place.tenant), **extra}
    return render(request, template, context)


def smtp_secondary_page(request, place: Place, template: str, **extra):
    """The failover connection as an SMTP server: the SMTP settings form for a secondary row.

    GET: the form (password write-only). POST: save, or send a test email
    (saving nothing, within the test email limits).
    """
    stored = smtp_settings_for(place.tenant, role=ConnectionRole.SECONDARY)
    # A copy: validating writes the typed values onto the instance.
    instance = (
        copy.copy(stored)
        if stored
        else SmtpSettings(tenant=place.tenant, role=ConnectionRole.SECONDARY)
    )
    form = SmtpSettingsForm(request.POST or None, instance=instance)
    test_result = None
    if request.method == "POST":
        if form.testing:
            if form.is_valid():
                try:
                    test_result = smtp_test_email_send(form=form, **actor(request))
                except TestEmailLimitError as error:
                    form.add_error(None, error)
        elif form.is_valid():
            try:
                saved = smtp_settings_update(smtp_settings=form.instance, **actor(request))
            except ValidationError as error:
                form.add_error(None, error)
            else:
                _show_warnings(request, form)
                messages.success(
                    request,
                    "The failover SMTP settings were saved."
                    if stored
                    else f"The SMTP server {saved.host} is set up as the secondary (failover) "
                    "connection.",
                )
                return redirect(place.smtp_secondary_url)
        _show_warnings(request, form)
    tenant_id = place.tenant.pk if place.tenant else None
    context = _context(place, form, provider_connections_for(tenant_id=tenant_id), **extra)
    context.update(
        row=stored,
        test_result=test_result,
        test_button=SMTP_TEST_BUTTON,
        presets=presets_data(),
        unencrypted_warning=UNENCRYPTED_WARNING,
    )
    return render(request, template, context)


def smtp_secondary_remove_page(request, place: Place, template: str, **extra):
    """GET: confirm. POST: delete the failover SMTP settings, password included."""
    row = smtp_settings_for(place.tenant, role=ConnectionRole.SECONDARY)
    if row is None:
        messages.info(request, "There is no failover SMTP server to remove.")
        return redirect(place.smtp_secondary_url)
    if request.method == "POST":
        smtp_settings_delete(smtp_settings=row, **actor(request))
        messages.success(
            request,
            f"The secondary connection through the SMTP server {row.host} was removed, "
            "with its password.",
        )
        return redirect(place.smtp_secondary_url)
    context = {"place": place, "row": row, **extra}
    return render(request, template, context)


def _show_warnings(request, form) -> None:
    for warning in form.warnings:
        messages.warning(request, warning)


# --- The tenant's pages ---------------------------------------------------------------------


def _tenant_place(request, role: str) -> Place:
    slug = request.tenant.slug
    primary = role == ConnectionRole.PRIMARY
    return Place(
        tenant=request.tenant,
        role=role,
        page_url=reverse(
            "mailsettings_providers:edit" if primary else "mailsettings_providers:secondary",
            args=[slug],
        ),
        remove_url=reverse(
            "mailsettings_providers:remove"
            if primary
            else "mailsettings_providers:secondary_remove",
            args=[slug],
        ),
        primary_url=reverse("mailsettings_providers:edit", args=[slug]),
        secondary_url=reverse("mailsettings_providers:secondary", args=[slug]),
        smtp_url=reverse("tenancy:mailsettings:edit", args=[slug]),
        smtp_secondary_url=reverse("mailsettings_providers:secondary_smtp", args=[slug]),
        smtp_secondary_remove_url=reverse(
            "mailsettings_providers:secondary_smtp_remove", args=[slug]
        ),
    )


@tenant_view(role=Role.TENANT_ADMIN)
@require_http_methods(["GET", "POST"])
def tenant_provider(request):
    return provider_page(
        request,
        _tenant_place(request, ConnectionRole.PRIMARY),
        "connections/providers/tenant_page.html",
    )


@tenant_view(role=Role.TENANT_ADMIN)
@require_http_methods(["GET", "POST"])
def tenant_secondary(request):
    return provider_page(
        request,
        _tenant_place(request, ConnectionRole.SECONDARY),
        "connections/providers/tenant_page.html",
    )


@tenant_view(role=Role.TENANT_ADMIN)
@require_http_methods(["GET", "POST"])
def tenant_remove(request):
    return remove_page(
        request,
        _tenant_place(request, ConnectionRole.PRIMARY),
        "connections/providers/tenant_remove.html",
    )


@tenant_view(role=Role.TENANT_ADMIN)
@require_http_methods(["GET", "POST"])
def tenant_secondary_remove(request):
    return remove_page(
        request,
        _tenant_place(request, ConnectionRole.SECONDARY),
        "connections/providers/tenant_remove.html",
    )


@tenant_view(role=Role.TENANT_ADMIN)
@require_http_methods(["GET", "POST"])
def tenant_secondary_smtp(request):
    return smtp_secondary_page(
        request,
        _tenant_place(request, ConnectionRole.SECONDARY),
        "connections/providers/tenant_secondary_smtp.html",
    )


@tenant_view(role=Role.TENANT_ADMIN)
@require_http_methods(["GET", "POST"])
def tenant_secondary_smtp_remove(request):
    return smtp_secondary_remove_page(
        request,
        _tenant_place(request, ConnectionRole.SECONDARY),
        "connections/providers/tenant_secondary_smtp_remove.html",
    )
