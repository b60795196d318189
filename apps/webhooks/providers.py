"""What differs between the providers: their signing keys, hard bounces, and setup words.

Anymail normalizes each provider's events (apps.webhooks.receivers); what it
leaves in the raw `esp_event` is read here only to tell a hard bounce (the
address does not exist: suppress it) from a soft one (a full mailbox).
"""

from collections.abc import Callable
from dataclasses import dataclass

from apps.webhooks.models import Provider


@dataclass(frozen=True)
class ProviderInfo:
    # "required", "optional" or "" (the provider does not sign its posts).
    signing_key: str
    signing_key_label: str
    # Where the admin finds the key, and where to paste the URL.
    setup: str
    is_hard_bounce: Callable[[object], bool]


def _postmark_hard(esp_event) -> bool:
    # A bounce's "Type", or the reason of a suppression (SubscriptionChange) it caused.
    return "HardBounce" in (esp_event.get("Type"), esp_event.get("SuppressionReason"))


PROVIDERS: dict[str, ProviderInfo] = {
    Provider.AMAZON_SES: ProviderInfo(
        signing_key="",
        signing_key_label="",
        setup=(
            "In Amazon SNS, create a topic and an HTTPS subscription to this URL (with the "
            "user name and password in it); Postmaster confirms the subscription by itself. "
            "Then, in Amazon SES, publish the configuration set's Delivery, Bounce, Complaint "
            "and Reject events (or the identity's notifications) to that topic."
        ),
        is_hard_bounce=lambda e: (e.get("bounce") or {}).get("bounceType") == "Permanent",
    ),
    Provider.MAILGUN: ProviderInfo(
        signing_key="required",
        signing_key_label="Mailgun HTTP webhook signing key",
        setup=(
            "In Mailgun, under Sending → Webhooks, add this URL for the Delivered, Permanent "
            "failure, Spam complaint and Unsubscribe events. Mailgun signs every post with "
            "the HTTP webhook signing key shown on that page."
        ),
        # Anymail makes a temporary failure "deferred": a bounce from Mailgun is permanent.
        is_hard_bounce=lambda e: True,
    ),
    Provider.SENDGRID: ProviderInfo(
        signing_key="optional",
        signing_key_label="SendGrid verification key (signed event webhook)",
        setup=(
            "In SendGrid, under Settings → Mail Settings → Event Webhook, set this URL as the "
            "Post URL and select Delivered, Dropped, Bounced, Spam reports and Unsubscribes. "
            "Turn on Signed Event Webhook and paste its verification key here to have every "
            "post's signature checked too."
        ),
        # "bounce" is a hard bounce; "blocked" a soft one.
        is_hard_bounce=lambda e: e.get("type", "bounce") == "bounce",
    ),
    Provider.POSTMARK: ProviderInfo(
        signing_key="",
        signing_key_label="",
        setup=(
            "In Postmark, open the message stream's Webhooks, add this URL and check "
            "Delivery, Bounce, Spam complaint and Subscription change."
        ),
        is_hard_bounce=_postmark_hard,
    ),
    Provider.BREVO: ProviderInfo(
        signing_key="",
        signing_key_label="",
        setup=(
            "In Brevo, under Transactional → Settings → Webhook, add this URL and check "
            "Delivered, Hard bounce, Soft bounce, Blocked, Complaint and Unsubscribed."
        ),
        is_hard_bounce=lambda e: e.get("event") in ("hard_bounce", "invalid_email"),
    ),
    Provider.MAILJET: ProviderInfo(
        signing_key="",
        signing_key_label="",
        setup=(
            "In Mailjet, under Account settings → Event notifications (webhooks), set this "
            "URL for the Sent, Bounce, Blocked, Spam and Unsub events."
        ),
        is_hard_bounce=lambda e: bool(e.get("hard_bounce")),
    ),
}
