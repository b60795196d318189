"""The one place that opens SMTP connections.

`smtp_backend()` builds a Django SMTP backend from `SmtpSettings` (saved or
not) and an explicit password: certificates verified, STARTTLS required when
chosen, no password over a clear connection unless the security mode is
"None", and the server's final reply kept for every message.
`send_test_email()` sends one message and says in plain words what happened;
`classify()` turns any sending error into an outcome the delivery engine can
reuse (and tells transient failures from permanent ones). `smtp_probe()`
does what sending needs short of signing in (greeting, EHLO, TLS), for
/health/.

Every connection greets the server with `ehlo_name()`: the settings' own EHLO
name, else SMTP_EHLO_NAME, else the host of SITE_URL (never the machine's
own name, often "localhost", which relays that check HELO names refuse). A
login is one AUTH command with the best mechanism offered (PLAIN, else
LOGIN), so a wrong password costs one failed login at the server, not one
per mechanism (fail2ban-style lockouts count them).
"""

import contextlib
import email.policy
import ipaddress
import logging
import re
import smtplib
import socket
import ssl
import time
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import EmailMessage
from django.core.mail.backends.smtp import EmailBackend
from django.core.mail.utils import DNS_NAME
from django.utils.functional import cached_property

from apps.connections import netguard
from apps.connections.models import Preset, Security, SmtpSettings, connection_timeout
from apps.connections.oauth_tokens import OAuthError, access_token_for, grant_for
from apps.connections.presets import (
    GMAIL_APP_PASSWORD,
    MICROSOFT365_BASIC_AUTH,
    provider_for_host,
)
from apps.connections.results import TestEmailResult
from apps.connections.validators import one_line
from apps.connections.xoauth2 import xoauth2_login

logger = logging.getLogger(__name__)

TEST_EMAIL_ALIAS = "mailsettings-test"


class StartTLSNotOffered(smtplib.SMTPNotSupportedError):
    """STARTTLS was required but the server does not offer it; no password was sent."""


class AuthNotOffered(smtplib.SMTPNotSupportedError):
    """A login was configured but the server does not offer AUTH; no password was sent."""


class OAuthTokenRefused(smtplib.SMTPAuthenticationError):
    """The server refused a fresh OAuth2 access token (XOAUTH2), not a password."""


class EncryptionRequired(smtplib.SMTPNotSupportedError):
    """Security is "None", a login is configured, and the server offers AUTH only after
    STARTTLS; no password was sent."""


# Mechanisms we sign in with, best first. CRAM-MD5 (smtplib's first choice)
# is not used: it needs the password stored in clear at the server and adds
# nothing over PLAIN on an encrypted connection.
LOGIN_MECHANISMS = ("PLAIN", "LOGIN")


def ehlo_name(smtp_settings: SmtpSettings | None = None) -> str:
    """The name to greet a server with (HELO/EHLO).

    The settings' own EHLO name, else settings.SMTP_EHLO_NAME, else the host
    of SITE_URL (an IP address as an address literal, "[192.0.2.1]"), else
    the machine's name.
    """
    name = (smtp_settings.ehlo_name if smtp_settings is not None else "") or ""
    name = name or settings.SMTP_EHLO_NAME or urlsplit(settings.SITE_URL).hostname or ""
    name = name.strip().rstrip(".")
    if not name:
        return DNS_NAME.get_fqdn()
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return name
    return f"[IPv6:{address}]" if address.version == 6 else f"[{address}]"


def sign_in(connection: smtplib.SMTP, username: str, password: str) -> tuple[int, bytes]:
    """One AUTH command with the best mechanism the server offers (PLAIN, else LOGIN).

    smtplib's login() tries every mechanism in turn, so a wrong password
    makes one failed login per mechanism. Raises SMTPNotSupportedError when
    the server offers neither (nothing was sent), SMTPAuthenticationError
    when it refuses the login.
    """
    connection.ehlo_or_helo_if_needed()
    if not connection.has_extn("auth"):
        raise smtplib.SMTPNotSupportedError("The server does not offer AUTH.")
    offered = connection.esmtp_features["auth"].upper().split()
    mechanism = next((name for name in LOGIN_MECHANISMS if name in offered), None)
    if mechanism is None:
        raise smtplib.SMTPNotSupportedError(
            f"The server offers no sign-in Postmaster uses (it offers: {', '.join(offered)})."
        )
    connection.user, connection.password = username, password
    method = getattr(connection, f"auth_{mechanism.lower()}")
    return connection.auth(mechanism, method, initial_response_ok=True)


@dataclass(frozen=True)
class SmtpReply:
    code: int
    text: str

    @classmethod
    def of(cls, code: int, text: bytes | str) -> "SmtpReply":
        if isinstance(text, bytes):
            text = text.decode("utf-8", errors="replace")
        return cls(code=code, text=" ".join(text.split()))

    def __str__(self):
        return f"{self.code} {self.text}".strip()


class GuardedSMTP(smtplib.SMTP):
    """smtplib's SMTP, connecting only where the network policy allows.

    The socket goes to an address `netguard` resolved and checked; the name
    stays the host's (`_host`), so STARTTLS verifies the certificate for it.
    """

    policy: netguard.NetworkPolicy | None = None

    def _get_socket(self, host, port, timeout):
        if self.policy is None:  # Fail closed: never connect unchecked.
            raise netguard.AddressNotAllowedError(
                "No network policy was given for this connection."
            )
        return netguard.connect(
            host, port, policy=self.policy, timeout=timeout, source_address=self.source_address
        )


class GuardedSMTP_SSL(smtplib.SMTP_SSL, GuardedSMTP):  # noqa: N801 (as smtplib names it)
    """Implicit TLS: smtplib wraps GuardedSMTP's checked socket, for the host's name."""


def guarded_connection(
    cls: type[GuardedSMTP], host: str, port: int, *, policy: netguard.NetworkPolicy, **params
) -> GuardedSMTP:
    """Connect as smtplib's constructor does, with the policy in place first."""
    connection = cls(**params)
    connection.policy = policy
    connection._host = host  # What TLS checks the certificate against.
    code, message = connection.connect(host, port)
    if code != 220:
        connection.close()
        raise smtplib.SMTPConnectError(code, message)
    return connection


class SmtpBackend(EmailBackend):
    """Django's SMTP backend with verified TLS, guarded AUTH and kept replies.

    Build it with `smtp_backend()`. `replies` holds the server's final reply
    (to DATA) for each message sent, in order.
    """

    def __init__(
        self,
        *,
        policy: netguard.NetworkPolicy,
        oauth_settings: SmtpSettings | None = None,
        local_hostname: str = "",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.policy = policy
        # The name we greet the server with (see `ehlo_name()`).
        self.local_hostname = local_hostname or ehlo_name()
        # Saved settings with an OAuth2 grant: sign in with XOAUTH2, not the password.
        self.oauth_settings = oauth_settings
        self.replies: list[SmtpReply] = []

    @cached_property
    def ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        if settings.SMTP_CA_BUNDLE:
            context.load_verify_locations(cafile=settings.SMTP_CA_BUNDLE)
        return context

    def open(self):
        if self.connection:
            return False
        if self.oauth_settings is not None:
            # Get (or read the cached) token first: a revoked grant opens no connection.
            access_token_for(self.oauth_settings)
        params = {"local_hostname": self.local_hostname, "timeout": self.timeout}
        if self.use_ssl:
            params["context"] = self.ssl_context
        cls = GuardedSMTP_SSL if self.use_ssl else GuardedSMTP
        connection = guarded_connection(cls, self.host, self.port, policy=self.policy, **params)
        try:
            # Greet now: a refused greeting name fails the connection (SMTPHeloError),
            # not the first message on it.
            connection.ehlo_or_helo_if_needed()
            if self.use_tls:
                try:
                    connection.starttls(context=self.ssl_context)
                except smtplib.SMTPNotSupportedError as error:
                    raise StartTLSNotOffered(str(error)) from error
            # Past this point the connection is encrypted, or the security
            # mode is "None": starttls() raised otherwise, so a password
            # (or token) never travels in clear unless the administrator chose that.
            if self.oauth_settings is not None:
                try:
                    xoauth2_login(connection, self.oauth_settings, self.username)
                except smtplib.SMTPNotSupportedError as error:
                    raise AuthNotOffered(str(error)) from error
                except smtplib.SMTPAuthenticationError as error:
                    raise OAuthTokenRefused(error.smtp_code, error.smtp_error) from error
            elif self.username and self.password:
                try:
                    sign_in(connection, self.username, self.password)
                except smtplib.SMTPNotSupportedError as error:
                    if not (self.use_tls or self.use_ssl) and connection.has_extn("starttls"):
                        # AUTH only after STARTTLS: the server wants encryption.
                        raise EncryptionRequired(str(error)) from error
                    raise AuthNotOffered(str(error)) from error
        except BaseException:
            connection.close()
            raise
        self.connection = connection
        return True

    def _send(self, email_message):
        if not email_message.recipients():
            return False
        sender = self.prep_address(email_message.from_email)
        recipients = [self.prep_address(address) for address in email_message.recipients()]
        message = email_message.message(policy=email.policy.SMTP)
        self.replies.append(self._transaction(sender, recipients, message.as_bytes()))
        return True

    def _transaction(self, sender: str, recipients: list[str], data: bytes) -> SmtpReply:
        # smtplib's sendmail() does these same steps but throws away the
        # server's reply to DATA (its queue id, "250 2.0.0 Ok: queued as ..."),
        # which is what proves and explains a delivery; so they are spelled out.
        connection = self.connection
        connection.ehlo_or_helo_if_needed()
        options = [f"SIZE={len(data)}"] if connection.has_extn("size") else []
        code, text = connection.mail(sender, options)
        if code != 250:
            self._abandon(code)
            raise smtplib.SMTPSenderRefused(code, text, sender)
        refused = {}
        for recipient in recipients:
            code, text = connection.rcpt(recipient)
            if code not in (250, 251):
                refused[recipient] = (code, text)
        if len(refused) == len(recipients):
            self._abandon(code)
            raise smtplib.SMTPRecipientsRefused(refused)
        if refused:
            logger.warning("The server refused some recipients: %s", sorted(refused))
        code, text = connection.data(data)
        if code != 250:
            self._abandon(code)
            raise smtplib.SMTPDataError(code, text)
        return SmtpReply.of(code, text)

    def _abandon(self, code: int) -> None:
        # As smtplib does: 421 means the server is closing the connection;
        # otherwise reset, so the connection can carry the next message.
        if code == 421:
            self.connection.close()
            return
        with contextlib.suppress(smtplib.SMTPServerDisconnected):
            self.connection.rset()


def smtp_backend(smtp_settings: SmtpSettings, *, password: str, alias: str) -> SmtpBackend:
    """A backend for these settings; `password` is the plaintext to log in with, or "".

    Saved settings with an OAuth2 grant sign in with XOAUTH2 instead (one
    query; none for unsaved ones). The host's cached row keeps its pk.
    """
    return SmtpBackend(
        policy=netguard.policy_for(smtp_settings),
        oauth_settings=smtp_settings if grant_for(smtp_settings) else None,
        alias=alias,
        host=smtp_settings.host,
        port=smtp_settings.port,
        username=smtp_settings.login_username,
        password=password,
        use_tls=smtp_settings.security == Security.STARTTLS,
        use_ssl=smtp_settings.security == Security.TLS,
        timeout=connection_timeout(smtp_settings.timeout),
        local_hostname=ehlo_name(smtp_settings),
    )


def smtp_probe(smtp_settings: SmtpSettings, *, budget: float) -> None:
    """Do what sending needs short of signing in: greeting, EHLO, and TLS where configured.

    Certificates are verified as when sending. The whole probe fits in
    `budget` seconds (TimeoutError past it). Raises what sending would
    (see `classify()`); returns when the server is ready for a login.
    """
    deadline = time.monotonic() + budget
    backend = smtp_backend(smtp_settings, password="", alias="health")

    def remaining() -> float:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("The SMTP check ran out of time.")
        return left

    params = {"local_hostname": backend.local_hostname, "timeout": remaining()}
    if backend.use_ssl:
        params["context"] = backend.ssl_context
    cls = GuardedSMTP_SSL if backend.use_ssl else GuardedSMTP
    connection = guarded_connection(
        cls, backend.host, backend.port, policy=backend.policy, **params
    )
    try:
        connection.sock.settimeout(remaining())
        connection.ehlo_or_helo_if_needed()
        if backend.use_tls:
            connection.sock.settimeout(remaining())
            try:
                connection.starttls(context=backend.ssl_context)
            except smtplib.SMTPNotSupportedError as error:
                raise StartTLSNotOffered(str(error)) from error
            connection.sock.settimeout(remaining())
            connection.ehlo()
        with contextlib.suppress(smtplib.SMTPException, OSError):
            connection.sock.settimeout(min(remaining(), 1.0))
            connection.quit()
    finally:
        connection.close()


class Outcome(StrEnum):
    SENT = "sent"
    CONNECTION_REFUSED = "connection_refused"
    NAME_NOT_RESOLVED = "name_not_resolved"
    TIMED_OUT = "timed_out"
    TLS_HANDSHAKE_FAILED = "tls_handshake_failed"
    CERTIFICATE_NOT_TRUSTED = "certificate_not_trusted"
    STARTTLS_NOT_OFFERED = "starttls_not_offered"
    AUTH_FAILED = "auth_failed"
    # The server refused the OAuth2 access token (XOAUTH2).
    OAUTH_REFUSED = "oauth_refused"
    AUTH_NOT_OFFERED = "auth_not_offered"
    AUTH_REQUIRED = "auth_required"
    # No OAuth2 access token could be had (revoked grant, wrong secret, provider down).
    OAUTH_FAILED = "oauth_failed"
    SENDER_REJECTED = "sender_rejected"
    RECIPIENT_REJECTED = "recipient_rejected"
    MESSAGE_REJECTED = "message_rejected"
    DISCONNECTED = "disconnected"
    OTHER = "other"
    # Something answered, but refused us at the greeting or EHLO (or is no SMTP server).
    GREETING_REFUSED = "greeting_refused"
    # The address or port is not allowed for these (tenant's) settings.
    NOT_ALLOWED = "not_allowed"
    # The server refused our HELO/EHLO name (at EHLO, or later naming it, as Postfix does).
    HELO_REFUSED = "helo_refused"
    # The server wants an encrypted connection first (530 "Must issue a STARTTLS command").
    ENCRYPTION_REQUIRED = "encryption_required"
    # What a tenant is told of any failure to reach the server (see `describe`).
    UNREACHABLE = "unreachable"


# Failures before the server has greeted and answered EHLO: for a tenant's
# settings they all read the same (`Outcome.UNREACHABLE`), so the test email
# cannot tell a name that does not resolve from a closed port, a filtered one
# or a refused address, nor show what a non-SMTP service answered.
CONNECTION_LEVEL = frozenset(
    {
        Outcome.NOT_ALLOWED,
        Outcome.NAME_NOT_RESOLVED,
        Outcome.CONNECTION_REFUSED,
        Outcome.TIMED_OUT,
        Outcome.DISCONNECTED,
        Outcome.GREETING_REFUSED,
        Outcome.UNREACHABLE,
    }
)


@dataclass(frozen=True)
class Classification:
    outcome: Outcome
    # True when trying again later, unchanged, may work (network trouble, 4xx).
    transient: bool
    reply: SmtpReply | None = None
    detail: str = ""
    # What to do about it, when the error itself says (OAuth2 failures).
    hint: str = ""


def _reply_class(outcome: Outcome, code: int, text: bytes | str) -> Classification:
    return Classification(outcome, transient=400 <= code < 500, reply=SmtpReply.of(code, text))


# A refusal that names the greeting: Postfix's "Helo command rejected: need
# fully-qualified hostname" (at RCPT), Exim's "HELO/EHLO ..." and the like.
HELO_REFUSAL = re.compile(r"\b(?:helo|ehlo)\b", re.IGNORECASE)
# 530 "Must issue a STARTTLS command first", "5.7.0 Encryption required", "TLS required".
ENCRYPTION_REFUSAL = re.compile(r"starttls|\btls\b|\bssl\b|encrypt", re.IGNORECASE)


def _reply_of(error: BaseException) -> tuple[int, str] | None:
    """The server's refusal carried by an smtplib error, as (code, text)."""
    if isinstance(error, smtplib.SMTPRecipientsRefused) and error.recipients:
        code, text = next(iter(error.recipients.values()))
    elif isinstance(error, smtplib.SMTPResponseException):
        code, text = error.smtp_code, error.smtp_error
    else:
        return None
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    return code, str(text)


def _settings_refusal(error: BaseException) -> Classification | None:
    """A refusal caused by our connection settings, whatever command it answered.

    A refused greeting name is never the recipient's or the sender's fault,
    and is worth retrying (the settings may be fixed meanwhile); a 530 asking
    for STARTTLS is not a missing login.
    """
    found = _reply_of(error)
    if found is None:
        return None
    code, text = found
    if isinstance(error, smtplib.SMTPHeloError) or HELO_REFUSAL.search(text):
        return Classification(Outcome.HELO_REFUSED, True, reply=SmtpReply.of(code, text))
    if code in (530, 538) and ENCRYPTION_REFUSAL.search(text):
        return _reply_class(Outcome.ENCRYPTION_REQUIRED, code, text)
    return None


def classify(error: BaseException) -> Classification:
    """What a sending error means. Order matters: the ssl and smtplib errors are OSErrors."""
    if (found := _settings_refusal(error)) is not None:
        return found
    match error:
        case OAuthError():
            return Classification(
                Outcome.OAUTH_FAILED, error.transient, detail=error.message, hint=error.hint
            )
        case netguard.AddressNotAllowedError():
            return Classification(Outcome.NOT_ALLOWED, False, detail=error.message)
        case smtplib.SMTPConnectError() | smtplib.SMTPHeloError():
            return _reply_class(Outcome.GREETING_REFUSED, error.smtp_code, error.smtp_error)
        case smtplib.SMTPServerDisconnected() if isinstance(error.__context__, OSError):
            # smtplib reports a read that failed (timed out, reset) as a
            # disconnection; the error underneath says which.
            return classify(error.__context__)
        case ssl.SSLCertVerificationError():
            return Classification(
                Outcome.CERTIFICATE_NOT_TRUSTED, False, detail=error.verify_message or str(error)
            )
        case ssl.SSLError():
            return Classification(
                Outcome.TLS_HANDSHAKE_FAILED, False, detail=error.reason or str(error)
            )
        case socket.gaierror():
            return Classification(Outcome.NAME_NOT_RESOLVED, error.errno == socket.EAI_AGAIN)
        case TimeoutError():
            return Classification(Outcome.TIMED_OUT, True)
        case ConnectionRefusedError():
            return Classification(Outcome.CONNECTION_REFUSED, True)
        case StartTLSNotOffered():
            return Classification(Outcome.STARTTLS_NOT_OFFERED, False)
        case EncryptionRequired():
            return Classification(Outcome.ENCRYPTION_REQUIRED, False)
        case AuthNotOffered():
            return Classification(Outcome.AUTH_NOT_OFFERED, False)
        case OAuthTokenRefused():
            return _reply_class(Outcome.OAUTH_REFUSED, error.smtp_code, error.smtp_error)
        case smtplib.SMTPAuthenticationError():
            return _reply_class(Outcome.AUTH_FAILED, error.smtp_code, error.smtp_error)
        case smtplib.SMTPSenderRefused() if error.smtp_code == 530:
            return _reply_class(Outcome.AUTH_REQUIRED, error.smtp_code, error.smtp_error)
        case smtplib.SMTPSenderRefused():
            return _reply_class(Outcome.SENDER_REJECTED, error.smtp_code, error.smtp_error)
        case smtplib.SMTPRecipientsRefused():
            code, text = next(iter(error.recipients.values()))
            return _reply_class(Outcome.RECIPIENT_REJECTED, code, text)
        case smtplib.SMTPDataError():
            return _reply_class(Outcome.MESSAGE_REJECTED, error.smtp_code, error.smtp_error)
        case smtplib.SMTPServerDisconnected() | ConnectionError():
            return Classification(Outcome.DISCONNECTED, True)
        case smtplib.SMTPResponseException():
            return _reply_class(Outcome.OTHER, error.smtp_code, error.smtp_error)
        case _:
            return Classification(Outcome.OTHER, isinstance(error, OSError), detail=str(error))


# What each outcome means and how to fix it. Fields: host, port, timeout,
# to, sender, username, detail.
WORDING = {
    Outcome.SENT: (
        "The test email was accepted by {host}.",
        "Check the inbox of {to}, and its spam folder if it is not there in a minute.",
    ),
    Outcome.CONNECTION_REFUSED: (
        "{host} refused the connection on port {port}: no mail server is listening there.",
        "Check the SMTP host and port. Usual ports: 587 (STARTTLS), 465 (implicit TLS), "
        "25 (server to server).",
    ),
    Outcome.NAME_NOT_RESOLVED: (
        "The host name {host} could not be found.",
        "Check the spelling of SMTP host. Enter only the name, like smtp.example.com: "
        "no smtp://, no port.",
    ),
    Outcome.TIMED_OUT: (
        "{host} did not answer on port {port} within {timeout} seconds.",
        "Check that a firewall allows outgoing connections to port {port}. A server on "
        "port 465 expects “Implicit TLS/SSL”; choose that. If the server is just slow, "
        "raise the connection timeout.",
    ),
    Outcome.TLS_HANDSHAKE_FAILED: (
        "The encrypted (TLS) connection to {host} could not be set up ({detail}).",
        "Check the security mode: port 465 normally uses “Implicit TLS/SSL”, port 587 “STARTTLS”.",
    ),
    Outcome.CERTIFICATE_NOT_TRUSTED: (
        "The TLS certificate of {host} is not trusted ({detail}).",
        "Enter the host name the server's certificate was issued for. If the server uses "
        "a private certificate authority, ask the operator of Postmaster to add it to "
        "SMTP_CA_BUNDLE.",
    ),
    Outcome.STARTTLS_NOT_OFFERED: (
        "{host} does not offer STARTTLS, so the connection could not be encrypted. "
        "No password was sent.",
        "If the server uses implicit TLS (usually port 465), choose “Implicit TLS/SSL”. "
        "Otherwise ask the mail server's operator to enable STARTTLS.",
    ),
    Outcome.AUTH_FAILED: (
        "{host} rejected the username or password.",
        "Check the SMTP username (and SMTP domain, if the server needs one) and enter the "
        "password again.",
    ),
    Outcome.OAUTH_REFUSED: (
        "{host} refused the OAuth2 access token for {username}.",
        "The token was issued, but the mailbox does not let this app send. Microsoft 365: "
        "give the app's service principal permission on the mailbox {username} in Exchange "
        "Online. Gmail: connect Gmail again as {username} (OAuth2 sign-in).",
    ),
    Outcome.OAUTH_FAILED: (
        # The token's own plain words: what happened and what to redo.
        "{detail}",
        "{hint}",
    ),
    Outcome.AUTH_NOT_OFFERED: (
        "{host} does not accept a login on this connection (it offers no AUTH). "
        "No password was sent.",
        "If the server needs no login, clear the SMTP username and password. Some servers "
        "offer login only on port 587 with STARTTLS or on port 465: check port and security.",
    ),
    Outcome.HELO_REFUSED: (
        "{host} refused our greeting name ({ehlo_name}): it wants the fully qualified domain "
        "name of the sending host. This is about our settings, not the recipient.",
        "Set the EHLO name (under Advanced) to a fully qualified domain name of yours that "
        "resolves, like mail.example.com, or ask the operator of Postmaster to set "
        "SMTP_EHLO_NAME.",
    ),
    Outcome.ENCRYPTION_REQUIRED: (
        "{host} requires an encrypted connection before it accepts a login or mail.",
        "Choose a security setting that encrypts: “STARTTLS” on port 587, or “Implicit "
        "TLS/SSL” on port 465.",
    ),
    Outcome.AUTH_REQUIRED: (
        "{host} requires a login before it accepts mail.",
        "Enter the SMTP username and password of the account that sends the mail.",
    ),
    Outcome.SENDER_REJECTED: (
        "The server refused the sender address {sender}.",
        "Use a Default From address that the account {username} may send as: many "
        "servers accept only the account's own address and its aliases.",
    ),
    Outcome.RECIPIENT_REJECTED: (
        "The server refused the recipient {to}.",
        "Check the To address. If the server refuses outside recipients (“relay "
        "denied”), it needs a login: set the SMTP username and password.",
    ),
    Outcome.MESSAGE_REJECTED: (
        "The server accepted the addresses but refused the message itself.",
        "The server's reply below usually gives the reason (size, content or a sending limit).",
    ),
    Outcome.DISCONNECTED: (
        "{host} closed the connection unexpectedly.",
        "Check the port and security mode: a server expecting TLS may drop a plain "
        "connection. If they are right, the server may be busy: try again later.",
    ),
    Outcome.GREETING_REFUSED: (
        "{host} answered on port {port}, but did not accept a mail session.",
        "Check the port: it may belong to another service. The server's reply below may "
        "say why (for example, too many connections).",
    ),
    Outcome.NOT_ALLOWED: (
        "{detail}",
        "Check the SMTP host and port.",
    ),
    Outcome.UNREACHABLE: (
        "Postmaster could not connect to a mail server at {host} on port {port}.",
        "Check the SMTP host and port (usually 587 for STARTTLS, 465 for implicit TLS) and "
        "the security mode, and that the server accepts connections from the internet. "
        "Postmaster connects only to public addresses and the usual SMTP ports, unless a "
        "system administrator allowed others for your tenant.",
    ),
    Outcome.OTHER: (
        "The test email could not be sent: {detail}",
        "Check the settings above. If they are right, show the server's reply to the "
        "mail server's operator.",
    ),
}


# TestEmailResult: apps/connections/results.py, the same for both transports.


def _auth_hint(smtp_settings: SmtpSettings) -> str | None:
    provider = provider_for_host(smtp_settings.host)
    if provider == Preset.OTHER:
        provider = smtp_settings.preset
    return {Preset.GMAIL: GMAIL_APP_PASSWORD, Preset.MICROSOFT365: MICROSOFT365_BASIC_AUTH}.get(
        provider
    )


def _scrub(text: str, password: str) -> str:
    # A hostile or careless server could echo the password back in a reply.
    return text.replace(password, "********") if password else text


def describe(
    classification: Classification,
    smtp_settings: SmtpSettings,
    *,
    to: str = "",
    sender: str = "",
    password: str = "",
) -> TestEmailResult:
    """The plain-words result for a classified outcome, free of the password.

    For a tenant's settings, every connection-level failure is one generic
    answer, without the server's reply.
    """
    if smtp_settings.tenant_id is not None and classification.outcome in CONNECTION_LEVEL:
        classification = Classification(Outcome.UNREACHABLE, classification.transient)
    message, hint = WORDING[classification.outcome]
    if classification.outcome is Outcome.AUTH_FAILED:
        hint = _auth_hint(smtp_settings) or hint
    fields = {
        "host": smtp_settings.host,
        "port": smtp_settings.port,
        "timeout": f"{connection_timeout(smtp_settings.timeout):g}",
        "to": to,
        "sender": sender or smtp_settings.from_email,
        "username": smtp_settings.login_username or "(none)",
        "detail": classification.detail or str(classification.reply or "no details"),
        "hint": classification.hint,
        "ehlo_name": ehlo_name(smtp_settings),
    }
    reply = classification.reply
    if reply is not None:
        reply = SmtpReply(reply.code, _scrub(reply.text, password))
    return TestEmailResult(
        outcome=classification.outcome,
        message=_scrub(message.format(**fields), password),
        hint=_scrub(hint.format(**fields), password),
        reply=reply,
    )


def send_test_email(
    smtp_settings: SmtpSettings, *, password: str, to: str, subject: str, body: str
) -> TestEmailResult:
    """Send one message with these settings (saved or not) and say what happened."""
    # The form refuses line breaks; one_line() also defuses encoded ones.
    message = EmailMessage(one_line(subject), body, from_email=smtp_settings.from_header, to=[to])
    backend = smtp_backend(smtp_settings, password=password, alias=TEST_EMAIL_ALIAS)
    try:
        backend.send_messages([message])
    except (OSError, ValueError, OAuthError) as error:
        classification = classify(error)
        if classification.outcome is Outcome.OTHER:
            logger.warning(
                "Test email via %s failed unexpectedly: %s",
                smtp_settings.host,
                _scrub(repr(error), password),
            )
    else:
        classification = Classification(Outcome.SENT, False, reply=backend.replies[-1])
    logger.info(
        "Test email to %s via %s:%s: %s",
        to,
        smtp_settings.host,
        smtp_settings.port,
        classification.outcome,
    )
    return describe(classification, smtp_settings, to=to, password=password)
