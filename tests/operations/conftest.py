"""The operations tests' world: a real SMTP sink as the host's server, tasks run inline."""

import pytest

from apps.connections.selectors import host_smtp_settings_forget
from tests.connections.smtp.factories import SmtpSettingsFactory

# The delivery engine's test settings (autouse) and inline tasks, as in its own tests.
from tests.delivery.conftest import _engine_settings, eager  # noqa: F401
from tests.smtp_servers import Sink, sink_server


@pytest.fixture
def host_sink():
    return Sink()


@pytest.fixture
def host_server(db, host_sink, host_mailer):
    """A real SMTP server as the host's settings: notifications and Django's own mail go there."""
    with sink_server(host_sink) as server:
        SmtpSettingsFactory(
            host=server.host,
            port=server.port,
            from_email="postmaster@host.example",
            from_name="Postmaster",
        )
        host_smtp_settings_forget()
        yield server
