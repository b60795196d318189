from django.apps import AppConfig


class GroupsConfig(AppConfig):
    name = "apps.groups"
    label = "groups"
    verbose_name = "User groups"

    def ready(self):
        from apps.groups.selectors import user_group_list
        from apps.tenancy.dashboard import DASHBOARD_ROWS, register_dashboard_context

        register_dashboard_context(
            lambda tenant: {"groups": list(user_group_list(tenant=tenant)[:DASHBOARD_ROWS])}
        )
