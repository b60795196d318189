"""The delivery log: included by apps/tenancy/urls.py at `t/<tenant_slug>/delivery/`."""

from django.urls import path

from apps.delivery import views

app_name = "delivery"

urlpatterns = [
    path("", views.delivery_log_view, name="log"),
    path("<int:pk>/resend/", views.delivery_resend_view, name="resend"),
    path("events/<int:pk>/", views.event_detail, name="event_detail"),
    path("events/<int:pk>/progress/", views.event_progress_view, name="event_progress"),
    path(
        "events/<int:pk>/resend-failed/",
        views.event_resend_failed_view,
        name="event_resend_failed",
    ),
]
