from django import forms
from django.contrib.auth import forms as auth_forms
from django.urls import reverse

from apps.accounts.lockout import password_check
from apps.core.links import absolute_url

WRONG_CURRENT_PASSWORD = (
    "That is not your current password. Type it again, or sign out and reset your password."
)


class LoginForm(auth_forms.AuthenticationForm):
    error_messages = {
        "invalid_login": (
            "That email address and password do not match an account. "
            "Check both, or reset your password."
        ),
        "inactive": "This account is disabled. Ask your administrator to enable it.",
    }


class PasswordResetForm(auth_forms.PasswordResetForm):
    """Django's form; the link in the email is built from SITE_URL, never the Host header."""

    def send_mail(self, subject_template_name, email_template_name, context, *args, **kwargs):
        path = reverse(
            "accounts:password_reset_confirm",
            kwargs={"uidb64": context["uid"], "token": context["token"]},
        )
        context = {**context, "link": absolute_url(path)}
        super().send_mail(subject_template_name, email_template_name, context, *args, **kwargs)


class SetPasswordForm(auth_forms.SetPasswordForm):
    pass


class PasswordChangeForm(auth_forms.PasswordChangeForm):
    """Django's form; a wrong current password counts towards the sign-in lockout."""

    error_messages = {
        **auth_forms.PasswordChangeForm.error_messages,
        "password_incorrect": WRONG_CURRENT_PASSWORD,
    }

    def __init__(self, user, *args, request, **kwargs):
        self.request = request
        super().__init__(user, *args, **kwargs)

    def clean_old_password(self):
        old_password = self.cleaned_data["old_password"]
        if not password_check(request=self.request, user=self.user, password=old_password):
            raise forms.ValidationError(
                self.error_messages["password_incorrect"], code="password_incorrect"
            )
        return old_password


class EmailChangeForm(forms.Form):
    email = forms.EmailField(
        label="New email address",
        max_length=254,
    )
    password = forms.CharField(
        label="Your current password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        help_text="So nobody else can change it from a computer you left signed in.",
    )

    def __init__(self, *args, user, request, **kwargs):
        self.user = user
        self.request = request
        super().__init__(*args, **kwargs)

    def clean_password(self):
        # Counts towards the sign-in lockout, like a wrong password at sign-in.
        password = self.cleaned_data["password"]
        if not password_check(request=self.request, user=self.user, password=password):
            raise forms.ValidationError(WRONG_CURRENT_PASSWORD)
        return password


class ReauthForm(forms.Form):
    password = forms.CharField(
        label="Your password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password", "autofocus": True}),
    )
