import os

from celery import Celery
from celery.signals import worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.dev")

# How often the delivery engine's sweep runs: it dispatches events accepted
# while the broker was down and re-queues deliveries that are due or whose
# worker died.
SWEEP_SECONDS = 30
# How often data retention runs (roll-ups, then deleting what is past its period);
# each run stops after RETENTION_TIME_BUDGET and the next goes on.
RETENTION_SECONDS = 600

app = Celery("postmaster")
app.config_from_object("django.conf:settings", namespace="CELERY")
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


@worker_init.connect
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
