"""The host portal's tenancy pages: tenants and system administrators.

Every change goes through the services, so it is checked and audited like
any other; the admin only parses and shows.
"""

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from apps.accounts.models import User
from apps.connections.services import NETWORK_FIELDS, tenant_smtp_network_update
from apps.tenancy import services
from apps.tenancy.models import Membership, Role, SystemAdministrator, Tenant


def _errors(request, exc: ValidationError) -> None:
    messages.error(request, " ".join(exc.messages))


class InviteForm(forms.Form):
    email = forms.EmailField(
        label="Email address",
        help_text="They get an email with a link to choose a password; it expires.",
    )


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "is_active", "member_count", "created_at"]
    list_filter = ["is_active"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    actions = ["disable_tenants", "enable_tenants"]
    change_form_template = "admin/tenancy/tenant/change_form.html"

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(member_count=Count("memberships__user", distinct=True))
        )

    @admin.display(description="Members", ordering="member_count")
    def member_count(self, tenant):
        return tenant.member_count

    def get_form(self, request, obj=None, **kwargs):
        kwargs["help_texts"] = {
            "slug": "Used in the tenant's links (/t/<short name>/); it cannot change later.",
            "is_active": "A disabled tenant's people cannot open it; its data is kept.",
        }
        return super().get_form(request, obj, **kwargs)

    def get_fieldsets(self, request, obj=None):
        # A new tenant starts enabled; the short name is in every link, so it stays.
        if obj is None:
            return [(None, {"fields": ["name", "slug"]})]
        return [
            (None, {"fields": ["name", "slug", "is_active"]}),
            (
                "Mail network",
                {
                    "description": "Where this tenant's own SMTP settings may connect. "
                    "By default only public internet addresses and ports 25, 465, 587 "
                    "and 2525, so nobody can reach the host's internal network through "
                    "Postmaster.",
                    "fields": list(NETWORK_FIELDS),
                },
            ),
            (
                "Data retention",
                {
                    "description": "How long this tenant's delivery records are kept. "
                    f"The host's default is {settings.DELIVERY_RETENTION_DAYS} days.",
                    "fields": ["delivery_retention_days"],
                },
            ),
        ]

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else ["slug"]

    def get_prepopulated_fields(self, request, obj=None):
        return self.prepopulated_fields if obj is None else {}

    def save_model(self, request, obj, form, change):
        by = {"actor": request.user, "request": request}
        if not change:
            created = services.tenant_create(name=obj.name, slug=obj.slug, **by)
            obj.pk = created.pk
            obj.refresh_from_db()
            return
        stored = Tenant.objects.get(pk=obj.pk)
        if "name" in form.changed_data:
            stored = services.tenant_update(tenant=stored, name=obj.name, **by)
        if "is_active" in form.changed_data:
            toggle = services.tenant_enable if obj.is_active else services.tenant_disable
            toggle(tenant=stored, **by)
        if any(name in form.changed_data for name in NETWORK_FIELDS):
            tenant_smtp_network_update(
                tenant=stored,
                private_allowed=obj.smtp_private_network_allowed,
                extra_ports=obj.smtp_extra_ports,
                **by,
            )

        if "delivery_retention_days" in form.changed_data:
            services.tenant_retention_update(tenant=stored, days=obj.delivery_retention_days, **by)

    def delete_model(self, request, obj):
        services.tenant_delete(tenant=obj, actor=request.user, request=request)

    def delete_queryset(self, request, queryset):
        for tenant in queryset:
            self.delete_model(request, tenant)

    @admin.action(description="Disable selected tenants (their people cannot open them)")
    def disable_tenants(self, request, queryset):
        for tenant in queryset:
            services.tenant_disable(tenant=tenant, actor=request.user, request=request)
        self.message_user(request, f"{len(queryset)} tenant(s) disabled.", messages.SUCCESS)

    @admin.action(description="Enable selected tenants")
    def enable_tenants(self, request, queryset):
        for tenant in queryset:
            services.tenant_enable(tenant=tenant, actor=request.user, request=request)
        self.message_user(request, f"{len(queryset)} tenant(s) enabled.", messages.SUCCESS)

    def get_urls(self):
        invite = self.admin_site.admin_view(self.invite_view)
        return [
            path("<int:pk>/invite/", invite, name="tenancy_tenant_invite"),
            *super().get_urls(),
        ]

    def invite_view(self, request, pk: int):
        """Invite a tenant admin (typically the first) by email."""
        if not self.has_change_permission(request):
            raise PermissionDenied
        tenant = get_object_or_404(Tenant, pk=pk)
        form = InviteForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            email = form.cleaned_data["email"]
            pending = (
                Membership.objects.for_tenant(tenant)
                .filter(user__email__iexact=email.strip(), role=Role.TENANT_ADMIN)
                .select_related("user")
                .first()
            )
            try:
                if pending is not None and pending.is_pending:
                    # Invited before and not accepted (perhaps never emailed): send it again.
                    membership = pending
                    membership.invitation_mail = services.membership_invitation_resend(
                        membership=pending, actor=request.user, request=request
                    )
                else:
                    membership = services.membership_invite(
                        tenant=tenant,
                        email=email,
                        role=Role.TENANT_ADMIN,
                        actor=request.user,
                        request=request,
                    )
            except ValidationError as exc:
                _errors(request, exc)
            else:
                if membership.invitation_mail.failed:
                    self.message_user(
                        request,
                        f"{membership.user.email} is now a tenant admin of {tenant}, but the "
                        f"invitation email could not be sent: {membership.invitation_mail.error}. "
                        "Check Host administration → Email settings, then invite the same "
                        "address again here to resend it.",
                        messages.WARNING,
                    )
                else:
                    self.message_user(
                        request,
                        f"{membership.user.email} is now a tenant admin of {tenant} "
                        "and has been emailed.",
                        messages.SUCCESS,
                    )
                return redirect(reverse("admin:tenancy_tenant_change", args=[tenant.pk]))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": tenant,
            "form": form,
            "title": f"Invite a tenant admin to {tenant}",
        }
        return TemplateResponse(request, "admin/tenancy/tenant/invite.html", context)


class GrantForm(forms.Form):
    email = forms.EmailField(
        label="Email address", help_text="Of an existing, active user account."
    )

    def clean_email(self):
        user = User.objects.filter(email__iexact=self.cleaned_data["email"]).first()
        if user is None:
            raise ValidationError("No account has this address. Create the user first, then grant.")
        return user


@admin.register(SystemAdministrator)
class SystemAdministratorAdmin(admin.ModelAdmin):
    """Who administers the host. Granted and revoked here, never by deleting the user."""

    list_display = ["email", "full_name", "last_login"]
    search_fields = ["email", "full_name"]
    fields = ["email", "full_name", "last_login", "date_joined"]
    readonly_fields = fields
    actions = ["revoke"]
    change_list_template = "admin/tenancy/systemadministrator/change_list.html"

    def get_queryset(self, request):
        return (
            super().get_queryset(request).filter(is_active=True, is_staff=True, is_superuser=True)
        )

    def has_add_permission(self, request):
        return False  # granted through grant_view: the person already has an account

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Revoke system administrator rights")
    def revoke(self, request, queryset):
        for user in queryset:
            try:
                services.system_admin_revoke(user=user, actor=request.user, request=request)
            except ValidationError as exc:
                _errors(request, exc)
            else:
                self.message_user(
                    request, f"{user.email} is no longer a system administrator.", messages.SUCCESS
                )

    def get_urls(self):
        grant = self.admin_site.admin_view(self.grant_view)
        return [
            path("grant/", grant, name="tenancy_systemadministrator_grant"),
            *super().get_urls(),
        ]

    def grant_view(self, request):
        form = GrantForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            user = form.cleaned_data["email"]
            try:
                services.system_admin_grant(user=user, actor=request.user, request=request)
            except ValidationError as exc:
                form.add_error("email", exc)
            else:
                self.message_user(
                    request, f"{user.email} is now a system administrator.", messages.SUCCESS
                )
                return redirect(reverse("admin:tenancy_systemadministrator_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "form": form,
            "title": "Grant system administrator rights",
        }
        return TemplateResponse(request, "admin/tenancy/systemadministrator/grant.html", context)
