"""The SMTP settings form: used by the host admin, reusable on a tenant page.

The password is write-only: typed in, never rendered back. Leaving it blank
keeps the stored one, "Clear the stored password" removes it, and a changed
server or username needs it typed again, so a stored password never goes to
a server it was not entered for. The same form sends a test email with the
values as typed, saved or not.
"""

import ipaddress
import re

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils.functional import cached_property

from apps.connections import netguard
from apps.connections import smtp as transport
from apps.connections.models import PORT_ERROR, TIMEOUT_ERROR, Security, SmtpSettings
from apps.connections.oauth_tokens import grant_for
from apps.connections.validators import validate_single_line
from apps.core.fields import Secret

TEST_BUTTON = "_send_test"
DEFAULT_TEST_SUBJECT = "Postmaster test email"
DEFAULT_TEST_BODY = (
    "This is a test email from Postmaster. If you can read it, the SMTP settings work."
)

SERVER_MOVED = (
    "You changed the server or username: enter the password again, "
    "or tick “Clear the stored password”."
)
SECURITY_DOWNGRADED = (
    "You changed the security mode to “None”, so the password would travel unencrypted: "
    "enter it again to confirm, or tick “Clear the stored password”."
)
BOTH_PASSWORD_ACTIONS = "Either type a new password or tick “Clear the stored password”, not both."
USERNAME_WITHOUT_PASSWORD = (
    "Enter the SMTP password for this username, or leave the username blank "
    "if the server needs no login."
)
OAUTH_SERVER_MOVED = (
    "These settings sign in with OAuth2 to {host}: its access token is not sent to another "
    "server. Remove OAuth2 sign-in first, then change the host."
)
TESTED_PASSWORD_NOT_KEPT = (
    "Type the password again to save it: the one you tested is never sent back to your browser."
)
UNENCRYPTED_WARNING = (
    "Security is “None”: the password will be sent unencrypted, readable by anyone on "
    "the network path. Choose STARTTLS or implicit TLS/SSL if the server offers it."
)
UNENCRYPTED_NOT_CONFIRMED = (
    "Tick “Send the password unencrypted” to confirm, or choose STARTTLS or implicit TLS/SSL."
)
# Changing these sends the login to another server or account, so a stored
# password is not reused without being typed again.
SERVER_FIELDS = ("host", "port", "username")
HOST_PATTERN = re.compile(r"^[\w.-]+$")


class TestEmailFields(forms.Form):
    """The test email's To, Subject and Body, checked only when the form is `testing`.

    Mixed into the settings forms (SMTP and provider), which set `testing`.
    """

    __test__ = False  # not a pytest test class, despite the name
    testing = False

    test_to = forms.CharField(
        label="To",
        required=False,
        max_length=254,
        help_text="One address to send the test email to.",
    )
    test_subject = forms.CharField(
        label="Subject",
        required=False,
        max_length=200,
        initial=DEFAULT_TEST_SUBJECT,
        validators=[validate_single_line],
    )
    test_body = forms.CharField(
        label="Body",
        required=False,
        initial=DEFAULT_TEST_BODY,
        widget=forms.Textarea(attrs={"rows": 3}),
    )

    def clean_test_to(self):
        to = self.cleaned_data["test_to"].strip()
        if not self.testing:
            return ""
        if not to:
            raise ValidationError("Enter the address to send the test email to.")
        validate_single_line(to)
        if any(separator in to for separator in ",; "):
            raise ValidationError("Enter exactly one address in To.")
        try:
            validate_email(to)
        except ValidationError:
            raise ValidationError("Enter a valid address in To, like name@example.com.") from None
        return to

    def clean_test_subject(self):
        subject = self.cleaned_data["test_subject"]
        if self.testing and not subject:
            raise ValidationError("Enter a subject for the test email.")
        return subject

    def clean_test_body(self):
        body = self.cleaned_data["test_body"]
        if self.testing and not body.strip():
            raise ValidationError("Enter a body for the test email.")
        return body


class SmtpSettingsForm(TestEmailFields, forms.ModelForm):
    """Edit `SmtpSettings` and, when `testing`, send a test email with the typed values.

    `testing` defaults to whether the "Send test email" button
    (name `TEST_BUTTON`) was pressed. After `is_valid()`, `instance` holds the
    typed values and the password to use (not saved: pass it to
    `smtp_settings_update`), `warnings` lists advice that does not block saving,
    and `send_test_email()` sends the test.
    """

    new_password = forms.CharField(
        label="SMTP password",
        required=False,
        strip=False,
        validators=[validate_single_line],
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )
    # Set on the form shown after a test email sent with a newly typed password,
    # so a Save that follows cannot quietly keep the old one (or none).
    password_tested = forms.BooleanField(required=False, widget=forms.HiddenInput)
    clear_password = forms.BooleanField(
        label="Clear the stored password",
        required=False,
        help_text="Tick to remove the stored password, e.g. for a server that needs no login.",
    )
    confirm_unencrypted = forms.BooleanField(
        label="Send the password unencrypted",
        required=False,
        help_text="Needed only with security “None” and a login: the password then "
        "travels in clear text. Tick to confirm that you accept this.",
    )

    class Meta:
        model = SmtpSettings
        fields = [
            "preset",
            "name",
            "host",
            "port",
            "security",
            "timeout",
            "username",
            "new_password",
            "password_tested",
            "clear_password",
            "confirm_unencrypted",
            "smtp_domain",
            "from_email",
            "from_name",
            "ehlo_name",
            "test_to",
            "test_subject",
            "test_body",
        ]
        error_messages = {
            "host": {"required": "Enter the SMTP host, like smtp.example.com."},
            "port": {"min_value": PORT_ERROR, "invalid": PORT_ERROR, "required": PORT_ERROR},
            "timeout": {
                "min_value": TIMEOUT_ERROR,
                "max_value": TIMEOUT_ERROR,
                "invalid": TIMEOUT_ERROR,
                "required": TIMEOUT_ERROR,
            },
            "from_email": {
                "required": "Enter the Default From address, like notifications@example.com.",
                "invalid": "Enter a valid Default From address, like notifications@example.com.",
            },
        }

    def __init__(self, *args, testing: bool | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.testing = TEST_BUTTON in self.data if testing is None else testing
        # Read before validation copies the typed values onto the instance.
        self.stored = {name: getattr(self.instance, name) for name in (*SERVER_FIELDS, "security")}
        self.has_stored_password = bool(self.instance.password)
        self.fields["new_password"].help_text = (
            "A password is stored. Leave blank to keep the current password."
            if self.has_stored_password
            else "Leave blank if the server needs no login."
        )
        if self.instance.pk is not None and self.grant is not None:
            self.fields["new_password"].help_text = (
                f"Not needed: these settings sign in with OAuth2 "
                f"({self.grant.get_provider_display()}) as the SMTP username."
            )
        if self.testing and self.data.get(self.add_prefix("new_password")):
            self.data = self.data.copy()
            self.data[self.add_prefix("password_tested")] = "True"
            self.fields["new_password"].help_text = TESTED_PASSWORD_NOT_KEPT
        self.warnings: list[str] = []
        # The timeout's default is a callable only to read settings; no need
        # for Django's hidden "initial-timeout" twin field.
        self.fields["timeout"].show_hidden_initial = False

    @cached_property
    def grant(self):
        """The saved settings' OAuth2 grant (None: password sign-in, or unsaved settings)."""
        return grant_for(self.instance)

    def clean_host(self):
        host = self.cleaned_data["host"].strip().lower().rstrip(".")
        if "://" in host or "/" in host:
            raise ValidationError("Enter only the host name, like smtp.example.com: no smtp://.")
        if _is_ip_address(host):
            return host
        if ":" in host:
            raise ValidationError("Enter the host without the port: put the port in SMTP port.")
        if not HOST_PATTERN.match(host):
            raise ValidationError(
                "Enter a host name like smtp.example.com: letters, digits, dots and hyphens."
            )
        return host

    def clean_ehlo_name(self):
        # Lower case, no trailing dot; the model's validators check the form.
        return self.cleaned_data["ehlo_name"].strip().lower().rstrip(".")

    def clean_security(self):
        # One choice makes STARTTLS and implicit TLS exclusive; a crafted
        # request sending both is refused rather than silently picking one.
        name = self.add_prefix("security")
        if hasattr(self.data, "getlist") and len(set(self.data.getlist(name))) > 1:
            raise ValidationError(
                "Choose one security mode: STARTTLS and implicit TLS cannot be combined."
            )
        return self.cleaned_data["security"]

    def clean(self):
        cleaned = super().clean()
        new_password = cleaned.get("new_password", "")
        clear = cleaned.get("clear_password", False)
        if new_password and clear:
            self.add_error("clear_password", BOTH_PASSWORD_ACTIONS)
        elif cleaned.get("password_tested") and not new_password and not self.testing:
            self.add_error("new_password", TESTED_PASSWORD_NOT_KEPT)
        elif self.has_stored_password and not new_password and not clear:
            if any(self._changed(name) for name in SERVER_FIELDS):
                self.add_error("new_password", SERVER_MOVED)
            elif self._changed("security") and cleaned["security"] == Security.NONE:
                self.add_error("new_password", SECURITY_DOWNGRADED)
        if clear:
            self.instance.password = None
        elif new_password:
            self.instance.password = Secret(new_password)
        has_password = bool(new_password) or (self.has_stored_password and not clear)
        if self._changed("host") and self.stored["host"] and self.grant is not None:
            self.add_error("host", OAUTH_SERVER_MOVED.format(host=self.stored["host"]))
        # With OAuth2 sign-in the username is the mailbox; there is no password.
        missing = cleaned.get("username") and not has_password and not self.testing
        missing = missing and self.grant is None
        if missing and "new_password" not in self.errors:
            self.add_error("new_password", USERNAME_WITHOUT_PASSWORD)
        if self._needs_unencrypted_confirmation(cleaned, has_password):
            self.add_error("confirm_unencrypted", UNENCRYPTED_NOT_CONFIRMED)
        self._check_network(cleaned)
        self.warnings = self._warnings(cleaned, has_password)
        return cleaned

    def _needs_unencrypted_confirmation(self, cleaned: dict, has_password: bool) -> bool:
        """A login over a clear connection, not confirmed (a stored, unchanged one was)."""
        if cleaned.get("confirm_unencrypted"):
            return False
        if not (cleaned.get("security") == Security.NONE and cleaned.get("username")):
            return False
        if not has_password:
            return False
        unchanged = (
            self.has_stored_password
            and self.stored["security"] == Security.NONE
            and not cleaned.get("new_password")
            and not any(self._changed(name) for name in SERVER_FIELDS)
        )
        return not unchanged

    def _check_network(self, cleaned: dict) -> None:
        """A tenant's settings: refuse a host or port the network policy does not allow."""
        host, port = cleaned.get("host"), cleaned.get("port")
        if not host or not port:
            return
        try:
            netguard.check_host(host, port, netguard.policy_for(self.instance))
        except netguard.PortNotAllowedError as error:
            self.add_error("port", error.message)
        except netguard.AddressNotAllowedError as error:
            self.add_error("host", error.message)

    def _changed(self, name: str) -> bool:
        return name in self.cleaned_data and self.cleaned_data[name] != self.stored[name]

    @staticmethod
    def _warnings(cleaned: dict, has_password: bool) -> list[str]:
        port, security = cleaned.get("port"), cleaned.get("security")
        warnings = []
        if port == 465 and security == Security.STARTTLS:
            warnings.append(
                "Port 465 normally uses implicit TLS/SSL, not STARTTLS. If the test email "
                "times out, choose “Implicit TLS/SSL”."
            )
        if port == 587 and security == Security.TLS:
            warnings.append(
                "Port 587 normally uses STARTTLS, not implicit TLS/SSL. If the test email "
                "fails, choose “STARTTLS”."
            )
        if security == Security.NONE and has_password and cleaned.get("username"):
            warnings.append(UNENCRYPTED_WARNING)
        return warnings

    @property
    def smtp_password(self) -> str:
        """The plaintext password the typed settings would log in with ("" for none)."""
        return self.instance.password.reveal() if self.instance.password else ""

    def send_test_email(self) -> transport.TestEmailResult:
        """Send the test email with the typed values; call after `is_valid()` with `testing`."""
        if not (self.testing and self.is_valid()):
            raise ValueError("send_test_email() needs a valid form with testing=True.")
        return transport.send_test_email(
            self.instance,
            password=self.smtp_password,
            to=self.cleaned_data["test_to"],
            subject=self.cleaned_data["test_subject"],
            body=self.cleaned_data["test_body"],
        )


def _is_ip_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
