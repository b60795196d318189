"""Real SMTP servers on 127.0.0.1 for tests, each set up to produce one outcome.

    with smtp_server(tls="starttls", users={"ann": "s3cret"}) as server:
        ...  # connect to server.host:server.port with server.security

`smtp_server()` runs aiosmtpd in a thread on a free port and records what
it receives (`messages`, `auth_mechanisms`, `logins`, `greetings`). Options:
`tls` ("starttls" or "implicit"), `certificate` ("trusted": issued by
`TRUSTED_CA`, which tests trust through `write_ca_bundle()` and
settings.SMTP_CA_BUNDLE; "untrusted": another CA), `users` (these logins and passwords;
a login is required unless AUTH is offered without STARTTLS), `auth_over_plain`
(offer AUTH on a plain connection),
`reject` ("mail", "rcpt" or "data": a 5xx there), `require_starttls` (answer
530 "Must issue a STARTTLS command first" to anything but EHLO/STARTTLS on a
plain connection), `fqdn_helo` (refuse a greeting name that is not a fully
qualified domain name, such as `localhost`: at "ehlo" itself, or at "rcpt" as
Postfix's reject_non_fqdn_helo_hostname does), `auth_exclude` (AUTH
mechanisms not to offer). `greeting_names` and `failed_logins` record what
the client greeted with and how many logins failed.
`silent_server()` accepts TCP but never says a word; `hang_up_server()`
closes every connection at once; `closed_port()` has nothing listening.
`sink_server(Sink(...))` answers each message as a script says (accept, a
reply like "451 ...", drop the connection, stall) and counts what it
accepted by Message-ID: for the delivery engine's reliability tests.
"""

import asyncio
import re
import socket
import ssl
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult

HOST = "127.0.0.1"
QUEUED_REPLY = "250 2.0.0 Ok: queued as TEST123"
HELO_REFUSED = "504 5.5.2 <{name}>: Helo command rejected: need fully-qualified hostname"
REJECTIONS = {
    "mail": "550 5.7.1 Sender address rejected: not owned by user",
    "rcpt": "550 5.1.1 Recipient address rejected: User unknown",
    "data": "554 5.7.1 Message rejected as spam",
}


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes


@dataclass
class Recorder:
    """An aiosmtpd handler that keeps what it sees and rejects what it is told to."""

    reject: str | None = None
    users: dict[str, str] = field(default_factory=dict)
    messages: list[Received] = field(default_factory=list)
    greetings: int = 0
    # Only the mechanism and the accepted login names: never a password.
    auth_mechanisms: list[str] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)
    failed_logins: int = 0
    # "ehlo" or "rcpt": where a greeting name that is no FQDN is refused.
    fqdn_helo: str | None = None
    greeting_names: list[str] = field(default_factory=list)

    def _name_refused(self, hostname: str) -> bool:
        # No dot, or an address literal ("[127.0.0.1]"): not a domain name.
        return "." not in hostname or hostname.startswith("[")

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        self.greetings += 1
        self.greeting_names.append(hostname)
        if self.fqdn_helo == "ehlo" and self._name_refused(hostname):
            return [HELO_REFUSED.format(name=hostname)]
        session.host_name = hostname
        return responses

    async def handle_HELO(self, server, session, envelope, hostname):
        self.greeting_names.append(hostname)
        if self.fqdn_helo == "ehlo" and self._name_refused(hostname):
            return HELO_REFUSED.format(name=hostname)
        session.host_name = hostname
        return f"250 {server.hostname}"

    async def handle_MAIL(self, server, session, envelope, address, options):
        if self.reject == "mail":
            return REJECTIONS["mail"]
        envelope.mail_from = address
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, options):
        if self.reject == "rcpt":
            return REJECTIONS["rcpt"]
        if self.fqdn_helo == "rcpt" and self._name_refused(session.host_name or ""):
            return HELO_REFUSED.format(name=session.host_name)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.reject == "data":
            return REJECTIONS["data"]
        self.messages.append(
            Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content)
        )
        return QUEUED_REPLY

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        login = auth_data.login.decode()
        success = self.users.get(login) == auth_data.password.decode()
        if success:
            self.logins.append(login)
        else:
            self.failed_logins += 1
        # No auth_data in the result: aiosmtpd would log it at DEBUG.
        return AuthResult(success=success, handled=False)


class _RecordingSMTP(SMTP):
    async def smtp_AUTH(self, arg):
        self.event_handler.auth_mechanisms.append((arg or "").split(" ")[0].upper())
        await super().smtp_AUTH(arg)


class _Controller(Controller):
    def factory(self):
        return _RecordingSMTP(self.handler, **self.SMTP_kwargs)

    def _trigger_server(self):
        # Bound to port 0: learn the port the system chose before connecting.
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


@dataclass
class SmtpServer:
    host: str
    port: int
    security: str  # as SmtpSettings.security: "none", "starttls" or "tls"
    recorder: Recorder

    @property
    def messages(self) -> list[Received]:
        return self.recorder.messages

    @property
    def auth_mechanisms(self) -> list[str]:
        return self.recorder.auth_mechanisms

    @property
    def logins(self) -> list[str]:
        return self.recorder.logins

    @property
    def greetings(self) -> int:
        return self.recorder.greetings

    @property
    def greeting_names(self) -> list[str]:
        return self.recorder.greeting_names

    @property
    def failed_logins(self) -> int:
        return self.recorder.failed_logins

    @property
    def connection(self) -> dict:
        """host, port and security, as SmtpSettings fields."""
        return {"host": self.host, "port": self.port, "security": self.security}


@cache
def _ca(name: str) -> trustme.CA:
    return trustme.CA(organization_name=f"Postmaster tests {name} CA")


TRUSTED_CA = "trusted"
UNTRUSTED_CA = "untrusted"


def write_ca_bundle(directory: Path) -> str:
    """Write the trusted test CA as a PEM file; point settings.SMTP_CA_BUNDLE at it."""
    path = directory / "smtp-test-ca.pem"
    _ca(TRUSTED_CA).cert_pem.write_to_path(str(path))
    return str(path)


@cache
def _server_certificate(certificate: str) -> trustme.LeafCert:
    return _ca(certificate).issue_cert(HOST, "localhost")


def _server_context(certificate: str) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    _server_certificate(certificate).configure_cert(context)
    return context


@contextmanager
def smtp_server(
    *,
    tls: str | None = None,
    certificate: str = TRUSTED_CA,
    users: dict[str, str] | None = None,
    auth_over_plain: bool = False,
    reject: str | None = None,
    require_starttls: bool = False,
    fqdn_helo: str | None = None,
    auth_exclude: tuple[str, ...] = (),
) -> Iterator[SmtpServer]:
    recorder = Recorder(reject=reject, users=users or {}, fqdn_helo=fqdn_helo)
    # aiosmtpd only counts STARTTLS as TLS; an implicit TLS socket is encrypted too.
    options = {"auth_require_tls": not auth_over_plain and tls != "implicit"}
    if require_starttls:
        options["require_starttls"] = True
    if auth_exclude:
        options["auth_exclude_mechanism"] = list(auth_exclude)
    if users:
        # Required only where AUTH needs TLS: aiosmtpd warns about the other way.
        options |= {
            "authenticator": recorder.authenticate,
            "auth_required": options["auth_require_tls"],
        }
    if tls == "starttls":
        options["tls_context"] = _server_context(certificate)
    elif tls == "implicit":
        options["ssl_context"] = _server_context(certificate)
    controller = _Controller(
        recorder, hostname=HOST, port=0, server_hostname="smtp.test", **options
    )
    controller.start()
    try:
        security = {"starttls": "starttls", "implicit": "tls"}.get(tls, "none")
        yield SmtpServer(HOST, controller.port, security, recorder)
    finally:
        controller.stop()


@dataclass
class Listener:
    host: str
    port: int


@contextmanager
def silent_server() -> Iterator[Listener]:
    """Completes the TCP handshake (the kernel does, from the backlog) and never answers."""
    with socket.create_server((HOST, 0), backlog=16) as listener:
        yield Listener(HOST, listener.getsockname()[1])


@contextmanager
def hang_up_server() -> Iterator[Listener]:
    """Accepts each connection and closes it before the greeting."""
    listener = socket.create_server((HOST, 0))
    listener.settimeout(0.05)
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            connection.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield Listener(HOST, listener.getsockname()[1])
    finally:
        stop.set()
        thread.join()
        listener.close()


def closed_port() -> int:
    """A port nothing listens on (it was free a moment ago)."""
    with socket.create_server((HOST, 0)) as probe:
        return probe.getsockname()[1]


# What a `Sink` script may answer to a message's DATA, besides an SMTP reply like "451 ...".
ACCEPT = "accept"
DROP = "drop"  # close the connection without answering
STALL = "stall"  # say nothing for `stall_seconds`, then close the connection
MESSAGE_ID = re.compile(rb"^Message-ID:[ \t]*(\S+)", re.IGNORECASE | re.MULTILINE)


def message_id(content: bytes) -> str:
    found = MESSAGE_ID.search(content.split(b"\r\n\r\n", 1)[0])
    return found.group(1).decode() if found else ""


@dataclass
class Sink:
    """An aiosmtpd handler scripted per message.

    `script(number, content)` says how to answer the DATA of the n-th message
    (from 0): ACCEPT, DROP, STALL or an SMTP reply. `refuse` maps addresses
    to the reply their RCPT gets. `delay` slows every answer to DATA.
    """

    script: Callable[[int, bytes], str] = lambda number, content: ACCEPT
    refuse: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    stall_seconds: float = 2.0
    # Every DATA received, whatever the answer; and the accepted ones.
    offered: list[bytes] = field(default_factory=list)
    accepted: list[bytes] = field(default_factory=list)
    connections: int = 0

    @property
    def accepted_ids(self) -> Counter:
        """How many times each Message-ID was accepted."""
        return Counter(message_id(content) for content in self.accepted)

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        self.connections += 1
        session.host_name = hostname
        return responses

    async def handle_RCPT(self, server, session, envelope, address, options):
        if address.lower() in self.refuse:
            return self.refuse[address.lower()]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        content = envelope.original_content
        number = len(self.offered)
        self.offered.append(content)
        if self.delay:
            await asyncio.sleep(self.delay)
        answer = self.script(number, content)
        if answer == STALL:
            await asyncio.sleep(self.stall_seconds)
        if answer in (DROP, STALL):
            server.transport.abort()
            # aiosmtpd writes a reply anyway; the connection is gone, nobody reads it.
            return "421 4.4.2 Connection dropped"
        if answer == ACCEPT:
            self.accepted.append(content)
            return QUEUED_REPLY
        return answer


@contextmanager
def sink_server(sink: Sink) -> Iterator[SmtpServer]:
    """A plain (no TLS, no login) SMTP server answering as `sink` says."""
    controller = _Controller(sink, hostname=HOST, port=0, server_hostname="sink.test")
    controller.start()
    try:
        yield SmtpServer(HOST, controller.port, "none", sink)
    finally:
        controller.stop()


@contextmanager
def greeting_server(greeting: bytes) -> Iterator[int]:
    """Another service on a port (or a server refusing at once): it answers every connection
    with `greeting` and hangs up. Yields the port."""
    listener = socket.create_server((HOST, 0))
    listener.settimeout(0.05)
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            with connection:
                connection.sendall(greeting)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        listener.close()
