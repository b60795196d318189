"""User groups in the tenant portal: everyone in the tenant sees them, tenant admins change them."""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.groups import services
from apps.groups.forms import MemberAddForm, UserGroupForm
from apps.groups.selectors import user_group_get, user_group_list, user_group_members
from apps.tenancy.decorators import tenant_view
from apps.tenancy.models import Role
from apps.tenancy.portal import actor, delete_page, form_page, paginate


def _url(request, name: str, *args) -> str:
    return reverse(f"tenancy:groups:{name}", args=[request.tenant.slug, *args])


@tenant_view()
@require_GET
def group_list(request):
    page = paginate(request, user_group_list(tenant=request.tenant))
    return render(request, "groups/group_list.html", {"page": page})


@tenant_view()
@require_GET
def group_detail(request, pk: int):
    group = user_group_get(tenant=request.tenant, pk=pk)
    context = {
        "group": group,
        "page": paginate(request, user_group_members(group=group).order_by("email")),
        "add_form": MemberAddForm(tenant=request.tenant, group=group)
        if request.membership.is_tenant_admin
        else None,
    }
    return render(request, "groups/group_detail.html", context)


@tenant_view(role=Role.TENANT_ADMIN)
@require_http_methods(["GET", "POST"])
def group_create(request):
    return form_page(
        request,
        UserGroupForm(request.POST or None, tenant=request.tenant),
        save=lambda data: services.user_group_create(
            tenant=request.tenant, **data, **actor(request)
        ),
        done=lambda group: (f"The group “{group}” was created.", _url(request, "detail", group.pk)),
        template="groups/group_form.html",
        title="New user group",
        cancel_url=_url(request, "list"),
    )


@tenant_view(role=Role.TENANT_ADMIN)
@require_http_methods(["GET", "POST"])
def group_update(request, pk: int):
    group = user_group_get(tenant=request.tenant, pk=pk)
    return form_page(
        request,
        UserGroupForm(request.POST or None, tenant=request.tenant, group=group),
        save=lambda data: services.user_group_update(group=group, **data, **actor(request)),
        done=lambda updated: (f"The group “{updated}” was saved.", _url(request, "detail", pk)),
        template="groups/group_form.html",
        group=group,
        title=f"Edit group {group}",
        cancel_url=_url(request, "detail", pk),
    )


@tenant_view(role=Role.TENANT_ADMIN)
@require_http_methods(["GET", "POST"])
def group_delete(request, pk: int):
    group = user_group_get(tenant=request.tenant, pk=pk)
    return delete_page(
        request,
        obj=group,
        kind="group",
        goes_with_it={"memberships in this group": group.member_count},
        delete=lambda: services.user_group_delete(group=group, **actor(request)),
        cancel_url=_url(request, "detail", group.pk),
        success_url=_url(request, "list"),
    )


@tenant_view(role=Role.TENANT_ADMIN)
@require_POST
def group_member_add(request, pk: int):
    group = user_group_get(tenant=request.tenant, pk=pk)
    form = MemberAddForm(request.POST, tenant=request.tenant, group=group)
    if form.is_valid():
        user = form.cleaned_data["user"]
        services.user_group_member_add(group=group, user=user, **actor(request))
        messages.success(request, f"{user.email} was added to “{group}”.")
    else:
        messages.error(request, "Choose someone from the list to add to the group.")
    return redirect(_url(request, "detail", group.pk))


@tenant_view(role=Role.TENANT_ADMIN)
@require_POST
def group_member_remove(request, pk: int, user_pk: int):
    group = user_group_get(tenant=request.tenant, pk=pk)
    user = get_object_or_404(user_group_members(group=group), pk=user_pk)
    services.user_group_member_remove(group=group, user=user, **actor(request))
    messages.success(request, f"{user.email} was removed from “{group}”.")
    return redirect(_url(request, "detail", group.pk))
