"""The URL providers post to: anymail's tracking views, with an endpoint row's secrets.

Anymail reads a webhook's secrets from settings when it builds its view (once
per request); here they come from the `WebhookEndpoint` the URL names, passed
as the keyword arguments anymail accepts in place of settings. Anymail's
validators (basic auth, Mailgun's and SendGrid's signatures, SNS's headers) and
its parsing are kept; what it parsed goes to apps.webhooks.services.
"""

import logging
import re

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
from django.http import HttpResponse, HttpResponseBadRequest
from django.utils.crypto import constant_time_compare
from django.views.decorators.csrf import csrf_exempt

from apps.audit.services import audit_record
from apps.mailsettings import netguard
from apps.webhooks.models import Provider, WebhookEndpoint
from apps.webhooks.selectors import webhook_endpoint_for_post
from apps.webhooks.services import tracking_events_apply, webhook_refusal_record

logger = logging.getLogger(__name__)

# Where Amazon SNS's subscription confirmations may send us: its own HTTPS endpoints only.
SNS_SUBSCRIBE_URL = re.compile(r"^https://sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/")
SNS_CONFIRM_TIMEOUT = 10


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
        try:
            self.run_validators(request)
        except AnymailWebhookValidationFailure as exc:
            webhook_refusal_record(endpoint=self.endpoint, reason=str(exc), request=request)
            return HttpResponseBadRequest("Refused: the request is not signed as expected.")
        except AnymailError as exc:
            logger.warning("Unreadable %s webhook post: %s", self.endpoint.provider, exc)
            return HttpResponseBadRequest("The request could not be read.")
        try:
            events = self.parse_events(request)
        except SnsConfirmationError as exc:
            logger.warning("Could not confirm an Amazon SNS subscription: %s", exc)
            return HttpResponse("Could not confirm the subscription.", status=502)
        except AnymailWebhookValidationFailure as exc:
            webhook_refusal_record(endpoint=self.endpoint, reason=str(exc), request=request)
            return HttpResponseBadRequest("Refused: the request is not what was expected.")
        except (AnymailError, ValueError, KeyError, TypeError, AttributeError) as exc:
            logger.warning("Unreadable %s webhook post: %s", self.endpoint.provider, exc)
            return HttpResponseBadRequest("The events could not be read.")
        tracking_events_apply(endpoint=self.endpoint, events=events)
        return HttpResponse()


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


class MailgunReceiver(EndpointWebhookMixin, MailgunTrackingWebhookView):
    def signing_kwargs(self, endpoint):
        return {"webhook_signing_key": endpoint.signing_key.reveal()}


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
