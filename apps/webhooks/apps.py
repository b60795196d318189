import warnings

from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "apps.webhooks"
    label = "webhooks"
    verbose_name = "Delivery webhooks"

    def ready(self):
        # Anymail's SendGrid view warns on every request that anymail no longer tests
        # SendGrid; its tracking webhook still works, and the warning would fill the logs.
        from anymail.exceptions import AnymailNotSupportedWarning

        warnings.filterwarnings(
            "ignore",
            message="django-anymail has dropped official support for SendGrid",
            category=AnymailNotSupportedWarning,
        )
