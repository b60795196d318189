"""Every error of the events API is JSON, whatever went wrong and whatever DEBUG is.

When the database, the broker or the cache cannot be reached, the answer is 503 with
`Retry-After`: the client should send the same request again later (with its
idempotency key, nothing is created twice). Anything else unexpected is a 500. Neither
names a host, a port, a file or an exception: those go to the log, never to the client.

Two places make sure of it: the API's own exception handler (errors in the token check
and the views) and `ApiErrorMiddleware` (errors before or around the API, such as a
middleware that reads the database), which also turns Django's own error pages for
/api/ paths (an unknown URL, a refused host) into the same JSON.
"""

import logging
import sys

import kombu.exceptions
import redis.exceptions
from django.core.signals import got_request_exception
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse

logger = logging.getLogger("apps.api")

API_PREFIX = "/api/"

# What "a service we depend on is unavailable" looks like: the database (Django wraps the
# driver's errors in these), the broker (kombu, when Celery publishes) and the Redis
# cache. These pass; asking again later is the fix.
UNAVAILABLE = (
    OperationalError,
    InterfaceError,
    kombu.exceptions.OperationalError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
)
# Seconds a client is told to wait before asking again.
RETRY_AFTER = 30

UNAVAILABLE_DETAIL = (
    "Postmaster cannot reach its database or message queue right now, so nothing was "
    "done. Send the same request again in a minute; with an idempotency key it is never "
    "stored twice."
)
FAILED_DETAIL = (
    "Something went wrong on Postmaster's side and the request was not completed. Send it "
    "again later; if it keeps failing, tell Postmaster's operators the time it happened."
)
# Django's own error answers for /api/ paths, in the API's words.
STATUS_DETAILS = {
    400: "The request could not be read (check the URL and the Host header).",
    403: "This request is not allowed.",
    404: "There is nothing at this URL: the events API is at /api/v1/events (see /api/v1/docs).",
    405: "This URL does not take this method: see /api/v1/docs.",
    413: "The request body is too large: an event takes a few kilobytes at most.",
}


def is_api_request(request: HttpRequest) -> bool:
    return request.path_info.startswith(API_PREFIX)


def error_answer(exc: BaseException, *, log: bool = True) -> JsonResponse:
    """The JSON answer for an exception nothing else handled; the traceback goes to the log."""
    unavailable = isinstance(exc, UNAVAILABLE)
    if log:
        what = "a service is unavailable" if unavailable else "unexpected error"
        logger.error("events API: %s", what, exc_info=exc)
    if unavailable:
        response = JsonResponse({"detail": UNAVAILABLE_DETAIL}, status=503)
        response["Retry-After"] = str(RETRY_AFTER)
        return response
    return JsonResponse({"detail": FAILED_DETAIL}, status=500)


# Headers of Django's own error answers that still hold for the JSON one.
KEPT_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate")


def status_answer(response: HttpResponse) -> JsonResponse:
    """One of Django's own error pages (no exception at hand), as JSON."""
    status = response.status_code
    if status == 503:
        detail = UNAVAILABLE_DETAIL
    elif status >= 500:
        detail = FAILED_DETAIL
    else:
        detail = STATUS_DETAILS.get(status, "The request was not accepted.")
    answer = JsonResponse({"detail": detail}, status=status)
    for header in KEPT_HEADERS:
        if header in response:
            answer[header] = response[header]
    return answer


def _remember_exception(sender, request=None, **kwargs) -> None:
    # Django sends this while handling an exception no view caught, before it builds an
    # error page (and logs it); the middleware answers with JSON instead.
    if request is not None and is_api_request(request):
        request._api_exception = sys.exc_info()[1]


class ApiErrorMiddleware:
    """First in MIDDLEWARE: /api/ answers are JSON even when the error came before the view.

    Django turns an exception raised inside any middleware or view into an error page
    (a traceback under DEBUG) before an outer middleware sees it. It signals
    `got_request_exception` first; the exception is remembered on the request there and
    the page replaced here by `error_answer`. Django's other error pages for /api/ paths
    (404, 400...) become JSON too. Other paths are untouched.
    """

    def __init__(self, get_response):
        self.get_response = get_response
        got_request_exception.connect(_remember_exception, dispatch_uid="api-error-middleware")

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not is_api_request(request):
            return self.get_response(request)
        response = self.get_response(request)
        exc = getattr(request, "_api_exception", None)
        if exc is not None:
            # Django has logged it already (django.request), with its traceback.
            return error_answer(exc, log=False)
        if response.status_code >= 400 and not _is_json(response):
            return status_answer(response)
        return response


def _is_json(response: HttpResponse) -> bool:
    return response.get("Content-Type", "").startswith("application/json")
