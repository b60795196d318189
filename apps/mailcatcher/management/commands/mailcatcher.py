import logging
import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.urls import reverse

from apps.mailcatcher.server import catcher_start


class Command(BaseCommand):
    help = "Run the local mail catcher: an SMTP server that keeps every message it receives."

    def add_arguments(self, parser):
        parser.add_argument(
            "--host",
            default=settings.MAILCATCHER_HOST,
            help="Address to listen on (default: %(default)s).",
        )
        parser.add_argument(
            "--port",
            type=int,
            default=settings.MAILCATCHER_PORT,
            help="Port to listen on (default: %(default)s).",
        )

    def handle(self, *args, host, port, **options):
        # aiosmtpd logs every SMTP command line, and a deprecation warning
        # on every AUTH; one line per caught message (ours, from
        # apps.mailcatcher.server) is what a developer wants to read.
        logging.getLogger("mail.log").setLevel(logging.ERROR)
        stopping = threading.Event()
        # Installed before the server starts, so SIGTERM never finds the
        # server up without a clean way down.
        previous = signal.signal(signal.SIGTERM, lambda *_: stopping.set())
        try:
            controller = self._start(host, port)
            self.stdout.write(
                f"Mail catcher listening on smtp://{host}:{port}; caught mail is shown "
                f"at {reverse('mailcatcher:list')}. Press Ctrl-C to stop."
            )
            try:
                while not stopping.wait(0.5):
                    pass
            except KeyboardInterrupt:
                pass
            finally:
                controller.stop()
        finally:
            signal.signal(signal.SIGTERM, previous)
        self.stdout.write("Mail catcher stopped.")

    def _start(self, host, port):
        try:
            return catcher_start(host=host, port=port)
        except OSError as error:
            raise CommandError(
                f"Cannot listen on {host}:{port} ({error.strerror or error}). "
                "Stop whatever uses that port, or pass another one with --port."
            ) from error
