"""The delivery engine's test world (tests/delivery/conftest.py), for unsubscribe and suppressions.

`sink` and `mail_server` (a real SMTP server as the host's settings),
`payments` and its `deploy_prod` pipeline, `eager`, and the engine's quick
retry settings.
"""

from tests.delivery.conftest import (  # noqa: F401 (fixtures)
    _engine_settings,
    deploy_prod,
    eager,
    mail_server,
    payments,
    sink,
)
