"""The signed-in user's own pages about notifications (included under /me/)."""

from django.urls import include, path

from apps.preferences import views

app_name = "preferences"

# Within one tenant the user is in (resolved by tenant_view, like the portal's pages).
tenant_patterns = [
    path("", views.my_tenant, name="my_tenant"),
    path("<slug:project_slug>/", views.my_project, name="my_project"),
]

urlpatterns = [
    path("notifications/", views.my_notifications, name="my_notifications"),
    path("notifications/<slug:tenant_slug>/", include(tenant_patterns)),
]
