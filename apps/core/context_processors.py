from django.conf import settings


def portal(request):
    return {"mailcatcher_enabled": settings.MAILCATCHER_ENABLED}
