"""The unsubscribe links of notifications: mounted at `unsubscribe/` by config/urls.py."""

from django.urls import path

from apps.preferences import unsubscribe_views

app_name = "unsubscribe"

urlpatterns = [
    path("<str:token>/", unsubscribe_views.unsubscribe_link, name="link"),
]
