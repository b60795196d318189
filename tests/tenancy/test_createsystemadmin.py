"""`manage.py createsystemadmin`: the first system administrator, typed in or automated, audited."""

import pytest
from django.core.management import CommandError, call_command

from apps.accounts.models import User
from apps.audit.models import AuditEntry
from apps.tenancy.management.commands import createsystemadmin
from tests.factories import UserFactory

STRONG = "correct-horse-battery-staple-42"


class Terminal:
    """A stdin that says it is a terminal: the command asks its questions."""

    def isatty(self):
        return True


@pytest.fixture
def answers(monkeypatch):
    """What the operator types, in order: addresses through input(), passwords through getpass."""
    typed = {"input": [], "getpass": []}

    def take(kind):
        def answer(prompt=""):
            assert typed[kind], f"the command asked one more question: {prompt!r}"
            return typed[kind].pop(0)

        return answer

    monkeypatch.setattr("builtins.input", take("input"))
    monkeypatch.setattr(createsystemadmin.getpass, "getpass", take("getpass"))
    return typed


def _run(*args, **options):
    return call_command("createsystemadmin", *args, **options)


def _assert_audited(email):
    entries = AuditEntry.objects.filter(target_repr=email).order_by("id")
    assert [e.action for e in entries] == ["user.created", "system_admin.granted"]
    assert {e.actor_email for e in entries} == {"command line"}
    assert all(e.actor is None for e in entries)
    assert entries[0].changes["password"] == "changed"  # never the password itself
    assert STRONG not in str([e.changes for e in entries])


@pytest.mark.django_db
def test_from_the_environment_for_automation(monkeypatch, capsys):
    monkeypatch.setenv("POSTMASTER_ADMIN_PASSWORD", STRONG)
    _run("--email", "Ops@Example.com", "--full-name", "Olga Ops", "--no-input")

    user = User.objects.get(email__iexact="ops@example.com")
    assert user.is_system_admin
    assert (user.is_staff, user.is_superuser) == (True, True)
    assert user.full_name == "Olga Ops"
    assert user.check_password(STRONG)
    _assert_audited(user.email)
    assert "is now a system administrator" in capsys.readouterr().out


@pytest.mark.django_db
def test_from_a_password_file(tmp_path, monkeypatch):
    monkeypatch.delenv("POSTMASTER_ADMIN_PASSWORD", raising=False)
    secret = tmp_path / "password"
    secret.write_text(STRONG + "\n")
    _run("--email", "ops@example.com", "--password-file", str(secret), "--no-input")
    assert User.objects.get(email="ops@example.com").check_password(STRONG)
    _assert_audited("ops@example.com")


@pytest.mark.django_db
def test_interactive_asks_twice_and_again_after_a_weak_password(answers, monkeypatch, capsys):
    monkeypatch.delenv("POSTMASTER_ADMIN_PASSWORD", raising=False)
    answers["input"] = ["ops@example.com"]
    answers["getpass"] = [STRONG, "a typo", "1234", "1234", STRONG, STRONG]
    _run(stdin=Terminal())

    assert answers == {"input": [], "getpass": []}
    assert User.objects.get(email="ops@example.com").check_password(STRONG)
    errors = capsys.readouterr().err
    assert "did not match" in errors
    assert "This password is too short" in errors
    assert "Traceback" not in errors
    _assert_audited("ops@example.com")


@pytest.mark.django_db
def test_a_weak_password_from_automation_fails_in_plain_words(monkeypatch):
    monkeypatch.setenv("POSTMASTER_ADMIN_PASSWORD", "ops@example.com")
    with pytest.raises(CommandError, match="too similar to the email address"):
        _run("--email", "ops@example.com", "--no-input")
    assert not User.objects.exists()
    assert not AuditEntry.objects.exists()


@pytest.mark.django_db
def test_an_address_in_use_is_refused_and_names_the_fix(monkeypatch):
    UserFactory(email="ops@example.com")
    monkeypatch.setenv("POSTMASTER_ADMIN_PASSWORD", STRONG)
    with pytest.raises(CommandError, match=r"exists already.*--existing"):
        _run("--email", "OPS@example.com", "--no-input")
    assert not User.objects.get(email="ops@example.com").is_staff
    assert not AuditEntry.objects.exists()


@pytest.mark.django_db
def test_not_an_address(monkeypatch):
    monkeypatch.setenv("POSTMASTER_ADMIN_PASSWORD", STRONG)
    with pytest.raises(CommandError, match="not-an-address is not an email address"):
        _run("--email", "not-an-address", "--no-input")
    assert not User.objects.exists()


@pytest.mark.django_db
def test_without_a_password_and_no_terminal_says_how_to_give_one(monkeypatch):
    monkeypatch.delenv("POSTMASTER_ADMIN_PASSWORD", raising=False)
    with pytest.raises(CommandError, match=r"POSTMASTER_ADMIN_PASSWORD.*--password-file"):
        _run("--email", "ops@example.com", "--no-input")
    with pytest.raises(CommandError, match="--email"):
        _run("--no-input")
    assert not User.objects.exists()


@pytest.mark.django_db
def test_an_unreadable_password_file(tmp_path):
    with pytest.raises(CommandError, match="Cannot read the password file"):
        _run("--email", "ops@example.com", "--password-file", str(tmp_path / "missing"))


@pytest.mark.django_db
def test_existing_grants_an_account_and_keeps_its_password():
    user = UserFactory(email="ops@example.com", password="their-own-password-99")
    _run("--email", "ops@example.com", "--existing", "--no-input")

    user.refresh_from_db()
    assert user.is_system_admin
    assert user.check_password("their-own-password-99")
    entry = AuditEntry.objects.get(action="system_admin.granted")
    assert entry.actor_email == "command line"

    with pytest.raises(CommandError, match="a system administrator already"):
        _run("--email", "ops@example.com", "--existing", "--no-input")
    with pytest.raises(CommandError, match="No account has the address"):
        _run("--email", "nobody@example.com", "--existing", "--no-input")
