from django.apps import AppConfig


class OperationsConfig(AppConfig):
    name = "apps.operations"
    label = "operations"
    verbose_name = "Operations"

    def ready(self):
        from apps.operations import checks  # noqa: F401 (registers the demo-data check)
