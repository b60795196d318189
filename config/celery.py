import os
from pathlib import Path

from celery import Celery, signals
from celery.beat import PersistentScheduler

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.dev")

# How often the delivery engine's sweep runs: it dispatches events accepted
# while the broker was down and re-queues deliveries that are due or whose
# worker died.
SWEEP_SECONDS = 30
# How often data retention runs (roll-ups, then deleting what is past its period);
# each run stops after RETENTION_TIME_BUDGET and the next goes on.
RETENTION_SECONDS = 600


class Scheduler(PersistentScheduler):
    """Celery beat's file-backed schedule, in CELERY_BEAT_SCHEDULE_FILENAME (var/ by
    default, never the repository root), whose directory is made when missing."""

    def setup_schedule(self):
        Path(self.schedule_filename).parent.mkdir(parents=True, exist_ok=True)
        super().setup_schedule()


app = Celery("postmaster")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.beat_scheduler = "config.celery:Scheduler"
app.conf.beat_schedule = {
    "delivery-sweep": {
        "task": "apps.delivery.tasks.events_sweep_task",
        "schedule": SWEEP_SECONDS,
        # A sweep that waited longer than this is replaced by the next one.
        "options": {"expires": SWEEP_SECONDS},
    },
    # Tenants whose mail is failing: a dashboard banner, and their admins emailed.
    "failure-alerts": {
        "task": "apps.operations.tasks.failure_alerts_check_task",
        "schedule": SWEEP_SECONDS * 2,
        "options": {"expires": SWEEP_SECONDS * 2},
    },
    "data-retention": {
        "task": "apps.operations.tasks.data_retention_run_task",
        "schedule": RETENTION_SECONDS,
        "options": {"expires": RETENTION_SECONDS},
    },
}
# Publishing retries once, at once (on a fresh connection: enough when the
# broker restarted). With the broker down, accepting an event (which queues
# its dispatch) must not hang: the event is stored and the sweep
# dispatches it later.
app.conf.task_publish_retry_policy = {"max_retries": 1, "interval_start": 0}
app.autodiscover_tasks()


@signals.worker_init.connect
def worker_startup_check(**kwargs):
    """A production worker refuses to start on what stops the web start (apps/core/checks.py)."""
    # Imported here: this module loads with the settings, before the apps.
    from django.core.exceptions import ImproperlyConfigured

    from apps.core.checks import startup_check

    try:
        startup_check()
    except ImproperlyConfigured as refusal:
        # Celery logs a signal handler's exception and goes on: leave instead.
        raise SystemExit(str(refusal)) from None


@signals.task_prerun.connect
def _log_context_enter(task=None, args=None, kwargs=None, **_):
    from apps.core.logging import log_context_set, task_context

    task.request.log_context_token = log_context_set(**task_context(task, args, kwargs))


@signals.task_postrun.connect
def _log_context_leave(task=None, **_):
    from apps.core.logging import log_context_reset

    token = getattr(task.request, "log_context_token", None)
    if token is not None:
        log_context_reset(token)


@signals.task_postrun.connect
def _metrics_flush(**_):
    """The task's message counts, added to the shared totals /metrics/ reports."""
    from apps.delivery.metrics import messages_flush

    messages_flush()
