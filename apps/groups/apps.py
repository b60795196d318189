from django.apps import AppConfig


class GroupsConfig(AppConfig):
    name = "apps.groups"
    label = "groups"
    verbose_name = "User groups"

    def ready(self):
        from apps.groups.selectors import user_group_list
        from apps.groups.services import user_groups_leave
        from apps.tenancy.dashboard import DASHBOARD_ROWS, register_dashboard_context
        from apps.tenancy.hooks import register_tenant_left

        register_tenant_left(user_groups_leave)

        register_dashboard_context(
            lambda tenant: {"groups": list(user_group_list(tenant=tenant)[:DASHBOARD_ROWS])}
        )
