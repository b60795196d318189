from apps.api.views import api

app_name = "api"
urlpatterns = api.urls[0]
