"""The notification email: rendered once per event, encoded once per reason.

Each message is multipart (text and HTML, from templates/email/, with a
template per event type where one exists), says what happened in its
subject ("[Payments / deploy-prod] Pipeline failed"), links to the run and
says in its footer why the recipient gets it. A delivery's own headers (To
and its stable Message-ID) are put in front of bytes shared by every
recipient with the same reason, so fanning an event out to thousands of
people costs one rendering, not thousands.
"""

import email.policy
from email.message import EmailMessage
from email.utils import formatdate

from django.template.loader import render_to_string, select_template
from django.utils.encoding import punycode

from apps.delivery.models import Delivery, Event
from apps.mailsettings.models import SmtpSettings
from apps.pipelines.models import EventType, Level

HEADLINES = {
    EventType.PIPELINE_STARTED: "Pipeline {pipeline} started",
    EventType.PIPELINE_SUCCEEDED: "Pipeline {pipeline} succeeded",
    EventType.PIPELINE_FAILED: "Pipeline {pipeline} failed",
    EventType.PIPELINE_PAUSED: "Pipeline {pipeline} is paused",
    EventType.PIPELINE_ABORTED: "Pipeline {pipeline} was aborted",
    EventType.STAGE_STARTED: "Stage {stage} of pipeline {pipeline} started",
    EventType.STAGE_SUCCEEDED: "Stage {stage} of pipeline {pipeline} succeeded",
    EventType.STAGE_FAILED: "Stage {stage} of pipeline {pipeline} failed",
    EventType.APPROVAL_REQUESTED: "Pipeline {pipeline} is waiting for an approval",
}
LEVEL_COLOURS = {Level.SUCCESS: "#198754", Level.WARNING: "#b35c00", Level.ERROR: "#dc3545"}


def wire_address(address: str) -> str:
    """The address as SMTP and the To header carry it (an IDN domain in punycode).

    Raises ValueError for a non-ASCII local part, which needs SMTPUTF8.
    """
    if address.isascii():
        return address
    local, _, domain = address.rpartition("@")
    if not local.isascii():
        raise ValueError(f"{address} has non-ASCII characters before the @; it cannot be sent.")
    return f"{local}@{punycode(domain)}"


def _context(event: Event, reason: str, test: bool) -> dict:
    pipeline = event.pipeline
    headline = HEADLINES[event.event_type].format(
        pipeline=pipeline.name, stage=f"“{event.stage}”" if event.stage else ""
    )
    return {
        "event": event,
        "pipeline": pipeline,
        "project": event.project,
        "headline": " ".join(headline.split()),
        "level": event.get_level_display(),
        "level_colour": LEVEL_COLOURS.get(event.level, "#6c757d"),
        "reason": reason,
        "test": test,
    }


def _render(event: Event, reason: str, test: bool) -> tuple[str, str, str]:
    """(subject, text, html) from the event type's templates, else the generic ones."""
    context = _context(event, reason, test)
    subject = render_to_string("email/notification_subject.txt", context)
    parts = [
        select_template([f"email/{event.event_type}.{ext}", f"email/notification.{ext}"]).render(
            context
        )
        for ext in ("txt", "html")
    ]
    return " ".join(subject.split()), *parts


class MessageBuilder:
    """Builds the bytes of each delivery's message, from one SMTP settings' From.

    Renders and encodes once per (event, reason) and caches it: keep one
    builder for a batch.
    """

    def __init__(self, smtp_settings: SmtpSettings, *, test: bool = False):
        self.from_header = smtp_settings.from_header
        self.test = test
        # One Date for the batch: formatting it per message is wasted work.
        self.date = formatdate(usegmt=True)
        self._shared: dict[tuple[int | None, str], bytes] = {}

    def shared_bytes(self, event: Event, reason: str) -> bytes:
        key = (event.pk, reason)
        if key not in self._shared:
            subject, text, html = _render(event, reason, self.test)
            message = EmailMessage(policy=email.policy.SMTP)
            message["Subject"] = subject
            message["From"] = self.from_header
            message["Date"] = self.date
            # Tells auto-responders (out of office) not to answer a notification.
            message["Auto-Submitted"] = "auto-generated"
            message.set_content(text)
            message.add_alternative(html, subtype="html")
            self._shared[key] = message.as_bytes()
        return self._shared[key]

    def message_bytes(self, delivery: Delivery) -> bytes:
        """The whole message for one delivery: its own To and Message-ID, then the shared part."""
        own = f"To: {wire_address(delivery.address)}\r\nMessage-ID: {delivery.message_id}\r\n"
        return own.encode("ascii") + self.shared_bytes(delivery.event, delivery.reason)
