"""The mail catcher's SMTP server: aiosmtpd in a thread, every message stored.

`catcher_start()` returns a started controller; `controller.stop()` ends it.
The management command and the tests both use it.
"""

import logging
import socket

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from asgiref.sync import sync_to_async
from django.db import close_old_connections

from apps.mailcatcher.services import caught_message_create

logger = logging.getLogger(__name__)


class CatcherHandler:
    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's hook name)
        try:
            message = await sync_to_async(_store)(
                peer=_peer(session.peer),
                envelope_sender=envelope.mail_from,  # "<>" for a bounce
                envelope_recipients=envelope.rcpt_tos,
                raw=envelope.original_content,
            )
        except Exception:
            logger.exception("Could not store a message from %s", _peer(session.peer))
            # A temporary failure: the client keeps the message and may retry.
            return "451 4.3.0 The mail catcher could not store the message; see its log"
        logger.info(
            "Caught message %s from %s to %s (%s bytes): %s",
            message.pk,
            message.envelope_sender,
            ", ".join(message.envelope_recipients),
            message.size,
            message.subject or "(no subject)",
        )
        return "250 2.0.0 Message caught"


def _store(**fields):
    try:
        return caught_message_create(**fields)
    finally:
        # This runs on a worker thread outside any request: give its
        # connection back the way the end of a request would.
        close_old_connections()


def _peer(peer) -> str:
    if isinstance(peer, tuple):
        return f"{peer[0]}:{peer[1]}"
    return str(peer or "")


def _accept_any_login(server, session, envelope, mechanism, auth_data):
    # Any credentials pass, so sign-in flows can be tried locally. They are
    # neither stored nor logged.
    return AuthResult(success=True)


def catcher_start(*, host: str, port: int) -> Controller:
    """Start the catcher; OSError at once if the address cannot be bound."""
    _check_bindable(host, port)
    controller = Controller(
        CatcherHandler(),
        hostname=host,
        port=port,
        authenticator=_accept_any_login,
        auth_require_tls=False,
        # Keep the message exactly as sent (no added X-Peer header, no
        # decoding to str).
        decode_data=False,
    )
    controller.start()
    return controller


def _check_bindable(host: str, port: int) -> None:
    # aiosmtpd reports a port in use only after its 5 s start-up timeout;
    # binding first (with the same SO_REUSEADDR) fails at once instead.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    socket.create_server((host, port), family=family).close()
