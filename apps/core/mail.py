"""Mail the portal itself sends (invitations, confirmations): never inside a transaction.

A message is sent once the transaction that decided to send it has committed
(`mail_on_commit`). Sending inside it would hold the database for as long as the
mail server takes, and a mail server that writes to the same database (the local
mail catcher under `make run`, on SQLite) would wait for a lock the sender holds:
both fail. A mail that cannot be sent does not undo what was saved; the caller
reads the outcome and tells the person in plain words (`mail_failure_in_words`),
never with the exception's text (smtplib's errors print as Python tuples).
"""

import logging
import smtplib
import ssl
from collections.abc import Callable
from dataclasses import dataclass

from django.core.exceptions import ImproperlyConfigured
from django.db import connections, transaction

logger = logging.getLogger(__name__)


@dataclass
class MailOutcome:
    """What became of a mail sent on commit.

    `sent` is None until the transaction commits and the mail is tried (it stays
    None while an outer transaction is still open), then True or False; `error` is
    why it failed, in plain words for a page.
    """

    sent: bool | None = None
    error: str = ""

    @property
    def failed(self) -> bool:
        return self.sent is False


def mail_on_commit(send: Callable[[], object], *, what: str) -> MailOutcome:
    """Run `send` once the current transaction commits (at once outside one).

    Any exception of `send` is logged with its traceback and kept, in plain
    words, in the returned outcome: what was committed stays committed.
    """
    outcome = MailOutcome()

    def run() -> None:
        try:
            send()
        except Exception as error:
            logger.warning("%s not sent", what, exc_info=True)
            outcome.sent, outcome.error = False, mail_failure_in_words(error)
        else:
            outcome.sent = True

    transaction.on_commit(run)
    return outcome


class MailInTransactionError(RuntimeError):
    """A programming error: mail about to be sent while a transaction is open."""


def in_transaction() -> bool:
    """Whether this thread holds a transaction open on any database (tests' own excepted).

    The atomic blocks Django's TestCase (pytest-django's `db`) wraps every test in
    are not the code's: they are marked `_from_testcase`.
    """
    return any(
        not getattr(block, "_from_testcase", False)
        for connection in connections.all(initialized_only=True)
        for block in connection.atomic_blocks
    )


def mail_outside_transaction_check() -> None:
    """Refuse to send while a transaction is open: send with `mail_on_commit` instead."""
    if in_transaction():
        raise MailInTransactionError(
            "Mail must not be sent inside a transaction (it holds the database while the "
            "mail server answers): send it with apps.core.mail.mail_on_commit."
        )


def mail_failure_in_words(error: BaseException) -> str:
    """Why a mail of the portal was not sent, to follow a colon ("… not sent: <this>.").

    Never the exception's own text: it may be a Python tuple, a server's raw reply
    or an address of the network. Order matters: smtplib's and ssl's errors are
    OSErrors.
    """
    match error:
        case ImproperlyConfigured():
            return (
                "the host's email settings are missing or incomplete (Host administration → "
                "Email settings)"
            )
        case smtplib.SMTPAuthenticationError():
            return "the host's mail server refused Postmaster's sign-in"
        case smtplib.SMTPRecipientsRefused():
            return "the mail server refused the recipient's address"
        case smtplib.SMTPSenderRefused():
            return "the mail server refused the sender address of the host's email settings"
        case smtplib.SMTPResponseException(smtp_code=code) if 400 <= code < 500:
            return (
                "the mail server could not take it just now (it answered with a temporary "
                "error); it usually works again in a moment"
            )
        case smtplib.SMTPResponseException():
            return "the mail server refused the message"
        case smtplib.SMTPServerDisconnected():
            return "the mail server closed the connection"
        case ssl.SSLError() | ssl.CertificateError():
            return "the encrypted connection to the host's mail server could not be set up"
        case TimeoutError():
            return "the host's mail server did not answer in time"
        case OSError():
            return "the host's mail server could not be reached"
        case _:
            return "an unexpected error stopped it (it is in the server's log)"
