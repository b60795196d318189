import base64
import binascii

from cryptography.hazmat.primitives import serialization
from django import forms

from apps.webhooks.models import Provider
from apps.webhooks.providers import PROVIDERS


def _sendgrid_key(value: str) -> str:
    """SendGrid's verification key as anymail takes it: the base64 body, without PEM lines."""
    body = "".join(
        line.strip() for line in value.splitlines() if line.strip() and "-----" not in line
    )
    try:
        serialization.load_der_public_key(base64.b64decode(body, validate=True))
    except (binascii.Error, ValueError) as exc:
        raise forms.ValidationError(
            "This is not a SendGrid verification key: copy the whole key from SendGrid's "
            "Signed Event Webhook settings.",
            code="invalid",
        ) from exc
    return body


class WebhookEndpointForm(forms.Form):
    provider = forms.ChoiceField(choices=[("", "Choose a provider"), *Provider.choices])
    signing_key = forms.CharField(
        label="Signing key",
        required=False,
        max_length=2000,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text=(
            "Mailgun: its HTTP webhook signing key (required). SendGrid: the Signed Event "
            "Webhook's verification key (optional). Other providers do not sign their posts: "
            "leave it blank."
        ),
    )

    def clean(self):
        data = super().clean()
        provider, key = data.get("provider"), data.get("signing_key", "")
        if not provider:
            return data
        info = PROVIDERS[provider]
        label = Provider(provider).label
        if info.signing_key == "required" and not key:
            self.add_error(
                "signing_key",
                f"{label} signs every post: paste the {info.signing_key_label} "
                "so Postmaster can check it.",
            )
        elif not info.signing_key and key:
            self.add_error(
                "signing_key", f"{label} does not sign its posts: leave the signing key blank."
            )
        elif key and provider == Provider.SENDGRID:
            try:
                data["signing_key"] = _sendgrid_key(key)
            except forms.ValidationError as exc:
                self.add_error("signing_key", exc)
        return data
