from django import forms

from apps.groups.models import UserGroup
from apps.groups.validators import alias_addresses_parse
from apps.tenancy.forms import ScopeField
from apps.tenancy.models import Tenant
from apps.tenancy.selectors import tenant_users


class AliasAddressesField(forms.CharField):
    """A comma-separated list of addresses in the page; a clean, de-duplicated list in Python."""

    def prepare_value(self, value):
        return ", ".join(value) if isinstance(value, list | tuple) else value

    def clean(self, value) -> list[str]:
        return alias_addresses_parse(super().clean(value))


class UserGroupForm(forms.Form):
    name = forms.CharField(max_length=100)
    alias_addresses = AliasAddressesField(
        label="Email/Alias",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="One or more addresses, separated by commas, "
        "e.g. oncall@example.com, team-alerts@example.com",
    )
    notify_all_members = forms.BooleanField(
        label=UserGroup._meta.get_field("notify_all_members").verbose_name, required=False
    )
    # The page titles the picker itself (label="" keeps crispy from repeating it).
    members = forms.ModelMultipleChoiceField(
        queryset=None, required=False, widget=forms.CheckboxSelectMultiple, label=""
    )

    def __init__(self, *args, tenant: Tenant, group: UserGroup | None = None, **kwargs):
        if group is not None:
            kwargs.setdefault(
                "initial",
                {
                    "name": group.name,
                    "alias_addresses": group.alias_addresses,
                    "notify_all_members": group.notify_all_members,
                    "members": list(group.memberships.values_list("user_id", flat=True)),
                },
            )
        super().__init__(*args, **kwargs)
        self.fields["members"].queryset = tenant_users(tenant=tenant).order_by("email")
        if group is None:
            # The scope is chosen once: what uses the group below it relies on it.
            self.fields["scope"] = ScopeField(
                tenant=tenant,
                help_text="The group can be used here and everywhere below.",
            )
            self.order_fields(["name", "scope"])


class MemberAddForm(forms.Form):
    user = forms.ModelChoiceField(queryset=None, label="Add a member", empty_label="Choose…")

    def __init__(self, *args, tenant: Tenant, group: UserGroup, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["user"].queryset = (
            tenant_users(tenant=tenant)
            .exclude(user_group_memberships__group=group)
            .order_by("email")
        )
