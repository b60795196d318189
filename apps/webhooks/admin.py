"""The host's delivery webhooks, for mail sent through the host settings (system administrators).

Created on a page of their own (the password is shown once, like in the
tenant portal), listed read-only, revoked with an action; every change goes
through apps.webhooks.services, so it is audited.
"""

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.template.response import TemplateResponse
from django.urls import path

from apps.webhooks import services
from apps.webhooks.forms import WebhookEndpointForm
from apps.webhooks.models import Provider, WebhookEndpoint
from apps.webhooks.providers import PROVIDERS


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    list_display = ["provider", "username", "url", "created_at", "last_event_at", "revoked_at"]
    actions = ["revoke"]

    def get_queryset(self, request):
        return super().get_queryset(request).filter(tenant__isnull=True)

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # revoked instead, so the audit log's entries keep their target

    def get_urls(self):
        create = self.admin_site.admin_view(self.create_view)
        return [
            path("add/", create, name="webhooks_webhookendpoint_add"),
            *super().get_urls(),
        ]

    def create_view(self, request):
        form = WebhookEndpointForm(request.POST or None)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "form": form,
            "title": "New delivery webhook for the host settings",
            "providers": [(p.label, PROVIDERS[p].setup) for p in Provider],
        }
        if request.method == "POST" and form.is_valid():
            endpoint, password = services.webhook_endpoint_create(
                tenant=None, **form.cleaned_data, actor=request.user, request=request
            )
            context.update(
                new_endpoint=endpoint,
                new_url=endpoint.url_with_credentials(password),
                new_setup=PROVIDERS[endpoint.provider].setup,
            )
        return TemplateResponse(request, "admin/webhooks/webhookendpoint/create.html", context)

    @admin.action(description="Revoke the selected webhooks")
    def revoke(self, request, queryset):
        revoked = 0
        for endpoint in queryset:
            try:
                services.webhook_endpoint_revoke(
                    endpoint=endpoint, actor=request.user, request=request
                )
                revoked += 1
            except ValidationError:
                pass  # already revoked
        messages.success(request, f"{revoked} webhook(s) revoked: their URLs stop working at once.")
