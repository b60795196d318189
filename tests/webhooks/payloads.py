"""Real providers' webhook posts, as their documentation shows them (sanitized samples).

Each builder takes the provider's message id and the recipient, so a test can
point a report at one of its deliveries; `post_kwargs` gives what the test
client needs to post it the way the provider does (content type, headers).
"""

import base64
import hashlib
import hmac
import json
import secrets
import time

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

# Amazon SES, through Amazon SNS --------------------------------------------------------------


def _sns(ses_event: dict, *, sns_id: str = "19ba9823-d7f2-53c1-860e-cb10e0d13dfc") -> dict:
    return {
        "Type": "Notification",
        "MessageId": sns_id,
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:SES_Events",
        "Subject": "Amazon SES Email Event Notification",
        "Message": json.dumps(ses_event) + "\n",
        "Timestamp": "2018-03-26T17:58:59.675Z",
        "SignatureVersion": "1",
        "Signature": "EXAMPLE-SIGNATURE==",
        "SigningCertURL": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-12345abcde.pem",
        "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=arn",
    }


def _ses_mail(message_id: str, recipient: str) -> dict:
    return {
        "timestamp": "2016-01-27T14:59:38.237Z",
        "source": "john@example.com",
        "sourceArn": "arn:aws:ses:us-west-2:888888888888:identity/example.com",
        "sendingAccountId": "123456789012",
        "messageId": message_id,
        "destination": [recipient],
        "headersTruncated": False,
        "headers": [
            {"name": "From", "value": '"John Doe" <john@example.com>'},
            {"name": "To", "value": recipient},
            {"name": "Subject", "value": "Hello"},
        ],
    }


def ses_delivered(message_id, recipient):
    return _sns(
        {
            "notificationType": "Delivery",
            "mail": _ses_mail(message_id, recipient),
            "delivery": {
                "timestamp": "2016-01-27T14:59:38.237Z",
                "recipients": [recipient],
                "processingTimeMillis": 546,
                "reportingMTA": "a8-70.smtp-out.amazonses.com",
                "smtpResponse": "250 ok:  Message 64111812 accepted",
                "remoteMtaIp": "127.0.2.0",
            },
        }
    )


def ses_bounced(message_id, recipient, *, bounce_type="Permanent"):
    return _sns(
        {
            "notificationType": "Bounce",
            "bounce": {
                "bounceType": bounce_type,
                "bounceSubType": "General",
                "reportingMTA": "dns; email.example.com",
                "bouncedRecipients": [
                    {
                        "emailAddress": recipient,
                        "status": "5.1.1",
                        "action": "failed",
                        "diagnosticCode": f"smtp; 550 5.1.1 <{recipient}>... User unknown",
                    }
                ],
                "timestamp": "2016-01-27T14:59:44.101Z",
                "feedbackId": "00000138111222aa-44455566-cccc-cccc-cccc-ddddaaaa068a-000000",
                "remoteMtaIp": "127.0.2.0",
            },
            "mail": _ses_mail(message_id, recipient),
        }
    )


def ses_complained(message_id, recipient):
    return _sns(
        {
            "notificationType": "Complaint",
            "complaint": {
                "userAgent": "AnyCompany Feedback Loop (V0.01)",
                "complainedRecipients": [{"emailAddress": recipient}],
                "complaintFeedbackType": "abuse",
                "timestamp": "2016-01-27T14:59:38.237Z",
                "feedbackId": "000001378603177f-18c07c78-fa81-4a58-9dd1-fedc3cb8f49a-000000",
            },
            "mail": _ses_mail(message_id, recipient),
        }
    )


def ses_rejected(message_id, recipient):
    return _sns(
        {
            "eventType": "Reject",
            "mail": _ses_mail(message_id, recipient),
            "reject": {"reason": "Bad content"},
        }
    )


def sns_post_kwargs(sns_message: dict) -> dict:
    # SNS posts JSON as text/plain, and repeats the type and id in headers.
    return {
        "data": json.dumps(sns_message),
        "content_type": "text/plain; charset=UTF-8",
        "headers": {
            "x-amz-sns-message-type": sns_message["Type"],
            "x-amz-sns-message-id": sns_message["MessageId"],
        },
    }


# Mailgun -----------------------------------------------------------------------------------


def mailgun_sign(
    payload: dict, signing_key: str, *, timestamp: int | None = None, token: str | None = None
) -> dict:
    """Signed as Mailgun signs: now, with a new random token of 50 characters (unless given)."""
    timestamp = str(int(time.time()) if timestamp is None else timestamp)
    token = token or secrets.token_hex(25)
    signature = hmac.new(
        signing_key.encode("ascii"), f"{timestamp}{token}".encode("ascii"), hashlib.sha256
    ).hexdigest()
    payload["signature"] = {"timestamp": timestamp, "token": token, "signature": signature}
    return payload


def _mailgun(event_data: dict, message_id: str, recipient: str) -> dict:
    return {
        "event-data": {
            "tags": [],
            "timestamp": 1534108637.153125,
            "id": "hTWCTD81RtiDN-fYAUx1rA",
            "user-variables": {},
            "log-level": "info",
            "envelope": {
                "sending-ip": "209.61.154.250",
                "sender": "notifications@acme.example",
                "transport": "smtp",
                "targets": recipient,
            },
            "message": {
                "headers": {
                    "to": recipient,
                    # Mailgun leaves out the <> that its sending API answers with.
                    "message-id": message_id.strip("<>"),
                    "from": "notifications@acme.example",
                    "subject": "Deploy prod failed",
                },
                "attachments": [],
                "size": 809,
            },
            "recipient": recipient,
            "recipient-domain": recipient.split("@")[1],
            **event_data,
        }
    }


def mailgun_delivered(message_id, recipient):
    return _mailgun(
        {
            "event": "delivered",
            "delivery-status": {
                "tls": True,
                "mx-host": "smtp-in.example.com",
                "attempt-no": 1,
                "description": "",
                "session-seconds": 3.57,
                "code": 250,
                "message": "OK",
            },
        },
        message_id,
        recipient,
    )


def mailgun_bounced(message_id, recipient):
    return _mailgun(
        {
            "event": "failed",
            "severity": "permanent",
            "reason": "bounce",
            "log-level": "error",
            "delivery-status": {
                "tls": True,
                "mx-host": "aspmx.l.example.org",
                "attempt-no": 1,
                "description": "",
                "code": 550,
                "message": "5.1.1 The email account that you tried to reach does not exist.",
            },
        },
        message_id,
        recipient,
    )


def mailgun_complained(message_id, recipient):
    return _mailgun({"event": "complained", "log-level": "warn"}, message_id, recipient)


def mailgun_unsubscribed(message_id, recipient):
    return _mailgun(
        {"event": "unsubscribed", "client-info": {"user-agent": "Mozilla/5.0"}},
        message_id,
        recipient,
    )


# SendGrid (a batch of events in one post) -------------------------------------------------------


def _sendgrid(event: dict, message_id: str, recipient: str) -> dict:
    return {
        "email": recipient,
        "timestamp": 1513299569,
        "smtp-id": "<14c5d75ce93.dfd.64b469@ismtpd-555>",
        "sg_event_id": "rbtnWrG1DVDGGGFHFyun0A==",
        "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.000000000000",
        # Set by anymail's SendGrid backend on every message, and its message id.
        "anymail_id": message_id,
        "category": ["deploys"],
        **event,
    }


def sendgrid_delivered(message_id, recipient):
    return _sendgrid(
        {"event": "delivered", "response": "250 OK", "ip": "168.1.1.1", "tls": 1},
        message_id,
        recipient,
    )


def sendgrid_bounced(message_id, recipient, *, kind="bounce"):
    return _sendgrid(
        {
            "event": "bounce",
            "type": kind,
            "bounce_classification": "Invalid Address",
            "reason": "550 5.1.1 The email account that you tried to reach does not exist.",
            "status": "5.1.1",
        },
        message_id,
        recipient,
    )


def sendgrid_complained(message_id, recipient):
    return _sendgrid({"event": "spamreport"}, message_id, recipient)


def sendgrid_dropped(message_id, recipient):
    return _sendgrid({"event": "dropped", "reason": "Bounced Address"}, message_id, recipient)


def sendgrid_key_pair() -> tuple[ec.EllipticCurvePrivateKey, str]:
    """A Signed Event Webhook key pair: (private key, the verification key SendGrid shows)."""
    private = ec.generate_private_key(ec.SECP256R1())
    der = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, base64.b64encode(der).decode()


def sendgrid_signature_headers(private: ec.EllipticCurvePrivateKey, body: str) -> dict:
    timestamp = str(int(time.time()))
    signature = private.sign(timestamp.encode() + body.encode(), ec.ECDSA(hashes.SHA256()))
    return {
        "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
        "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
    }


# Postmark ----------------------------------------------------------------------------------


def postmark_delivered(message_id, recipient):
    return {
        "RecordType": "Delivery",
        "ServerID": 23,
        "MessageStream": "outbound",
        "MessageID": message_id,
        "Recipient": recipient,
        "Tag": "deploys",
        "DeliveredAt": "2019-11-05T16:33:54.9070259Z",
        "Details": "Test delivery webhook details",
        "Metadata": {},
    }


def postmark_bounced(message_id, recipient, *, kind="HardBounce"):
    return {
        "RecordType": "Bounce",
        "ID": 4323372036854775807,
        "Type": kind,
        "TypeCode": 1 if kind == "HardBounce" else 4096,
        "Name": "Hard bounce" if kind == "HardBounce" else "Soft bounce",
        "Tag": "deploys",
        "MessageID": message_id,
        "ServerID": 23,
        "MessageStream": "outbound",
        "Description": "The server was unable to deliver your message (ex: unknown user, "
        "mailbox not found).",
        "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
        "Email": recipient,
        "From": "notifications@acme.example",
        "BouncedAt": "2019-11-05T16:33:54.9070259Z",
        "DumpAvailable": True,
        "Inactive": kind == "HardBounce",
        "CanActivate": True,
        "Subject": "Deploy prod failed",
        "Metadata": {},
    }


def postmark_complained(message_id, recipient):
    return {
        "RecordType": "SpamComplaint",
        "ID": 42,
        "Type": "SpamComplaint",
        "TypeCode": 512,
        "Name": "Spam complaint",
        "Tag": "deploys",
        "MessageID": message_id,
        "ServerID": 23,
        "MessageStream": "outbound",
        "Description": "The subscriber explicitly marked this message as spam.",
        "Details": "Test spam complaint details",
        "Email": recipient,
        "From": "notifications@acme.example",
        "BouncedAt": "2019-11-05T16:33:54.9070259Z",
        "Subject": "Deploy prod failed",
    }


def postmark_unsubscribed(message_id, recipient):
    return {
        "RecordType": "SubscriptionChange",
        "MessageID": message_id,
        "ServerID": 23,
        "MessageStream": "outbound",
        "ChangedAt": "2020-02-01T10:53:34.416071Z",
        "Recipient": recipient,
        "Origin": "Recipient",
        "SuppressSending": True,
        "SuppressionReason": "ManualSuppression",
        "Tag": "deploys",
        "Metadata": {},
    }


# Brevo -------------------------------------------------------------------------------------


def _brevo(event: dict, message_id: str, recipient: str) -> dict:
    return {
        "email": recipient,
        "id": 1234567,
        "date": "2020-10-09 00:00:00",
        "ts": 1604933619,
        "message-id": message_id,
        "ts_event": 1604933654,
        "subject": "Deploy prod failed",
        "tags": ["deploys"],
        "sending_ip": "185.41.28.109",
        "ts_epoch": 1604933654000,
        **event,
    }


def brevo_delivered(message_id, recipient):
    return _brevo({"event": "delivered"}, message_id, recipient)


def brevo_bounced(message_id, recipient, *, kind="hard_bounce"):
    reason = f"550 5.1.1 <{recipient}>: Recipient address rejected: User unknown"
    return _brevo({"event": kind, "reason": reason}, message_id, recipient)


def brevo_complained(message_id, recipient):
    return _brevo({"event": "spam"}, message_id, recipient)


def brevo_unsubscribed(message_id, recipient):
    return _brevo({"event": "unsubscribed"}, message_id, recipient)


# Mailjet (grouped events: an array) ------------------------------------------------------------


def _mailjet(event: dict, message_id: str, recipient: str) -> dict:
    return {
        "time": 1433333949,
        "MessageID": int(message_id),
        "Message_GUID": "1ab23cd4-e567-8901-2345-6789f0gh1i2j",
        "email": recipient,
        "mj_campaign_id": 7257,
        "mj_contact_id": 4,
        "customcampaign": "",
        "mj_message_id": message_id,
        "CustomID": "",
        "Payload": "",
        **event,
    }


def mailjet_delivered(message_id, recipient):
    return _mailjet(
        {
            "event": "sent",
            "smtp_reply": "sent (250 2.0.0 OK 1433333948 fa5si855896wjc.199 - gsmtp)",
        },
        message_id,
        recipient,
    )


def mailjet_bounced(message_id, recipient, *, hard=True):
    return _mailjet(
        {
            "event": "bounce",
            "blocked": False,
            "hard_bounce": hard,
            "error_related_to": "recipient",
            "error": "user unknown" if hard else "quota exceeded",
        },
        message_id,
        recipient,
    )


def mailjet_complained(message_id, recipient):
    return _mailjet({"event": "spam", "source": "JMRPP"}, message_id, recipient)


def mailjet_unsubscribed(message_id, recipient):
    return _mailjet(
        {"event": "unsub", "mj_list_id": 1, "ip": "127.0.0.1", "geo": "FR", "agent": "Mozilla"},
        message_id,
        recipient,
    )
