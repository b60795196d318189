"""The delivery engine's test world: the Payments project, its deploy-prod pipeline, a real sink.

`sink` is the script of a real SMTP server on 127.0.0.1 (tests.smtp_servers.Sink);
`mail_server` starts it and makes it the host's SMTP settings, so every
tenant's mail goes there.
"""

import pytest

from apps.connections.selectors import host_smtp_settings_forget
from config.celery import app
from tests.connections.smtp.factories import SmtpSettingsFactory
from tests.delivery.engine import make_pipeline
from tests.factories import ProjectFactory
from tests.smtp_servers import Sink, sink_server


@pytest.fixture(autouse=True)
def _engine_settings(settings):
    # Retries are due at once and a stalled server is given up quickly.
    settings.DELIVERY_RETRY_DELAY = 0
    settings.CONNECTION_TIMEOUT = 0.5


@pytest.fixture
def eager():
    """Tasks run inline, as without a broker (even when the suite runs with one)."""
    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = before


@pytest.fixture
def sink():
    return Sink()


@pytest.fixture
def mail_server(db, sink):
    with sink_server(sink) as server:
        SmtpSettingsFactory(
            host=server.host,
            port=server.port,
            from_email="alerts@payments.example",
            from_name="Payments Alerts",
        )
        # Created directly, not through the service that forgets the cached "no host row".
        host_smtp_settings_forget()
        yield server


@pytest.fixture
def payments(tenant):
    return ProjectFactory(organization__tenant=tenant, name="Payments", slug="payments")


@pytest.fixture
def deploy_prod(payments):
    return make_pipeline(payments, "Deploy prod", "deploy-prod")
