"""The notification email: rendered once per event, encoded once per reason.

Each message is multipart (text and HTML, from templates/email/, with a
template per event type where one exists), says what happened in its
subject ("[Payments / deploy-prod] Pipeline failed"), links to the run and
says in its footer why the recipient gets it, with links to My
notifications and to unsubscribe (RFC 8058: `List-Unsubscribe` and
`List-Unsubscribe-Post` too).

Fanning an event out to thousands of people costs one rendering, not
thousands: the parts are rendered once per reason with placeholders where
the recipient's unsubscribe tokens go, and encoded (quoted-printable, which
works line by line) up to the footer's first link. Per delivery only its
own headers (To, its stable Message-ID, List-Unsubscribe) are made, its
tokens signed and the few footer lines encoded.
"""

import binascii
import email.policy
import secrets
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate

from django.conf import settings
from django.template.loader import render_to_string, select_template
from django.urls import NoReverseMatch, reverse
from django.utils.encoding import punycode
from django.utils.functional import cached_property

from apps.connections.models import SmtpSettings
from apps.connections.validators import one_line
from apps.delivery.models import Delivery, Event
from apps.pipelines.models import EventType, Level
from apps.preferences.unsubscribe import UnsubscribeScope, unsubscribe_token

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

    Raises ValueError for a non-ASCII local part, which needs SMTPUTF8, and
    for whitespace or control characters, which would end the header or command.
    """
    if any(character.isspace() or not character.isprintable() for character in address):
        raise ValueError(f"{address!r} has a space or control character; it cannot be sent.")
    if address.isascii():
        return address
    local, _, domain = address.rpartition("@")
    if not local.isascii():
        raise ValueError(f"{address} has non-ASCII characters before the @; it cannot be sent.")
    return f"{local}@{punycode(domain)}"


def site_url(path: str) -> str:
    """An absolute link for an email (SITE_URL): the engine runs without a request."""
    return settings.SITE_URL.rstrip("/") + path


def _my_notifications_url() -> str:
    try:
        return site_url(reverse("preferences:my_notifications"))
    except NoReverseMatch:  # Not installed (yet): the footer leaves the link out.
        return ""


def _context(event: Event, reason: str, test: bool, links: dict) -> dict:
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
        "tenant": event.tenant,
        **links,
    }


def _render(event: Event, reason: str, test: bool, links: dict) -> tuple[str, str, str]:
    """(subject, text, html) from the event type's templates, else the generic ones."""
    context = _context(event, reason, test, links)
    subject = render_to_string("email/notification_subject.txt", context)
    parts = [
        select_template([f"email/{event.event_type}.{ext}", f"email/notification.{ext}"]).render(
            context
        )
        for ext in ("txt", "html")
    ]
    # One line whatever the names and stage hold (CR, LF, NUL, U+2028, ...).
    return one_line(subject), *parts


def _scopes(event: Event) -> dict[UnsubscribeScope, int | None]:
    """What a recipient can unsubscribe from, narrowest first, with its id.

    The pipeline (not a rule test's unsaved sample), its project, the tenant.
    """
    scopes = {UnsubscribeScope.PIPELINE: event.pipeline.pk} if event.pipeline.pk else {}
    return scopes | {UnsubscribeScope.PROJECT: event.project_id, UnsubscribeScope.TENANT: None}


def _lines(text: str) -> bytes:
    """UTF-8 with CRLF line ends, the last line ended too (as quoted-printable wants)."""
    return b"".join(line + b"\r\n" for line in text.encode().splitlines())


def _qp(data: bytes) -> bytes:
    return binascii.b2a_qp(data, istext=True)


@dataclass(frozen=True)
class _Shared:
    """One (event, reason)'s message, split where the recipient's tokens go.

    `segments` are encoded bytes; between them go, encoded per delivery,
    the text part's and then the HTML part's `tails` (from the line of
    their first unsubscribe link on) with the tokens in place.
    """

    segments: tuple[bytes, bytes, bytes]
    tails: tuple[bytes, bytes]
    scopes: dict[UnsubscribeScope, int | None]


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
        self.my_notifications_url = _my_notifications_url()
        # Where each scope's token goes; random, so no event's text can contain one.
        nonce = secrets.token_hex(8)
        self._placeholders = {scope: f"tok{nonce}{scope}" for scope in UnsubscribeScope}
        self._shared: dict[tuple[int | None, str], _Shared] = {}
        # The link with the slot where a token goes (reversed once, not per message).
        self._slot = f"tok{nonce}"
        self._unsubscribe_url = site_url(reverse("unsubscribe:link", args=[self._slot]))

    def _links(self) -> dict:
        return {
            "my_notifications_url": self.my_notifications_url,
            "unsubscribe_urls": {
                scope.name.lower(): self._unsubscribe_url.replace(self._slot, placeholder)
                for scope, placeholder in self._placeholders.items()
            },
        }

    def _build(self, event: Event, reason: str) -> _Shared:
        scopes = _scopes(event)
        links = self._links()
        if UnsubscribeScope.PIPELINE not in scopes:
            del links["unsubscribe_urls"]["pipeline"]
        subject, text, html = _render(event, reason, self.test, links)
        # The batch's one skeleton with this subject, folded and encoded as the
        # email package would (RFC 2047 for non-ASCII): building a MIME message
        # per event cost three quarters of the time.
        skeleton = self._skeleton.replace(
            self._subject_line, email.policy.SMTP.fold("Subject", subject).encode("ascii"), 1
        )
        segments, tails = [], []
        for marker, part in zip(self._markers, (text, html), strict=True):
            before, _, skeleton = skeleton.partition(marker + b"\r\n")
            head, tail = self._split(_lines(part))
            segments.append(before + _qp(head))
            tails.append(tail)
        return _Shared((*segments, skeleton), tuple(tails), scopes)

    @cached_property
    def _markers(self) -> list[bytes]:
        return [f"part{secrets.token_hex(8)}".encode() for _ in range(2)]

    @cached_property
    def _subject_line(self) -> bytes:
        return f"Subject: subject{secrets.token_hex(8)}\r\n".encode()

    @cached_property
    def _skeleton(self) -> bytes:
        """The message with markers where the parts go and a placeholder subject.

        Its MIME boundaries can't occur in the parts: they are runs of "="
        that quoted-printable always encodes.
        """
        message = EmailMessage(policy=email.policy.SMTP)
        message["Subject"] = self._subject_line.decode().removeprefix("Subject: ").strip()
        message["From"] = self.from_header
        message["Date"] = self.date
        # Tells auto-responders (out of office) not to answer a notification.
        message["Auto-Submitted"] = "auto-generated"
        # RFC 8058: a POST to the List-Unsubscribe link unsubscribes, no page in between.
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        text_marker, html_marker = (marker.decode() for marker in self._markers)
        message.set_content(text_marker + "\n", cte="quoted-printable")
        message.add_alternative(html_marker + "\n", subtype="html", cte="quoted-printable")
        return message.as_bytes()

    def _split(self, part: bytes) -> tuple[bytes, bytes]:
        """(the lines before the first placeholder's, the rest)."""
        found = [part.find(p.encode()) for p in self._placeholders.values()]
        first = min((at for at in found if at >= 0), default=len(part))
        start = part.rfind(b"\n", 0, first) + 1
        return part[:start], part[start:]

    def shared(self, event: Event, reason: str) -> _Shared:
        key = (event.pk, reason)
        if key not in self._shared:
            self._shared[key] = self._build(event, reason)
        return self._shared[key]

    def message_bytes(self, delivery: Delivery) -> bytes:
        """The whole message for one delivery: its own headers and tokens in the shared parts."""
        event = delivery.event
        shared = self.shared(event, delivery.reason)
        tokens = {
            scope: unsubscribe_token(
                address=delivery.address,
                user_id=delivery.user_id,
                tenant_id=event.tenant_id,
                scope=scope,
                target_id=target_id,
            )
            for scope, target_id in shared.scopes.items()
        }
        # The mail program's Unsubscribe button: the narrowest scope there is.
        header_url = self._unsubscribe_url.replace(self._slot, next(iter(tokens.values())))
        own = (
            f"To: {wire_address(delivery.address)}\r\n"
            f"Message-ID: {delivery.message_id}\r\n"
            f"List-Unsubscribe: <{header_url}>\r\n"
        )
        tails = []
        for tail in shared.tails:
            for scope, token in tokens.items():
                tail = tail.replace(self._placeholders[scope].encode(), token.encode())
            tails.append(_qp(tail))
        first, middle, last = shared.segments
        return b"".join((own.encode("ascii"), first, tails[0], middle, tails[1], last))
