"""The OAuth2 sign-in form: provider, IDs, and a write-only client secret."""

import re

from django import forms

from apps.connections.models import OAuthGrant, OAuthProvider
from apps.connections.validators import validate_single_line

GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
DOMAIN = re.compile(r"^([a-zA-Z0-9-]+\.)+[a-zA-Z]{2,}$")
NO_SPACES = re.compile(r"^\S+$")


class OAuthGrantForm(forms.Form):
    provider = forms.ChoiceField(
        label="Provider", choices=OAuthProvider.choices, widget=forms.RadioSelect
    )
    directory_id = forms.CharField(
        label="Directory (tenant) ID",
        required=False,
        max_length=100,
        validators=[validate_single_line],
        help_text="Microsoft 365 only: on the app registration's Overview page in the "
        "Microsoft Entra admin center, e.g. 72f988bf-86f1-41af-91ab-2d7cd011db47, or your "
        "domain like contoso.onmicrosoft.com.",
    )
    client_id = forms.CharField(
        label="Client ID",
        max_length=255,
        validators=[validate_single_line],
        help_text="Microsoft: the Application (client) ID. Google: the OAuth client ID, "
        "ending in .apps.googleusercontent.com.",
    )
    client_secret = forms.CharField(
        label="Client secret",
        required=False,
        strip=True,
        max_length=500,
        validators=[validate_single_line],
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )

    def __init__(self, *args, grant: OAuthGrant | None = None, **kwargs):
        if grant is not None and not kwargs.get("initial"):
            # Never the secret: it is write-only.
            kwargs["initial"] = {
                "provider": grant.provider,
                "directory_id": grant.directory_id,
                "client_id": grant.client_id,
            }
        super().__init__(*args, **kwargs)
        self.grant = grant
        self.has_stored_secret = bool(grant and grant.client_secret)
        secret = self.fields["client_secret"]
        if self.has_stored_secret:
            secret.help_text = (
                "Stored, encrypted, never shown. Leave blank to keep it; type a new one to "
                "replace it."
            )
        else:
            secret.help_text = (
                "Microsoft: the secret's Value from Certificates & secrets (not its Secret ID). "
                "Google: the client secret of the OAuth client."
            )

    def clean_directory_id(self):
        value = self.cleaned_data["directory_id"].strip()
        if value and not (GUID.match(value) or DOMAIN.match(value)):
            raise forms.ValidationError(
                "Enter the Directory (tenant) ID as shown in the Entra admin center: "
                "a GUID like 72f988bf-86f1-41af-91ab-2d7cd011db47, or a domain like "
                "contoso.onmicrosoft.com."
            )
        return value

    def clean_client_id(self):
        value = self.cleaned_data["client_id"].strip()
        if not NO_SPACES.match(value):
            raise forms.ValidationError("Enter the client ID without spaces.")
        return value

    def clean(self):
        data = super().clean()
        provider = data.get("provider")
        client_id = data.get("client_id")
        if provider == OAuthProvider.MICROSOFT:
            if not data.get("directory_id") and "directory_id" not in self.errors:
                self.add_error(
                    "directory_id",
                    "Enter the Directory (tenant) ID of your Microsoft 365 organisation.",
                )
            if client_id and not GUID.match(client_id):
                self.add_error(
                    "client_id",
                    "Enter the Application (client) ID: a GUID like "
                    "1b2c3d4e-5f60-7182-93a4-b5c6d7e8f901, from the app registration's Overview.",
                )
        elif (
            provider == OAuthProvider.GOOGLE
            and client_id
            and not client_id.endswith(".apps.googleusercontent.com")
        ):
            self.add_error(
                "client_id",
                "Enter the OAuth client ID from Google Cloud console > Credentials: it ends "
                "in .apps.googleusercontent.com.",
            )
        same_provider = self.grant is not None and self.grant.provider == provider
        if not data.get("client_secret") and not (self.has_stored_secret and same_provider):
            self.add_error("client_secret", "Enter the client secret.")
        return data
