from django import forms

from apps.delivery.models import DeliveryStatus
from apps.pipelines.models import Pipeline
from apps.tenancy.models import Tenant


class PipelineChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, pipeline):
        return f"{pipeline.project.name} / {pipeline.name}"


class DeliveryFilterForm(forms.Form):
    """The delivery log's filters (GET). Every field is optional; a bad one is said in words."""

    status = forms.ChoiceField(
        choices=[("", "Any status"), *DeliveryStatus.choices], required=False
    )
    pipeline = PipelineChoiceField(
        queryset=Pipeline.objects.none(), required=False, empty_label="Any pipeline"
    )
    event = forms.IntegerField(
        label="Event number", required=False, min_value=1, widget=forms.NumberInput()
    )
    recipient = forms.CharField(
        required=False,
        max_length=254,
        widget=forms.TextInput(attrs={"placeholder": "Part of an address"}),
    )
    date_from = forms.DateField(
        label="From", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(
        label="To", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, *args, tenant: Tenant, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["pipeline"].queryset = (
            Pipeline.objects.for_tenant(tenant)
            .select_related("project")
            .order_by("project__name", "name", "id")
        )

    def clean(self):
        data = super().clean()
        date_from, date_to = data.get("date_from"), data.get("date_to")
        if date_from and date_to and date_from > date_to:
            # On the field, so the log still applies the filters that are right.
            self.add_error("date_to", "This is before “From”: swap the dates.")
        return data

    def filters(self) -> dict:
        """Keyword arguments for `delivery_list`, from the fields that are valid."""
        self.is_valid()
        data = self.cleaned_data
        return {
            "status": data.get("status", ""),
            "pipeline": data.get("pipeline"),
            "event_id": data.get("event"),
            "recipient": data.get("recipient", ""),
            "date_from": data.get("date_from"),
            "date_to": data.get("date_to"),
        }
