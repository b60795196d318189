"""Bearer authentication with a project API token.

Every way of failing answers 401 with a `WWW-Authenticate` header and a
sentence saying what to send. The raw token is hashed and forgotten: it is
never logged, echoed or stored.
"""

from django.http import HttpRequest
from ninja.errors import AuthenticationError
from ninja.security import HttpBearer

from apps.api.ratelimit import api_rate_take
from apps.pipelines.models import ProjectApiToken
from apps.pipelines.selectors import api_token_authenticate
from apps.pipelines.services import project_api_token_mark_used

REALM = 'Bearer realm="Postmaster events API"'


class TokenRejectedError(AuthenticationError):
    def __init__(self, message: str, *, challenge: str = REALM) -> None:
        super().__init__(message=message)
        self.challenge = challenge


class RateLimitedError(Exception):
    """The token sent more requests than API_RATE_LIMIT_PER_MINUTE (and its burst) allow."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"retry after {retry_after} s")
        self.retry_after = retry_after


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
        decision = api_rate_take(token_id=found.pk)
        if not decision.allowed:
            raise RateLimitedError(decision.retry_after)
        project_api_token_mark_used(token=found)
        return found
