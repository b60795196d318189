from django.urls import path

from apps.mailcatcher import views

app_name = "mailcatcher"

urlpatterns = [
    path("", views.message_list, name="list"),
    path("<int:pk>/", views.message_detail, name="detail"),
    path("<int:pk>/html/", views.message_html, name="html"),
    path("delete-all/", views.message_delete_all, name="delete_all"),
]
