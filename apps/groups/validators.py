from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.core.validators import validate_email


def alias_addresses_parse(value: str | Iterable[str]) -> list[str]:
    """Email/alias addresses from a comma-separated list (or a list), normalised.

    Each address is trimmed and lower-cased; empty entries are skipped and
    duplicates dropped, keeping the first. Every bad address gets its own
    error, so the person can fix them all at once.
    """
    entries = value.split(",") if isinstance(value, str) else value
    addresses, errors, seen = [], [], set()
    for entry in entries:
        address = entry.strip().lower()
        if not address or address in seen:
            continue
        seen.add(address)
        try:
            validate_email(address)
        except ValidationError:
            errors.append(
                ValidationError(
                    "“%(address)s” is not a valid email address. "
                    "Write it like name@example.com and separate addresses with commas.",
                    code="invalid_alias_address",
                    params={"address": entry.strip()},
                )
            )
            continue
        addresses.append(address)
    if errors:
        raise ValidationError(errors)
    return addresses
