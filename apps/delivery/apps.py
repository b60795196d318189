from django.apps import AppConfig


class DeliveryConfig(AppConfig):
    name = "apps.delivery"
    label = "delivery"
    verbose_name = "Events and deliveries"

    def ready(self):
        from apps.delivery.charts import daily_chart
        from apps.delivery.selectors import delivery_daily_counts
        from apps.delivery.services import rule_test_send
        from apps.pipelines.hooks import register_rule_tester
        from apps.tenancy.dashboard import register_dashboard_context

        # Pipelines and tenancy stand below delivery: they get these as registered functions.
        register_rule_tester(rule_test_send)

        register_dashboard_context(
            lambda tenant: {"delivery_chart": daily_chart(delivery_daily_counts(tenant=tenant))}
        )
