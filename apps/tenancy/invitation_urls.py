"""The invitation link, outside `/t/<slug>/`: the invited person is not signed in yet."""

from django.urls import path

from apps.tenancy import views

app_name = "invitations"

urlpatterns = [
    path("<str:token>/", views.invitation_accept, name="accept"),
]
