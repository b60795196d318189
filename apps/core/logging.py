"""What each log line says about the work it belongs to: the Celery task and its ids.

Tasks take ids only (never a credential), so `event_id` and `tenant_id` are safe in
every line. With LOG_FORMAT=json they are fields of the line's JSON object.
"""

import inspect
import logging
from contextvars import ContextVar

_context: ContextVar[dict] = ContextVar("postmaster_log_context", default={})  # noqa: B039


def log_context_set(**values) -> object:
    """Add `values` to every log line from here on (in this thread); returns a reset token."""
    return _context.set({**_context.get(), **values})


def log_context_reset(token) -> None:
    _context.reset(token)


def task_context(task, args, kwargs) -> dict:
    """The task's name and its id arguments (`event_id`, `tenant_id`, `delivery_id`, …)."""
    context = {"task": task.name}
    try:
        bound = inspect.signature(task.run).bind(*args or (), **kwargs or {})
    except TypeError:
        return context
    for name, value in bound.arguments.items():
        if name.endswith("_id") and isinstance(value, int):
            context[name] = value
    return context


class ContextFilter(logging.Filter):
    """Puts the current context on each record (what the record says itself wins)."""

    def filter(self, record):
        for name, value in _context.get().items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True
