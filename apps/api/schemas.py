"""What the events API takes and answers; every field documented for the OpenAPI schema.

Constraints live in the types so the schema states them: lengths, patterns,
enums. Every string is constrained, which also makes pydantic refuse lone
surrogates (the database could not store them).
"""

from datetime import datetime
from typing import Annotated

from ninja import Field, Schema
from pydantic import ConfigDict, StringConstraints, ValidationInfo, field_validator

from apps.delivery.models import DeliveryStatus
from apps.pipelines.models import EventType, Level

# These values reach email subjects and headers: one line, no control characters.
_CONTROL = r"\x00-\x1f\x7f-\x9f\u2028\u2029"
SINGLE_LINE = rf"^[^{_CONTROL}]*$"
# The same, with at least one visible character.
VISIBLE_LINE = rf"^[^{_CONTROL}]*[^\s{_CONTROL}][^{_CONTROL}]*$"
# The message is the email's body: line breaks are fine, NUL is not (PostgreSQL refuses it).
NO_NUL = r"^[^\x00]*$"
SLUG = r"^[-a-zA-Z0-9_]+$"
# An http(s) link with a host, in one piece. The control range matters beyond
# tidiness: NEL (U+0085) is white space to Python but not to the schema's
# ECMAScript regex, so excluding it keeps the two in agreement.
URL = rf"^https?://[^\s{_CONTROL}/?#]+[^\s{_CONTROL}]*$"
STAGE_EVENTS = [EventType.STAGE_STARTED, EventType.STAGE_SUCCEEDED, EventType.STAGE_FAILED]

# Values are stored as sent (never trimmed), so the schema is the whole rule and
# says exactly what is accepted.


def _line(max_length: int, *, required: bool):
    """One line of text; `required`: not empty, nor only spaces."""
    return Annotated[
        str,
        StringConstraints(
            min_length=1 if required else 0,
            max_length=max_length,
            pattern=VISIBLE_LINE if required else SINGLE_LINE,
        ),
    ]


class EventIn(Schema):
    model_config = ConfigDict(
        extra="forbid",
        title="Event",
        # Stated in the schema too, so clients (and schemathesis) know the rule.
        json_schema_extra={
            "if": {
                "properties": {"event_type": {"enum": [t.value for t in STAGE_EVENTS]}},
                "required": ["event_type"],
            },
            "then": {
                "properties": {"stage": {"minLength": 1, "pattern": VISIBLE_LINE}},
                "required": ["stage"],
            },
        },
    )

    pipeline: Annotated[str, StringConstraints(max_length=50, pattern=SLUG)] = Field(
        description="The pipeline's slug, as shown on its page in the portal; it must "
        "belong to the token's project.",
        examples=["deploy-prod"],
    )
    event_type: EventType = Field(
        description="What happened. `stage_*` events also need `stage`.",
        examples=[EventType.PIPELINE_FAILED],
    )
    level: Level = Field(
        description="How serious it is; the tenant's and the pipeline's notification "
        "settings decide which levels send email.",
        examples=[Level.ERROR],
    )
    run_id: _line(200, required=True) = Field(
        description="The run's identifier in your CI system (1 to 200 characters, one line).",
        examples=["4711"],
    )
    run_url: Annotated[str, StringConstraints(max_length=2000, pattern=URL)] = Field(
        description="A link to the run (http or https, at most 2000 characters); the "
        "email links to it.",
        examples=["https://ci.example.com/payments/deploy-prod/runs/4711"],
    )
    message: Annotated[str, StringConstraints(max_length=1000, pattern=NO_NUL)] = Field(
        "",
        description="A short message shown in the email (at most 1000 characters; line "
        "breaks allowed).",
        examples=["Migration 0042 failed: column “amount” cannot be null."],
    )
    stage: _line(200, required=False) = Field(
        "",
        description="The stage's name (at most 200 characters, one line). Required for "
        "`stage_started`, `stage_succeeded` and `stage_failed`; optional otherwise.",
        examples=["migrate"],
        validate_default=True,
    )
    idempotency_key: _line(200, required=True) | None = Field(
        None,
        description="Send the same key again within 24 hours (say, when retrying after a "
        "timeout) and the first event is answered, with `repeat: true`; nothing new is created.",
        examples=["deploy-prod-4711-failed"],
    )

    @field_validator("stage")
    @classmethod
    def _stage_for_stage_events(cls, stage: str, info: ValidationInfo) -> str:
        if not stage.strip() and info.data.get("event_type") in STAGE_EVENTS:
            raise ValueError("is required for stage events: name the stage")
        return stage


class EventAccepted(Schema):
    id: int = Field(description="The event's id.", examples=[1234])
    status_url: str = Field(
        description="Where to follow its deliveries (`GET`, with the same token).",
        examples=["https://postmaster.example.com/api/v1/events/1234"],
    )
    repeat: bool = Field(
        description="True when the idempotency key was seen within 24 hours: this is the "
        "earlier event and nothing new was created.",
        examples=[False],
    )


class DeliveryCounts(Schema):
    total: int = Field(description="Every delivery of the event.")
    queued: int = Field(description="Waiting for their turn or for a retry.")
    sending: int = Field(description="Being handed to the mail server right now.")
    sent: int = Field(description="Accepted by the mail server.")
    failed: int = Field(description="Refused for good, or still undeliverable after retrying.")
    suppressed: int = Field(description="Not sent: the address is on the suppression list.")
    opted_out: int = Field(description="Not sent: the person turned these notifications off.")
    delivered: int = Field(description="Reported delivered by the email-service provider.")
    bounced: int = Field(description="Reported bounced by the email-service provider.")
    rejected: int = Field(description="Reported rejected by the email-service provider.")
    complained: int = Field(description="Reported marked as spam by the recipient.")
    unsubscribed: int = Field(description="Reported unsubscribed through the provider.")


class DeliveryOut(Schema):
    address: str = Field(description="The recipient's address.", examples=["ops@example.com"])
    status: DeliveryStatus = Field(description="Where the delivery is.")
    attempts: int = Field(description="How many times it was tried.")
    last_code: int | None = Field(description="The mail server's last SMTP reply code.")
    last_reply: str = Field(description="The mail server's last reply, as it said it.")
    sent_at: datetime | None = Field(
        description="When the mail server or email-service provider accepted it."
    )


class DeliveriesPage(Schema):
    limit: int = Field(description="The page size asked for.")
    offset: int = Field(description="How many deliveries this page skips.")
    items: list[DeliveryOut] = Field(description="The deliveries, oldest first.")


class EventOut(Schema):
    id: int
    pipeline: str = Field(description="The pipeline's slug.")
    event_type: EventType
    level: Level
    run_id: str
    run_url: str
    message: str
    stage: str
    created_at: datetime = Field(description="When the event was accepted.")
    dispatched_at: datetime | None = Field(
        description="When its recipients were worked out; null until then."
    )
    summary: str = Field(
        description="How far delivery has come, in words.",
        examples=["812 of 1,000 sent, 3 failed, 185 to go"],
    )
    running: bool = Field(
        description="True while recipients are still being worked out or deliveries are "
        "waiting or being sent; false once every delivery has its outcome."
    )
    counts: DeliveryCounts = Field(description="The deliveries by status.")
    deliveries: DeliveriesPage = Field(description="One page of deliveries (`limit`, `offset`).")


class FieldError(Schema):
    field: str = Field(description="The field that is wrong (`body` for the whole body).")
    message: str = Field(description="What is wrong with it, in plain words.")


class ErrorOut(Schema):
    detail: str = Field(description="What went wrong and what to do about it.")


class ValidationErrorOut(ErrorOut):
    errors: list[FieldError] = Field(description="Each field that is wrong, and why.")
