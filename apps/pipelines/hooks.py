"""What the apps above pipelines hand it: pipelines never imports them (docs/architecture.md).

A rule's Test button sends a sample event through the delivery engine, which stands above
pipelines: delivery registers the function that does it in its AppConfig.ready().
"""

from collections.abc import Callable

_rule_testers: list[Callable] = []


def register_rule_tester(tester: Callable) -> None:
    """`tester(rule=..., actor=..., request=...)` sends the rule's test and returns its result."""
    _rule_testers[:] = [tester]


def rule_test_run(*, rule, actor, request=None):
    (tester,) = _rule_testers  # delivery is always installed: exactly one is registered
    return tester(rule=rule, actor=actor, request=request)
