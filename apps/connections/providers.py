"""The one place that talks to email-service providers' APIs (through django-anymail).

`provider_backend()` builds an anymail backend for one `ProviderSettings`
row (saved or not) with its credentials passed to the constructor, never
through Django settings, so every tenant has its own. `send_provider_test_email()`
sends one message and says in plain words what happened, like the SMTP
test email; `ProviderConnection` carries a batch for the delivery engine and
`classify_provider_error()` says whether a failure is worth retrying.

A tenant's connections go through the network guard
(`apps.connections.netguard`): resolved, every address checked, the socket
connected to a checked address, HTTPS on port 443 only on public addresses,
at every connection. What a tenant is told (`for_tenant`) never carries a
remote answer from an API URL it chose, and every failure to reach the API
reads the same.
"""

import functools
import json
import logging
import re
import warnings
from dataclasses import dataclass
from enum import StrEnum

import requests
from anymail.exceptions import (
    AnymailError,
    AnymailNotSupportedWarning,
    AnymailRecipientsRefused,
)
from django.core.mail import EmailMessage
from django.utils.module_loading import import_string

from apps.connections import netguard
from apps.connections.catalog import MAILGUN_REGIONS, PROVIDERS, Provider
from apps.connections.models import ProviderSettings, connection_timeout
from apps.connections.results import TestEmailResult

logger = logging.getLogger(__name__)

TEST_EMAIL_ALIAS = "providers-test"
DELIVERY_ALIAS = "providers-delivery"
# Per-recipient statuses (anymail's) that mean the provider will not deliver.
REFUSED_STATUSES = frozenset({"rejected", "invalid", "failed"})


# Building backends ---------------------------------------------------------------------


def backend_params(provider_settings: ProviderSettings, *, secret: str) -> dict:
    """The anymail constructor arguments for these settings and this plaintext secret."""
    s = provider_settings
    timeout = connection_timeout()  # connect and each read
    match s.provider:
        case Provider.AMAZON_SES:
            client = {
                # Retrying is the delivery engine's job; one attempt, bounded waits.
                "config": {
                    "connect_timeout": timeout,
                    "read_timeout": timeout,
                    "retries": {"total_max_attempts": 1},
                },
            }
            if s.api_url:
                client["endpoint_url"] = s.api_url
            if s.tenant_id is not None:
                # Straight to the checked address: a proxy would resolve the name itself.
                client["config"]["proxies"] = {}
            return {
                "session_params": {
                    "aws_access_key_id": s.key_id,
                    "aws_secret_access_key": secret,
                    "region_name": s.region,
                },
                "client_params": client,
            }
        case Provider.MAILGUN:
            params = {"api_key": secret, "sender_domain": s.sender_domain or None}
            params["api_url"] = s.api_url or MAILGUN_REGIONS.get(s.region, MAILGUN_REGIONS["us"])
        case Provider.POSTMARK:
            params = {"server_token": secret}
        case Provider.MAILJET:
            params = {"api_key": s.key_id, "secret_key": secret}
        case Provider.SENDGRID | Provider.BREVO:
            params = {"api_key": secret}
        case _:
            raise ValueError(f"Unknown provider {s.provider!r}.")
    params.setdefault("api_url", s.api_url or PROVIDERS[s.provider].default_api_url)
    params["timeout"] = timeout
    return params


def provider_backend(provider_settings: ProviderSettings, *, secret: str | None = None, alias=None):
    """An anymail backend for these settings; the stored secret is decrypted here.

    `secret`: a plaintext secret to use instead (a typed, unsaved one, for a
    test email). Open it once per batch (`open()` ... `close()`), so one
    HTTP session (or boto3 client) carries every message.
    """
    if secret is None:
        secret = provider_settings.secret.reveal() if provider_settings.secret else ""
    backend_class = import_string(PROVIDERS[provider_settings.provider].backend)
    policy = netguard.api_policy_for(provider_settings)
    if policy != netguard.UNRESTRICTED:
        backend_class = _guarded_backend_class(backend_class)
    with warnings.catch_warnings():
        # SendGrid's backend warns that anymail no longer tests it; it still works.
        warnings.simplefilter("ignore", AnymailNotSupportedWarning)
        backend = backend_class(
            alias=alias or DELIVERY_ALIAS, **backend_params(provider_settings, secret=secret)
        )
    backend.network_policy = policy
    return backend


class _GuardedRequests:
    """For anymail's requests-based backends: the session connects through the network guard."""

    network_policy: netguard.NetworkPolicy

    def create_session(self):
        session = super().create_session()
        netguard.guard_session(session, self.network_policy)
        return session


class _GuardedBoto:
    """For anymail's SES backend: boto3's connections go through the network guard."""

    network_policy: netguard.NetworkPolicy

    def open(self):
        created = super().open()
        if created:
            netguard.guard_pool_manager(
                self.client._endpoint.http_session._manager, self.network_policy
            )
        return created


@functools.cache
def _guarded_backend_class(backend_class: type) -> type:
    mixin = _GuardedRequests if hasattr(backend_class, "create_session") else _GuardedBoto
    return type(f"Guarded{backend_class.__name__}", (mixin, backend_class), {})


# What went wrong ----------------------------------------------------------------------


class Outcome(StrEnum):
    SENT = "sent"
    AUTH_FAILED = "auth_failed"
    SENDER_NOT_VERIFIED = "sender_not_verified"
    SANDBOX = "sandbox"
    RATE_LIMITED = "rate_limited"
    UNREACHABLE = "unreachable"
    RECIPIENT_REJECTED = "recipient_rejected"
    PROVIDER_ERROR = "provider_error"
    OTHER = "other"


@dataclass(frozen=True)
class ProviderReply:
    """What the provider answered: its id for an accepted message, or its own words."""

    message_id: str
    text: str
    status: int | None = None

    def __str__(self):
        if self.message_id:
            return f"message id {self.message_id}"
        return f"HTTP {self.status}: {self.text}" if self.status else self.text


@dataclass(frozen=True)
class ProviderErrorClass:
    """What a provider failure means. Unpacks as (transient, recipient_refused, text)."""

    outcome: Outcome
    # True when trying again later, unchanged, may work (429, 5xx, network trouble).
    transient: bool
    # True when the provider refused the recipient for good (never a reason to fail over).
    recipient_refused: bool
    # The provider's own words (never a key), or what happened on the network.
    text: str
    status: int | None = None
    # False when `text` is not from a provider's documented error field (a raw body).
    documented: bool = True

    def __iter__(self):
        return iter((self.transient, self.recipient_refused, self.text))

    @property
    def auth_failed(self) -> bool:
        return self.outcome is Outcome.AUTH_FAILED


class ProviderSendError(Exception):
    """Sending through a provider failed; `classification` says how."""

    def __init__(self, classification: ProviderErrorClass):
        super().__init__(classification.text)
        self.classification = classification


class RecipientsFailedError(AnymailError):
    """Anymail accepted the call, but the provider reported every recipient as failed (Mailjet)."""


SANDBOX_WORDS = re.compile(
    r"sandbox|authori[sz]ed recipients|pending approval|under review|not yet activated"
    r"|account is not activated|pending activation",
    re.IGNORECASE,
)
UNVERIFIED_WORDS = re.compile(
    r"not (a )?verified|not validated|unvalidated|not a sender signature|verified sender"
    r"|sender identity|sender \S*\s?is not valid|domain not found|unknown sender domain",
    re.IGNORECASE,
)
SES_UNVERIFIED = re.compile(r"failed the check in region [\w-]+:\s*(.*)$", re.IGNORECASE)
SES_AUTH_CODES = frozenset(
    {
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
        "AccessDeniedException",
        "AccessDenied",
        "IncompleteSignature",
        "MissingAuthenticationToken",
    }
)
SES_THROTTLE_CODES = frozenset({"TooManyRequestsException", "Throttling", "ThrottlingException"})


def classify_provider_error(error: BaseException, *, sender: str = "") -> ProviderErrorClass:
    """What a failure from `ProviderConnection.send()` (or an anymail backend) means.

    429, 5xx and network trouble are transient; other 4xx are permanent; a
    provider refusing the recipient itself (anymail's per-recipient status
    "rejected"/"invalid") is a permanent refusal of that recipient.
    """
    if isinstance(error, ProviderSendError):
        return error.classification
    status, code, text, documented = _status_and_text(error)
    if _is_network(error):
        return ProviderErrorClass(Outcome.UNREACHABLE, True, False, _network_text(error))
    if isinstance(error, AnymailRecipientsRefused):
        if not text:
            text, documented = _recipients_text(error), True
        return ProviderErrorClass(Outcome.RECIPIENT_REJECTED, False, True, text, status, documented)
    if status == 429 or code in SES_THROTTLE_CODES:
        return ProviderErrorClass(Outcome.RATE_LIMITED, True, False, text, status, documented)
    ses_identities = SES_UNVERIFIED.search(text)
    if ses_identities and sender:
        # SES names the identities that failed: the sender (unverified), or a
        # recipient (the account is in the sandbox).
        sender_is_listed = sender.lower() in ses_identities.group(1).lower()
        outcome = Outcome.SENDER_NOT_VERIFIED if sender_is_listed else Outcome.SANDBOX
        return ProviderErrorClass(outcome, False, False, text, status, documented)
    if SANDBOX_WORDS.search(text):
        return ProviderErrorClass(Outcome.SANDBOX, False, False, text, status, documented)
    if UNVERIFIED_WORDS.search(text):
        return ProviderErrorClass(
            Outcome.SENDER_NOT_VERIFIED, False, False, text, status, documented
        )
    if status in (401, 403) or code in SES_AUTH_CODES:
        return ProviderErrorClass(Outcome.AUTH_FAILED, False, False, text, status, documented)
    if status is not None:
        transient = status >= 500 or status == 408
        return ProviderErrorClass(
            Outcome.PROVIDER_ERROR, transient, False, text, status, documented
        )
    return ProviderErrorClass(
        Outcome.OTHER, False, False, text or type(error).__name__, status, documented
    )


# What a tenant is told of each class of failure when the provider's words may not be
# shown: the class, never the remote end's answer.
CLASS_TEXT = {
    Outcome.AUTH_FAILED: "The provider refused the API key.",
    Outcome.SENDER_NOT_VERIFIED: "The provider refused the sender: it is not verified.",
    Outcome.SANDBOX: "The provider's account may send only to approved addresses.",
    Outcome.RATE_LIMITED: "The provider is limiting how fast this account sends.",
    Outcome.UNREACHABLE: "The provider's API could not be reached.",
    Outcome.RECIPIENT_REJECTED: "The provider refused the recipient.",
    Outcome.PROVIDER_ERROR: "The provider's API answered with an error.",
    Outcome.OTHER: "The provider's API gave an answer Postmaster could not understand.",
}


def for_tenant(
    classification: ProviderErrorClass, provider_settings: ProviderSettings
) -> ProviderErrorClass:
    """What a tenant may be told of a failure of its connection (the host's: everything).

    Every failure to reach the API reads the same, whatever the cause (a
    refused, silent or foreign port, a name that does not resolve or is not
    allowed). A remote answer is never shown for an API URL the tenant chose;
    for the provider's own URL, only its message from the documented JSON
    error field is (never a raw body).
    """
    if provider_settings.tenant_id is None:
        return classification
    own_words = classification.documented and not provider_settings.api_url
    if own_words and classification.outcome is not Outcome.UNREACHABLE:
        return classification
    return ProviderErrorClass(
        classification.outcome,
        classification.transient,
        classification.recipient_refused,
        CLASS_TEXT[classification.outcome],
        classification.status,
        documented=False,
    )


def _is_network(error: BaseException) -> bool:
    if isinstance(error, requests.ConnectionError | requests.Timeout):
        return True
    try:
        from botocore.exceptions import ConnectionError as BotoConnectionError
        from botocore.exceptions import HTTPClientError
    except ImportError:  # pragma: no cover (boto3 comes with the amazon-ses extra)
        return False
    return isinstance(error.__cause__, BotoConnectionError | HTTPClientError)


def _network_text(error: BaseException) -> str:
    # requests and botocore wrap the socket's error: read the whole chain.
    chain, seen = [], error
    while seen is not None and len(chain) < 10:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    text = " ".join(str(item) for item in chain).lower()
    if "name or service not known" in text or "nodename nor servname" in text:
        return "the host name could not be found"
    if "refused" in text:
        return "the connection was refused"
    if "timed out" in text or any(isinstance(item, TimeoutError) for item in chain):
        return "no answer in time"
    return "the connection failed"


def _status_and_text(error: BaseException) -> tuple[int | None, str, str, bool]:
    """(HTTP status, SES error code, the provider's own message, whether documented)."""
    cause = error.__cause__
    boto_response = getattr(cause, "response", None)
    if isinstance(boto_response, dict) and "Error" in boto_response:
        # SES (boto3's ClientError): the code and message of the parsed error.
        status = boto_response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return (
            status,
            boto_response["Error"].get("Code", ""),
            boto_response["Error"].get("Message", ""),
            True,
        )
    response = getattr(error, "response", None)
    if not isinstance(response, requests.Response):
        # Anymail's own words (nothing came back that could be read).
        first = str(error.args[0]) if getattr(error, "args", None) else ""
        return None, "", first.splitlines()[0] if first else "", True
    text, documented = _provider_message(response)
    if not text and error.args and "Unknown sender domain" in str(error.args[0]):
        text, documented = str(error.args[0]).splitlines()[0], True
    return response.status_code, "", text, documented


def _provider_message(response: requests.Response) -> tuple[str, bool]:
    """The human part of a provider's error answer, and whether from a documented field."""
    try:
        body = response.json()
    except ValueError:
        return " ".join(response.text.split())[:300], False
    candidates = []
    if isinstance(body, dict):
        candidates = [
            body.get("message"),  # Mailgun, Brevo
            body.get("Message"),  # Postmark
            body.get("ErrorMessage"),  # Mailjet (whole request)
        ]
        errors = body.get("errors")  # SendGrid
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            candidates.append(errors[0].get("message"))
        for message in body.get("Messages") or []:  # Mailjet (per message)
            for item in (message or {}).get("Errors") or []:
                candidates.append(item.get("ErrorMessage"))
    for candidate in candidates:
        if candidate:
            return " ".join(str(candidate).split())[:300], True
    return json.dumps(body)[:300], False


def _recipients_text(error: BaseException) -> str:
    message = getattr(error, "email_message", None)
    status = getattr(message, "anymail_status", None)
    if status is None:
        return "The provider refused the recipient."
    refused = sorted(
        address
        for address, recipient in status.recipients.items()
        if recipient.status in REFUSED_STATUSES
    )
    return "The provider refused " + ", ".join(refused) if refused else "Refused."


def _scrub(text: str, secret: str) -> str:
    # A provider could echo the key back in its answer.
    return text.replace(secret, "********") if secret else text


def _checked(message: EmailMessage) -> str:
    """The provider's message id, after making sure it took at least one recipient."""
    status = message.anymail_status
    accepted = {
        address: recipient
        for address, recipient in status.recipients.items()
        if recipient.status not in REFUSED_STATUSES
    }
    if status.recipients and not accepted:
        raise RecipientsFailedError(email_message=message, response=status.esp_response)
    ids = {recipient.message_id for recipient in accepted.values() if recipient.message_id}
    return ", ".join(sorted(str(message_id) for message_id in ids))


# The delivery engine's connection ----------------------------------------------------


class ProviderConnection:
    """One provider connection carrying a batch; like `apps.delivery.sending.Connection`.

    Built in the worker from the stored row (the secret decrypted here).
    `send()` sends one message and returns the provider's reply (its message
    id), or raises `ProviderSendError`. Addresses the provider refused for
    good collect in `refused` ({address: the provider's words}) for the
    caller's suppression list.
    """

    def __init__(self, provider_settings: ProviderSettings, *, alias: str = DELIVERY_ALIAS):
        self.settings = provider_settings
        self.backend = provider_backend(provider_settings, alias=alias)
        self.from_header = provider_settings.from_header
        self.refused: dict[str, str] = {}
        self._secret = provider_settings.secret.reveal() if provider_settings.secret else ""
        self._open = False

    def open(self) -> None:
        if not self._open:
            try:
                self.backend.open()
            except Exception as error:  # boto3 refuses bad parameters here
                raise ProviderSendError(self._classify(error)) from error
            self._open = True

    def send(self, message: EmailMessage) -> ProviderReply:
        self.open()
        try:
            self.backend.send_messages([message])
            message_id = _checked(message)
        except AnymailError as error:
            classification = self._classify(error)
            if classification.recipient_refused:
                for address in message.recipients():
                    self.refused[address] = classification.text
            raise ProviderSendError(classification) from error
        return ProviderReply(
            message_id=message_id, text=f"Accepted by {self.settings.get_provider_display()}"
        )

    def _classify(self, error: BaseException) -> ProviderErrorClass:
        found = for_tenant(
            classify_provider_error(error, sender=self.settings.from_email), self.settings
        )
        return ProviderErrorClass(
            found.outcome,
            found.transient,
            found.recipient_refused,
            _scrub(found.text, self._secret),
            found.status,
            found.documented,
        )

    def close(self) -> None:
        if self._open:
            try:
                self.backend.close()
            except Exception:  # closing must not hide the batch outcome
                logger.warning("Closing the %s connection failed", self.settings.provider)
            self._open = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# The test email ----------------------------------------------------------------------


# TestEmailResult: apps/connections/results.py, the same for both transports.


# What each outcome says and how to fix it. Fields: provider, to, sender, detail,
# endpoint, secret_label, verify_sender, sandbox.
WORDING = {
    Outcome.SENT: (
        "{provider} accepted the test email.",
        "Check the inbox of {to}, and its spam folder if it is not there in a minute.",
    ),
    Outcome.AUTH_FAILED: (
        "{provider} refused the {secret_label}: it is wrong, revoked or not allowed to send.",
        "Copy the {secret_label} again from {console} and enter it again{key_id_hint}.",
    ),
    Outcome.SENDER_NOT_VERIFIED: (
        "{provider} refused the sender {sender}: it is not verified on your account.",
        "{verify_sender}",
    ),
    Outcome.SANDBOX: (
        "{provider} did not send to {to}: the account may send only to approved addresses.",
        "{sandbox}",
    ),
    Outcome.RATE_LIMITED: (
        "{provider} is limiting how fast this account sends (too many requests).",
        "Wait a minute and try again. Notifications are not lost: they wait and go out "
        "when the provider accepts them again.",
    ),
    Outcome.UNREACHABLE: (
        "{provider} could not be reached at {endpoint}{detail}.",
        "Check the API URL (leave it blank for the provider's own) and that this server may "
        "make outgoing HTTPS connections.",
    ),
    Outcome.RECIPIENT_REJECTED: (
        "{provider} refused the address {to}.",
        "It may have bounced or complained before, so the provider no longer sends to it. "
        "Check it in {console}, or test with another address.",
    ),
    Outcome.PROVIDER_ERROR: (
        "{provider} did not accept the test email.",
        "Check the settings above. If they are right, show the provider's answer to its support.",
    ),
    Outcome.OTHER: (
        "The test email could not be sent: {detail}",
        "Check the settings above.",
    ),
}


def describe(
    classification: ProviderErrorClass,
    provider_settings: ProviderSettings,
    *,
    to: str,
    secret: str = "",
) -> TestEmailResult:
    """The plain-words result for a classified failure, free of the secret."""
    info = provider_settings.info
    classification = for_tenant(classification, provider_settings)
    message, hint = WORDING[classification.outcome]
    # The provider's own words, where they may be shown (see `for_tenant`).
    own_words = provider_settings.tenant_id is None or classification.documented
    if not own_words and classification.outcome is Outcome.PROVIDER_ERROR:
        message, hint = (
            "{provider} did not accept the test email: its API answered with an error{status}.",
            "Check the API URL (leave it blank for {provider}'s own) and the settings above.",
        )
    key_id_hint = f" (with its {info.key_id_label})" if info.key_id_label else ""
    fields = {
        "status": f" (HTTP {classification.status})" if classification.status else "",
        "provider": info.label,
        "to": to,
        "sender": provider_settings.from_email,
        "detail": _detail(classification, own_words),
        "endpoint": provider_settings.endpoint or "its API",
        "secret_label": info.secret_label,
        "key_id_hint": key_id_hint,
        "verify_sender": info.verify_sender,
        "sandbox": info.sandbox,
        "console": info.console,
    }
    reply = None
    if own_words and classification.text and classification.outcome is not Outcome.UNREACHABLE:
        reply = ProviderReply("", _scrub(classification.text, secret), classification.status)
    return TestEmailResult(
        outcome=classification.outcome,
        message=_scrub(message.format(**fields), secret),
        hint=_scrub(hint.format(**fields), secret),
        reply=reply,
    )


def _detail(classification: ProviderErrorClass, own_words: bool) -> str:
    if classification.outcome is Outcome.UNREACHABLE:
        # What happened on the network: the host's administrators only.
        return f": {classification.text}" if own_words and classification.text else ""
    if not own_words:
        status = f" (HTTP {classification.status})" if classification.status else ""
        return classification.text.rstrip(".") + status
    return classification.text or "no details"


def send_provider_test_email(
    provider_settings: ProviderSettings,
    *,
    to: str,
    subject: str,
    body: str,
    secret: str | None = None,
) -> TestEmailResult:
    """Send one message with these settings (saved or not) and say what happened.

    `secret`: a typed plaintext secret to test with instead of the stored one.
    """
    if secret is None:
        secret = provider_settings.secret.reveal() if provider_settings.secret else ""
    message = EmailMessage(subject, body, from_email=provider_settings.from_header, to=[to])
    try:
        backend = provider_backend(provider_settings, secret=secret, alias=TEST_EMAIL_ALIAS)
        backend.send_messages([message])
        message_id = _checked(message)
    except Exception as error:  # anymail, boto3 and requests raise their own
        classification = classify_provider_error(error, sender=provider_settings.from_email)
        if classification.outcome is Outcome.OTHER:
            logger.warning(
                "Test email via %s failed unexpectedly: %s",
                provider_settings.provider,
                _scrub(repr(error), secret),
            )
        result = describe(classification, provider_settings, to=to, secret=secret)
    else:
        message_text, hint = WORDING[Outcome.SENT]
        label = provider_settings.info.label
        result = TestEmailResult(
            outcome=Outcome.SENT,
            message=message_text.format(provider=label),
            hint=hint.format(to=to),
            reply=ProviderReply(message_id=message_id, text=f"Accepted by {label}"),
        )
    logger.info("Test email to %s via %s: %s", to, provider_settings.provider, result.outcome.value)
    return result
