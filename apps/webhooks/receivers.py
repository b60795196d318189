"""The URL providers post to: anymail's tracking views, with an endpoint row's secrets.

Anymail reads a webhook's secrets from settings when it builds its view (once
per request); here they come from the `WebhookEndpoint` the URL names, passed
as the keyword arguments anymail accepts in place of settings. Anymail's
validators (basic auth, Mailgun's and SendGrid's signatures, SNS's headers) and
its parsing are kept; what it parsed goes to apps.webhooks.services.
"""

import json
import logging
import re
import time

import requests
from anymail.exceptions import AnymailError, AnymailWebhookValidationFailure
from anymail.signals import EventType, RejectReason
from anymail.utils import get_request_basic_auth
from anymail.webhooks.amazon_ses import AmazonSESTrackingWebhookView
from anymail.webhooks.base import AnymailBaseWebhookView
from anymail.webhooks.brevo import BrevoTrackingWebhookView
from anymail.webhooks.mailgun import MailgunTrackingWebhookView
from anymail.webhooks.mailjet import MailjetTrackingWebhookView
from anymail.webhooks.postmark import PostmarkTrackingWebhookView
from anymail.webhooks.sendgrid import SendGridTrackingWebhookView
from django.contrib.auth.decorators import login_not_required
from django.core.cache import cache
from django.http import HttpResponse, HttpResponseBadRequest
from django.utils.crypto import constant_time_compare
from django.views.decorators.csrf import csrf_exempt

from apps.audit.services import audit_record
from apps.connections import netguard
from apps.webhooks.models import Provider, WebhookEndpoint
from apps.webhooks.selectors import webhook_endpoint_for_post
from apps.webhooks.services import tracking_events_apply, webhook_refusal_record

logger = logging.getLogger(__name__)

# Where Amazon SNS's subscription confirmations may send us: its own HTTPS endpoints only.
SNS_SUBSCRIBE_URL = re.compile(r"^https://sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/")
SNS_CONFIRM_TIMEOUT = 10

# Mailgun signs a timestamp and a random token, and asks receivers to refuse a
# timestamp far from their clock and a token seen before: signatures older (or
# newer) than this many seconds are refused, and the tokens of this window are
# remembered (in the shared cache) to refuse a replay of the same post.
MAILGUN_SIGNATURE_MAX_AGE = 15 * 60

UNREADABLE = "The events could not be read: send the provider's JSON report as it is."
# What reading a malformed body raises (UnicodeDecodeError and JSON errors are ValueErrors).
UNREADABLE_ERRORS = (AnymailError, ValueError, KeyError, IndexError, TypeError, AttributeError)
TOO_DEEP = "The events could not be read: the JSON is nested too deeply for a provider's report."


class SnsConfirmationError(AnymailError):
    pass


def _challenge() -> HttpResponse:
    # A 401 with a challenge: Amazon SNS sends its credentials only after one.
    response = HttpResponse("Authentication required.", status=401, content_type="text/plain")
    response["WWW-Authenticate"] = 'Basic realm="Postmaster delivery webhook"'
    return response


class EndpointWebhookMixin:
    """Put in front of an anymail tracking view: its secrets come from `endpoint`."""

    def __init__(self, *, endpoint: WebhookEndpoint, **kwargs):
        self.endpoint = endpoint
        password = endpoint.password.reveal() if endpoint.password else ""
        super().__init__(
            webhook_secret=[f"{endpoint.username}:{password}"],
            **self.signing_kwargs(endpoint),
            **kwargs,
        )

    def signing_kwargs(self, endpoint: WebhookEndpoint) -> dict:
        return {}

    def post(self, request, *args, **kwargs):
        given = get_request_basic_auth(request)
        if given is None:
            return _challenge()
        if not any(constant_time_compare(given, allowed) for allowed in self.basic_auth):
            webhook_refusal_record(
                endpoint=self.endpoint, reason="Wrong user name or password.", request=request
            )
            return _challenge()
        # Validators and parsers read the body as JSON: a deeply nested one raises
        # RecursionError; that and any parse error are the post's fault (400), never a 500.
        # What is not a parse error (a database outage) stays a 5xx: the provider retries.
        try:
            self.run_validators(request)
        except AnymailWebhookValidationFailure as exc:
            webhook_refusal_record(endpoint=self.endpoint, reason=str(exc), request=request)
            return HttpResponseBadRequest("Refused: the request is not signed as expected.")
        except RecursionError:
            return self._unreadable(TOO_DEEP, "nested too deeply")
        except UNREADABLE_ERRORS as exc:
            return self._unreadable("The request could not be read.", exc)
        try:
            events = self.parse_events(request)
        except SnsConfirmationError as exc:
            logger.warning("Could not confirm an Amazon SNS subscription: %s", exc)
            return HttpResponse("Could not confirm the subscription.", status=502)
        except AnymailWebhookValidationFailure as exc:
            webhook_refusal_record(endpoint=self.endpoint, reason=str(exc), request=request)
            return HttpResponseBadRequest("Refused: the request is not what was expected.")
        except RecursionError:
            return self._unreadable(TOO_DEEP, "nested too deeply")
        except UNREADABLE_ERRORS as exc:
            return self._unreadable(UNREADABLE, exc)
        tracking_events_apply(endpoint=self.endpoint, events=events)
        return HttpResponse()

    def _unreadable(self, words: str, why) -> HttpResponse:
        logger.warning("Unreadable %s webhook post: %s", self.endpoint.provider, why)
        return HttpResponseBadRequest(words, content_type="text/plain")


class _AmazonSESWithoutBoto3(AmazonSESTrackingWebhookView):
    """Anymail's SES view without its boto3 set-up.

    Anymail confirms SNS subscriptions through the AWS API with the host's AWS
    credentials (boto3); an endpoint confirms by opening the SubscribeURL SNS
    sent, which needs neither.
    """

    def __init__(self, **kwargs):
        self.auto_confirm_enabled = True
        self.session_params, self.client_params = {}, {}
        AnymailBaseWebhookView.__init__(self, **kwargs)

    def auto_confirm_sns_subscription(self, sns_message):
        # Basic auth was checked: this subscription was meant for this endpoint.
        url = sns_message.get("SubscribeURL") or ""
        if not SNS_SUBSCRIBE_URL.match(url):
            raise AnymailWebhookValidationFailure(
                "The SNS SubscriptionConfirmation's SubscribeURL is not Amazon SNS's."
            )
        # Through the network guard, as every connection a tenant's posts can aim.
        session = requests.Session()
        netguard.guard_session(session, netguard.api_policy_for(self.endpoint))
        try:
            with session:
                session.get(url, timeout=SNS_CONFIRM_TIMEOUT).raise_for_status()
        except requests.RequestException as exc:
            raise SnsConfirmationError(str(exc)) from exc
        audit_record(
            actor=None,
            action="webhook_endpoint.sns_confirmed",
            target=self.endpoint,
            changes={"topic": str(sns_message.get("TopicArn", ""))[:300]},
            tenant=self.endpoint.tenant,
        )


class AmazonSESReceiver(EndpointWebhookMixin, _AmazonSESWithoutBoto3):
    pass


def _mailgun_signed(request) -> tuple[str, str]:
    """(timestamp, token) of a post whose signature anymail has checked."""
    if request.content_type == "application/json":
        block = json.loads(request.body.decode("utf-8"))["signature"]
        return str(block["timestamp"]), str(block["token"])
    return request.POST["timestamp"], request.POST["token"]


class MailgunReceiver(EndpointWebhookMixin, MailgunTrackingWebhookView):
    _token_key = None

    def signing_kwargs(self, endpoint):
        return {"webhook_signing_key": endpoint.signing_key.reveal()}

    def validate_request(self, request):
        """Anymail checks the signature; here, that it is fresh and not a replay."""
        super().validate_request(request)
        timestamp, token = _mailgun_signed(request)
        try:
            age = time.time() - float(timestamp)
        except ValueError:
            age = float("inf")
        if not abs(age) <= MAILGUN_SIGNATURE_MAX_AGE:
            raise AnymailWebhookValidationFailure(
                "Mailgun webhook signature is stale: its timestamp is more than "
                f"{MAILGUN_SIGNATURE_MAX_AGE // 60} minutes from this server's clock "
                "(a replayed post, or a clock that is wrong)."
            )
        key = f"webhooks:mailgun-token:{self.endpoint.pk}:{token[:100]}"
        if not cache.add(key, True, 2 * MAILGUN_SIGNATURE_MAX_AGE):
            raise AnymailWebhookValidationFailure(
                "Mailgun webhook token was already used: a replayed post."
            )
        self._token_key = key

    def post(self, request, *args, **kwargs):
        try:
            return super().post(request, *args, **kwargs)
        except BaseException:
            # Not taken after all: Mailgun's retry of this post must not look like a replay.
            if self._token_key is not None:
                cache.delete(self._token_key)
            raise


class SendGridReceiver(EndpointWebhookMixin, SendGridTrackingWebhookView):
    def signing_kwargs(self, endpoint):
        key = endpoint.signing_key.reveal() if endpoint.signing_key else None
        return {self.key_setting_name: key}


class PostmarkReceiver(EndpointWebhookMixin, PostmarkTrackingWebhookView):
    pass


class BrevoReceiver(EndpointWebhookMixin, BrevoTrackingWebhookView):
    # Brevo's documentation names the event "unsubscribed"; anymail knows "unsubscribe".
    event_types = {
        **BrevoTrackingWebhookView.event_types,
        "unsubscribed": (EventType.UNSUBSCRIBED, RejectReason.UNSUBSCRIBED),
    }


class MailjetReceiver(EndpointWebhookMixin, MailjetTrackingWebhookView):
    pass


RECEIVERS = {
    Provider.AMAZON_SES: AmazonSESReceiver,
    Provider.MAILGUN: MailgunReceiver,
    Provider.SENDGRID: SendGridReceiver,
    Provider.POSTMARK: PostmarkReceiver,
    Provider.BREVO: BrevoReceiver,
    Provider.MAILJET: MailjetReceiver,
}


@csrf_exempt
@login_not_required
def tracking_view(request, public_id, provider: str):
    """An unknown, revoked or mismatched endpoint is a 404, like any missing page."""
    endpoint = webhook_endpoint_for_post(public_id=public_id, provider=provider)
    view = RECEIVERS[endpoint.provider](endpoint=endpoint)
    view.setup(request, public_id=public_id, provider=provider)
    return view.dispatch(request, public_id=public_id, provider=provider)
