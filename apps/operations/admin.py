from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect

from apps.operations.forms import MaintenanceModeForm
from apps.operations.models import MAINTENANCE_ID, MaintenanceMode
from apps.operations.services import maintenance_update


@admin.register(MaintenanceMode)
class MaintenanceModeAdmin(admin.ModelAdmin):
    """The maintenance switch: one row, changed through `maintenance_update` (audited)."""

    form = MaintenanceModeForm
    fields = ["is_on", "message"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        # One row: the list is its change page.
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        MaintenanceMode.objects.get_or_create(pk=MAINTENANCE_ID)
        return redirect("admin:operations_maintenancemode_change", MAINTENANCE_ID)

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "show_save_and_add_another": False,
            "show_save_and_continue": False,
        }
        return super().changeform_view(request, object_id, form_url, extra_context)

    def save_model(self, request, obj, form, change):
        maintenance_update(
            actor=request.user, is_on=obj.is_on, message=obj.message, request=request
        )
