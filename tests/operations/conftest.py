"""The operations tests' world: a real SMTP sink as the host's server, tasks run inline."""

import pytest

from apps.mailsettings.selectors import host_smtp_settings_forget
from config.celery import app
from tests.mailsettings.factories import SmtpSettingsFactory
from tests.smtp_servers import Sink, sink_server


@pytest.fixture(autouse=True)
def _engine_settings(settings):
    # Retries are due at once and a silent server is given up quickly.
    settings.DELIVERY_RETRY_DELAY = 0
    settings.DELIVERY_SMTP_TIMEOUT = 0.5


@pytest.fixture
def eager():
    """Tasks run inline, as without a broker (even when the suite runs with one)."""
    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = before


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
