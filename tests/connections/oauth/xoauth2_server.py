"""A real SMTP server on 127.0.0.1 (aiosmtpd, STARTTLS) that signs in only with XOAUTH2.

It accepts an access token only when the identity-provider stand-in issued it
for that user and it has not expired or been revoked. A refused token gets
what Gmail sends: a 334 challenge with a base64 JSON error, and after the
client's empty line, 535.
"""

import base64
import binascii
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from aiosmtpd.smtp import MISSING, AuthResult

from tests.connections.oauth.identity_provider import IdentityProvider
from tests.smtp_servers import HOST, TRUSTED_CA, Recorder, SmtpServer, _Controller, _server_context

REFUSED_REPLY = "535 5.7.8 Username and Password not accepted."
ERROR_CHALLENGE = {"status": "401", "schemes": "bearer", "scope": "https://mail.google.com/"}


@dataclass
class XOAuth2Recorder(Recorder):
    idp: IdentityProvider | None = None
    # What the client answered to the JSON error challenge (b"" is right).
    error_answers: list[bytes] = field(default_factory=list)

    async def auth_XOAUTH2(self, server, args):
        if len(args) == 2:
            try:
                blob = base64.b64decode(args[1], validate=True)
            except binascii.Error:
                await server.push("501 5.5.2 Can't decode base64")
                return AuthResult(success=False, handled=True)
        else:
            blob = await server.challenge_auth("")
            if blob is MISSING:
                return AuthResult(success=False, handled=True)
        user, token = _parse(blob)
        if user and token and self.idp.accepts(token, user):
            self.logins.append(user)
            return AuthResult(success=True)
        answer = await server.challenge_auth(json.dumps(ERROR_CHALLENGE))
        if answer is MISSING:
            return AuthResult(success=False, handled=True)
        self.error_answers.append(answer)
        return AuthResult(success=False, handled=False, message=REFUSED_REPLY)


def _parse(blob: bytes) -> tuple[str, str]:
    fields = blob.split(b"\x01")
    if len(fields) != 4 or fields[2:] != [b"", b""]:
        return "", ""
    user, auth = fields[0].decode(), fields[1].decode()
    if not user.startswith("user=") or not auth.startswith("auth=Bearer "):
        return "", ""
    return user.removeprefix("user="), auth.removeprefix("auth=Bearer ")


@contextmanager
def xoauth2_server(idp: IdentityProvider) -> Iterator[SmtpServer]:
    """STARTTLS with the trusted test CA's certificate; AUTH (XOAUTH2) required to send."""
    recorder = XOAuth2Recorder(idp=idp)
    controller = _Controller(
        recorder,
        hostname=HOST,
        port=0,
        server_hostname="smtp.oauth.test",
        tls_context=_server_context(TRUSTED_CA),
        auth_require_tls=True,
        auth_required=True,
        # Like Microsoft 365 and Gmail once password sign-in is off. ("mechanisms":
        # aiosmtpd takes the recorder's `auth_mechanisms` list for one.)
        auth_exclude_mechanism=["LOGIN", "PLAIN", "mechanisms"],
    )
    controller.start()
    try:
        yield SmtpServer(HOST, controller.port, "starttls", recorder)
    finally:
        controller.stop()
