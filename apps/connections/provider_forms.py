"""The provider connection form: one per role, for a tenant's page and the host's.

Each provider has its own group of fields (`<provider>_<what>`); only the
chosen provider's group is read and validated, and the page shows only that
group (static/providers/provider_form.js). Secrets are write-only: typed in,
never rendered back; blank keeps the stored one, unless the provider, its
address or its key ID changed, so a stored key never goes anywhere it was not
entered for. The same form sends a test email with the values as typed.
"""

import re
from dataclasses import dataclass

from django import forms
from django.core.exceptions import ValidationError

from apps.connections import providers as transport
from apps.connections.catalog import PROVIDERS, Provider
from apps.connections.forms import TestEmailFields
from apps.connections.models import SES_REGION, ProviderSettings
from apps.connections.services import USED_FIELDS, api_url_error
from apps.connections.validators import validate_single_line
from apps.core.fields import Secret

TEST_BUTTON = "_send_test"
DEFAULT_TEST_BODY = (
    "This is a test email from Postmaster. If you can read it, the email-service provider "
    "settings work."
)
DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
KEY_ID = re.compile(r"^[A-Za-z0-9_-]{8,128}$")
# Changing these sends the stored secret to another address or pairs it with another key.
MOVING_FIELDS = ("provider", "key_id", "region", "api_url")
TESTED_SECRET_NOT_KEPT = (
    "Type it again to save it: the one you tested is never sent back to your browser."
)


@dataclass(frozen=True)
class GroupField:
    name: str  # the form field's name, without the provider prefix
    attr: str  # the model attribute it sets


def _fields_of(provider: str) -> list[GroupField]:
    info = PROVIDERS[provider]
    used = USED_FIELDS[provider]
    fields = []
    if "key_id" in used:
        fields.append(GroupField("key_id", "key_id"))
    fields.append(GroupField("secret", "secret"))
    if info.sender_domain:
        fields.append(GroupField("sender_domain", "sender_domain"))
    if "region" in used:
        fields.append(GroupField("region", "region"))
    fields.append(GroupField("api_url", "api_url"))
    return fields


GROUPS: dict[str, list[GroupField]] = {provider: _fields_of(provider) for provider in PROVIDERS}


class ProviderSettingsForm(TestEmailFields, forms.ModelForm):
    """Edit a `ProviderSettings` row and, when `testing`, send a test email with the typed values.

    After `is_valid()`, `instance` holds the typed values and the secret to
    use (not saved: pass it to `provider_settings_update`).
    """

    secret_tested = forms.BooleanField(required=False, widget=forms.HiddenInput)
    # The test email's other fields and their checks come from TestEmailFields.
    test_body = forms.CharField(
        label="Body",
        required=False,
        initial=DEFAULT_TEST_BODY,
        widget=forms.Textarea(attrs={"rows": 3}),
    )

    class Meta:
        model = ProviderSettings
        fields = ["provider", "from_email", "from_name"]
        error_messages = {
            "provider": {
                "required": "Choose the email-service provider.",
                "invalid_choice": "Choose one of the providers in the list.",
            },
            "from_email": {
                "required": "Enter the Default From address, like notifications@example.com.",
                "invalid": "Enter a valid Default From address, like notifications@example.com.",
            },
        }

    def __init__(self, *args, testing: bool | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.testing = TEST_BUTTON in self.data if testing is None else testing
        row = self.instance
        self.stored = {name: getattr(row, name) for name in MOVING_FIELDS}
        self.has_stored_secret = bool(row.pk and row.secret)
        self.fields["provider"].choices = [("", "Choose a provider…"), *Provider.choices]
        for provider, group in GROUPS.items():
            for field in group:
                self.fields[f"{provider}_{field.name}"] = self._group_field(provider, field)
        if self.testing and self.data.get(self._secret_name(self.data.get("provider", ""))):
            self.data = self.data.copy()
            self.data[self.add_prefix("secret_tested")] = "True"

    # Building -------------------------------------------------------------------------

    def _group_field(self, provider: str, field: GroupField) -> forms.Field:
        info = PROVIDERS[provider]
        row = self.instance
        mine = row.provider == provider
        initial = getattr(row, field.attr) if mine and field.attr != "secret" else None
        match field.name:
            case "secret":
                stored = mine and self.has_stored_secret
                help_text = info.secret_help + (
                    " One is stored: leave empty to keep it." if stored else ""
                )
                return forms.CharField(
                    label=info.secret_label,
                    required=False,
                    strip=True,
                    max_length=500,
                    help_text=help_text,
                    widget=forms.PasswordInput(
                        render_value=False, attrs={"autocomplete": "new-password"}
                    ),
                )
            case "key_id":
                return forms.CharField(
                    label=info.key_id_label,
                    required=False,
                    max_length=128,
                    initial=initial,
                    help_text=info.key_id_help,
                )
            case "region" if provider == Provider.MAILGUN:
                return forms.ChoiceField(
                    label=info.region_label,
                    required=False,
                    choices=[("us", "US (api.mailgun.net)"), ("eu", "EU (api.eu.mailgun.net)")],
                    initial=initial or "us",
                    help_text=info.region_help,
                )
            case "region":
                return forms.CharField(
                    label=info.region_label,
                    required=False,
                    max_length=32,
                    initial=initial,
                    help_text=info.region_help,
                )
            case "sender_domain":
                return forms.CharField(
                    label="Sender domain",
                    required=False,
                    max_length=253,
                    initial=initial,
                    help_text="The domain you send from, as added in Mailgun, like mg.example.com.",
                )
            case _:
                default = info.default_api_url or "built from the region"
                return forms.CharField(
                    label="API URL (advanced)",
                    required=False,
                    max_length=300,
                    initial=initial,
                    help_text=f"Leave empty for {info.label}'s own ({default}).",
                )

    def _secret_name(self, provider: str) -> str:
        return self.add_prefix(f"{provider}_secret")

    def group_fields(self) -> list[tuple[str, str, list]]:
        """(provider, label, bound fields) for the template, in the catalog's order."""
        return [
            (provider, PROVIDERS[provider].label, [self[f"{provider}_{f.name}"] for f in group])
            for provider, group in GROUPS.items()
        ]

    # Validating -----------------------------------------------------------------------

    def clean(self):
        cleaned = super().clean()
        provider = cleaned.get("provider")
        if provider not in GROUPS:
            return cleaned
        info = PROVIDERS[provider]
        values = {}
        for field in GROUPS[provider]:
            name = f"{provider}_{field.name}"
            value = cleaned.get(name) or ""
            try:
                values[field.attr] = self._clean_value(provider, field.name, value)
            except ValidationError as error:
                self.add_error(name, error)
        row = self.instance
        row.provider = provider
        for attr in ("key_id", "region", "api_url", "sender_domain"):
            setattr(row, attr, values.get(attr, ""))
        self._clean_secret(provider, info, values.get("secret", ""))
        if row.api_url and f"{provider}_api_url" not in self.errors:
            error = api_url_error(row)
            if error:
                self.add_error(f"{provider}_api_url", error)
        return cleaned

    def _clean_value(self, provider: str, name: str, value: str) -> str:
        info = PROVIDERS[provider]
        value = value.strip()
        if value:
            validate_single_line(value)
        match name:
            case "key_id":
                if not value:
                    raise ValidationError(f"Enter the {info.key_id_label}.")
                if not KEY_ID.match(value):
                    raise ValidationError(
                        f"Enter the {info.key_id_label} as {info.console} shows it: letters "
                        "and digits, no spaces."
                    )
            case "region" if provider == Provider.AMAZON_SES:
                value = value.lower()
                if not value:
                    raise ValidationError("Enter the AWS region, like eu-west-1.")
                SES_REGION(value)
            case "region":
                value = value or "us"
            case "sender_domain":
                value = value.lower().rstrip(".")
                if not value:
                    raise ValidationError("Enter the sender domain, like mg.example.com.")
                if not DOMAIN.match(value):
                    raise ValidationError(
                        "Enter only the domain, like mg.example.com: no https://, no @, no /."
                    )
            case "api_url" if value:
                forms.URLField(assume_scheme="https").clean(value)
                if not value.startswith(("https://", "http://")):
                    raise ValidationError(
                        "Enter the API URL with https://, like https://api.example.com/."
                    )
        return value

    def _clean_secret(self, provider: str, info, typed: str) -> None:
        name = f"{provider}_secret"
        if name in self.errors:
            return
        row = self.instance
        if typed:
            row.secret = Secret(typed)
            return
        if self.cleaned_data.get("secret_tested") and not self.testing:
            self.add_error(name, f"{TESTED_SECRET_NOT_KEPT}")
            return
        moved = [attr for attr in MOVING_FIELDS if getattr(row, attr) != self.stored[attr]]
        if self.has_stored_secret and not moved:
            return  # Keep the stored secret (already on the instance).
        row.secret = None
        if self.has_stored_secret and moved:
            self.add_error(
                name,
                f"You changed the {_changed_words(moved)}: enter the {info.secret_label} again, "
                "so the stored one is never sent anywhere it was not entered for.",
            )
        else:
            self.add_error(name, f"Enter the {info.secret_label}. {info.secret_help}")

    def add_service_error(self, error: ValidationError) -> None:
        """Put a service's ValidationError (by model field) on the form's own fields."""
        provider = self.instance.provider
        if not hasattr(error, "error_dict"):
            self.add_error(None, error)
            return
        for attr, errors in error.error_dict.items():
            name = attr if attr in self.fields else f"{provider}_{attr}"
            self.add_error(name if name in self.fields else None, errors)

    # Testing --------------------------------------------------------------------------

    def send_test_email(self) -> transport.TestEmailResult:
        """Send the test with the typed values; call after `is_valid()` with `testing`."""
        if not (self.testing and self.is_valid()):
            raise ValueError("send_test_email() needs a valid form with testing=True.")
        return transport.send_provider_test_email(
            self.instance,
            to=self.cleaned_data["test_to"],
            subject=self.cleaned_data["test_subject"],
            body=self.cleaned_data["test_body"],
        )


def _changed_words(moved: list[str]) -> str:
    words = {"provider": "provider", "key_id": "key ID", "region": "region", "api_url": "API URL"}
    return " and ".join(words[attr] for attr in moved)
