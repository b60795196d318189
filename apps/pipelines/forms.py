from django import forms

from apps.groups.forms import AliasAddressesField
from apps.groups.selectors import user_groups_usable_at
from apps.pipelines.models import (
    EVENT_GROUPS,
    Level,
    NotificationDefaults,
    NotificationRule,
    Override,
    Pipeline,
)
from apps.tenancy.models import Project, Scope, Tenant


class PipelineForm(forms.Form):
    name = forms.CharField(max_length=100)
    slug = forms.SlugField(
        max_length=50,
        required=False,
        help_text="How the events API names this pipeline; unique in its project. "
        "Leave blank to make one from the name.",
    )
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))


def _levels_field(**kwargs) -> forms.MultipleChoiceField:
    return forms.MultipleChoiceField(
        choices=Level.choices, widget=forms.CheckboxSelectMultiple, required=False, **kwargs
    )


class NotificationDefaultsForm(forms.Form):
    enabled = forms.BooleanField(
        label="Enable notifications",
        required=False,
        help_text="Off: no pipeline that inherits these settings sends notifications.",
    )
    levels = _levels_field(
        label="Levels at which to be notified",
        help_text="At least one when notifications are on.",
    )

    def __init__(self, *args, defaults: NotificationDefaults, **kwargs):
        kwargs.setdefault("initial", {"enabled": defaults.enabled, "levels": defaults.levels})
        super().__init__(*args, **kwargs)


class PipelineNotificationsForm(forms.Form):
    # The page's heading names it (label="" keeps crispy from repeating it).
    notifications = forms.ChoiceField(choices=Override.choices, widget=forms.RadioSelect, label="")
    levels = _levels_field(label="Levels at which to be notified", help_text="When on.")

    def __init__(self, *args, pipeline: Pipeline, **kwargs):
        kwargs.setdefault(
            "initial", {"notifications": pipeline.notifications, "levels": pipeline.levels}
        )
        super().__init__(*args, **kwargs)


class NotificationRuleForm(forms.Form):
    """The "New Notification" form: name, pipeline events, then who is notified by email."""

    name = forms.CharField(max_length=100, help_text="Enter a name for your notification rule.")
    event_types = forms.MultipleChoiceField(
        label="",  # The form's "Pipeline Events" legend names it.
        choices=[
            (group, [(t.value, t.label) for t in types]) for group, types in EVENT_GROUPS.items()
        ],
        widget=forms.CheckboxSelectMultiple,
        help_text="The events for which you want to send notifications.",
        error_messages={"required": "Choose at least one event to send notifications for."},
    )
    addresses = AliasAddressesField(
        label="Email addresses",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="The email addresses to which you want to send the notifications, "
        "separated by commas, e.g. oncall@example.com, team-alerts@example.com",
    )
    groups = forms.ModelMultipleChoiceField(
        queryset=None,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="User groups",
        help_text="The user groups which you want to notify: the tenant's, "
        "the organisation's and the project's.",
    )
    mandatory = forms.BooleanField(
        label="Mandatory",
        required=False,
        help_text="Recipients cannot turn this off, e.g. production failures.",
    )
    enabled = forms.BooleanField(label="Enabled", required=False, initial=True)

    def __init__(
        self,
        *args,
        tenant: Tenant,
        project: Project,
        rule: NotificationRule | None = None,
        **kwargs,
    ):
        if rule is not None:
            kwargs.setdefault(
                "initial",
                {
                    "name": rule.name,
                    "event_types": rule.event_types,
                    "addresses": rule.addresses,
                    "groups": [g.pk for g in rule.groups.all()],
                    "mandatory": rule.mandatory,
                    "enabled": rule.enabled,
                },
            )
        super().__init__(*args, **kwargs)
        self.fields["groups"].queryset = user_groups_usable_at(
            tenant=tenant, scope=Scope.of_project(project)
        )


class ApiTokenForm(forms.Form):
    name = forms.CharField(
        max_length=100,
        help_text="What uses the token, e.g. “Jenkins deploy job”.",
    )
