"""Bearer authentication with a project API token.

Every way of failing answers 401 with a `WWW-Authenticate` header and a
sentence saying what to send. The raw token is hashed and forgotten: it is
never logged, echoed or stored.
"""

from datetime import timedelta

from django.http import HttpRequest
from django.utils import timezone
from ninja.errors import AuthenticationError
from ninja.security import HttpBearer

from apps.pipelines.models import ProjectApiToken, token_hash

# Recording every use would write on every request; once a minute says enough.
LAST_USED_RESOLUTION = timedelta(minutes=1)

REALM = 'Bearer realm="Postmaster events API"'


class TokenRejectedError(AuthenticationError):
    def __init__(self, message: str, *, challenge: str = REALM) -> None:
        super().__init__(message=message)
        self.challenge = challenge


def api_token_authenticate(raw_token: str) -> ProjectApiToken | None:
    """The active token with this secret, its project and tenant loaded; None if there is none.

    The lead will replace this with the pipelines app's selector of the same name.
    """
    token = (
        ProjectApiToken.objects.select_related("project", "tenant")
        .filter(hash=token_hash(raw_token), revoked_at__isnull=True)
        .first()
    )
    if token is None:
        return None
    now = timezone.now()
    if token.last_used_at is None or token.last_used_at < now - LAST_USED_RESOLUTION:
        ProjectApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


class ProjectTokenAuth(HttpBearer):
    openapi_description = (
        "A project API token, created by a project's administrators in the Postmaster "
        "portal and shown once: `Authorization: Bearer <token>`. The token decides the "
        "project: events are posted into it and only its events can be read."
    )

    def __call__(self, request: HttpRequest) -> ProjectApiToken:
        # Unlike ninja's HttpBearer, never log the header: it holds the secret.
        scheme, _, raw = request.headers.get(self.header, "").partition(" ")
        if scheme.lower() != "bearer" or not raw.strip():
            raise TokenRejectedError(
                "Send your project API token in the Authorization header: "
                "`Authorization: Bearer <token>`."
            )
        return self.authenticate(request, raw.strip())

    def authenticate(self, request: HttpRequest, token: str) -> ProjectApiToken:
        found = api_token_authenticate(token)
        if found is None:
            raise TokenRejectedError(
                "This API token is not valid: it is mistyped or has been revoked. "
                "A project administrator can create a new one in the portal.",
                challenge=f'{REALM}, error="invalid_token"',
            )
        return found
