"""`manage.py provider_standin`: the providers' stand-in for the demo (apps.demo.standin)."""

import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from apps.demo.standin import ProviderStandin


def _address(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit():
        raise CommandError(f"Give the relay as host:port, like 127.0.0.1:1025 (not {value!r}).")
    return host, int(port)


class Command(BaseCommand):
    help = (
        "Answer the send APIs of Amazon SES, Mailgun, SendGrid, Postmark, Brevo and Mailjet "
        "locally (point a provider connection's API URL at it), optionally relaying each "
        "accepted message to an SMTP server such as the mail catcher."
    )

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=settings.PROVIDER_STANDIN_PORT)
        parser.add_argument(
            "--relay", default="", help="host:port of an SMTP server, e.g. 127.0.0.1:1025"
        )

    def handle(self, *args, host, port, relay, **options):
        try:
            standin = ProviderStandin(host, port, relay=_address(relay) if relay else None)
        except OSError as error:
            raise CommandError(f"Cannot listen on {host}:{port}: {error.strerror}.") from None
        standin.start()
        self.stdout.write(
            f"Provider stand-in on {standin.url}" + (f", relaying to {relay}" if relay else "")
        )
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
        finally:
            standin.stop()
