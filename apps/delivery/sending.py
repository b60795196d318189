"""One SMTP connection carrying a batch of messages, one recipient each.

The connection is opened on the first message, through the stored settings
(the password decrypted here, in the worker). After a network error
(disconnect, timeout) it is dropped and reopened for the next message, a
bounded number of times per batch.
"""

import contextlib
import smtplib

from django.conf import settings

from apps.delivery.messages import wire_address
from apps.mailsettings.models import SmtpSettings
from apps.mailsettings.transport import SmtpReply, smtp_backend

ALIAS = "delivery"
# Reopened connections per batch; past this the rest of the batch waits for a later claim.
MAX_RECONNECTS = 5
# The server answered (refused): the connection still carries the next message.
REPLIES = (smtplib.SMTPResponseException, smtplib.SMTPRecipientsRefused)


class ConnectError(Exception):
    """The connection could not be opened (or logged in); `error` says why."""

    def __init__(self, error: BaseException):
        super().__init__(str(error))
        self.error = error


class ReconnectsExhaustedError(Exception):
    """The server dropped the connection too often in this batch."""


class Connection:
    def __init__(self, smtp_settings: SmtpSettings):
        password = smtp_settings.password.reveal() if smtp_settings.password else ""
        self.backend = smtp_backend(smtp_settings, password=password, alias=ALIAS)
        if settings.DELIVERY_SMTP_TIMEOUT:
            self.backend.timeout = min(self.backend.timeout, settings.DELIVERY_SMTP_TIMEOUT)
        self.sender = smtp_settings.from_email
        self.opened = 0

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
        """Say goodbye (QUIT) on a healthy connection; drop a broken one."""
        if self._usable():
            with contextlib.suppress(smtplib.SMTPException, OSError):
                self.backend.close()
        self.drop()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
