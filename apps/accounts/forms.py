from django.contrib.auth import forms as auth_forms


class LoginForm(auth_forms.AuthenticationForm):
    error_messages = {
        "invalid_login": (
            "That email address and password do not match an account. "
            "Check both, or reset your password."
        ),
        "inactive": "This account is disabled. Ask your administrator to enable it.",
    }


class PasswordResetForm(auth_forms.PasswordResetForm):
    pass


class SetPasswordForm(auth_forms.SetPasswordForm):
    pass
