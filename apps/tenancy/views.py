"""The tenant portal: `/t/<tenant-slug>/…`.

Everyone in the tenant may look at its organisations, projects and groups;
only tenant admins change them, manage members and read the audit log.
"""

from django.contrib import messages
from django.contrib.auth import login
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.accounts.forms import SetPasswordForm
from apps.core.keyset import keyset_page
from apps.tenancy import services
from apps.tenancy.dashboard import DASHBOARD_ROWS, dashboard_context
from apps.tenancy.decorators import tenant_view
from apps.tenancy.forms import InviteForm, NameForm, RoleForm
from apps.tenancy.invitations import invitation_user_get
from apps.tenancy.models import Role
from apps.tenancy.portal import actor, delete_page, form_page, paginate
from apps.tenancy.selectors import (
    audit_action_list,
    audit_entry_list,
    membership_get,
    membership_list,
    organization_delete_summary,
    organization_get,
    organization_list,
    project_delete_summary,
    project_get,
    project_list,
    tenant_summary,
    tenants_for_user,
)


def _url(request, name: str, *args) -> str:
    return reverse(f"tenancy:{name}", args=[request.tenant.slug, *args])


@tenant_view()
@require_GET
def dashboard(request):
    tenant = request.tenant
    summary = tenant_summary(tenant=tenant)
    context = {
        "summary": summary,
        "stats": [
            ("Organisations", summary["organizations"]),
            ("Projects", summary["projects"]),
            ("User groups", summary["groups"]),
            ("Members", summary["members"]),
        ],
        "organizations": organization_list(tenant=tenant)[:DASHBOARD_ROWS],
        "projects": project_list(tenant=tenant)[:DASHBOARD_ROWS],
        # The groups, where the mail leaves from, the delivery chart (apps/tenancy/dashboard.py).
        **dashboard_context(tenant),
    }
    return render(request, "tenancy/dashboard.html", context)


# Organisations ---------------------------------------------------------------


@tenant_view()
@require_GET
def organization_list_view(request):
    page = paginate(request, organization_list(tenant=request.tenant))
    return render(request, "tenancy/organization_list.html", {"page": page})


@tenant_view()
@require_GET
def organization_detail(request, org_slug: str):
    organization = organization_get(tenant=request.tenant, slug=org_slug)
    page = paginate(request, project_list(tenant=request.tenant, organization=organization))
    context = {"organization": organization, "page": page}
    return render(request, "tenancy/organization_detail.html", context)


@tenant_view(role=Role.TENANT_ADMIN)
@require_http_methods(["GET", "POST"])
def organization_create(request):
    return form_page(
        request,
        NameForm(request.POST or None),
        save=lambda data: services.organization_create(
            tenant=request.tenant, **data, **actor(request)
        ),
        done=lambda org: (
            f"The organisation “{org}” was created.",
            _url(request, "organization_detail", org.slug),
        ),
        title="New organisation",
        cancel_url=_url(request, "organization_list"),
    )


@tenant_view(role=Role.TENANT_ADMIN)
@require_http_methods(["GET", "POST"])
def organization_update(request, org_slug: str):
    organization = organization_get(tenant=request.tenant, slug=org_slug)
    return form_page(
        request,
        NameForm(request.POST or None, initial={"name": organization.name, "slug": org_slug}),
        save=lambda data: services.organization_update(
            organization=organization, **data, **actor(request)
        ),
        done=lambda org: (
            f"The organisation “{org}” was saved.",
            _url(request, "organization_detail", org.slug),
        ),
        title=f"Edit organisation {organization}",
        cancel_url=_url(request, "organization_detail", org_slug),
    )


@tenant_view(role=Role.TENANT_ADMIN)
@require_http_methods(["GET", "POST"])
def organization_delete(request, org_slug: str):
    organization = organization_get(tenant=request.tenant, slug=org_slug)
    return delete_page(
        request,
        obj=organization,
        kind="organisation",
        goes_with_it=organization_delete_summary(organization=organization),
        delete=lambda: services.organization_delete(organization=organization, **actor(request)),
        cancel_url=_url(request, "organization_detail", organization.slug),
        success_url=_url(request, "organization_list"),
    )


# Projects --------------------------------------------------------------------


@tenant_view()
@require_GET
def project_list_view(request):
    page = paginate(request, project_list(tenant=request.tenant))
    return render(request, "tenancy/project_list.html", {"page": page})


@tenant_view(role=Role.TENANT_ADMIN)
@require_http_methods(["GET", "POST"])
def project_create(request, org_slug: str):
    organization = organization_get(tenant=request.tenant, slug=org_slug)
    back = _url(request, "organization_detail", org_slug)
    return form_page(
        request,
        NameForm(request.POST or None),
        save=lambda data: services.project_create(
            organization=organization, **data, **actor(request)
        ),
        done=lambda project: (f"The project “{project}” was created.", back),
        title=f"New project in {organization}",
        cancel_url=back,
    )


@tenant_view(role=Role.TENANT_ADMIN)
@require_http_methods(["GET", "POST"])
def project_update(request, project_slug: str):
    project = project_get(tenant=request.tenant, slug=project_slug)
    back = _url(request, "organization_detail", project.organization.slug)
    return form_page(
        request,
        NameForm(request.POST or None, initial={"name": project.name, "slug": project.slug}),
        save=lambda data: services.project_update(project=project, **data, **actor(request)),
        done=lambda updated: (f"The project “{updated}” was saved.", back),
        title=f"Edit project {project}",
        cancel_url=back,
    )


@tenant_view(role=Role.TENANT_ADMIN)
@require_http_methods(["GET", "POST"])
def project_delete(request, project_slug: str):
    project = project_get(tenant=request.tenant, slug=project_slug)
    back = _url(request, "organization_detail", project.organization.slug)
    return delete_page(
        request,
        obj=project,
        kind="project",
        goes_with_it=project_delete_summary(project=project),
        delete=lambda: services.project_delete(project=project, **actor(request)),
        cancel_url=back,
        success_url=back,
    )


# Members ---------------------------------------------------------------------


@tenant_view(role=Role.TENANT_ADMIN)
@require_GET
def membership_list_view(request):
    page = paginate(request, membership_list(tenant=request.tenant))
    return render(request, "tenancy/membership_list.html", {"page": page})


@tenant_view(role=Role.TENANT_ADMIN)
@require_http_methods(["GET", "POST"])
def membership_invite(request):
    return form_page(
        request,
        InviteForm(request.POST or None, tenant=request.tenant),
        save=lambda data: services.membership_invite(
            tenant=request.tenant, **data, **actor(request)
        ),
        done=lambda m: (_invited_message(request, m), _url(request, "membership_list")),
        title="Invite a member",
        submit="Send invitation",
        cancel_url=_url(request, "membership_list"),
    )


def _invited_message(request, membership) -> str:
    """The invitation is saved; when its email failed, a warning says so (and how to resend)."""
    outcome = membership.invitation_mail
    if not outcome.failed:
        return f"{membership.user.email} was invited."
    messages.warning(
        request,
        services.invitation_mail_failed_message(email=membership.user.email, outcome=outcome),
    )
    return ""


@tenant_view(role=Role.TENANT_ADMIN)
@require_http_methods(["GET", "POST"])
def membership_update(request, pk: int):
    membership = membership_get(tenant=request.tenant, pk=pk)
    initial = {"role": membership.role, "scope": membership.scope}
    return form_page(
        request,
        RoleForm(request.POST or None, tenant=request.tenant, initial=initial),
        save=lambda data: services.membership_update_role(
            membership=membership, **data, **actor(request)
        ),
        done=lambda m: (
            f"The role of {m.user.email} was saved.",
            _url(request, "membership_list"),
        ),
        title=f"Change the role of {membership.user.email}",
        cancel_url=_url(request, "membership_list"),
    )


@tenant_view(role=Role.TENANT_ADMIN)
@require_http_methods(["GET", "POST"])
def membership_remove(request, pk: int):
    membership = membership_get(tenant=request.tenant, pk=pk)
    return delete_page(
        request,
        obj=membership,
        kind="role",
        goes_with_it={},
        delete=lambda: services.membership_remove(membership=membership, **actor(request)),
        cancel_url=_url(request, "membership_list"),
        success_url=_url(request, "membership_list"),
        verb=("Remove", "removed"),
    )


@tenant_view(role=Role.TENANT_ADMIN)
@require_POST
def membership_resend(request, pk: int):
    membership = membership_get(tenant=request.tenant, pk=pk)
    try:
        mail = services.membership_invitation_resend(membership=membership, **actor(request))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        if mail.failed:
            messages.error(
                request,
                f"The invitation email to {membership.user.email} could not be sent: "
                f"{mail.error}. A system administrator can check Host administration → "
                "Email settings; then try again.",
            )
        else:
            messages.success(request, f"A new invitation was sent to {membership.user.email}.")
    return redirect(_url(request, "membership_list"))


# Audit log -------------------------------------------------------------------


@tenant_view(role=Role.TENANT_ADMIN)
@require_GET
def audit_log(request):
    action = request.GET.get("action", "")
    # By cursor, newest first: an audit log only grows.
    page = keyset_page(request, audit_entry_list(tenant=request.tenant, action=action))
    context = {"page": page, "action": action, "actions": audit_action_list(tenant=request.tenant)}
    return render(request, "tenancy/audit_log.html", context)


# Invitations (outside any tenant: the invited person has no account yet) ------


@require_http_methods(["GET", "POST"])
def invitation_accept(request, token: str):
    user = invitation_user_get(token=token)
    if user is None:
        return render(request, "tenancy/invitation_invalid.html", status=404)
    form = SetPasswordForm(user, request.POST or None)
    if request.method == "POST" and form.is_valid():
        services.invitation_accept(
            user=user, password=form.cleaned_data["new_password1"], request=request
        )
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(request, "Welcome to Postmaster. Your password is set.")
        tenant = tenants_for_user(user=user).filter(is_active=True).first()
        return redirect(reverse("tenancy:dashboard", args=[tenant.slug]) if tenant else "home")
    context = {"form": form, "invited": user, "tenants": tenants_for_user(user=user)}
    return render(request, "tenancy/invitation_accept.html", context)
