"""The connections a batch of messages leaves through, one recipient each.

`carriers_for()` says which: the tenant's own settings or the host's (SMTP or
an email-service provider), then the failover connection if one is named.
`Connection` carries a batch over one SMTP connection; `ProviderLink` over
one provider session, with the same interface.

The connection is opened on the first message, through the stored settings
(the password decrypted here, in the worker). After a network error
(disconnect, timeout) it is dropped and reopened for the next message, a
bounded number of times per batch.

An address the server refuses permanently (a 5xx to RCPT saying the mailbox
is bad) goes on the tenant's suppression list when the connection closes,
the whole batch's at once: the engine does not try it again.
"""

import contextlib
import email
import email.policy
import re
import smtplib
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db.models import Q

from apps.connections.models import ConnectionRole, ProviderSettings, SmtpSettings
from apps.connections.oauth_tokens import OAuthError
from apps.connections.providers import ProviderConnection
from apps.connections.selectors import host_smtp_settings
from apps.connections.smtp import HELO_REFUSAL, SmtpReply, smtp_backend
from apps.delivery.messages import wire_address
from apps.preferences.suppression import suppressions_add_refused

ALIAS = "delivery"
# Reopened connections per batch; past this the rest of the batch waits for a later claim.
MAX_RECONNECTS = 5
# The server answered (refused): the connection still carries the next message.
REPLIES = (smtplib.SMTPResponseException, smtplib.SMTPRecipientsRefused)
# An enhanced status code (RFC 3463) at the start of a reply's text: 5.<subject>.<detail>.
ENHANCED_STATUS = re.compile(r"\s*5\.(\d{1,3}\.\d{1,3})\b")


def refuses_address(code: int, text: str) -> bool:
    """Whether a reply to RCPT refuses the address itself, for good.

    A 5xx, unless its enhanced status code says something else than "no such
    address" (5.1.x) or "mailbox disabled" (5.2.1): 5.7.1 "relay denied"
    means our settings are wrong, and must not suppress every recipient;
    5.2.2 "mailbox full" may pass. A refusal of our greeting name (Postfix
    answers it at RCPT) is about our settings, never the address.
    """
    if not 500 <= code < 600 or HELO_REFUSAL.search(text):
        return False
    found = ENHANCED_STATUS.match(text)
    return found is None or found.group(1).startswith("1.") or found.group(1) == "2.1"


def exchange_timeout(timeout: float) -> float:
    """The longest a worker waits for one answer (or one write) of a server, in seconds.

    The connection's timeout (see `connection_timeout`), but at most a
    thirtieth of DELIVERY_LEASE_SECONDS: a message takes a dozen exchanges at
    most (connect, greet, TLS, sign in, MAIL, RCPT, DATA), so one message
    always ends well inside the lease the engine renews between messages.
    """
    return min(timeout, settings.DELIVERY_LEASE_SECONDS / 30)


class ConnectError(Exception):
    """The connection could not be opened (or logged in); `error` says why."""

    def __init__(self, error: BaseException):
        super().__init__(str(error))
        self.error = error


class ReconnectsExhaustedError(Exception):
    """The server dropped the connection too often in this batch."""


class Connection:
    def __init__(self, smtp_settings: SmtpSettings, *, tenant_id: int | None = None):
        password = smtp_settings.password.reveal() if smtp_settings.password else ""
        self.backend = smtp_backend(smtp_settings, password=password, alias=ALIAS)
        self.backend.timeout = exchange_timeout(self.backend.timeout)
        self.sender = smtp_settings.from_email
        self.opened = 0
        # The tenant whose suppression list gets the refused addresses (None: nobody's).
        self.tenant_id = tenant_id
        self.refused: dict[str, str] = {}

    def send(self, address: str, data: bytes) -> SmtpReply:
        """Send one message to one address; the server's final reply.

        Raises ConnectError, ReconnectsExhaustedError, the smtplib errors of a
        refusal, OSError for network trouble, ValueError for an address
        SMTP cannot carry.
        """
        recipient = wire_address(address)
        if not self._usable():
            self._open()
        try:
            # The transport's own SMTP transaction (keeps the reply), on bytes
            # already encoded: send_messages() would parse and re-encode each.
            return self.backend._transaction(self.sender, [recipient], data)
        except smtplib.SMTPRecipientsRefused as error:
            code, text = error.recipients[recipient]
            text = text.decode(errors="replace") if isinstance(text, bytes) else str(text)
            if refuses_address(code, text):
                self.refused[address] = f"{code} {text}"
            raise
        except REPLIES:
            raise
        except OSError:
            # Disconnected, timed out, reset (smtplib's errors are OSErrors too):
            # the connection is unusable and the message's fate unknown.
            self.drop()
            raise
        finally:
            # After a 421 the backend closed the socket itself.
            if not self._usable():
                self.drop()

    def _usable(self) -> bool:
        connection = self.backend.connection
        return connection is not None and connection.sock is not None

    def _open(self) -> None:
        if self.opened > MAX_RECONNECTS:
            raise ReconnectsExhaustedError
        self.opened += 1
        try:
            self.backend.open()
        except (smtplib.SMTPException, OSError, ValueError, OAuthError) as error:
            self.drop()
            raise ConnectError(error) from error

    def drop(self) -> None:
        """Forget a broken connection without waiting for the server."""
        connection, self.backend.connection = self.backend.connection, None
        if connection is not None:
            with contextlib.suppress(OSError):
                connection.close()

    def close(self) -> None:
        """Say goodbye (QUIT) on a healthy connection; drop a broken one.

        Then list the addresses refused for good on the tenant's suppression list.
        """
        if self._usable():
            with contextlib.suppress(smtplib.SMTPException, OSError):
                self.backend.close()
        self.drop()
        if self.refused and self.tenant_id is not None:
            suppressions_add_refused(tenant_id=self.tenant_id, refused=self.refused)
        self.refused = {}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# Which connection ------------------------------------------------------------------------


@dataclass(frozen=True)
class Carrier:
    """A connection a tenant's mail can leave through, and its name in the attempts."""

    settings: SmtpSettings | ProviderSettings
    via: str

    @property
    def is_provider(self) -> bool:
        return isinstance(self.settings, ProviderSettings)

    @property
    def rate_key(self) -> str:
        """What DELIVERY_RATE_LIMITS names: the SMTP host, or the provider API's host."""
        if self.is_provider:
            return urlsplit(self.settings.endpoint).hostname or self.settings.provider
        return self.settings.host

    def open(self, *, tenant_id: int | None) -> "Connection | ProviderLink":
        if self.is_provider:
            return ProviderLink(self.settings, tenant_id=tenant_id)
        return Connection(self.settings, tenant_id=tenant_id)


def carriers_for(tenant) -> list[Carrier]:
    """The connections the tenant's mail leaves through, in order: primary, then failover.

    A tenant with settings of its own (an SMTP server or a provider) uses
    them; otherwise the host's. A provider connection takes precedence over
    SMTP settings of the same scope (choosing a provider is switching to it).
    The failover is the scope's secondary connection (a provider or an SMTP
    server); a tenant's own one also backs the host's settings it inherits.
    Empty when nothing is set up.
    """
    own, host = {}, {}  # {role: provider connection}, read in one query
    for row in ProviderSettings.objects.filter(Q(tenant=tenant) | Q(tenant__isnull=True)):
        (own if row.tenant_id is not None else host)[row.role] = row
    # The tenant's SMTP rows and the host's failover one, in one query (the
    # host's primary comes from its cache).
    own_smtp, host_smtp = {}, {}
    smtp_rows = SmtpSettings.objects.filter(
        Q(tenant=tenant) | Q(tenant__isnull=True, role=ConnectionRole.SECONDARY)
    )
    for row in smtp_rows:
        (own_smtp if row.tenant_id is not None else host_smtp)[row.role] = row
    own_secondary = own.get(ConnectionRole.SECONDARY) or own_smtp.get(ConnectionRole.SECONDARY)
    own_primary = own.get(ConnectionRole.PRIMARY) or own_smtp.get(ConnectionRole.PRIMARY)
    if own_primary is not None:
        primary, scope, secondary = own_primary, "own", own_secondary
    else:
        primary = host.get(ConnectionRole.PRIMARY) or host_smtp_settings()
        scope = "host"
        secondary = (
            own_secondary
            or host.get(ConnectionRole.SECONDARY)
            or host_smtp.get(ConnectionRole.SECONDARY)
        )
    carriers = [Carrier(primary, scope)] if primary is not None else []
    if secondary is not None:
        via = "own-failover" if secondary.tenant_id is not None else "host-failover"
        carriers.append(Carrier(secondary, via))
    return carriers


# Email-service providers ------------------------------------------------------------------

# A built message's headers a provider is given as they are (it sets Date and the rest).
PROVIDER_HEADERS = ("Message-ID", "List-Unsubscribe", "List-Unsubscribe-Post", "Auto-Submitted")


def provider_message(data: bytes) -> EmailMultiAlternatives:
    """A built message (`MessageBuilder`'s bytes) as the EmailMessage anymail sends.

    Providers' APIs take the parts and headers, not the MIME bytes; parsing
    the one rendering keeps a single place where messages are made.
    """
    parsed = email.message_from_bytes(data, policy=email.policy.default)
    message = EmailMultiAlternatives(
        subject=str(parsed["Subject"]),
        body=parsed.get_body(("plain",)).get_content(),
        from_email=str(parsed["From"]),
        to=[str(parsed["To"])],
        headers={name: str(parsed[name]) for name in PROVIDER_HEADERS if parsed[name]},
    )
    html = parsed.get_body(("html",))
    if html is not None:
        message.attach_alternative(html.get_content(), "text/html")
    return message


@dataclass(frozen=True)
class ProviderSent:
    """A provider's acceptance, as the engine records it."""

    text: str
    message_id: str
    code: None = None

    def __str__(self):
        return self.text


class ProviderLink:
    """A provider session carrying a batch, with `Connection`'s interface.

    `send()` raises `apps.connections.providers.ProviderSendError`. Addresses the
    provider refused for good go on the tenant's suppression list on close.
    """

    def __init__(self, provider_settings: ProviderSettings, *, tenant_id: int | None = None):
        self.connection = ProviderConnection(provider_settings)
        self.tenant_id = tenant_id

    def send(self, address: str, data: bytes) -> ProviderSent:
        reply = self.connection.send(provider_message(data))
        return ProviderSent(str(reply), reply.message_id)

    def close(self) -> None:
        self.connection.close()
        refused, self.connection.refused = self.connection.refused, {}
        if refused and self.tenant_id is not None:
            suppressions_add_refused(tenant_id=self.tenant_id, refused=refused)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
