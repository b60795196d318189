"""A test email's answer, whichever way the mail left (SMTP or a provider's API).

Its `outcome` is the transport's own `Outcome` (apps/connections/smtp.py or providers.py):
two enums still, because the delivery engine tells a provider's failure from an SMTP one
by its type (apps/delivery/services.py, `_words`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from apps.connections.providers import ProviderReply
    from apps.connections.smtp import SmtpReply


@dataclass(frozen=True)
class TestEmailResult:
    __test__ = False  # not a pytest test class, despite the name

    outcome: StrEnum
    message: str
    hint: str
    reply: SmtpReply | ProviderReply | None = None

    @property
    def ok(self) -> bool:
        return self.outcome == "sent"  # either transport's Outcome.SENT
