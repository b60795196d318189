from django.apps import AppConfig


class DemoConfig(AppConfig):
    """Development only: installed when settings.DEMO_ENABLED is on (dev and test), never in
    production. The demo seed, the providers' stand-in: what lets a newcomer try Postmaster."""

    name = "apps.demo"
    label = "demo"
