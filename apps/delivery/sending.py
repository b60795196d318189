"""One SMTP connection carrying a batch of messages, one recipient each.

The connection is opened on the first message, through the stored settings
(the password decrypted here, in the worker). After a network error
(disconnect, timeout) it is dropped and reopened for the next message, a
bounded number of times per batch.

An address the server refuses permanently (a 5xx to RCPT saying the mailbox
is bad) goes on the tenant's suppression list when the connection closes,
the whole batch's at once: the engine does not try it again.
"""

import contextlib
import re
import smtplib

from django.conf import settings

from apps.delivery.messages import wire_address
from apps.mailsettings.models import SmtpSettings
from apps.mailsettings.transport import SmtpReply, smtp_backend
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
    5.2.2 "mailbox full" may pass.
    """
    if not 500 <= code < 600:
        return False
    found = ENHANCED_STATUS.match(text)
    return found is None or found.group(1).startswith("1.") or found.group(1) == "2.1"


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
        if settings.DELIVERY_SMTP_TIMEOUT:
            self.backend.timeout = min(self.backend.timeout, settings.DELIVERY_SMTP_TIMEOUT)
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
        except (smtplib.SMTPException, OSError, ValueError) as error:
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
