from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from apps.mailcatcher.models import CaughtMessage


def caught_message_list() -> QuerySet[CaughtMessage]:
    """Newest first, without the raw bytes the list never shows."""
    return CaughtMessage.objects.defer("raw")


def caught_message_get(*, pk: int) -> CaughtMessage:
    return get_object_or_404(CaughtMessage, pk=pk)
