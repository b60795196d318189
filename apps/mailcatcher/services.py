from django.db import transaction

from apps.audit.services import audit_record
from apps.mailcatcher.models import CaughtMessage
from apps.mailcatcher.parsing import message_headline


def caught_message_create(
    *, peer: str, envelope_sender: str, envelope_recipients: list[str], raw: bytes
) -> CaughtMessage:
    return CaughtMessage.objects.create(
        peer=peer,
        envelope_sender=envelope_sender,
        envelope_recipients=list(envelope_recipients),
        raw=raw,
        size=len(raw),
        **message_headline(raw),
    )


@transaction.atomic
def caught_messages_delete_all(*, actor, request=None) -> int:
    deleted, _ = CaughtMessage.objects.all().delete()
    audit_record(
        actor=actor,
        action="mailcatcher.delete_all",
        changes={"deleted": deleted},
        request=request,
    )
    return deleted
