# The delivery engine's settings and `eager`, for the demo's end-to-end delivery (test_delivery.py).
from tests.delivery.conftest import _engine_settings, eager  # noqa: F401  (fixtures)
