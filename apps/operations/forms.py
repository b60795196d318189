from django import forms

from apps.operations.models import MaintenanceMode


class MaintenanceModeForm(forms.ModelForm):
    class Meta:
        model = MaintenanceMode
        fields = ["is_on", "message"]
        widgets = {"message": forms.Textarea(attrs={"rows": 3})}

    def clean(self):
        data = super().clean()
        if data.get("is_on") and not (data.get("message") or "").strip():
            self.add_error(
                "message",
                "Say what is going on and until when, e.g. “Upgrading the database; back by "
                "14:00 UTC.” Everyone sees it at the top of every page.",
            )
        return data

    def clean_message(self):
        # One line in a banner: no line breaks.
        return " ".join(self.cleaned_data["message"].split())
