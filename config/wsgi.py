import os

from django.core.wsgi import get_wsgi_application

from apps.core.checks import startup_check

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.dev")
application = get_wsgi_application()
# Production refuses to serve with the demo's accounts or keys that cannot
# decrypt what is stored (apps/core/checks.py); development skips this.
startup_check()
