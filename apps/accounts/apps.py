from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "apps.accounts"
    label = "accounts"
    verbose_name = "Accounts"

    def ready(self):
        from axes.signals import user_locked_out

        from apps.accounts import reauth  # noqa: F401 (connects the sign-in receiver)
        from apps.accounts.lockout import record_lockout

        user_locked_out.connect(record_lockout, dispatch_uid="accounts.record_lockout")
