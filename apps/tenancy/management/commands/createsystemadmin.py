"""Create the first system administrator (or make an existing account one), audited.

Interactive:     manage.py createsystemadmin
For automation:  POSTMASTER_ADMIN_PASSWORD=... manage.py createsystemadmin --email a@example.com
                 manage.py createsystemadmin --email a@example.com --password-file /run/secrets/pw

The audit log names the actor "command line". The password must pass the password validators.
"""

import getpass
import os
import sys
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from apps.accounts.models import User
from apps.audit.services import COMMAND_LINE
from apps.tenancy.services import system_admin_create, system_admin_grant

PASSWORD_ENV = "POSTMASTER_ADMIN_PASSWORD"


def _plain(exc: ValidationError) -> str:
    return " ".join(exc.messages)


def _about_email(exc: ValidationError) -> bool:
    return any(error.code == "email" for error in exc.error_list)


class Command(BaseCommand):
    stealth_options = ("stdin",)
    help = (
        "Create a system administrator: asks for the email address and the password, or takes "
        f"--email with the password from {PASSWORD_ENV} or --password-file."
    )

    def add_arguments(self, parser):
        parser.add_argument("--email", help="the administrator's email address (sign-in name)")
        parser.add_argument("--full-name", default="", help="their name, as pages show it")
        parser.add_argument(
            "--password-file",
            type=Path,
            help=f"a file holding the password (else {PASSWORD_ENV}, else it is asked for)",
        )
        parser.add_argument(
            "--existing",
            action="store_true",
            help="grant the rights to the account that has this address; its password stays",
        )
        parser.add_argument(
            "--no-input",
            "--noinput",
            action="store_false",
            dest="interactive",
            help="never ask; fail in plain words when something is missing",
        )

    def handle(self, *args, email, full_name, password_file, existing, interactive, **options):
        stdin = options.get("stdin", sys.stdin)  # tests hand in a stand-in terminal
        interactive = interactive and hasattr(stdin, "isatty") and stdin.isatty()
        email = email if email is not None else self._ask_email(interactive)
        if existing:
            self._grant_existing(email)
            return
        password = self._given_password(password_file)
        user = None
        while user is None:
            if password is None:
                password = self._ask_password(interactive)
            try:
                user = system_admin_create(
                    email=email, password=password, full_name=full_name, actor=COMMAND_LINE
                )
            except ValidationError as exc:
                # A weak password may be typed again; the address is the operator's to fix.
                if not interactive or _about_email(exc):
                    raise CommandError(_plain(exc)) from None
                self.stderr.write(_plain(exc))
                password = None
        self.stdout.write(self.style.SUCCESS(f"{user.email} is now a system administrator."))

    def _grant_existing(self, email: str) -> None:
        user = User.objects.filter(email__iexact=email.strip()).first()
        if user is None:
            raise CommandError(
                f"No account has the address {email}. Leave out --existing to create it."
            )
        if user.is_system_admin:
            raise CommandError(f"{user.email} is a system administrator already; nothing changed.")
        try:
            system_admin_grant(user=user, actor=COMMAND_LINE)
        except ValidationError as exc:
            raise CommandError(_plain(exc)) from None
        self.stdout.write(self.style.SUCCESS(f"{user.email} is now a system administrator."))

    def _given_password(self, password_file: Path | None) -> str | None:
        if password_file is not None:
            try:
                return password_file.read_text().rstrip("\r\n")
            except OSError as exc:
                raise CommandError(
                    f"Cannot read the password file {password_file}: {exc.strerror}."
                ) from None
        return os.environ.get(PASSWORD_ENV) or None

    def _ask_email(self, interactive: bool) -> str:
        if not interactive:
            raise CommandError("Give the administrator's address with --email.")
        return input("Email address: ")

    def _ask_password(self, interactive: bool) -> str:
        if not interactive:
            raise CommandError(
                f"Give the password in the {PASSWORD_ENV} environment variable or with "
                "--password-file (or run the command in a terminal to type it)."
            )
        while True:
            first = getpass.getpass("Password: ")
            if first and first == getpass.getpass("Password (again): "):
                return first
            self.stderr.write("The passwords were empty or did not match; type them again.")
