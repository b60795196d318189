"""No text a tenant or a CI system types can add a header or a recipient to a message.

Property-based: subjects, From display names, project, pipeline and stage
names, event messages and rule reasons are generated with line breaks (CR,
LF, NUL, U+2028, U+0085, ...), encoded newlines and header-looking text.
Each notification and test email goes to a real SMTP server on 127.0.0.1;
what it received must have exactly the intended recipient, no header names
beyond the expected ones, and one Subject, From and To. Text may be refused
before sending (nothing received), never smuggled through.
"""

import email
import email.policy
import re

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.connections.smtp import send_test_email
from apps.connections.validators import one_line
from apps.delivery.messages import MessageBuilder
from apps.delivery.models import Delivery, Event
from apps.delivery.sending import Connection
from apps.pipelines.models import EventType, Level, Pipeline
from apps.tenancy.models import Organization, Project
from tests.connections.smtp.factories import SmtpSettingsFactory
from tests.smtp_servers import smtp_server

pytestmark = pytest.mark.django_db

TO = "ann@example.com"
FROM = "alerts@example.com"
NOTIFICATION_HEADERS = {
    "to",
    "message-id",
    "list-unsubscribe",
    "subject",
    "from",
    "date",
    "auto-submitted",
    "list-unsubscribe-post",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
}
TEST_EMAIL_HEADERS = {
    "subject",
    "from",
    "to",
    "date",
    "message-id",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
}
NASTY = [
    "\r",
    "\n",
    "\r\n",
    "\x00",
    "\u2028",
    "\u2029",
    "\u0085",
    "\x0b",
    "\x0c",
    "\x1c",
    "\x1d",
    "\x1e",
    "\t",
    "=?utf-8?q?=0d=0a?=",
    "=?utf-8?b?DQpCY2M6IGV2aWxAZXhhbXBsZS5jb20=?=",
    "%0d%0a",
    "\r\nBcc: evil@example.com",
    "\nX-Injected: yes",
    "\r\n\r\nbody",
    "\r\n.\r\n",
    "\nRCPT TO:<evil@example.com>",
    "Bcc: evil@example.com",
    "<evil@example.com>",
    ",evil@example.com",
    '"',
    "é",
    "日本",
]
nasty_text = st.lists(
    st.one_of(st.sampled_from(NASTY), st.text(max_size=8)), min_size=1, max_size=6
).map("".join)
FIELD = re.compile(rb"^([^\s:]+):", re.MULTILINE)


def header_block(content: bytes) -> bytes:
    return content.split(b"\r\n\r\n", 1)[0]


def check_received(received, expected_headers: set[str]) -> email.message.EmailMessage:
    """The one message a server received: our recipient, our headers, one of each."""
    assert received.rcpt_tos == [TO]
    head = header_block(received.content)
    names = [name.decode().lower() for name in FIELD.findall(head)]
    assert set(names) <= expected_headers, set(names) - expected_headers
    for name in ("subject", "from", "to"):
        assert names.count(name) == 1, (name, head)
    # Every header line either starts a field or continues one (folding whitespace).
    for line in head.split(b"\r\n"):
        assert FIELD.match(line) or line[:1] in (b" ", b"\t"), line
    message = email.message_from_bytes(received.content, policy=email.policy.default)
    assert [a.addr_spec for a in message["To"].addresses] == [TO]
    assert [a.addr_spec for a in message["From"].addresses] == [FROM]
    for name in ("Subject", "From", "To"):
        value = str(message[name])
        assert not set(value) & {"\r", "\n", "\x00"}, (name, value)
    return message


@pytest.fixture(scope="module")
def server():
    with smtp_server() as running:
        yield running


def sample(tenant, *, project_name, pipeline_name, stage, message) -> Event:
    organization = Organization(tenant=tenant, name="Org", slug="org")
    project = Project(tenant=tenant, organization=organization, name=project_name, slug="p")
    pipeline = Pipeline(tenant=tenant, project=project, name=pipeline_name, slug="deploy")
    return Event(
        tenant=tenant,
        project=project,
        pipeline=pipeline,
        event_type=EventType.STAGE_FAILED,
        level=Level.ERROR,
        run_id="run-1",
        run_url="https://ci.example.com/runs/1",
        message=message,
        stage=stage,
        created_at=timezone.now(),
    )


@settings(
    max_examples=50,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    from_name=nasty_text,
    project_name=nasty_text,
    pipeline_name=nasty_text,
    stage=nasty_text,
    message=nasty_text,
    reason=nasty_text,
)
def test_a_notification_carries_no_injected_header_or_recipient(
    server, tenant, from_name, project_name, pipeline_name, stage, message, reason
):
    server.recorder.messages.clear()
    row = SmtpSettingsFactory.build(
        **server.connection, from_email=FROM, from_name=from_name, tenant=None
    )
    event = sample(
        tenant, project_name=project_name, pipeline_name=pipeline_name, stage=stage, message=message
    )
    delivery = Delivery(
        event=event, address=TO, reason=reason, message_id="<n.1@example.com>", tenant=tenant
    )
    try:
        data = MessageBuilder(row).message_bytes(delivery)
    except ValueError:
        return  # Refused while building: nothing sent.
    with Connection(row) as connection:
        connection.send(TO, data)

    [received] = server.messages
    check_received(received, NOTIFICATION_HEADERS)


@settings(
    max_examples=50,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(from_name=nasty_text, subject=nasty_text, body=nasty_text)
def test_a_test_email_carries_no_injected_header_or_recipient(server, from_name, subject, body):
    server.recorder.messages.clear()
    row = SmtpSettingsFactory.build(**server.connection, from_email=FROM, from_name=from_name)

    result = send_test_email(row, password="", to=TO, subject=subject, body=body)

    if not result.ok:
        assert server.messages == []
        return
    [received] = server.messages
    message = check_received(received, TEST_EMAIL_HEADERS)
    # What was typed arrives as text, on one line (an encoded word stays literal).
    assert message["Subject"] == one_line(subject)


@pytest.mark.parametrize(
    "address",
    ["ann@example.com\r\nBcc: evil@example.com", "ann@example.com\x00", "ann @example.com"],
)
def test_an_address_that_would_end_the_to_header_is_never_sent(server, tenant, address):
    server.recorder.messages.clear()
    row = SmtpSettingsFactory.build(**server.connection, from_email=FROM)
    event = sample(tenant, project_name="P", pipeline_name="Deploy", stage="s", message="m")
    delivery = Delivery(event=event, address=address, reason="r", message_id="<n.2@example.com>")

    with pytest.raises(ValueError, match="cannot be sent"):
        MessageBuilder(row).message_bytes(delivery)
    with Connection(row) as connection, pytest.raises(ValueError, match="cannot be sent"):
        connection.send(address, b"Subject: x\r\n\r\nbody\r\n")
    assert server.messages == []
