"""Waiting on a condition, never on the clock: a test must pass on a busy machine."""

import time
from collections.abc import Callable


def wait_until(
    predicate: Callable[[], object], *, timeout: float = 30, every: float = 0.05, what: str = ""
):
    """Poll `predicate` until it answers something true, and return that answer.

    Fails (AssertionError) after `timeout` seconds, naming `what` was awaited. The
    deadline is generous on purpose: it only bounds a test that would otherwise hang.
    """
    deadline = time.monotonic() + timeout
    while True:
        answer = predicate()
        if answer:
            return answer
        if time.monotonic() > deadline:
            raise AssertionError(f"{what or 'the condition'} still not true after {timeout} s")
        time.sleep(every)
