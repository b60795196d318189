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
