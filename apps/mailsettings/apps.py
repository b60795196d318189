from django.apps import AppConfig


class MailSettingsConfig(AppConfig):
    name = "apps.mailsettings"
    label = "mailsettings"
    verbose_name = "Email settings"
