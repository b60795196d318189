"""The events API: pipelines post events, and read back how their deliveries went.

Mounted at /api/v1/. Every answer is JSON; errors are `{"detail": ...}`, and
invalid input (422) also lists each wrong field with what is wrong with it.
"""

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from ninja import NinjaAPI, Path, Query, Status
from ninja.errors import HttpError, ValidationError

from apps.api import errors, schemas
from apps.api.auth import ProjectTokenAuth, RateLimitedError, TokenRejectedError
from apps.api.selectors import api_event_get, api_pipeline_get, event_deliveries_page
from apps.delivery.intake import event_accept
from apps.delivery.models import SENT_STATUSES, DeliveryStatus
from apps.delivery.selectors import event_progress

DESCRIPTION = """
Report what your pipelines do; Postmaster emails the people who should know.

**Authentication.** Every call carries a project API token, created by the
project's administrators in the portal: `Authorization: Bearer <token>`.
The token decides the project: events go into it, and only its events can
be read. A missing, mistyped or revoked token answers `401`.

**Posting an event** answers `202 Accepted` at once with the event's id;
the email is sent in the background. Follow it at `status_url`.

**Retrying safely.** Give an `idempotency_key`: the same key within 24 hours
answers the first event again (`"repeat": true`) and sends nothing twice.

**Rate limit.** Each token may make API_RATE_LIMIT_PER_MINUTE requests a
minute (600 unless the host changed it), plus a burst after a quiet spell;
past it the API answers `429` with a `Retry-After` header (seconds) and
stores nothing. Wait that long and send again.

**Errors** are JSON with a `detail` sentence. Invalid input answers `422`
and lists each wrong field in `errors`. When Postmaster cannot reach its
database or message queue it answers `503` with `Retry-After` (seconds):
send the same request again then. Any other failure on Postmaster's side
answers `500`. No answer carries a traceback or a server detail.
"""

# Accepted by the server or provider (and perhaps reported on since): they have a sent_at.
LEFT_STATUSES = {*SENT_STATUSES, DeliveryStatus.BOUNCED, DeliveryStatus.REJECTED}

# The largest id the database can hold; anything beyond cannot exist.
MAX_ID = 2**63 - 1

api = NinjaAPI(
    title="Postmaster events API",
    version="1.0",
    description=DESCRIPTION,
    urls_namespace="api",
    auth=ProjectTokenAuth(),
)

ERRORS = {
    401: schemas.ErrorOut,
    404: schemas.ErrorOut,
    422: schemas.ValidationErrorOut,
    429: schemas.ErrorOut,
    # Never on purpose: any failure on Postmaster's side (apps/api/errors.py).
    500: schemas.ErrorOut,
    # The database or message queue cannot be reached; with a Retry-After header.
    503: schemas.ErrorOut,
}

# Pattern constraints in words, for 422 answers.
PATTERN_HINTS = {
    schemas.SINGLE_LINE: "must be one line, without line breaks or other control characters",
    schemas.VISIBLE_LINE: "must be one line with something other than spaces, "
    "without line breaks or other control characters",
    schemas.NO_NUL: "must not contain NUL characters",
    schemas.SLUG: "must be a pipeline slug: letters, digits, hyphens and underscores",
    schemas.URL: "must be an http:// or https:// link",
}


def _in_words(error: dict) -> str:
    """One pydantic error as a plain phrase that follows the field's name."""
    kind, ctx = error["type"], error.get("ctx", {})
    phrases = {
        "missing": lambda: "is required",
        "extra_forbidden": lambda: "is not a field of this API: check its spelling",
        "string_too_short": lambda: "must not be empty",
        "string_too_long": lambda: f"must be at most {ctx['max_length']} characters",
        "string_pattern_mismatch": lambda: PATTERN_HINTS.get(
            ctx.get("pattern"), "contains characters that are not allowed"
        ),
        "enum": lambda: f"must be one of {ctx['expected']}",
        "string_type": lambda: "must be text (a JSON string)",
        "string_unicode": lambda: "must be valid Unicode text",
        "int_parsing": lambda: "must be a whole number",
        "int_type": lambda: "must be a whole number",
        "int_from_float": lambda: "must be a whole number",
        "greater_than_equal": lambda: f"must be at least {ctx['ge']}",
        "less_than_equal": lambda: f"must be at most {ctx['le']}",
        "value_error": lambda: str(ctx.get("error", error["msg"])),
        "model_attributes_type": lambda: "must be a JSON object",
        "dict_type": lambda: "must be a JSON object",
    }
    phrase = phrases.get(kind)
    return phrase() if phrase else error["msg"][:1].lower() + error["msg"][1:]


def _field(error: dict) -> str:
    # loc is (source, [body parameter,] field, ...); the body parameter's name is ours.
    source, *rest = error["loc"]
    if source == "body" and rest and rest[0] == "payload":
        rest = rest[1:]
    return ".".join(str(part) for part in rest) or "body"


def _invalid(request: HttpRequest, errors: list[dict]) -> HttpResponse:
    # A phrase may already name the fix; keep each one a sentence of its own.
    listed = [{"field": field, "message": f"{field} {phrase}."} for field, phrase in errors]
    detail = " ".join(item["message"] for item in listed)
    return api.create_response(request, {"detail": detail, "errors": listed}, status=422)


@api.exception_handler(ValidationError)
def _validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    return _invalid(request, [(_field(error), _in_words(error)) for error in exc.errors])


@api.exception_handler(TokenRejectedError)
def _token_rejected(request: HttpRequest, exc: TokenRejectedError) -> HttpResponse:
    response = api.create_response(request, {"detail": exc.message}, status=401)
    response["WWW-Authenticate"] = exc.challenge
    return response


@api.exception_handler(RateLimitedError)
def _rate_limited(request: HttpRequest, exc: RateLimitedError) -> HttpResponse:
    seconds = f"{exc.retry_after} second{'s' if exc.retry_after != 1 else ''}"
    detail = (
        f"Too many requests with this API token: try again in {seconds}. "
        f"A token may make {settings.API_RATE_LIMIT_PER_MINUTE} requests a minute, "
        f"and up to {settings.API_RATE_LIMIT_BURST} more at once after a quiet spell."
    )
    response = api.create_response(request, {"detail": detail}, status=429)
    response["Retry-After"] = str(exc.retry_after)
    return response


@api.exception_handler(RequestDataTooBig)
def _too_big(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
    detail = "The request body is too large: an event takes a few kilobytes at most."
    return api.create_response(request, {"detail": detail}, status=413)


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    if exc.status_code == 400:
        # ninja's only 400: a body that is not JSON. Bad input is a 422 here, whatever its kind.
        return _invalid(
            request,
            [("body", "is not valid JSON: send a JSON object with Content-Type: application/json")],
        )
    return api.create_response(request, {"detail": exc.message}, status=exc.status_code)


@api.exception_handler(Exception)
def _unexpected(request: HttpRequest, exc: Exception) -> HttpResponse:
    # Never ninja's default (a traceback under DEBUG, Django's HTML page otherwise):
    # 503 with Retry-After when the database or broker is unreachable, else 500; JSON.
    return errors.error_answer(exc)


@api.post(
    "/events",
    response={202: schemas.EventAccepted, 413: schemas.ErrorOut, **ERRORS},
    url_name="event_create",
    operation_id="event_create",
    summary="Post an event",
    description="Store an event of a pipeline of the token's project and send its "
    "notifications in the background. Answers at once with the event's id. Events of a "
    "tenant whose account is disabled are still accepted.",
    tags=["events"],
)
def event_create(request: HttpRequest, payload: schemas.EventIn):
    token = request.auth
    pipeline = api_pipeline_get(token=token, slug=payload.pipeline)
    if pipeline is None:
        raise HttpError(404, f"No pipeline “{payload.pipeline}” in project “{token.project.name}”.")
    event, created = event_accept(
        pipeline=pipeline,
        event_type=payload.event_type.value,
        level=payload.level.value,
        run_id=payload.run_id,
        run_url=payload.run_url,
        message=payload.message,
        stage=payload.stage,
        idempotency_key=payload.idempotency_key,
    )
    status_url = request.build_absolute_uri(reverse("api:event_detail", args=[event.pk]))
    return Status(202, {"id": event.pk, "status_url": status_url, "repeat": not created})


@api.get(
    "/events/{event_id}",
    response={200: schemas.EventOut, **ERRORS},
    url_name="event_detail",
    operation_id="event_detail",
    summary="Read an event and its deliveries",
    description="The event, its deliveries counted by status, and one page of deliveries "
    "(oldest first; page with `limit` and `offset`). Only events of the token's project.",
    tags=["events"],
)
def event_detail(
    request: HttpRequest,
    event_id: int = Path(..., ge=1, le=MAX_ID, description="The id answered when it was posted."),
    limit: int = Query(100, ge=1, le=500, description="How many deliveries to list."),
    offset: int = Query(0, ge=0, le=MAX_ID, description="How many deliveries to skip."),
):
    token = request.auth
    event = api_event_get(token=token, event_id=event_id)
    if event is None:
        raise HttpError(404, f"No event {event_id} in project “{token.project.name}”.")
    progress = event_progress(tenant=token.tenant_id, event=event)
    deliveries = event_deliveries_page(event=event, limit=limit, offset=offset)
    return {
        "id": event.pk,
        "pipeline": event.pipeline.slug,
        "event_type": event.event_type,
        "level": event.level,
        "run_id": event.run_id,
        "run_url": event.run_url,
        "message": event.message,
        "stage": event.stage,
        "created_at": event.created_at,
        "dispatched_at": event.dispatched_at,
        "summary": progress.summary,
        "running": progress.running,
        "counts": {key: getattr(progress, key) for key in schemas.DeliveryCounts.model_fields},
        "deliveries": {
            "limit": limit,
            "offset": offset,
            "items": [
                {
                    "address": delivery.address,
                    "status": delivery.status,
                    "attempts": delivery.attempt_count,
                    "last_code": delivery.last_code,
                    "last_reply": delivery.last_reply,
                    "sent_at": delivery.finished_at if delivery.status in LEFT_STATUSES else None,
                }
                for delivery in deliveries
            ],
        },
    }
