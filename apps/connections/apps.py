from django.apps import AppConfig


class ConnectionsConfig(AppConfig):
    """How mail leaves: SMTP settings, email-service providers, OAuth2 sign-in for SMTP,
    primary and failover, the network guard, the transports and the test email."""

    name = "apps.connections"
    label = "connections"
    # The admin index heads it as before the three apps were one.
    verbose_name = "Email settings"

    def ready(self):
        from apps.connections.selectors import effective_smtp_settings
        from apps.tenancy.dashboard import register_dashboard_context

        register_dashboard_context(
            lambda tenant: {"email_settings_source": effective_smtp_settings(tenant)[1]}
        )
