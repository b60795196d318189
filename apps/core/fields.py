from django.db import models

from apps.core import crypto


class Secret:
    """A decrypted secret that does not show itself.

    Its repr and str are a mask, so a secret that reaches a template, a log
    line, a traceback or an audit entry by mistake says nothing.
    `reveal()` is the one way to the plaintext, easy to grep for.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __str__(self) -> str:
        return "********"

    __repr__ = __str__


class EncryptedTextField(models.TextField):
    """Stores a `Secret` as a Fernet token; blank means no secret."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("blank", True)
        kwargs.setdefault("default", "")
        kwargs["editable"] = False
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        kwargs.pop("editable", None)
        return name, path, args, kwargs

    def from_db_value(self, value, expression, connection):
        if not value:
            return None
        return Secret(crypto.decrypt(value))

    def to_python(self, value):
        if value is None or isinstance(value, Secret):
            return value
        return Secret(value) if value else None

    def get_prep_value(self, value):
        if value is None or value == "":
            return ""
        if not isinstance(value, Secret):
            raise TypeError("Assign a Secret (or None) to an encrypted field, not plain text.")
        return crypto.encrypt(value.reveal()) if value else ""
