import os

from django.core.asgi import get_asgi_application

from apps.core.checks import startup_check

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.dev")
application = get_asgi_application()
# Production refuses to serve with the demo's accounts or keys that cannot
# decrypt what is stored (apps/core/checks.py); development skips this.
startup_check()
