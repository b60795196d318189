"""Queueing the engine's tasks without ever failing the caller.

When the broker cannot be reached, the work is left in the database (an
undispatched event, a due delivery) and the periodic sweep queues it again.
"""

import logging

logger = logging.getLogger(__name__)


def task_delay(name: str, *ids: int) -> bool:
    """Queue `apps.delivery.tasks.<name>(*ids)`; False (logged) when it could not be."""
    from apps.delivery import tasks  # the tasks import the services, which import this

    try:
        getattr(tasks, name).delay(*ids)
    except Exception:
        # Typically the broker is down (or, run eagerly, the task failed).
        logger.exception("%s%s did not run now; the periodic sweep will retry it.", name, ids)
        return False
    return True
