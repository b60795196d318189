from django import forms

from apps.pipelines.models import EVENT_GROUPS, EventType, Pipeline
from apps.preferences.models import NotificationPreference, PreferenceLevel
from apps.preferences.selectors import EVENT_LABELS, LEVEL_LABELS, preference_effective

CHOSEN_LEVELS = [(v, label) for v, label in PreferenceLevel.choices if v != PreferenceLevel.INHERIT]


class NotificationSwitchForm(forms.Form):
    enabled = forms.BooleanField(required=False)


def _level_field(inherit_label: str, **kwargs) -> forms.ChoiceField:
    return forms.ChoiceField(
        choices=[(PreferenceLevel.INHERIT.value, inherit_label), *CHOSEN_LEVELS], **kwargs
    )


def _events_field(excluded: set[str], help_text: str) -> forms.MultipleChoiceField:
    return forms.MultipleChoiceField(
        label="",  # The page's "Events you receive" legend names it.
        choices=[
            (group, [(t.value, t.label) for t in types if t.value not in excluded])
            for group, types in EVENT_GROUPS.items()
            if any(t.value not in excluded for t in types)
        ],
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text=help_text,
    )


class ScopePreferenceForm(forms.Form):
    """A level and the event types one receives, at the tenant's or a project's scope.

    Event types are shown as "on" checkboxes; those left unticked are the
    ones turned off (`muted_event_types`). Types already off for the whole
    tenant are not offered again for a project: they stay off there.
    """

    def __init__(
        self,
        *args,
        row: NotificationPreference | None,
        inherit_label: str,
        already_off: frozenset[str] = frozenset(),
        **kwargs,
    ):
        self.already_off = already_off
        muted = set(row.muted_event_types) if row else set()
        offered = [t for t in EventType.values if t not in already_off]
        kwargs.setdefault(
            "initial",
            {
                "level": row.level if row else PreferenceLevel.INHERIT,
                "events": [t for t in offered if t not in muted],
            },
        )
        super().__init__(*args, **kwargs)
        self.fields["level"] = _level_field(inherit_label, label="Level", widget=forms.RadioSelect)
        help_text = "Untick the events you do not want."
        if already_off:
            names = ", ".join(EVENT_LABELS[t] for t in EventType.values if t in already_off)
            help_text += f" Off for the whole tenant already: {names}."
        self.fields["events"] = _events_field(set(already_off), help_text)

    @property
    def muted_event_types(self) -> list[str]:
        on = set(self.cleaned_data["events"]) | self.already_off
        return [t for t in EventType.values if t not in on]


class ProjectPreferenceForm(ScopePreferenceForm):
    """A project's level and events, and a level for each of its pipelines."""

    def __init__(
        self,
        *args,
        tenant_row: NotificationPreference | None,
        row: NotificationPreference | None,
        pipelines: list[Pipeline],
        pipeline_rows: dict[int, NotificationPreference],
        **kwargs,
    ):
        above = preference_effective([tenant_row] if tenant_row else [])
        super().__init__(
            *args,
            row=row,
            inherit_label=f"As for the whole tenant ({LEVEL_LABELS[above.level]})",
            already_off=above.muted,
            **kwargs,
        )
        self.pipelines = pipelines
        for pipeline in pipelines:
            own = pipeline_rows.get(pipeline.pk)
            # Not required: a pipeline created since the page was shown keeps its setting.
            self.fields[self.pipeline_field(pipeline)] = _level_field(
                "As for the project",
                label=pipeline.name,
                initial=own.level if own else PreferenceLevel.INHERIT,
                required=False,
            )

    @staticmethod
    def pipeline_field(pipeline: Pipeline) -> str:
        return f"pipeline_{pipeline.pk}"

    def pipeline_fields(self):
        return [self[self.pipeline_field(p)] for p in self.pipelines]

    @property
    def pipeline_levels(self) -> dict[int, str]:
        """{pipeline pk: level} for the pipelines the form was sent with."""
        levels = {p.pk: self.cleaned_data[self.pipeline_field(p)] for p in self.pipelines}
        return {pk: level for pk, level in levels.items() if level}
