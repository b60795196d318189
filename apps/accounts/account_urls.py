"""The signed-in user's account pages (included under /me/account/)."""

from django.urls import path

from apps.accounts import views

app_name = "account"

urlpatterns = [
    path("", views.account, name="overview"),
    path("password/", views.PasswordChangeView.as_view(), name="password_change"),
    path("email/", views.email_change, name="email_change"),
    path("email/confirm/<str:token>/", views.email_confirm, name="email_confirm"),
    path("confirm-password/", views.reauth, name="reauth"),
]
