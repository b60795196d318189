"""What the apps above delivery hand it: delivery never imports them (docs/architecture.md).

An app registers its functions in its AppConfig.ready(), so every registry is complete
before a task runs or a command starts.
"""

from collections.abc import Callable

_pause_checks: list[Callable[[], bool]] = []
_sweep_checks: list[Callable[[], str]] = []


def register_pause_check(check: Callable[[], bool]) -> None:
    """`check()` is True while nothing may be sent (operations: maintenance mode).

    The send task claims nothing then: the mail waits, queued.
    """
    if check not in _pause_checks:
        _pause_checks.append(check)


def sending_paused() -> bool:
    return any(check() for check in _pause_checks)


def register_sweep_check(check: Callable[[], str]) -> None:
    """`check()` runs after every sweep of `manage.py delivery_sweep` (the sweep without
    Celery beat); it returns a line for the command's output, or "" for none."""
    if check not in _sweep_checks:
        _sweep_checks.append(check)


def sweep_checks_run() -> list[str]:
    return [line for check in _sweep_checks if (line := check())]
