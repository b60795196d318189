from django.apps import AppConfig


class OperationsConfig(AppConfig):
    name = "apps.operations"
    label = "operations"
    verbose_name = "Operations"

    def ready(self):
        from apps.delivery.hooks import register_pause_check, register_sweep_check
        from apps.operations import checks  # noqa: F401 (registers the demo-data check)
        from apps.operations.selectors import maintenance_is_on
        from apps.operations.services import data_retention_sweep, failure_alerts_sweep

        # Delivery is below operations: it learns of maintenance mode and runs the failure
        # alerts and retention after `manage.py delivery_sweep` through these entries, never
        # an import.
        register_pause_check(maintenance_is_on)
        register_sweep_check(failure_alerts_sweep)
        register_sweep_check(data_retention_sweep)
