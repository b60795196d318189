"""A local stand-in for the providers' send APIs, for tests and the demo.

`manage.py provider_standin` runs it for `make run`.

One threaded HTTP server answers the send endpoint of every provider, told
apart by path (so one base URL, e.g. http://127.0.0.1:8025/, serves them all):

    Postmark   POST …/email                      X-Postmark-Server-Token
    SendGrid   POST …/mail/send                  Authorization: Bearer <key>
    Brevo      POST …/smtp/email                 api-key
    Mailjet    POST …/send                       basic auth <API key>:<secret key>
    Mailgun    POST …/<domain>/messages          basic auth api:<key>, form data
    Amazon SES POST …/v2/email/outbound-emails   AWS SigV4 (the access key ID is checked)

It checks the credentials (any non-empty one, or exactly those in
`credentials`) and the request's required fields, answers like the provider
(its message id format, its error bodies), and records each request in
`received`. `answer` switches it to an error for tests: "invalid_key",
"rate_limited", "unverified_sender", "sandbox", "server_error",
"rejected_recipient". With `relay=(host, port)`, each accepted message is
passed on to that SMTP server (the demo's mail catcher).
"""

import base64
import binascii
import json
import logging
import secrets
import smtplib
import threading
import time
import uuid
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

logger = logging.getLogger(__name__)

# The providers' own words for the errors the stand-in can answer.
POSTMARK_UNVERIFIED = (
    "The 'From' address you supplied ({sender}) is not a Sender Signature on your account. "
    "Please add and confirm this address in order to be able to use it in the 'From' field "
    "of your messages."
)
SENDGRID_BAD_KEY = "The provided authorization grant is invalid, expired, or revoked"
SENDGRID_NO_TO = (
    "The to array is required for all personalization objects, and must have at least one "
    "email object with a valid email address."
)
SENDGRID_UNVERIFIED = (
    "The from address does not match a verified Sender Identity. Mail cannot be sent until "
    "this error is resolved. Visit "
    "https://sendgrid.com/docs/for-developers/sending-email/sender-identity/ to see the "
    "Sender Identity requirements"
)
SENDGRID_REVIEW = (
    "Your account is under review: until it is approved, mail is sent only to a limited "
    "number of addresses."
)
BREVO_UNVERIFIED = "Sender {sender} is not valid: add and verify it in your account."
BREVO_NOT_ACTIVATED = (
    "Unable to send email. Your SMTP account is not yet activated. Please contact us at "
    "contact@brevo.com to activate it."
)
MAILJET_MISSING = 'At least "From" and "To" must be provided.'
MAILGUN_SANDBOX = (
    "Domain {domain} is not allowed to send: Free accounts are for test purposes only. Please "
    "upgrade or add the address to authorized recipients in Account Settings."
)
SES_UNVERIFIED = (
    "Email address is not verified. The following identities failed the check in region "
    "{region}: {identities}"
)

ANSWERS = (
    "ok",
    "invalid_key",
    "rate_limited",
    "unverified_sender",
    "sandbox",
    "server_error",
    "rejected_recipient",
)


@dataclass
class Received:
    provider: str
    path: str
    headers: dict
    body: object  # the parsed JSON, or {field: [values]} for form data
    credential: str
    message_id: str = ""


@dataclass
class Reply:
    status: int
    body: object = None
    headers: dict = field(default_factory=dict)


class StandinError(Exception):
    def __init__(self, reply: Reply):
        super().__init__(reply.status)
        self.reply = reply


def _route(path: str) -> str | None:
    path = path.rstrip("/")
    if path.endswith("/v2/email/outbound-emails"):
        return "amazon_ses"
    if path.endswith("/smtp/email"):
        return "brevo"
    if path.endswith("/mail/send"):
        return "sendgrid"
    if path.endswith("/messages") and path.count("/") >= 2:
        return "mailgun"
    if path.endswith("/email"):
        return "postmark"
    if path.endswith("/send"):
        return "mailjet"
    return None


class ProviderStandin:
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        relay: tuple[str, int] | None = None,
        credentials: dict[str, str] | None = None,
    ):
        self.relay = relay
        # provider -> the one credential accepted (the secret; Mailjet "key:secret",
        # SES the access key ID). Missing: any non-empty credential is accepted.
        self.credentials = dict(credentials or {})
        self.answer = "ok"
        self.answers: dict[str, str] = {}  # per provider, over `answer`
        self.received: list[Received] = []
        self._lock = threading.Lock()
        self._counter = 0
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                standin._handle(self)

            def do_GET(self):
                standin._send(self, Reply(404, {"message": "Not found"}))

            def log_message(self, format, *args):  # noqa: A002
                logger.debug("provider stand-in: " + format, *args)

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self._thread: threading.Thread | None = None

    # Running ---------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    @property
    def url(self) -> str:
        """The base URL to give as API URL (or SES endpoint) for any provider."""
        return f"http://{self.server.server_address[0]}:{self.port}/"

    def start(self) -> "ProviderStandin":
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def answer_for(self, provider: str) -> str:
        return self.answers.get(provider, self.answer)

    # Requests --------------------------------------------------------------------------

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        length = int(request.headers.get("Content-Length") or 0)
        raw = request.rfile.read(length)
        path = urlsplit(request.path).path
        provider = _route(path)
        if provider is None:
            self._send(request, Reply(404, {"message": "Not found"}))
            return
        try:
            reply = getattr(self, f"_{provider}")(request, path, raw)
        except StandinError as error:
            reply = error.reply
        self._send(request, reply)

    @staticmethod
    def _send(request: BaseHTTPRequestHandler, reply: Reply) -> None:
        body = b""
        content_type = "application/json"
        if isinstance(reply.body, bytes | str):
            body = reply.body.encode() if isinstance(reply.body, str) else reply.body
            content_type = "text/plain; charset=utf-8"
        elif reply.body is not None:
            body = json.dumps(reply.body).encode()
        request.send_response(reply.status)
        request.send_header("Content-Type", content_type)
        request.send_header("Content-Length", str(len(body)))
        for name, value in reply.headers.items():
            request.send_header(name, value)
        request.end_headers()
        request.wfile.write(body)

    def _check(self, provider: str, credential: str, unauthorized: Reply) -> str:
        """Refuse a missing or wrong credential, then apply the switched answer."""
        expected = self.credentials.get(provider)
        answer = self.answer_for(provider)
        if not credential or (expected is not None and credential != expected):
            raise StandinError(unauthorized)
        if answer == "invalid_key":
            raise StandinError(unauthorized)
        if answer == "server_error":
            raise StandinError(Reply(503, "Service Unavailable"))
        return answer

    def _record(self, provider, request, path, body, credential) -> Received:
        received = Received(provider, path, dict(request.headers), body, credential)
        with self._lock:
            self.received.append(received)
            self._counter += 1
        return received

    def _relay(self, sender: str, recipients: list[str], data: bytes) -> None:
        if not self.relay:
            return
        try:
            with smtplib.SMTP(*self.relay, timeout=10) as smtp:
                smtp.sendmail(sender, recipients, data)
        except (OSError, smtplib.SMTPException) as error:
            # Answered as the provider answers when it cannot take the message, so the
            # sender retries it rather than counting it as sent.
            logger.warning("provider stand-in: relaying to %s failed: %s", self.relay, error)
            raise StandinError(Reply(503, "Service Unavailable")) from error

    def _relay_fields(self, sender, to, subject, text, html, headers=None) -> None:
        if not self.relay:
            return
        message = EmailMessage()
        message["From"] = sender
        message["To"] = ", ".join(to)
        message["Subject"] = subject
        for name, value in (headers or {}).items():
            if name.lower() not in ("from", "to", "subject"):
                message[name] = value
        message.set_content(text or "")
        if html:
            message.add_alternative(html, subtype="html")
        addresses = [a.addr_spec for a in message["To"].addresses]
        self._relay(message["From"].addresses[0].addr_spec, addresses, message.as_bytes())

    # Providers -------------------------------------------------------------------------

    def _postmark(self, request, path, raw) -> Reply:
        unauthorized = Reply(
            401, {"ErrorCode": 10, "Message": "Request does not contain a valid Server token."}
        )
        answer = self._check(
            "postmark", request.headers.get("X-Postmark-Server-Token", ""), unauthorized
        )
        data = _json(raw, Reply(422, {"ErrorCode": 402, "Message": "Received invalid JSON input."}))
        for name in ("From", "To", "Subject"):
            if not data.get(name):
                raise StandinError(
                    Reply(422, {"ErrorCode": 300, "Message": f"Invalid '{name}' value."})
                )
        if not (data.get("TextBody") or data.get("HtmlBody")):
            raise StandinError(
                Reply(
                    422,
                    {
                        "ErrorCode": 300,
                        "Message": "Provide either email TextBody or HtmlBody or both.",
                    },
                )
            )
        sender, to = data["From"], data["To"]
        if answer == "rate_limited":
            raise StandinError(Reply(429, {"ErrorCode": 429, "Message": "Rate limit exceeded."}))
        if answer == "unverified_sender":
            raise StandinError(
                Reply(
                    422,
                    {
                        "ErrorCode": 400,
                        "Message": (POSTMARK_UNVERIFIED.format(sender=sender)),
                    },
                )
            )
        if answer == "sandbox":
            raise StandinError(
                Reply(
                    422,
                    {
                        "ErrorCode": 412,
                        "Message": (
                            "While your account is pending approval, all recipient addresses must "
                            "share the same domain as the 'From' address."
                        ),
                    },
                )
            )
        if answer == "rejected_recipient":
            address = to.split(",")[0].strip().split("<")[-1].rstrip(">").lower()
            raise StandinError(
                Reply(
                    422,
                    {
                        "ErrorCode": 406,
                        "Message": (
                            "You tried to send to recipient(s) that have been marked as inactive.\n"
                            f"Found inactive addresses: {address}.\nInactive recipients are ones "
                            "that have generated a hard bounce, a spam complaint, or a manual "
                            "suppression."
                        ),
                    },
                )
            )
        received = self._record(
            "postmark", request, path, data, request.headers["X-Postmark-Server-Token"]
        )
        received.message_id = str(uuid.uuid4())
        headers = {h["Name"]: h["Value"] for h in data.get("Headers") or []}
        self._relay_fields(
            sender, _split(to), data["Subject"], data.get("TextBody"), data.get("HtmlBody"), headers
        )
        return Reply(
            200,
            {
                "To": to,
                "SubmittedAt": time.strftime("%Y-%m-%dT%H:%M:%S.0000000Z", time.gmtime()),
                "MessageID": received.message_id,
                "ErrorCode": 0,
                "Message": "OK",
            },
        )

    def _sendgrid(self, request, path, raw) -> Reply:
        auth = request.headers.get("Authorization", "")
        key = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else ""
        unauthorized = Reply(
            401,
            {
                "errors": [
                    {
                        "message": SENDGRID_BAD_KEY,
                        "field": None,
                        "help": None,
                    }
                ]
            },
        )
        answer = self._check("sendgrid", key, unauthorized)
        data = _json(raw, Reply(400, {"errors": [{"message": "Bad Request", "field": None}]}))
        personalizations = data.get("personalizations") or []
        if not personalizations or not all(p.get("to") for p in personalizations):
            raise StandinError(
                Reply(
                    400,
                    {
                        "errors": [
                            {
                                "message": SENDGRID_NO_TO,
                                "field": "personalizations.0.to",
                            }
                        ]
                    },
                )
            )
        if not (data.get("from") or {}).get("email"):
            raise StandinError(
                Reply(
                    400,
                    {
                        "errors": [
                            {
                                "message": "The from object must be provided for every email send.",
                                "field": "from",
                            }
                        ]
                    },
                )
            )
        if not data.get("subject") or not data.get("content"):
            raise StandinError(
                Reply(
                    400,
                    {
                        "errors": [
                            {
                                "message": "The subject and content are required.",
                                "field": "subject",
                            }
                        ]
                    },
                )
            )
        if answer == "rate_limited":
            raise StandinError(
                Reply(429, {"errors": [{"message": "too many requests", "field": None}]})
            )
        if answer == "unverified_sender":
            raise StandinError(
                Reply(
                    403,
                    {
                        "errors": [
                            {
                                "message": SENDGRID_UNVERIFIED,
                                "field": "from",
                                "help": None,
                            }
                        ]
                    },
                )
            )
        if answer == "sandbox":
            raise StandinError(
                Reply(
                    403,
                    {
                        "errors": [
                            {
                                "message": SENDGRID_REVIEW,
                                "field": None,
                                "help": None,
                            }
                        ]
                    },
                )
            )
        received = self._record("sendgrid", request, path, data, key)
        # SendGrid answers no id; anymail tags each message with its own (custom_args),
        # which SendGrid's event webhooks report back.
        custom = personalizations[0].get("custom_args") or {}
        received.message_id = custom.get("anymail_id") or secrets.token_urlsafe(16)
        sender = data["from"]
        text = next((c["value"] for c in data["content"] if c["type"] == "text/plain"), "")
        html = next((c["value"] for c in data["content"] if c["type"] == "text/html"), None)
        to = [_format(p) for per in personalizations for p in per["to"]]
        self._relay_fields(_format(sender), to, data["subject"], text, html, data.get("headers"))
        return Reply(202, None, {"X-Message-Id": received.message_id})

    def _brevo(self, request, path, raw) -> Reply:
        unauthorized = Reply(401, {"code": "unauthorized", "message": "Key not found"})
        answer = self._check("brevo", request.headers.get("api-key", ""), unauthorized)
        data = _json(raw, Reply(400, {"code": "bad_request", "message": "Invalid JSON"}))
        if not (data.get("sender") or {}).get("email"):
            raise StandinError(
                Reply(400, {"code": "missing_parameter", "message": "sender is missing"})
            )
        if not data.get("to"):
            raise StandinError(
                Reply(400, {"code": "missing_parameter", "message": "to is missing"})
            )
        if not data.get("subject") or not (data.get("textContent") or data.get("htmlContent")):
            raise StandinError(
                Reply(400, {"code": "missing_parameter", "message": "htmlContent is missing"})
            )
        if answer == "rate_limited":
            raise StandinError(
                Reply(429, {"code": "too_many_requests", "message": "Too many requests"})
            )
        if answer == "unverified_sender":
            raise StandinError(
                Reply(
                    400,
                    {
                        "code": "invalid_parameter",
                        "message": (BREVO_UNVERIFIED.format(sender=data["sender"]["email"])),
                    },
                )
            )
        if answer == "sandbox":
            raise StandinError(
                Reply(
                    403,
                    {
                        "code": "permission_denied",
                        "message": (BREVO_NOT_ACTIVATED),
                    },
                )
            )
        received = self._record("brevo", request, path, data, request.headers["api-key"])
        number = secrets.randbelow(10**11)
        received.message_id = (
            f"<{time.strftime('%Y%m%d%H%M%S')}.{number:011d}@smtp-relay.mailin.fr>"
        )
        to = [_format(t) for t in data["to"]]
        self._relay_fields(
            _format(data["sender"]),
            to,
            data["subject"],
            data.get("textContent"),
            data.get("htmlContent"),
            data.get("headers"),
        )
        return Reply(201, {"messageId": received.message_id})

    def _mailjet(self, request, path, raw) -> Reply:
        credential = _basic(request)
        unauthorized = Reply(
            401,
            {
                "ErrorIdentifier": str(uuid.uuid4()),
                "ErrorCode": "mj-0002",
                "StatusCode": 401,
                "ErrorMessage": "API key authentication/authorization failure. You may be "
                "unauthorized to access the API or your API key may be expired. Visit API keys "
                "management section to check your keys.",
            },
        )
        answer = self._check(
            "mailjet",
            credential
            if ":" in credential and not credential.startswith(":") and not credential.endswith(":")
            else "",
            unauthorized,
        )
        data = _json(
            raw,
            Reply(400, {"ErrorMessage": "Invalid JSON", "StatusCode": 400, "ErrorCode": "mj-0001"}),
        )
        globals_ = data.get("Globals") or {}
        messages = data.get("Messages") or []
        sender = globals_.get("From") or {}
        if not messages or not sender.get("Email") or not all(m.get("To") for m in messages):
            raise StandinError(
                Reply(
                    400,
                    {
                        "Messages": [
                            {
                                "Status": "error",
                                "Errors": [
                                    {
                                        "ErrorIdentifier": str(uuid.uuid4()),
                                        "ErrorCode": "send-0003",
                                        "StatusCode": 400,
                                        "ErrorMessage": MAILJET_MISSING,
                                        "ErrorRelatedTo": ["From"],
                                    }
                                ],
                            }
                        ]
                    },
                )
            )
        if answer == "rate_limited":
            raise StandinError(
                Reply(
                    429,
                    {
                        "ErrorIdentifier": str(uuid.uuid4()),
                        "ErrorCode": "mj-0003",
                        "StatusCode": 429,
                        "ErrorMessage": "Too many requests",
                    },
                )
            )
        if answer in ("unverified_sender", "sandbox"):
            words = (
                f"The sender address {sender['Email']} is not validated: add and validate it "
                "under Sender addresses & domains."
                if answer == "unverified_sender"
                else "Your account is pending activation: until it is reviewed, mail is sent "
                "only to a few addresses."
            )
            raise StandinError(
                Reply(
                    400 if answer == "sandbox" else 401,
                    {
                        "Messages": [
                            {
                                "Status": "error",
                                "Errors": [
                                    {
                                        "ErrorIdentifier": str(uuid.uuid4()),
                                        "ErrorCode": "send-0011",
                                        "StatusCode": 401 if answer == "unverified_sender" else 403,
                                        "ErrorMessage": words,
                                        "ErrorRelatedTo": ["From"],
                                    }
                                ],
                            }
                        ]
                    },
                )
            )
        received = self._record("mailjet", request, path, data, credential)
        results = []
        for message in messages:
            to = []
            for recipient in message["To"]:
                message_id = 288230376151711744 + secrets.randbelow(10**9)
                received.message_id = str(message_id)
                to.append(
                    {
                        "Email": recipient["Email"],
                        "MessageUUID": str(uuid.uuid4()),
                        "MessageID": message_id,
                        "MessageHref": f"https://api.mailjet.com/v3/REST/message/{message_id}",
                    }
                )
            results.append({"Status": "success", "CustomID": "", "To": to, "Cc": [], "Bcc": []})
            self._relay_fields(
                _format(sender, "Email", "Name"),
                [_format(r, "Email", "Name") for r in message["To"]],
                globals_.get("Subject", ""),
                globals_.get("TextPart"),
                globals_.get("HTMLPart"),
                globals_.get("Headers"),
            )
        return Reply(200, {"Messages": results})

    def _mailgun(self, request, path, raw) -> Reply:
        credential = _basic(request)
        key = credential.removeprefix("api:") if credential.startswith("api:") else ""
        answer = self._check("mailgun", key, Reply(401, "Forbidden"))
        domain = path.rstrip("/").split("/")[-2]
        data = _form(request, raw)
        for name in ("from", "to", "subject"):
            if not data.get(name):
                raise StandinError(Reply(400, {"message": f"{name} parameter is missing"}))
        if not (data.get("text") or data.get("html")):
            raise StandinError(
                Reply(
                    400, {"message": "Need at least one of 'text' or 'html' parameters specified"}
                )
            )
        if answer == "rate_limited":
            raise StandinError(Reply(429, {"message": "Too many requests"}))
        if answer == "unverified_sender":
            raise StandinError(Reply(404, {"message": f"Domain not found: {domain}"}))
        if answer == "sandbox":
            raise StandinError(
                Reply(
                    403,
                    {"message": (MAILGUN_SANDBOX.format(domain=domain))},
                )
            )
        received = self._record("mailgun", request, path, data, key)
        stamp, token = time.strftime("%Y%m%d%H%M%S"), secrets.token_hex(8).upper()
        received.message_id = f"<{stamp}.{self._counter}.{token}@{domain}>"
        headers = {name[2:]: values[0] for name, values in data.items() if name.startswith("h:")}
        self._relay_fields(
            data["from"][0],
            data["to"],
            data["subject"][0],
            (data.get("text") or [""])[0],
            (data.get("html") or [None])[0],
            headers,
        )
        return Reply(200, {"id": received.message_id, "message": "Queued. Thank you."})

    def _amazon_ses(self, request, path, raw) -> Reply:
        auth = request.headers.get("Authorization", "")
        key_id = ""
        if auth.startswith("AWS4-HMAC-SHA256 ") and "Signature=" in auth:
            scope = auth.split("Credential=", 1)[-1].split(",", 1)[0].split("/")
            if len(scope) == 5 and scope[3] == "ses" and scope[4] == "aws4_request":
                key_id = scope[0]
        unauthorized = Reply(
            403,
            {"message": "The security token included in the request is invalid."},
            {"x-amzn-ErrorType": "UnrecognizedClientException"},
        )
        answer = self._check("amazon_ses", key_id, unauthorized)
        bad = Reply(
            400,
            {"message": "Raw message content is missing."},
            {"x-amzn-ErrorType": "BadRequestException"},
        )
        data = _json(raw, bad)
        try:
            mime = base64.b64decode(data["Content"]["Raw"]["Data"], validate=True)
        except (KeyError, TypeError, binascii.Error):
            raise StandinError(bad) from None
        message = message_from_bytes(mime, policy=policy.default)
        sender = message["From"].addresses[0].addr_spec if message["From"] else ""
        recipients = [
            a.addr_spec for name in ("To", "Cc") if message[name] for a in message[name].addresses
        ] + list((data.get("Destination") or {}).get("BccAddresses") or [])
        region = auth.split("Credential=", 1)[-1].split("/")[2].upper() if key_id else ""
        if answer == "rate_limited":
            raise StandinError(
                Reply(
                    429,
                    {"message": "Maximum sending rate exceeded."},
                    {"x-amzn-ErrorType": "TooManyRequestsException"},
                )
            )
        if answer in ("unverified_sender", "sandbox"):
            identities = sender if answer == "unverified_sender" else ", ".join(recipients)
            raise StandinError(
                Reply(
                    400,
                    {"message": (SES_UNVERIFIED.format(region=region, identities=identities))},
                    {"x-amzn-ErrorType": "MessageRejected"},
                )
            )
        received = self._record("amazon_ses", request, path, data, key_id)
        received.message_id = f"0102{secrets.token_hex(6)}-{uuid.uuid4()}-000000"
        self._relay(sender, recipients, mime)
        return Reply(200, {"MessageId": received.message_id})


def _json(raw: bytes, bad: Reply) -> dict:
    try:
        data = json.loads(raw or b"null")
    except ValueError:
        raise StandinError(bad) from None
    if not isinstance(data, dict):
        raise StandinError(bad)
    return data


def _form(request, raw: bytes) -> dict[str, list[str]]:
    """Mailgun's form data: url-encoded or multipart (anymail sends multipart)."""
    content_type = request.headers.get("Content-Type", "")
    if content_type.startswith("multipart/form-data"):
        head = f"Content-Type: {content_type}\r\n\r\n".encode()
        message = message_from_bytes(head + raw, policy=policy.HTTP)
        data: dict[str, list[str]] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if name and part.get_filename() is None:
                data.setdefault(name, []).append(part.get_content())
        return data
    return parse_qs(raw.decode(), keep_blank_values=True)


def _basic(request) -> str:
    auth = request.headers.get("Authorization", "")
    if not auth.startswith("Basic "):
        return ""
    try:
        return base64.b64decode(auth[6:]).decode()
    except (binascii.Error, UnicodeDecodeError):
        return ""


def _split(addresses: str) -> list[str]:
    return [a.strip() for a in addresses.split(",") if a.strip()]


def _format(address: dict, email: str = "email", name: str = "name") -> str:
    if address.get(name):
        return f'"{address[name]}" <{address[email]}>'
    return address[email]
