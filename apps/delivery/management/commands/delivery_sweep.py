import signal
import threading

from django.core.management.base import BaseCommand
from django.utils import timezone

from apps.delivery.hooks import sweep_checks_run
from apps.delivery.queue import deliveries_next_due_anywhere
from apps.delivery.services import events_sweep
from config.celery import SWEEP_SECONDS


class Command(BaseCommand):
    help = (
        "Dispatch missed events and send due deliveries (retries included), check for "
        "tenants whose mail is failing (failure alerts) and, at most every few minutes, "
        "delete what is past its retention period, once or every --every seconds. Celery "
        "beat does this where a broker is set; without one, run this next to the portal so "
        "retries go out (it wakes up early for a retry due sooner)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--every",
            type=float,
            metavar="SECONDS",
            help=f"Keep sweeping at this interval (beat: {SWEEP_SECONDS}) until stopped.",
        )

    def handle(self, *args, every=None, **options):
        stopping = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stopping.set())
        while True:
            report = events_sweep()
            if report.events or report.tenants or every is None:
                self.stdout.write(
                    f"Swept: {len(report.events)} events to dispatch, "
                    f"{len(report.tenants)} tenants with mail to send."
                )
            # The checks the apps above registered (operations: failure alerts, retention).
            for line in sweep_checks_run():
                self.stdout.write(line)
            if every is None or stopping.wait(sweep_wait(every)):
                return


# Not sooner than this after a sweep, however soon the next retry is due.
SWEEP_MIN_WAIT = 0.5


def sweep_wait(every: float) -> float:
    """Seconds until the next sweep: `every`, or less when a retry falls due before.

    Without a broker nothing else sends a retry when it is due (no task
    queues itself for later), so the sweep wakes up for it.
    """
    due_at = deliveries_next_due_anywhere()
    if due_at is None:
        return every
    until_due = (due_at - timezone.now()).total_seconds() + 0.05
    return min(every, max(SWEEP_MIN_WAIT, until_due))
