from django.db import models
from django.utils import timezone


class CaughtMessage(models.Model):
    """One message received by the local mail catcher, kept byte for byte.

    Subject, From and To are copied out of the headers when the message
    arrives, so the list never has to parse (or even load) the raw bytes.
    """

    received_at = models.DateTimeField(default=timezone.now, db_index=True)
    peer = models.CharField(max_length=100, blank=True)
    envelope_sender = models.CharField(max_length=998, blank=True)
    envelope_recipients = models.JSONField(default=list)
    raw = models.BinaryField()
    size = models.PositiveIntegerField()
    subject = models.TextField(blank=True)
    from_header = models.TextField(blank=True)
    to_header = models.TextField(blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]

    def __str__(self):
        return self.subject or "(no subject)"
