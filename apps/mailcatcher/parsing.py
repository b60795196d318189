"""Reading a caught message for display.

The catcher accepts whatever a client sends, so nothing here may raise on a
malformed message: headers are shown as sent (decoded, never rebuilt), a
part in an unknown charset is decoded as UTF-8 with replacement characters.
"""

import email
import re
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    size: int


@dataclass(frozen=True)
class ParsedMessage:
    headers: list[tuple[str, str]]
    text: str | None
    html: str | None
    attachments: list[Attachment] = field(default_factory=list)


def message_parse(raw: bytes) -> ParsedMessage:
    msg = email.message_from_bytes(raw, policy=policy.default)
    text = msg.get_body(preferencelist=("plain",))
    html = msg.get_body(preferencelist=("html",))
    return ParsedMessage(
        headers=[(name, _header_value(value)) for name, value in msg.raw_items()],
        text=_content(text) if text is not None else None,
        html=_content(html) if html is not None else None,
        attachments=[_attachment(part) for part in msg.iter_attachments()],
    )


def message_headline(raw: bytes) -> dict[str, str]:
    """Subject, From and To as the list shows them."""
    msg = email.message_from_bytes(raw, policy=policy.default)
    headers = {name.lower(): value for name, value in reversed(list(msg.raw_items()))}
    return {
        key: _header_value(headers[name]) if name in headers else ""
        for key, name in (("subject", "subject"), ("from_header", "from"), ("to_header", "to"))
    }


def _header_value(value: str) -> str:
    # Parsed as unstructured text: encoded words and raw UTF-8 are decoded,
    # but an address list stays as the sender wrote it (a malformed one too)
    # instead of being rebuilt, which could hide what was wrong with it.
    unfolded = re.sub(r"[\r\n]", "", value)
    try:
        return str(policy.default.header_factory("x-unstructured", unfolded))
    except Exception:
        return _printable(unfolded)


def _printable(text: str) -> str:
    # Bytes the parser kept as surrogates cannot be rendered or stored.
    return text.encode("utf-8", errors="surrogateescape").decode("utf-8", errors="replace")


def _content(part: EmailMessage) -> str:
    try:
        return part.get_content()
    except LookupError:  # an unknown charset
        return (part.get_payload(decode=True) or b"").decode("utf-8", errors="replace")


def _attachment(part: EmailMessage) -> Attachment:
    payload = part.get_payload(decode=True)
    return Attachment(
        filename=_printable(part.get_filename() or "(no name)"),
        content_type=part.get_content_type(),
        size=len(payload) if isinstance(payload, bytes) else len(part.as_bytes()),
    )
