from django import forms

from apps.preferences.models import Suppression


class SuppressionAddForm(forms.Form):
    address = forms.EmailField(label="Email address", max_length=254)
    detail = forms.CharField(
        label="Note",
        required=False,
        max_length=Suppression._meta.get_field("detail").max_length,
        help_text="Why it is listed, for the other administrators (optional).",
    )
