from django import forms

from apps.tenancy.models import Organization, Project, Role, Scope, Tenant


def scope_key(scope: Scope) -> str:
    if scope.project is not None:
        return f"project-{scope.project.pk}"
    return f"organization-{scope.organization.pk}" if scope.organization is not None else ""


class ScopeField(forms.ChoiceField):
    """The whole tenant, one of its organisations, or one of its projects; cleans to a Scope."""

    def __init__(self, *, tenant: Tenant, **kwargs):
        organizations = Organization.objects.for_tenant(tenant)
        projects = (
            Project.objects.for_tenant(tenant)
            .select_related("organization")
            .order_by("organization__name", "name")
        )
        scopes = [Scope(), *(Scope(organization=o) for o in organizations)]
        scopes += [Scope.of_project(p) for p in projects]
        self.scopes = {scope_key(s): s for s in scopes}
        choices = [("", "Whole tenant")]
        for kind, title in [("organization", "Organisations"), ("project", "Projects")]:
            group = [(scope_key(s), s.label) for s in scopes if s.kind == kind]
            if group:
                choices.append((title, group))
        kwargs.setdefault("label", "Scope")
        super().__init__(choices=choices, required=False, **kwargs)

    def prepare_value(self, value):
        return scope_key(value) if isinstance(value, Scope) else value

    def clean(self, value) -> Scope:
        return self.scopes[super().clean(value)]


class NameForm(forms.Form):
    """Name and short name of an organisation or a project."""

    name = forms.CharField(max_length=100)
    slug = forms.SlugField(
        max_length=50,
        required=False,
        label="Short name",
        help_text="Used in links. Leave blank to make one from the name.",
    )


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices, initial=Role.MEMBER)

    def __init__(self, *args, tenant: Tenant, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["scope"] = ScopeField(
            tenant=tenant,
            help_text="Tenant admins and members: the whole tenant. "
            "Organisation and project admins: their organisation or project.",
        )


class InviteForm(RoleForm):
    email = forms.EmailField(label="Email address")
    field_order = ["email", "role", "scope"]
