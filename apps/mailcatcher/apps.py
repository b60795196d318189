from django.apps import AppConfig


class MailCatcherConfig(AppConfig):
    name = "apps.mailcatcher"
    label = "mailcatcher"
    verbose_name = "Caught mail"
