import re
import unicodedata

from django.core.exceptions import ValidationError

# What would end a header line or an SMTP command and start another.
FORBIDDEN_CHARACTERS = ("\r", "\n", "\x00")


def validate_single_line(value: str) -> None:
    """Refuse line breaks and NUL in anything that reaches a header or the SMTP dialogue."""
    if any(character in str(value) for character in FORBIDDEN_CHARACTERS):
        raise ValidationError(
            "Remove the line break: this value goes into the SMTP conversation or a mail "
            "header, where it must stay on one line.",
            code="line_break",
        )


def one_line(text: str) -> str:
    """`text` fit for a header: every control or line/paragraph separator a space, runs collapsed.

    str.split() already breaks at CR, LF, U+0085, U+2028 and the other Unicode
    line ends; NUL and the other control characters are not whitespace, so
    they are replaced first. Encoded-word openers are defused.
    """
    cleaned = "".join(
        " " if unicodedata.category(character) in ("Cc", "Zl", "Zp") else character
        for character in str(text)
    )
    # Typed "=?utf-8?q?=0d=0a?=" would be decoded by the recipient's mail
    # program as an encoded word (a line break); a zero-width space keeps it
    # literal text (and makes Python encode the header, so it arrives as typed).
    return " ".join(cleaned.split()).replace("=?", "=\u200b?")


# One DNS label: letters, digits and inner hyphens, at most 63 characters.
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$", re.IGNORECASE)
EHLO_NAME_ERROR = (
    "Enter a fully qualified domain name, like mail.example.com: the name of this "
    "sending host, with at least one dot, letters, digits and hyphens only."
)


def validate_fqdn(value: str) -> None:
    """A fully qualified domain name, as relays that check HELO/EHLO names want it."""
    name = str(value).rstrip(".")
    labels = name.split(".")
    valid = (
        len(name) <= 253
        and len(labels) >= 2
        and all(_LABEL.match(label) for label in labels)
        and not labels[-1].isdigit()  # an address, not a name
    )
    if not valid:
        raise ValidationError(EHLO_NAME_ERROR, code="fqdn")
