"""The URL providers post to, mounted at `webhooks/` by config/urls.py (no sign-in)."""

from django.urls import path

from apps.webhooks.receivers import tracking_view

app_name = "webhooks_receiver"

urlpatterns = [
    path("<uuid:public_id>/<str:provider>/tracking/", tracking_view, name="tracking"),
]
