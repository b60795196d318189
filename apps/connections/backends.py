"""The email backend behind every mail Django itself sends (MAILERS "default").

It reads the host's SMTP settings from the database (cached, forgotten on
save) instead of `EMAIL_*` settings frozen at start-up, and sends through
`transport`, the one place that opens SMTP connections.
"""

import copy

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.mail.backends.base import BaseEmailBackend

from apps.connections.oauth_tokens import OAuthError
from apps.connections.selectors import host_smtp_settings
from apps.connections.smtp import SmtpBackend, smtp_backend
from apps.core.mail import mail_outside_transaction_check


class HostSmtpSettingsMissing(ImproperlyConfigured):
    pass


class HostSettingsBackend(BaseEmailBackend):
    """Send through the host's SMTP settings.

    A message from the placeholder `DEFAULT_FROM_EMAIL` or `SERVER_EMAIL`
    goes out from the configured "Display Name <address>". Use it as a
    context manager (or open()/close()) to send a batch over one connection.
    """

    def __init__(self, *, alias=None, **kwargs):
        super().__init__(alias=alias, **kwargs)
        self._smtp: SmtpBackend | None = None
        self._from_header = ""

    def open(self):
        if self._smtp is not None:
            return False
        row = host_smtp_settings()
        if row is None:
            raise HostSmtpSettingsMissing(
                "No host SMTP settings: a system administrator must set them in "
                "Host administration → Email settings."
            )
        password = row.password.reveal() if row.password else ""
        smtp = smtp_backend(row, password=password, alias=self.alias or "default")
        smtp.open()
        self._smtp, self._from_header = smtp, row.from_header
        return True

    def close(self):
        if self._smtp is not None:
            try:
                self._smtp.close()
            finally:
                self._smtp = None

    def send_messages(self, email_messages):
        if not email_messages:
            return 0
        # The portal's own mail goes after its transaction commits (apps/core/mail.py).
        mail_outside_transaction_check()
        try:
            opened = self.open()
            try:
                return self._smtp.send_messages([self._with_from(m) for m in email_messages])
            finally:
                if opened:
                    self.close()
        except (OSError, OAuthError, HostSmtpSettingsMissing):
            # fail_silently is deprecated in Django 6.1 but still honoured.
            if self._fail_silently:
                return 0
            raise

    def _with_from(self, message):
        if message.from_email not in (settings.DEFAULT_FROM_EMAIL, settings.SERVER_EMAIL):
            return message
        message = copy.copy(message)
        message.from_email = self._from_header
        return message
