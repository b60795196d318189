"""SASL XOAUTH2 over smtplib: Microsoft 365 and Gmail take an access token, not a password.

The client sends `AUTH XOAUTH2 <base64("user=U\\x01auth=Bearer T\\x01\\x01")>`.
A server that refuses the token answers 334 with a base64 JSON error, to
which the client sends an empty line, and then 535: smtplib's `auth()`
does exactly that when the answer to a challenge is empty, and raises
SMTPAuthenticationError.
"""

import smtplib

from apps.connections.oauth_tokens import OAuthError, access_token_for

MECHANISM = "XOAUTH2"


def xoauth2_string(username: str, token: str) -> str:
    """The (unencoded) XOAUTH2 initial client response."""
    if any(character in f"{username}{token}" for character in "\x01\r\n"):
        raise ValueError("The username or token contains a control character.")
    return f"user={username}\x01auth=Bearer {token}\x01\x01"


def xoauth2_authenticate(smtp: smtplib.SMTP, username: str, token: str) -> tuple[int, bytes]:
    """Sign in on an open (and, by then, encrypted) connection with an access token.

    Raises smtplib.SMTPNotSupportedError when the server offers no XOAUTH2
    (nothing was sent) and SMTPAuthenticationError when it refuses the token.
    """
    smtp.ehlo_or_helo_if_needed()
    offered = smtp.esmtp_features.get("auth", "").upper().split()
    if MECHANISM not in offered:
        raise smtplib.SMTPNotSupportedError(
            f"The server does not offer {MECHANISM} sign-in (it offers: "
            f"{', '.join(offered) or 'no AUTH'})."
        )
    initial = xoauth2_string(username, token)

    def respond(challenge=None):
        # First call: the initial response. A later call is the server's JSON
        # error after a refused token: answer with an empty line.
        return initial if challenge is None else ""

    return smtp.auth(MECHANISM, respond, initial_response_ok=True)


def xoauth2_login(smtp: smtplib.SMTP, smtp_settings, username: str) -> tuple[int, bytes]:
    """Sign in with the settings' OAuth2 grant: the cached token, or one fresh token more.

    A cached token the server refuses (revoked early, permissions changed)
    is dropped and a fresh one tried once. OAuthError when no token can be
    had; SMTPAuthenticationError when the server refuses a fresh token too.
    """
    token = access_token_for(smtp_settings)
    try:
        return xoauth2_authenticate(smtp, username, token)
    except smtplib.SMTPAuthenticationError:
        fresh = access_token_for(smtp_settings, fresh=True)
        if fresh == token:
            raise
        return xoauth2_authenticate(smtp, username, fresh)


__all__ = ["OAuthError", "access_token_for", "xoauth2_authenticate", "xoauth2_login"]
