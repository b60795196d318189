"""The delivery engine's writes: dispatching events, sending, resending, testing a rule.

An event is dispatched once: its recipients become one `Delivery` each.
Workers then claim due deliveries under a lease (a crashed worker's return
to the queue when its lease runs out), send each claimed batch over one SMTP
connection through the tenant's effective settings, and record every attempt
the moment it is known. The lease is renewed between messages and every
exchange with a server is bounded to a thirtieth of it (`exchange_timeout`),
so a living worker never loses a delivery to another while sending it; an
outcome learned after a lease was lost anyway is still recorded.

What can be sent twice, always under the same Message-ID (so a receiver can
drop the copy): the message in flight when its worker died; a message the
server kept although its acknowledgement did not arrive in time (a timeout
after the final dot, a limit of SMTP itself); and, after PostgreSQL itself
crashed, the messages whose outcomes were in its last fraction of a second
(`_fast_commits`). Temporary failures are retried with exponential backoff
and jitter until DELIVERY_MAX_AGE; permanent ones (5xx) fail at once. A
message that cannot be built or sent for any other reason fails alone; one
claimed DELIVERY_MAX_CLAIMS times without an outcome fails too.
"""

import contextlib
import logging
import math
import random
import secrets
import smtplib
import time
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import psycopg
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.mail.utils import DNS_NAME
from django.db import connection, transaction
from django.db.models import F, Subquery, prefetch_related_objects
from django.db.models.functions import Greatest
from django.utils import timezone
from django.utils.encoding import punycode

from apps.audit.services import audit_record
from apps.connections.providers import Outcome as ProviderOutcome
from apps.connections.providers import ProviderErrorClass, ProviderSendError
from apps.connections.services import TestEmailLimitError, smtp_test_email_limit_check
from apps.connections.smtp import Classification, Outcome, classify, describe
from apps.delivery.messages import MessageBuilder
from apps.delivery.metrics import message_counted
from apps.delivery.models import (
    FINAL_STATUSES,
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
    Event,
)
from apps.delivery.queue import deliveries_due_q
from apps.delivery.ratelimit import rate_available_at, rate_reserve, rate_return
from apps.delivery.resolution import (
    OPTED_OUT,
    Recipient,
    event_recipients,
    recipients_of,
    rules_expand,
)
from apps.delivery.scheduling import task_delay
from apps.delivery.sending import (
    Carrier,
    ConnectError,
    ReconnectsExhaustedError,
    carriers_for,
)
from apps.delivery.throttling import throttle_reply, throttle_set, throttled_until
from apps.pipelines.models import EventType, Level, NotificationRule, Pipeline
from apps.tenancy.models import Tenant

logger = logging.getLogger(__name__)

# Undispatched events younger than this are left to their own dispatch task.
SWEEP_GRACE = timedelta(seconds=10)
# Events the sweep queues at once; the next sweep takes the rest.
SWEEP_EVENTS = 1000
# Events one dispatch task reads (and dispatches in one transaction) at a time.
DISPATCH_CHUNK = 200
# Deliveries one dispatch transaction creates before it commits (a big event's all at once).
DISPATCH_DELIVERIES = 5000
# While a tenant's dispatch task is queued, new events join it for this long at most.
DISPATCH_MARK_SECONDS = 2
NOT_CONFIGURED = "No SMTP settings: neither the tenant nor the host has set up outgoing mail."
# Errors sending one message can raise (ValueError: an address SMTP cannot carry).
SEND_ERRORS = (smtplib.SMTPException, OSError, ValueError)


# Dispatch ---------------------------------------------------------------------------------


def _message_id_domain(tenant: Tenant) -> str:
    carriers = carriers_for(tenant)
    if not carriers:
        return DNS_NAME.get_fqdn()
    return punycode(carriers[0].settings.from_email.rpartition("@")[2])


def new_message_id(domain: str, prefix: str) -> str:
    """A unique Message-ID, made before the delivery is stored and kept for every retry."""
    return f"<{prefix}.{secrets.token_hex(10)}@{domain}>"


def event_dispatch(*, event_id: int) -> int | None:
    """Turn an event's recipients into deliveries, once; schedule their sending.

    How many deliveries were created (suppressed ones included), or None
    when there was nothing to do: already dispatched, or its tenant is
    disabled (the event then waits; the sweep dispatches it once enabled).
    """
    dispatched = _dispatch([event_id], {})
    if not dispatched.events:
        return None
    _send_soon_after_commit(dispatched.tenant_id, dispatched.to_send)
    return dispatched.created


@dataclass
class _Dispatched:
    tenant_id: int | None = None
    events: int = 0
    created: int = 0
    to_send: int = 0
    # The last event looked at: the caller goes on after it.
    last: int = 0


def _dispatch(event_ids: list[int], memo: dict) -> _Dispatched:
    """The deliveries of these events (those still undispatched), in one transaction.

    Oldest first. Stops after the event that takes the transaction past
    DISPATCH_DELIVERIES, so a burst of big events commits (and starts
    sending) as it goes; `last` says where it stopped. `memo`: what the
    events of one task share (see `event_recipients`), and the Message-ID
    domain per tenant. Sending is up to the caller.
    """
    dispatched = _Dispatched(last=event_ids[-1])
    with transaction.atomic():
        events = (
            Event.objects.select_for_update(of=("self",))
            .select_related("tenant", "project", "pipeline")
            .filter(pk__in=event_ids)
            .order_by("pk")
        )
        now = timezone.now()
        deliveries: list[dict] = []
        done: list[Event] = []
        for event in events:
            if event.dispatched_at is not None or not event.tenant.is_active:
                continue
            recipients = event_recipients(event, memo=memo)
            if ("domain", event.tenant_id) not in memo:
                memo["domain", event.tenant_id] = _message_id_domain(event.tenant)
            domain = memo["domain", event.tenant_id]
            deliveries += [_delivery(event, recipient, domain, now) for recipient in recipients]
            event.dispatched_at = now
            event.recipient_count = len(recipients)
            done.append(event)
            dispatched.tenant_id = event.tenant_id
            dispatched.created += len(recipients)
            dispatched.to_send += sum(not recipient.not_sent for recipient in recipients)
            if len(deliveries) >= DISPATCH_DELIVERIES:
                dispatched.last = event.pk
                break
        _deliveries_insert(deliveries)
        # One UPDATE per recipient count (events of one pipeline mostly share theirs).
        by_count: dict[int, list[int]] = {}
        for event in done:
            by_count.setdefault(event.recipient_count, []).append(event.pk)
        for count, ids in by_count.items():
            Event.objects.filter(pk__in=ids).update(dispatched_at=now, recipient_count=count)
    dispatched.events = len(done)
    return dispatched


def _deliveries_insert(deliveries: list[dict]) -> None:
    """Store new deliveries (fields by attribute name): on PostgreSQL with COPY.

    COPY takes a fraction of bulk_create's CPU per row (which builds model
    instances and one huge INSERT), and a fan-out of 10,000 is mostly rows;
    fields not given take their model defaults. The events are locked and
    undispatched and their addresses unique, so no row can conflict.
    Elsewhere (SQLite): bulk_create.
    """
    if connection.vendor != "postgresql":
        Delivery.objects.bulk_create([Delivery(**row) for row in deliveries], batch_size=1000)
        return
    fields = [field for field in Delivery._meta.concrete_fields if not field.primary_key]
    defaults = {field.attname: field.get_default() for field in fields}
    columns = ", ".join(connection.ops.quote_name(field.column) for field in fields)
    table = connection.ops.quote_name(Delivery._meta.db_table)
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy,
    ):
        for row in deliveries:
            # Strings, numbers, None and aware datetimes: psycopg adapts them as they are.
            copy.write_row([row.get(name, default) for name, default in defaults.items()])


def _send_soon_after_commit(tenant_id: int, count: int) -> None:
    if count:
        transaction.on_commit(lambda: deliveries_send_soon(tenant_id=tenant_id, count=count))


def _dispatch_queued_key(tenant_id: int) -> str:
    return f"delivery:dispatch-queued:{tenant_id}"


def events_dispatch_soon(*, tenant_id: int) -> None:
    """Queue dispatching the tenant's new events: one task for however many arrive meanwhile.

    Called when an event is committed. If the broker (or the cache) is down,
    the event waits undispatched and the periodic sweep queues it. The mark
    is short-lived: should a queued task be lost (a purged queue), the next
    events queue another soon, not only the sweep.
    """
    key = _dispatch_queued_key(tenant_id)
    try:
        added = cache.add(key, 1, timeout=DISPATCH_MARK_SECONDS)
    except Exception:
        logger.exception("Tenant %s's dispatch not marked; queueing it anyway.", tenant_id)
        added = None
    if added is False:
        return  # A task is queued already and has not started: it takes this event too.
    if not task_delay("events_dispatch_task", tenant_id) and added:
        cache.delete(key)  # Not queued after all; the sweep will.


def events_dispatch(*, tenant_id: int) -> int:
    """Dispatch every undispatched event of the tenant, oldest first; how many.

    A disabled tenant's events wait (the sweep dispatches them once it is
    enabled). Up to DISPATCH_CHUNK events are dispatched in one
    transaction (fewer when they are big); the deliveries of all of them
    are queued for sending once, at the end.
    """
    cache.delete(_dispatch_queued_key(tenant_id))  # what is committed from now on needs another
    if not Tenant.objects.filter(pk=tenant_id, is_active=True).exists():
        return 0
    events = Event.objects.filter(tenant_id=tenant_id, dispatched_at__isnull=True).order_by("pk")
    done = to_send = last = 0
    memo: dict = {}  # what the events share, read once for all of them
    while chunk := list(events.filter(pk__gt=last).values_list("pk", flat=True)[:DISPATCH_CHUNK]):
        dispatched = _dispatch(chunk, memo)
        done += dispatched.events
        to_send += dispatched.to_send
        last = dispatched.last
    _send_soon_after_commit(tenant_id, to_send)
    return done


def _send_queued_key(tenant_id: int) -> str:
    return f"delivery:send-queued:{tenant_id}"


def deliveries_send_soon(*, tenant_id: int, count: int = 1) -> None:
    """Queue sending for `count` new deliveries of the tenant.

    A big fan-out is shared by several workers (DELIVERY_SENDERS), each
    claiming its own batches. Small ones join a send task already queued
    for the tenant, if there is one: a thousand small events make a few
    full batches, not a thousand tiny ones.
    """
    batches = math.ceil(count / settings.DELIVERY_BATCH_SIZE)
    if batches > 1:
        for _ in range(min(settings.DELIVERY_SENDERS, batches)):
            task_delay("deliveries_send_task", tenant_id)
        return
    key = _send_queued_key(tenant_id)
    if cache.add(key, 1, timeout=60) and not task_delay("deliveries_send_task", tenant_id):
        cache.delete(key)  # Not queued after all; the sweep will.


def deliveries_send_started(*, tenant_id: int) -> None:
    """A send task starts: what is committed from now on needs another one."""
    cache.delete(_send_queued_key(tenant_id))


def _delivery(event: Event, recipient: Recipient, domain: str, now: datetime) -> dict:
    """A new delivery's fields by attribute name (the others take their defaults)."""
    held = bool(recipient.not_sent)
    if recipient.not_sent == OPTED_OUT:
        status = DeliveryStatus.OPTED_OUT
    else:
        status = DeliveryStatus.SUPPRESSED if held else DeliveryStatus.QUEUED
    return {
        "tenant_id": event.tenant_id,
        "event_id": event.pk,
        "address": recipient.address,
        "user_id": recipient.user_id,
        "reason": recipient.reason[:500],
        "message_id": new_message_id(domain, str(event.pk)),
        "status": status,
        "last_reply": recipient.not_sent,
        "finished_at": now if held else None,
        "queued_at": now,
        "created_at": now,
    }


# Sending ----------------------------------------------------------------------------------


@dataclass
class SendReport:
    """What one `deliveries_send` call did."""

    claimed: int = 0
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    # Claimed but not tried (the lease ran short, the server kept hanging up): queued again.
    released: int = 0
    # Due but over the SMTP host's rate limit, or its server asked to slow down: moved later.
    deferred: int = 0
    # The server asked to slow down: the untried rest of the batch waits (not their failure).
    throttled: int = 0


def deliveries_send(
    *, tenant_id: int, limit: int | None = None, memo: dict | None = None
) -> SendReport:
    """Claim up to `limit` of the tenant's due deliveries and send them over one connection.

    `memo`: one dict for the batches of one send task, which then reads the
    tenant and its connections once (a change applies from the next task).
    """
    report = SendReport()
    memo = {} if memo is None else memo
    if "carriers" not in memo:
        tenant = Tenant.objects.filter(pk=tenant_id, is_active=True).first()
        # A disabled tenant's mail waits until it is enabled.
        memo["carriers"] = carriers_for(tenant) if tenant is not None else None
    carriers = memo["carriers"]
    if carriers is None:
        return report
    host = carriers[0].rate_key if carriers else ""
    now = timezone.now()
    if carriers and (until := throttled_until(_first_carrier(tenant_id, carriers), now=now)):
        # Its server asked to slow down: nothing goes over that connection until then.
        report.deferred = _defer(tenant_id, until, now)
        return report
    wanted = limit or settings.DELIVERY_BATCH_SIZE
    granted = rate_reserve(host, wanted, now=now)
    if granted == 0:
        report.deferred = _defer(tenant_id, rate_available_at(host, now=now), now)
        return report
    token, batch = _claim(tenant_id, granted, now)
    rate_return(host, granted - len(batch), now=now)
    report.claimed = len(batch)
    if batch:
        _Batch(batch, token, carriers, report).send()
    return report


def _claim(tenant_id: int, limit: int, now: datetime) -> tuple[str, list[Delivery]]:
    """Lease up to `limit` due deliveries to this worker; (lease token, them in order).

    PostgreSQL: UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED), so
    concurrent workers claim different rows without waiting. SQLite runs one
    writer at a time, so the same single UPDATE is atomic there.
    """
    token = uuid.uuid4().hex
    due = Delivery.objects.filter(deliveries_due_q(now), tenant_id=tenant_id).order_by("pk")
    if connection.features.has_select_for_update_skip_locked:
        due = due.select_for_update(skip_locked=True)
    with transaction.atomic():
        Delivery.objects.filter(pk__in=Subquery(due.values("pk")[:limit])).update(
            status=DeliveryStatus.SENDING,
            lease_token=token,
            lease_expires_at=now + timedelta(seconds=settings.DELIVERY_LEASE_SECONDS),
            claim_count=F("claim_count") + 1,
        )
    batch = list(
        Delivery.objects.filter(
            tenant_id=tenant_id, status=DeliveryStatus.SENDING, lease_token=token
        ).order_by("pk")
    )
    # Each event once, not joined to every delivery row.
    events = Event.objects.select_related("tenant", "pipeline", "project").in_bulk(
        {d.event_id for d in batch}
    )
    for delivery in batch:
        delivery.event = events[delivery.event_id]
    return token, batch


def _defer(tenant_id: int, until: datetime, now: datetime) -> int:
    """Move the tenant's due deliveries to when the rate limit lets mail go again."""
    return Delivery.objects.filter(
        deliveries_due_q(now), tenant_id=tenant_id, status=DeliveryStatus.QUEUED
    ).update(next_attempt_at=until)


def retry_delay(attempts: int) -> float:
    """Seconds before the next try after `attempts` tries: exponential, with jitter."""
    ceiling = min(
        settings.DELIVERY_RETRY_MAX_DELAY, settings.DELIVERY_RETRY_DELAY * 2 ** (attempts - 1)
    )
    # Jitter spreads out the retries of a batch that failed together.
    return ceiling * random.uniform(0.5, 1.0)  # noqa: S311 (not for security)


def _failover_key(tenant_id: int) -> str:
    return f"delivery:failed-over:{tenant_id}"


def _first_carrier(tenant_id: int, carriers: list[Carrier]) -> Carrier:
    """The connection a batch starts on: the failover one for a while after failing over."""
    failed_over = len(carriers) > 1 and cache.get(_failover_key(tenant_id))
    return carriers[-1] if failed_over else carriers[0]


def _ids(delivery: Delivery) -> dict:
    """A delivery's ids for its log line (fields of the line with LOG_FORMAT=json)."""
    return {"delivery_id": delivery.pk, "event_id": delivery.event_id}


def _unexpected_words(error: BaseException) -> str:
    """What an unexpected error while building or sending a message says in the log."""
    return (
        f"Not sent: Postmaster could not build or send this message (an unexpected "
        f"{type(error).__name__}). The details are in the worker's log; once the cause is "
        f"fixed, send it again from the delivery log."
    )


class _Batch:
    """A claimed batch on its way out, recording each outcome as soon as it is known.

    It leaves through the tenant's first connection (`carriers_for`). When
    that one cannot be reached or refuses the login, or fails a message
    temporarily on its DELIVERY_FAILOVER_AFTERth attempt, the message and
    the rest of the batch go through the failover connection; the failed
    attempt is recorded (which tells the failure alerts). A permanent
    refusal of a recipient never fails over.
    """

    def __init__(
        self, batch: list[Delivery], token: str, carriers: list[Carrier], report: SendReport
    ):
        self.batch, self.token, self.carriers, self.report = batch, token, carriers, report
        self.tenant_id = batch[0].tenant_id
        self.carrier: Carrier | None = None
        self.link = None
        self.builder: MessageBuilder | None = None
        self.password = ""
        self.untried = 0
        self.renewed_at = 0.0
        # Deliveries whose lease another worker took (a worker stopped for longer than it).
        self.lost: set[int] = set()

    def send(self) -> None:
        """Send the batch; whatever goes wrong, no delivery is left claimed for nothing.

        An unexpected error outside one message (the database, opening a
        connection) returns the untried rest to the queue at once, then
        raises; the message in flight, if any, waits for its lease.
        """
        self.untried = 0  # batch[untried:] were not offered to any server yet
        try:
            self._send_all()
        except BaseException:
            with contextlib.suppress(Exception):
                self._release(self.batch[self.untried :], undo_claim=False)
            raise

    def _send_all(self) -> None:
        if not self.carriers:
            for delivery in self.batch:
                self._failed(delivery, Classification(Outcome.OTHER, True, detail=NOT_CONFIGURED))
            return
        # A batch's time budget; the lease is renewed every tenth of it (`_still_ours`).
        stop_at = time.monotonic() + settings.DELIVERY_LEASE_SECONDS * 0.8
        self.renewed_at = time.monotonic()
        self.carrier = _first_carrier(self.tenant_id, self.carriers)
        # What its workers never finished, however often claimed, ends here (before
        # anything that could stop this worker too: opening the connection).
        fresh = []
        for delivery in self.batch:
            if delivery.claim_count > settings.DELIVERY_MAX_CLAIMS:
                self._claimed_too_often(delivery)
            else:
                fresh.append(delivery)
        self.batch = fresh
        if not fresh:
            return
        with _fast_commits():
            self._switch(self.carrier)
            try:
                index = 0
                while index < len(self.batch):
                    delivery = self.batch[index]
                    if time.monotonic() > stop_at:
                        self._release(self.batch[index:])
                        return
                    if not self._still_ours(delivery):
                        index += 1
                        self.untried = max(self.untried, index)
                        continue
                    self.untried = max(self.untried, index + 1)
                    step = self._send(delivery, index)
                    if step is _STOP:
                        return
                    if step is _NEXT:
                        index += 1
            finally:
                if self.link is not None:
                    self.link.close()

    def _still_ours(self, delivery: Delivery) -> bool:
        """Renew the lease of what is left, every tenth of it; whether `delivery` is still held.

        A delivery whose lease another worker took meanwhile is not sent.
        """
        lease = settings.DELIVERY_LEASE_SECONDS
        if time.monotonic() - self.renewed_at < lease / 10:
            return delivery.pk not in self.lost
        self.renewed_at = time.monotonic()
        rest = [d.pk for d in self.batch if d.pk >= delivery.pk]
        held = Delivery.objects.filter(
            pk__in=rest, lease_token=self.token, status=DeliveryStatus.SENDING
        )
        held.update(lease_expires_at=timezone.now() + timedelta(seconds=lease))
        ours = set(held.values_list("pk", flat=True))
        self.lost |= set(rest) - ours
        if self.lost:
            logger.warning(
                "Tenant %s: %s claimed deliveries were taken by another worker; not sending them.",
                self.tenant_id,
                len(self.lost),
            )
        return delivery.pk not in self.lost

    def _claimed_too_often(self, delivery: Delivery) -> None:
        claims = delivery.claim_count - 1
        words = (
            f"Not sent: it was claimed {claims} times and each time its worker stopped before "
            f"any outcome (a crash, or a message that stops the worker). The workers' logs say "
            f"why; once the cause is fixed, send it again from the delivery log."
        )
        self._record(delivery, DeliveryStatus.FAILED, Outcome.OTHER, None, words)
        self.report.failed += 1

    def _switch(self, carrier: Carrier) -> None:
        if self.link is not None:
            self.link.close()
        self.carrier, self.link = carrier, None
        self.link = carrier.open(tenant_id=self.tenant_id)
        self.password = "" if carrier.is_provider else self.link.backend.password
        # Each connection sends from its own default From.
        self.builder = MessageBuilder(carrier.settings)

    def _send(self, delivery: Delivery, index: int):
        """Send one delivery: _NEXT, _AGAIN (failed over: the same one again) or _STOP.

        Any error but the expected ones fails this delivery alone, in plain
        words (the traceback goes to the log), and the batch goes on.
        """
        try:
            data = self.builder.message_bytes(delivery)
        except Exception as error:
            return self._unexpected(delivery, error, "building")
        try:
            reply = self.link.send(delivery.address, data)
        except ReconnectsExhaustedError:
            self._release(self.batch[index:])
            return _STOP
        except ConnectError as error:
            found = classify(error.error)
            if throttle_reply(found.reply, greeting=True):  # "421 4.7.0 Too many connections"
                return self._throttled(delivery, found, index)
            return self._unreachable(found, index)
        except ProviderSendError as error:
            found = _provider_classification(error.classification)
            if error.classification.auth_failed or found.outcome == ProviderOutcome.UNREACHABLE:
                return self._unreachable(found, index)
            return self._message_failed(delivery, found)
        except SEND_ERRORS as error:
            found = classify(error)
            if throttle_reply(found.reply):
                return self._throttled(delivery, found, index)
            return self._message_failed(delivery, found)
        except Exception as error:
            # The connection's state is unknown: the next message opens a new one.
            if hasattr(self.link, "drop"):
                self.link.drop()
            return self._unexpected(delivery, error, "sending")
        self._record(
            delivery,
            DeliveryStatus.SENT,
            Outcome.SENT,
            reply.code,
            str(reply),
            message_id=getattr(reply, "message_id", ""),
        )
        self.report.sent += 1
        return _NEXT

    def _unexpected(self, delivery: Delivery, error: Exception, doing: str):
        logger.error(
            "Tenant %s: delivery %s failed: unexpected error while %s its message.",
            self.tenant_id,
            delivery.pk,
            doing,
            exc_info=error,
            extra=_ids(delivery),
        )
        self._record(delivery, DeliveryStatus.FAILED, Outcome.OTHER, None, _unexpected_words(error))
        self.report.failed += 1
        return _NEXT

    def _throttled(self, delivery: Delivery, found: Classification, index: int):
        """The server asked to slow down: stop, and let this connection rest for a while.

        This delivery's attempt is recorded (a temporary failure, retried
        when the rest is over); the untried rest of the batch goes back to
        the queue for then, with nothing counted against them.
        """
        until = throttle_set(self.carrier, now=timezone.now())
        seconds = settings.DELIVERY_THROTTLE_SECONDS
        logger.warning(
            "Tenant %s: %s asked to slow down (%s); pausing that connection for %s s.",
            self.tenant_id,
            self.carrier.via,
            found.reply,
            seconds,
            extra=_ids(delivery),
        )
        words = (
            f"{self._words(found)} (the server asked to slow down: this message and the rest "
            f"of its batch wait {_age(seconds)})"
        )
        code = found.reply.code if found.reply else None
        give_up_at = delivery.queued_at + timedelta(seconds=settings.DELIVERY_MAX_AGE)
        if timezone.now() >= give_up_at:
            self._failed(delivery, found)
        else:
            status = DeliveryStatus.QUEUED
            self._record(delivery, status, found.outcome, code, words, min(until, give_up_at))
            self.report.retrying += 1
        self.report.throttled += self._release(self.batch[index + 1 :], until=until)
        return _STOP

    def _unreachable(self, found: Classification, index: int):
        """The connection could not be opened or signed in: fail over, or retry them all later."""
        if self._fail_over(self.batch[index], found):
            return _AGAIN
        # Nothing more goes over this connection now: each is retried later.
        for rest in self.batch[index:]:
            self._failed(rest, found, connecting=True)
        return _STOP

    def _message_failed(self, delivery: Delivery, found: Classification):
        due = delivery.attempt_count + 1 >= settings.DELIVERY_FAILOVER_AFTER
        if found.transient and due and self._fail_over(delivery, found):
            return _AGAIN
        self._failed(delivery, found)
        return _NEXT

    def _fail_over(self, delivery: Delivery, found: Classification) -> bool:
        """Move to the next connection, if there is one, noting the failed attempt."""
        position = self.carriers.index(self.carrier)
        if position + 1 >= len(self.carriers):
            return False
        words = self._words(found)
        code = found.reply.code if found.reply else None
        _attempt_note(
            delivery,
            self.token,
            outcome=found.outcome,
            code=code,
            reply=words,
            via=self.carrier.via,
        )
        logger.warning(
            "Tenant %s: failing over from %s to %s (%s).",
            self.tenant_id,
            self.carrier.via,
            self.carriers[position + 1].via,
            found.outcome,
        )
        cache.set(_failover_key(self.tenant_id), 1, settings.DELIVERY_FAILOVER_SECONDS)
        self._switch(self.carriers[position + 1])
        return True

    def _failed(self, delivery: Delivery, found: Classification, *, connecting=False) -> None:
        """Fail at once (5xx), or retry later until the delivery is too old.

        A connection that cannot be opened is always retried: the settings
        may be fixed meanwhile.
        """
        now = timezone.now()
        words = self._words(found)
        code = found.reply.code if found.reply else None
        give_up_at = delivery.queued_at + timedelta(seconds=settings.DELIVERY_MAX_AGE)
        if not found.transient and not connecting:
            self._record(delivery, DeliveryStatus.FAILED, found.outcome, code, words)
            self.report.failed += 1
        elif now >= give_up_at:
            words = f"Gave up after retrying for {_age(settings.DELIVERY_MAX_AGE)}. Last: {words}"
            self._record(delivery, DeliveryStatus.FAILED, found.outcome, code, words)
            self.report.failed += 1
        else:
            wait = timedelta(seconds=retry_delay(delivery.attempt_count + 1))
            retry_at = min(now + wait, give_up_at)
            self._record(delivery, DeliveryStatus.QUEUED, found.outcome, code, words, retry_at)
            self.report.retrying += 1

    def _words(self, found: Classification) -> str:
        """The server's reply, or what happened in plain words (never a password or key)."""
        if self.carrier is None or isinstance(found.outcome, ProviderOutcome):
            return found.detail or "Unexpected error."
        smtp_settings = self.carrier.settings
        if found.outcome in (Outcome.HELO_REFUSED, Outcome.ENCRYPTION_REQUIRED):
            # Our settings, not the recipient: what to change, then the server's words.
            words = describe(found, smtp_settings, password=self.password)
            return " ".join(filter(None, [words.message, words.hint, str(words.reply or "")]))
        if found.reply is not None:
            words = describe(found, smtp_settings, password=self.password)
            # A tenant is not shown what answered before a mail session began.
            return str(words.reply) if words.reply else words.message
        if found.outcome is Outcome.OTHER:
            return found.detail or "Unexpected error."
        words = describe(found, smtp_settings, password=self.password)
        if found.outcome is Outcome.OAUTH_FAILED:
            return f"{words.message} {words.hint}"  # what to redo (connect again, a new secret)
        return words.message

    def _record(self, delivery, status, outcome, code, reply, retry_at=None, message_id=""):
        _attempt_record(
            delivery,
            self.token,
            status=status,
            outcome=outcome,
            code=code,
            reply=reply,
            retry_at=retry_at,
            via=self.carrier.via if self.carrier else "",
            message_id=message_id,
        )
        message_counted(tenant_id=self.tenant_id, carrier=self.carrier, status=status)

    def _release(
        self, rest: list[Delivery], *, until: datetime | None = None, undo_claim: bool = True
    ) -> int:
        """Return untried deliveries to the queue (due at `until`, or now); how many.

        `undo_claim`: the worker gave them back on purpose, so this claim does
        not count towards DELIVERY_MAX_CLAIMS; after an unexpected error it does.
        """
        if not rest:
            return 0
        fields = {"status": DeliveryStatus.QUEUED, "lease_token": "", "lease_expires_at": None}
        if until is not None:
            fields["next_attempt_at"] = until
        if undo_claim:
            fields["claim_count"] = Greatest(F("claim_count") - 1, 0)
        released = Delivery.objects.filter(
            pk__in=[d.pk for d in rest], lease_token=self.token
        ).update(**fields)
        self.report.released += released
        return released


def _server_name(carrier: Carrier) -> str:
    if carrier.is_provider:
        return carrier.settings.get_provider_display()
    return carrier.settings.host


# What `_Batch._send` says to do next.
_NEXT, _AGAIN, _STOP = object(), object(), object()


def _provider_classification(found: ProviderErrorClass) -> Classification:
    """A provider's failure in the engine's terms; its words are the provider's own."""
    name = found.status and f"HTTP {found.status}: "
    return Classification(found.outcome, found.transient, detail=f"{name or ''}{found.text}")


def _age(seconds: int) -> str:
    if seconds and seconds % 3600 == 0:
        hours = seconds // 3600
        return f"{hours} hour{'s' if hours != 1 else ''}"
    return f"{seconds} seconds"


@contextlib.contextmanager
def _fast_commits():
    """On PostgreSQL, don't wait for the disk at each outcome's commit.

    An outcome is still committed (visible to every worker, so a crashed
    worker's sent messages are not sent again); only a crash of PostgreSQL
    itself could lose the last fraction of a second of them, and those
    messages would then be sent again (same Message-ID). The README says so.
    """
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit TO OFF")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET synchronous_commit")


_UPDATE = (
    "UPDATE delivery_delivery SET status = %s, attempt_count = attempt_count + 1, "
    "last_code = %s, last_reply = %s, next_attempt_at = %s, finished_at = %s, "
    # A provider's id for the message (webhooks find it by this); "" over SMTP.
    "provider_message_id = %s, claim_count = 0, "
    "lease_expires_at = NULL, lease_token = '' WHERE id = %s AND lease_token = %s"
)
_INSERT = (
    "INSERT INTO delivery_deliveryattempt "
    "(tenant_id, delivery_id, attempted_at, outcome, code, reply, via) "
)
# One statement, so one round trip per message on PostgreSQL.
_RECORD_PG = "".join(
    (
        "WITH d AS (",
        _UPDATE,
        " RETURNING id, tenant_id) ",
        _INSERT,
        # Typed: the server binds the values (NULLs too).
        "SELECT tenant_id, id, %s::timestamptz, %s, %s::integer, %s, %s FROM d",
    )
)


def _attempt_record(
    delivery: Delivery,
    token: str,
    *,
    status: str,
    outcome: str,
    code: int | None,
    reply: str,
    retry_at: datetime | None,
    via: str,
    message_id: str = "",
) -> None:
    """Record one attempt and the delivery's new state, committed at once.

    The state only while this worker's lease holds (`token`); an outcome
    learned after the lease was lost is recorded all the same (`_late_record`).
    Raw SQL: it runs once per message, and the ORM would take several round trips.
    """
    ops = connection.ops
    now = timezone.now()
    finished = now if status in FINAL_STATUSES else None
    reply = reply[:1000]
    update = [
        status,
        code,
        reply,
        ops.adapt_datetimefield_value(retry_at),
        ops.adapt_datetimefield_value(finished),
        message_id[:255],
        delivery.pk,
        token,
    ]
    attempt = [ops.adapt_datetimefield_value(now), str(outcome), code, reply, via]
    if connection.vendor == "postgresql":
        connection.ensure_connection()
        raw = connection.connection
        # Prepared once per connection (Django leaves preparing off), then only executed.
        threshold, raw.prepare_threshold = raw.prepare_threshold, 0
        try:
            with psycopg.Cursor(raw) as cursor:
                cursor.execute(_RECORD_PG, update + attempt, prepare=True)
                recorded = cursor.rowcount
        finally:
            raw.prepare_threshold = threshold
    else:
        with connection.cursor() as cursor, transaction.atomic():
            cursor.execute(_UPDATE, update)
            recorded = cursor.rowcount
            if recorded:
                values = "VALUES (%s, %s, %s, %s, %s, %s, %s)"
                cursor.execute(_INSERT + values, [delivery.tenant_id, delivery.pk, *attempt])
    if not recorded:
        _late_record(
            delivery,
            status=status,
            outcome=outcome,
            code=code,
            reply=reply,
            via=via,
            message_id=message_id,
            now=now,
        )


LATE_NOTE = " (learned after this worker's claim on it had run out)"


def _late_record(
    delivery: Delivery,
    *,
    status: str,
    outcome: str,
    code: int | None,
    reply: str,
    via: str,
    message_id: str,
    now: datetime,
) -> None:
    """Record an outcome a worker learned after its lease was lost: never dropped.

    The attempt is always stored (the log then shows every message that went
    out, a duplicate too). The delivery's state belongs to whoever holds it
    now and is left alone, with one exception: "sent" is the truth about a
    delivery not finished yet, so a late "sent" finishes it (another
    worker's later outcome is then late in its turn: recorded, not applied).
    """
    with transaction.atomic():
        current = Delivery.objects.select_for_update().filter(pk=delivery.pk).first()
        if current is None:
            return  # deleted with its event meanwhile
        fields = {"attempt_count": F("attempt_count") + 1}
        if status == DeliveryStatus.SENT and current.status not in FINAL_STATUSES:
            fields |= {
                "status": status,
                "last_code": code,
                "last_reply": reply,
                "next_attempt_at": None,
                "finished_at": now,
                "provider_message_id": message_id[:255],
                "claim_count": 0,
                "lease_token": "",
                "lease_expires_at": None,
            }
        Delivery.objects.filter(pk=delivery.pk).update(**fields)
        DeliveryAttempt.objects.create(
            tenant_id=delivery.tenant_id,
            delivery_id=delivery.pk,
            attempted_at=now,
            outcome=str(outcome),
            code=code,
            reply=reply[: 1000 - len(LATE_NOTE)] + LATE_NOTE,
            via=via,
        )
    logger.warning(
        "Tenant %s: delivery %s's outcome (%s) came after this worker's lease ran out; "
        "recorded as an attempt.",
        delivery.tenant_id,
        delivery.pk,
        outcome,
    )


# The sweep --------------------------------------------------------------------------------


@dataclass
class SweepReport:
    events: list[int] = field(default_factory=list)
    tenants: list[int] = field(default_factory=list)


def events_sweep(*, older_than: timedelta = SWEEP_GRACE) -> SweepReport:
    """Queue what was missed: undispatched events, tenants with due or abandoned deliveries.

    Run periodically (Celery beat). Nothing is lost when the broker was down
    when an event was accepted, or a worker died holding deliveries.
    """
    now = timezone.now()
    events = Event.objects.filter(
        dispatched_at__isnull=True, created_at__lte=now - older_than, tenant__is_active=True
    ).order_by("created_at")
    missed = list(events.values_list("pk", "tenant_id")[:SWEEP_EVENTS])
    report = SweepReport(
        events=[event_id for event_id, _ in missed],
        tenants=list(
            Delivery.objects.filter(deliveries_due_q(now), tenant__is_active=True)
            .order_by()
            .values_list("tenant_id", flat=True)
            .distinct()
        ),
    )
    # One dispatch task per tenant: it takes every undispatched event of it.
    for tenant_id in dict.fromkeys(tenant_id for _, tenant_id in missed):
        task_delay("events_dispatch_task", tenant_id)
    for tenant_id in report.tenants:
        task_delay("deliveries_send_task", tenant_id)
    return report


def _attempt_note(
    delivery: Delivery, token: str, *, outcome: str, code: int | None, reply: str, via: str
) -> None:
    """Record an attempt that failed over: the delivery stays claimed, for the next connection."""
    reply = reply[:1000]
    with transaction.atomic():
        claimed = Delivery.objects.filter(pk=delivery.pk, lease_token=token).update(
            attempt_count=F("attempt_count") + 1, last_code=code, last_reply=reply
        )
        if not claimed:
            # Learned after the lease ran out: the attempt is recorded all the same.
            claimed = Delivery.objects.filter(pk=delivery.pk).update(
                attempt_count=F("attempt_count") + 1
            )
            reply = reply[: 1000 - len(LATE_NOTE)] + LATE_NOTE
        if claimed:
            DeliveryAttempt.objects.create(
                tenant_id=delivery.tenant_id,
                delivery_id=delivery.pk,
                attempted_at=timezone.now(),
                outcome=str(outcome),
                code=code,
                reply=reply,
                via=via,
            )
    delivery.attempt_count += 1


# People's actions -------------------------------------------------------------------------


@transaction.atomic
def delivery_resend(*, delivery: Delivery, actor, request=None) -> Delivery:
    """Queue a failed delivery again (same Message-ID), with a fresh DELIVERY_MAX_AGE."""
    locked = Delivery.objects.select_for_update().select_related("tenant").get(pk=delivery.pk)
    if locked.status != DeliveryStatus.FAILED:
        raise ValidationError(
            f"Only failed deliveries can be sent again; the one to {locked.address} "
            f"is {locked.get_status_display().lower()}."
        )
    locked.status = DeliveryStatus.QUEUED
    locked.queued_at = timezone.now()
    locked.next_attempt_at = locked.finished_at = locked.lease_expires_at = None
    locked.save(
        update_fields=["status", "queued_at", "next_attempt_at", "finished_at", "lease_expires_at"]
    )
    audit_record(
        actor=actor,
        action="delivery.resent",
        target=locked,
        changes={"status": [DeliveryStatus.FAILED.label, DeliveryStatus.QUEUED.label]},
        tenant=locked.tenant,
        request=request,
    )
    tenant_id = locked.tenant_id
    transaction.on_commit(lambda: deliveries_send_soon(tenant_id=tenant_id))
    return locked


@transaction.atomic
def event_failed_resend(*, event: Event, actor, request=None) -> int:
    """Queue every failed delivery of the event again, in one statement; how many.

    Each keeps its Message-ID and gets a fresh DELIVERY_MAX_AGE. One audit
    entry for the event says how many; one send task takes them all.
    """
    now = timezone.now()
    count = Delivery.objects.filter(
        tenant_id=event.tenant_id, event=event, status=DeliveryStatus.FAILED
    ).update(
        status=DeliveryStatus.QUEUED,
        queued_at=now,
        next_attempt_at=None,
        finished_at=None,
        lease_expires_at=None,
    )
    if count:
        audit_record(
            actor=actor,
            action="event.failed_resent",
            target=event,
            changes={"deliveries sent again": [None, count]},
            tenant=event.tenant,
            request=request,
        )
        tenant_id = event.tenant_id
        transaction.on_commit(lambda: deliveries_send_soon(tenant_id=tenant_id, count=count))
    return count


# What a sample of each event type is like.
SAMPLE_LEVELS = {
    EventType.PIPELINE_SUCCEEDED: Level.SUCCESS,
    EventType.STAGE_SUCCEEDED: Level.SUCCESS,
    EventType.PIPELINE_STARTED: Level.SUCCESS,
    EventType.STAGE_STARTED: Level.SUCCESS,
    EventType.PIPELINE_PAUSED: Level.WARNING,
    EventType.APPROVAL_REQUESTED: Level.WARNING,
}


@dataclass(frozen=True)
class AddressResult:
    address: str
    sent: bool
    # What happened, in plain words.
    message: str


@dataclass(frozen=True)
class RuleTestResult:
    message: str
    hint: str = ""
    addresses: list[AddressResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.addresses) and all(result.sent for result in self.addresses)


def _sample_event(rule: NotificationRule) -> Event:
    pipeline = rule.pipeline or rule.project.pipelines.first()
    if pipeline is None:
        pipeline = Pipeline(
            tenant_id=rule.tenant_id, project=rule.project, name="Sample pipeline", slug="sample"
        )
    event_type = rule.event_types[0] if rule.event_types else EventType.PIPELINE_FAILED
    return Event(
        tenant_id=rule.tenant_id,
        project=rule.project,
        pipeline=pipeline,
        event_type=event_type,
        level=SAMPLE_LEVELS.get(event_type, Level.ERROR),
        run_id="test-run",
        run_url="https://ci.example.com/runs/test-run",
        message=f"A test of the notification rule “{rule.name}”: no pipeline really ran.",
        stage="Sample stage" if event_type.startswith("stage_") else "",
        created_at=timezone.now(),
    )


def rule_test_send(*, rule: NotificationRule, actor, request=None) -> RuleTestResult:
    """Send a sample event through the rule to its real recipients now, and say what happened.

    Nothing is stored but the audit entry: the sample is no pipeline's event.
    Suppressed addresses and people who turned these notifications off are
    listed, not mailed.
    """
    try:
        smtp_test_email_limit_check(user=actor, tenant=rule.tenant)
    except TestEmailLimitError as limited:
        # Refused before anything is sent: not audited, so not counted either.
        return RuleTestResult(f"Nothing was sent. {limited.message}")
    event = _sample_event(rule)
    prefetch_related_objects([rule], "groups")
    recipients = recipients_of(rules_expand(rules=[rule], event=event), event, keep_opted_out=True)
    recipients, over_cap = _test_recipients_capped(recipients)
    carriers = carriers_for(rule.tenant)
    if not recipients:
        result = RuleTestResult(
            "Nothing was sent: this rule has no recipients.",
            "Add an email address, or a group with an email/alias address or “all members”.",
        )
    elif not carriers:
        result = RuleTestResult(
            f"Nothing was sent. {NOT_CONFIGURED}",
            "Set up the tenant's email settings, or ask the host's administrator to.",
        )
    else:
        result = _test_send(event, recipients, carriers[0])
    if over_cap and carriers:
        cap = settings.RULE_TEST_MAX_RECIPIENTS
        words = (
            f"A test mails at most {cap} recipients: the other {over_cap} of this rule's "
            "recipients were not mailed. They get the rule's real notifications as usual."
        )
        result = replace(result, hint=f"{result.hint} {words}".strip())
    changes = {
        "sent": sum(r.sent for r in result.addresses),
        "not sent": sum(not r.sent for r in result.addresses),
    }
    if over_cap:
        changes["not mailed (over the test's cap)"] = over_cap
    with transaction.atomic():
        audit_record(
            actor=actor,
            action="notification_rule.test_sent",
            target=rule,
            changes=changes,
            tenant=rule.tenant,
            request=request,
        )
    return result


def _test_recipients_capped(recipients: list[Recipient]) -> tuple[list[Recipient], int]:
    """The recipients a test mails (the first RULE_TEST_MAX_RECIPIENTS), and how many are left.

    Those that would not be mailed anyway (suppressed, opted out) are listed, and cost nothing.
    """
    cap = settings.RULE_TEST_MAX_RECIPIENTS
    mailable = [r.address for r in recipients if not r.not_sent]
    if len(mailable) <= cap:
        return recipients, 0
    kept = set(mailable[:cap])
    return [r for r in recipients if r.not_sent or r.address in kept], len(mailable) - cap


def _test_send(event: Event, recipients: list[Recipient], carrier: Carrier) -> RuleTestResult:
    """Through the tenant's first connection only: a test shows whether it works."""
    builder = MessageBuilder(carrier.settings, test=True)
    domain = punycode(carrier.settings.from_email.rpartition("@")[2])
    server = _server_name(carrier)
    results, hint = [], ""
    with carrier.open(tenant_id=None) as link:
        password = "" if carrier.is_provider else link.backend.password
        for recipient in recipients:
            if recipient.not_sent or hint:
                results.append(AddressResult(recipient.address, False, recipient.not_sent or hint))
                continue
            delivery = Delivery(
                event=event,
                address=recipient.address,
                user_id=recipient.user_id,
                reason=recipient.reason,
                message_id=new_message_id(domain, "test"),
            )
            try:
                reply = link.send(recipient.address, builder.message_bytes(delivery))
            except ReconnectsExhaustedError:
                hint = "Not sent: the server kept closing the connection. Try again later."
                results.append(AddressResult(recipient.address, False, hint))
            except ConnectError as error:
                words = describe(classify(error.error), carrier.settings, password=password)
                hint = f"Not sent: {words.message} {words.hint}"
                results.append(AddressResult(recipient.address, False, hint))
            except ProviderSendError as error:
                said = _provider_classification(error.classification).detail
                results.append(AddressResult(recipient.address, False, f"{server} refused: {said}"))
            except SEND_ERRORS as error:
                found = classify(error)
                words = describe(found, carrier.settings, to=recipient.address, password=password)
                said = f" The server answered: {words.reply}" if words.reply else ""
                results.append(AddressResult(recipient.address, False, words.message + said))
            else:
                results.append(
                    AddressResult(recipient.address, True, f"Sent: {server} answered “{reply}”.")
                )
    sent = sum(result.sent for result in results)
    if sent == len(results) == 1:
        message = "The test was sent."
    elif sent == len(results):
        message = f"The test was sent to all {sent} recipients."
    else:
        message = f"The test was sent to {sent} of {len(results)} recipients."
    return RuleTestResult(message, addresses=results)
