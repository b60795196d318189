"""What the benchmark measures against: one tenant, its people, its pipelines and rules.

- `deploy-prod`: its failures go to the group “Everyone” (all members on), N people;
- `nightly`: its failures go to a rule's 10 typed addresses;
- `lint`: notifications off, so the events API is measured taking events in, not mailing.

The host's SMTP settings point at the sink. Rows are made in bulk: making
the world is not what is measured.
"""

import email
import email.policy
import secrets
from dataclasses import dataclass

from django.db import transaction

from apps.accounts.models import User
from apps.connections.models import Security, SmtpSettings
from apps.connections.selectors import host_smtp_settings_forget
from apps.delivery.messages import MessageBuilder
from apps.delivery.models import Delivery, Event
from apps.delivery.resolution import event_recipients
from apps.groups.models import UserGroup, UserGroupMember
from apps.pipelines.models import (
    EventType,
    Level,
    NotificationRule,
    NotificationRuleGroup,
    Override,
    Pipeline,
    ProjectApiToken,
    token_hash,
)
from apps.pipelines.selectors import TOKEN_PREFIX
from apps.tenancy.models import Membership, Organization, Project, Role, Tenant

SMALL_FAN_OUT = 10
FROM_EMAIL = "alerts@payments.example"


@dataclass(frozen=True)
class World:
    tenant: Tenant
    smtp_settings: SmtpSettings
    fan_out: Pipeline  # N recipients through a group
    small: Pipeline  # SMALL_FAN_OUT recipients, typed on the rule
    quiet: Pipeline  # notifications off
    token: str  # a raw project API token
    people: list[str]  # the group's addresses


@transaction.atomic
def world_create(*, recipients: int, sink_host: str, sink_port: int) -> World:
    tenant = Tenant.objects.create(name="Bench", slug="bench")
    organization = Organization.objects.create(tenant=tenant, name="Acme", slug="acme")
    project = Project.objects.create(
        tenant=tenant, organization=organization, name="Payments", slug="payments"
    )
    smtp_settings = SmtpSettings.objects.create(
        name="Benchmark sink",
        host=sink_host,
        port=sink_port,
        security=Security.NONE,
        from_email=FROM_EMAIL,
        from_name="Payments Alerts",
        timeout=30,
        password=None,
    )
    host_smtp_settings_forget()

    people = [f"person{n:05d}@people.example" for n in range(recipients)]
    users = User.objects.bulk_create(
        [
            User(email=address, full_name=f"Person {n}", password="!")
            for n, address in enumerate(people)
        ],
        batch_size=1000,
    )
    Membership.objects.bulk_create(
        [Membership(tenant=tenant, user=user, role=Role.MEMBER) for user in users],
        batch_size=1000,
    )
    everyone = UserGroup.objects.create(tenant=tenant, name="Everyone", notify_all_members=True)
    UserGroupMember.objects.bulk_create(
        [UserGroupMember(tenant=tenant, group=everyone, user=user) for user in users],
        batch_size=1000,
    )

    def pipeline(name: str, slug: str, **fields) -> Pipeline:
        return Pipeline.objects.create(
            tenant=tenant, project=project, name=name, slug=slug, **fields
        )

    def rule(on: Pipeline, name: str, addresses: list[str]) -> NotificationRule:
        return NotificationRule.objects.create(
            tenant=tenant,
            project=project,
            pipeline=on,
            name=name,
            event_types=[EventType.PIPELINE_FAILED],
            addresses=addresses,
        )

    fan_out = pipeline("Deploy prod", "deploy-prod")
    NotificationRuleGroup.objects.create(
        tenant=tenant, rule=rule(fan_out, "Everyone on failures", []), group=everyone
    )
    small = pipeline("Nightly", "nightly")
    rule(small, "On call", [f"oncall{n}@team.example" for n in range(SMALL_FAN_OUT)])
    quiet = pipeline("Lint", "lint", notifications=Override.OFF)

    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    ProjectApiToken.objects.create(
        tenant=tenant, project=project, name="Benchmark", prefix=raw[:10], hash=token_hash(raw)
    )
    return World(tenant, smtp_settings, fan_out, small, quiet, raw, people)


def event_body(pipeline: Pipeline, run: int) -> dict:
    """What a CI system posts to the events API when a run fails."""
    return {
        "pipeline": pipeline.slug,
        "event_type": EventType.PIPELINE_FAILED,
        "level": Level.ERROR,
        "run_id": str(run),
        "run_url": f"https://ci.example.com/{pipeline.slug}/runs/{run}",
        "message": "Migration 0042 failed: column “amount” cannot be null.",
    }


def event_create(pipeline: Pipeline, run: int) -> Event:
    """An event stored as the API stores it, but not dispatched (for resolution and shapes)."""
    body = event_body(pipeline, run)
    del body["pipeline"]
    return Event.objects.create(
        tenant=pipeline.tenant, project=pipeline.project, pipeline=pipeline, **body
    )


# Stand-ins in the sample message, replaced by each message's own.
SAMPLE_ADDRESS = "person-sample@people.example"
SAMPLE_MESSAGE_ID = "<sample.0123456789abcdef@payments.example>"
# Headers django-post-office writes itself (or per message).
OWN_HEADERS = {"to", "message-id", "from", "subject", "date", "mime-version", "content-type"}


@dataclass(frozen=True)
class MessageShape:
    """Postmaster's notification to one of the group's members, for the others to send too."""

    from_email: str
    from_header: str
    sample: bytes
    # For django-post-office: its parts and its other headers.
    subject: str
    text: str
    html: str
    headers: dict[str, str]

    def message_bytes(self, address: str, message_id: str) -> bytes:
        """The sample, to `address` under `message_id`."""
        return self.sample.replace(SAMPLE_ADDRESS.encode(), address.encode(), 1).replace(
            SAMPLE_MESSAGE_ID.encode(), message_id.encode(), 1
        )


def message_shape(world: World) -> MessageShape:
    """Render the fan-out's message as the engine does, and take it apart for django-post-office."""
    event = Event.objects.select_related("tenant", "pipeline", "project").get(
        pk=event_create(world.fan_out, 1).pk
    )
    recipient = event_recipients(event)[0]
    delivery = Delivery(
        event=event,
        address=SAMPLE_ADDRESS,
        user_id=recipient.user_id,
        reason=recipient.reason,
        message_id=SAMPLE_MESSAGE_ID,
    )
    sample = MessageBuilder(world.smtp_settings).message_bytes(delivery)
    parsed = email.message_from_bytes(sample, policy=email.policy.default)
    return MessageShape(
        from_email=world.smtp_settings.from_email,
        from_header=world.smtp_settings.from_header,
        sample=sample,
        subject=str(parsed["Subject"]),
        text=parsed.get_body(("plain",)).get_content(),
        html=parsed.get_body(("html",)).get_content(),
        headers={k: str(v) for k, v in parsed.items() if k.lower() not in OWN_HEADERS},
    )
