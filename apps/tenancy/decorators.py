"""`tenant_view`: the one place a tenant page finds its tenant and checks who may see it."""

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import ImproperlyConfigured
from django.http import Http404
from django.shortcuts import render

from apps.tenancy.models import Role
from apps.tenancy.selectors import membership_for_request


def tenant_view(role: Role = Role.MEMBER):
    """Resolve `/t/<tenant_slug>/` and the signed-in user's membership, once per request.

    The view is called without `tenant_slug`, with `request.tenant` and
    `request.membership` (the user's highest role in it) set. Someone who is
    not a member, like an unknown slug, gets 404; a member of a disabled
    tenant gets a 404 page saying it is disabled; a member without `role`
    gets 403. System administrators are not members unless given a role:
    they manage tenants in the host administration.

    `role` is tenant-wide: Role.MEMBER (anyone in the tenant) or
    Role.TENANT_ADMIN.
    """
    if role not in (Role.MEMBER, Role.TENANT_ADMIN):
        raise ImproperlyConfigured("tenant_view(role=...) takes Role.MEMBER or Role.TENANT_ADMIN.")

    def decorator(view):
        @login_required
        @wraps(view)
        def wrapper(request, tenant_slug: str, **kwargs):
            membership = membership_for_request(user=request.user, tenant_slug=tenant_slug)
            if membership is None:
                raise Http404("No such tenant.")
            tenant = membership.tenant
            if not tenant.is_active:
                return render(
                    request, "tenancy/tenant_disabled.html", {"tenant": tenant}, status=404
                )
            request.tenant, request.membership = tenant, membership
            if role == Role.TENANT_ADMIN and not membership.is_tenant_admin:
                return render(request, "tenancy/forbidden.html", {"tenant": tenant}, status=403)
            return view(request, **kwargs)

        wrapper.tenant_role = role
        return wrapper

    return decorator
