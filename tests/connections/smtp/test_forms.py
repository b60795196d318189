import pytest
from django.http import QueryDict

from apps.connections.forms import (
    BOTH_PASSWORD_ACTIONS,
    SECURITY_DOWNGRADED,
    SERVER_MOVED,
    TEST_BUTTON,
    TESTED_PASSWORD_NOT_KEPT,
    USERNAME_WITHOUT_PASSWORD,
    SmtpSettingsForm,
)
from apps.connections.models import PORT_ERROR, TIMEOUT_ERROR, Security
from apps.connections.validators import validate_single_line
from apps.core.fields import Secret
from tests.connections.smtp.factories import SmtpSettingsFactory, smtp_form_data
from tests.smtp_servers import smtp_server

LINE_BREAK = "Remove the line break"
STORED = "stored-Pa55"

# Validating the model's check constraints asks the database.
pytestmark = pytest.mark.django_db


def form_data(**overrides) -> dict:
    server = {"host": "smtp.example.com", "port": "587", "security": "starttls", "username": "ann"}
    return smtp_form_data(**server | overrides)


def bound(instance=None, testing=None, **overrides) -> SmtpSettingsForm:
    if instance is None or not instance.password:
        # Nothing stored: a login needs its password typed.
        overrides.setdefault("new_password", "typed-Pa55")
    return SmtpSettingsForm(form_data(**overrides), instance=instance, testing=testing)


def stored_row(**fields):
    defaults = {
        "host": "smtp.example.com",
        "port": 587,
        "security": Security.STARTTLS,
        "username": "ann",
        "secret": STORED,
    }
    return SmtpSettingsFactory.build(**(defaults | fields))


def test_valid_values_fill_the_instance_without_saving():
    form = bound(new_password="typed-pw")

    assert form.is_valid(), form.errors
    assert form.instance.host == "smtp.example.com"
    assert form.instance.password.reveal() == "typed-pw"
    assert form.instance.pk is None


def test_host_is_normalised():
    form = bound(host="  SMTP.Example.COM. ")

    assert form.is_valid(), form.errors
    assert form.cleaned_data["host"] == "smtp.example.com"


@pytest.mark.parametrize(
    ("host", "error"),
    [
        ("smtp.example.com:587", "Enter the host without the port: put the port in SMTP port."),
        ("smtp://smtp.example.com", "Enter only the host name, like smtp.example.com: no smtp://."),
        (
            "smtp example.com",
            "Enter a host name like smtp.example.com: letters, digits, dots and hyphens.",
        ),
        ("", "Enter the SMTP host, like smtp.example.com."),
    ],
)
def test_host_errors_say_what_to_enter(host, error):
    form = bound(host=host)

    assert not form.is_valid()
    assert form.errors["host"] == [error]


@pytest.mark.parametrize("host", ["192.0.2.10", "::1"])
def test_ip_addresses_are_valid_hosts(host):
    assert bound(host=host).is_valid()


@pytest.mark.parametrize("port", ["0", "65536", "-1", "abc", ""])
def test_port_outside_1_to_65535_is_refused(port):
    form = bound(port=port)

    assert not form.is_valid()
    assert form.errors["port"] == [PORT_ERROR]


@pytest.mark.parametrize("port", ["1", "25", "65535"])
def test_port_inside_the_range_is_accepted(port):
    assert bound(port=port).is_valid()


@pytest.mark.parametrize("timeout", ["0", "121", "x"])
def test_timeout_is_bounded(timeout):
    form = bound(timeout=timeout)

    assert not form.is_valid()
    assert form.errors["timeout"] == [TIMEOUT_ERROR]


def test_security_is_one_choice_starttls_and_implicit_tls_cannot_be_combined():
    data = QueryDict(mutable=True)
    data.update(form_data())
    data.setlist("security", ["starttls", "tls"])

    form = SmtpSettingsForm(data)

    assert not form.is_valid()
    assert form.errors["security"] == [
        "Choose one security mode: STARTTLS and implicit TLS cannot be combined."
    ]


@pytest.mark.parametrize(
    ("port", "security", "warning"),
    [
        ("465", "starttls", "Port 465 normally uses implicit TLS/SSL, not STARTTLS."),
        ("587", "tls", "Port 587 normally uses STARTTLS, not implicit TLS/SSL."),
    ],
)
def test_port_and_mode_mismatch_is_a_warning_not_an_error(port, security, warning):
    form = bound(port=port, security=security)

    assert form.is_valid(), form.errors
    assert len(form.warnings) == 1
    assert form.warnings[0].startswith(warning)


def test_matching_port_and_mode_give_no_warning():
    form = bound(port="465", security="tls")

    assert form.is_valid()
    assert form.warnings == []


def test_no_encryption_with_a_password_is_warned_about():
    form = bound(port="25", security="none", new_password="pw", confirm_unencrypted="on")

    assert form.is_valid()
    assert form.warnings == [
        "Security is “None”: the password will be sent unencrypted, readable by anyone on "
        "the network path. Choose STARTTLS or implicit TLS/SSL if the server offers it."
    ]


@pytest.mark.parametrize("testing", [False, True])
def test_no_encryption_with_a_password_needs_a_confirmation(testing):
    form = bound(port="25", security="none", new_password="pw", test_to="a@example.com")
    form.testing = testing

    assert not form.is_valid()
    assert form.errors["confirm_unencrypted"] == [
        "Tick “Send the password unencrypted” to confirm, or choose STARTTLS or implicit TLS/SSL."
    ]


def test_no_encryption_needs_no_confirmation_without_a_login():
    form = bound(port="25", security="none", username="", new_password="")

    assert form.is_valid(), form.errors


def test_a_stored_unencrypted_login_left_unchanged_needs_no_new_confirmation():
    row = stored_row(port=25, security=Security.NONE)

    form = bound(instance=row, port="25", security="none", from_name="Renamed")

    assert form.is_valid(), form.errors


def test_a_new_password_over_no_encryption_needs_the_confirmation_again():
    row = stored_row(port=25, security=Security.NONE)

    form = bound(instance=row, port="25", security="none", new_password="new-Pa55")

    assert "confirm_unencrypted" in form.errors


@pytest.mark.parametrize("address", ["not-an-address", "a@", "a@b@c.com"])
def test_default_from_address_must_be_valid(address):
    form = bound(from_email=address)

    assert not form.is_valid()
    assert form.errors["from_email"] == [
        "Enter a valid Default From address, like notifications@example.com."
    ]


@pytest.mark.parametrize(
    "field", ["username", "smtp_domain", "from_name", "name", "test_subject", "new_password"]
)
@pytest.mark.parametrize("character", ["\r", "\n", "\x00"])
def test_line_breaks_and_nul_are_refused_where_they_reach_headers_or_smtp(field, character):
    form = bound(testing=True, test_to="ops@example.com", **{field: f"x{character}Bcc: y"})

    assert not form.is_valid()
    assert any(LINE_BREAK in error or "Null characters" in error for error in form.errors[field])


def test_line_break_in_from_address_and_host_is_refused():
    form = bound(from_email="a@example.com\r\nBcc: b@example.com", host="smtp.x\r\n.com")

    assert not form.is_valid()
    assert "from_email" in form.errors
    assert "host" in form.errors


def test_validator_message_never_repeats_the_value():
    with pytest.raises(Exception, match="Remove the line break") as caught:
        validate_single_line("secret\nvalue")

    assert "secret" not in str(caught.value)


class TestTheTestFields:
    def test_are_ignored_when_saving(self):
        form = bound(test_to="not an address", test_subject="", test_body="")

        assert form.is_valid(), form.errors
        assert not form.testing

    def test_the_test_button_turns_testing_on(self):
        form = SmtpSettingsForm(form_data(**{TEST_BUTTON: "Send test email"}))

        assert form.testing

    def test_are_required_when_testing(self):
        form = bound(testing=True, test_to="", test_subject="", test_body=" ")

        assert not form.is_valid()
        assert form.errors["test_to"] == ["Enter the address to send the test email to."]
        assert form.errors["test_subject"] == ["Enter a subject for the test email."]
        assert form.errors["test_body"] == ["Enter a body for the test email."]

    @pytest.mark.parametrize(
        "to", ["a@example.com, b@example.com", "a@example.com;b@example.com", "a@x.com b@x.com"]
    )
    def test_to_takes_exactly_one_recipient(self, to):
        form = bound(testing=True, test_to=to)

        assert not form.is_valid()
        assert form.errors["test_to"] == ["Enter exactly one address in To."]

    def test_to_must_be_an_address(self):
        form = bound(testing=True, test_to="ops.example.com")

        assert not form.is_valid()
        assert form.errors["test_to"] == ["Enter a valid address in To, like name@example.com."]

    def test_subject_has_a_default(self):
        assert SmtpSettingsForm()["test_subject"].value() == "Postmaster test email"

    def test_send_test_email_needs_a_valid_testing_form(self):
        form = bound(testing=False)
        form.is_valid()

        with pytest.raises(ValueError, match="testing=True"):
            form.send_test_email()


class TestWriteOnlyPassword:
    def test_blank_keeps_the_stored_password(self):
        form = bound(instance=stored_row())

        assert form.is_valid(), form.errors
        assert form.instance.password == Secret(STORED)
        assert form.smtp_password == STORED

    def test_a_new_password_replaces_it(self):
        form = bound(instance=stored_row(), new_password="new-pw")

        assert form.is_valid()
        assert form.instance.password == Secret("new-pw")

    def test_clear_removes_it(self):
        form = bound(instance=stored_row(), username="", clear_password="on")

        assert form.is_valid()
        assert form.instance.password is None
        assert form.smtp_password == ""

    def test_new_and_clear_together_are_refused(self):
        form = bound(instance=stored_row(), new_password="new-pw", clear_password="on")

        assert not form.is_valid()
        assert form.errors["clear_password"] == [BOTH_PASSWORD_ACTIONS]

    @pytest.mark.parametrize(
        "change", [{"host": "smtp.other.example"}, {"port": "2525"}, {"username": "bob"}]
    )
    def test_changing_server_or_username_needs_the_password_again(self, change):
        form = bound(instance=stored_row(), **change)

        assert not form.is_valid()
        assert form.errors["new_password"] == [SERVER_MOVED]
        assert SERVER_MOVED == (
            "You changed the server or username: enter the password again, "
            "or tick “Clear the stored password”."
        )

    def test_changing_server_with_the_password_typed_again_is_fine(self):
        form = bound(instance=stored_row(), host="smtp.other.example", new_password="pw")

        assert form.is_valid()

    def test_changing_server_and_clearing_is_fine(self):
        form = bound(
            instance=stored_row(), host="smtp.other.example", username="", clear_password="on"
        )

        assert form.is_valid()
        assert form.instance.password is None

    def test_changing_server_without_a_stored_password_is_fine(self):
        form = bound(instance=stored_row(secret=""), host="smtp.other.example")

        assert form.is_valid()

    def test_dropping_encryption_needs_the_password_again(self):
        form = bound(instance=stored_row(), security="none")

        assert not form.is_valid()
        assert form.errors["new_password"] == [SECURITY_DOWNGRADED]

    def test_changing_other_fields_keeps_the_stored_password(self):
        form = bound(instance=stored_row(), from_name="Someone else", smtp_domain="CORP")

        assert form.is_valid(), form.errors
        assert form.smtp_password == STORED

    def test_help_says_blank_keeps_the_current_password(self):
        assert "Leave blank to keep the current password" in str(
            SmtpSettingsForm(instance=stored_row())["new_password"].help_text
        )

    def test_is_never_rendered_back(self):
        form = bound(instance=stored_row(), new_password="typed-Pw-9", host="bad host")
        form.is_valid()

        html = form.as_div()

        assert "typed-Pw-9" not in html
        assert STORED not in html

    def test_stored_password_never_goes_to_a_new_server(self):
        with (
            smtp_server(users={"ann": STORED}, auth_over_plain=True) as old,
            smtp_server(users={"ann": STORED}, auth_over_plain=True) as new,
        ):
            row = stored_row(host=old.host, port=old.port, security=Security.NONE)
            form = SmtpSettingsForm(
                form_data(
                    host=new.host,
                    port=str(new.port),
                    security="none",
                    test_to="ops@example.com",
                    **{TEST_BUTTON: "1"},
                ),
                instance=row,
            )

            assert not form.is_valid()
            with pytest.raises(ValueError, match="valid form"):
                form.send_test_email()

        assert form.errors["new_password"] == [SERVER_MOVED]
        assert new.greetings == 0
        assert new.auth_mechanisms == []
        assert old.greetings == 0


class TestPasswordAfterATestEmail:
    """The password typed for a test is never sent back, so a Save that follows must not
    quietly store the login without it, nor keep the old one."""

    def test_a_username_without_any_password_is_refused(self):
        form = bound(new_password="")

        assert not form.is_valid()
        assert form.errors["new_password"] == [USERNAME_WITHOUT_PASSWORD]

    def test_testing_without_a_password_is_allowed(self):
        form = bound(new_password="", testing=True, test_to="to@example.com")

        assert form.is_valid()

    def test_the_form_shown_after_a_test_marks_the_typed_password_as_tested(self):
        form = bound(testing=True, test_to="to@example.com", new_password="tested-Pa55")

        assert form.is_valid()
        assert 'name="password_tested" value="True"' in str(form["password_tested"])
        assert "tested-Pa55" not in str(form["new_password"])
        assert form.fields["new_password"].help_text == TESTED_PASSWORD_NOT_KEPT

    @pytest.mark.parametrize("stored_secret", ["", STORED])
    def test_saving_after_a_test_needs_the_password_typed_again(self, stored_secret):
        row = stored_row(secret=stored_secret)

        form = bound(instance=row, new_password="", password_tested="True")

        assert not form.is_valid()
        assert form.errors["new_password"] == [TESTED_PASSWORD_NOT_KEPT]

    def test_saving_after_a_test_with_the_password_typed_again_works(self):
        form = bound(instance=stored_row(), new_password="tested-Pa55", password_tested="True")

        assert form.is_valid()
        assert form.smtp_password == "tested-Pa55"
