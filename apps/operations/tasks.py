from celery import shared_task

from apps.operations.services import failure_alerts_check


@shared_task
def failure_alerts_check_task() -> None:
    failure_alerts_check()
