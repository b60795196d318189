from celery import shared_task

from apps.operations.services import data_retention_run, failure_alerts_check


@shared_task
def failure_alerts_check_task() -> None:
    failure_alerts_check()


@shared_task
def data_retention_run_task() -> dict[str, int]:
    """Roll up and delete what is past retention (Celery beat); raises on failure."""
    return data_retention_run().deleted
