"""Each provider's backend against the stand-in: accepted mail, and every failure in plain words."""

import pytest
from django.core.mail import EmailMessage

from apps.connections.catalog import PROVIDERS, Provider
from apps.connections.providers import (
    Outcome,
    ProviderConnection,
    ProviderSendError,
    classify_provider_error,
    send_provider_test_email,
)
from apps.core.fields import Secret
from tests.connections.providers.factories import SECRETS, ProviderSettingsFactory
from tests.smtp_servers import closed_port

ALL = list(Provider.values)


def _settings(provider, url, **kwargs):
    return ProviderSettingsFactory.build(provider=provider, api_url=url, **kwargs)


def _test(settings, to="someone@example.org"):
    return send_provider_test_email(settings, to=to, subject="Hello", body="It works.")


def _no_secret(result):
    text = f"{result.message} {result.hint} {result.reply}"
    assert not any(secret in text for secret in SECRETS)


@pytest.mark.parametrize("provider", ALL)
def test_a_test_email_is_accepted_with_the_providers_message_id(standin, provider):
    result = _test(_settings(provider, standin.url))
    assert result.ok, result
    assert result.message.endswith("accepted the test email.")
    [received] = standin.received
    assert received.provider == provider
    assert received.message_id
    assert received.message_id in result.reply.message_id
    assert "someone@example.org" in result.hint


@pytest.mark.parametrize("provider", ALL)
def test_a_wrong_key_is_refused_in_plain_words(standin, provider):
    settings = _settings(provider, standin.url)
    if provider == Provider.AMAZON_SES:
        settings.key_id = "AKIAWRONGWRONGWRONG0"
    else:
        settings.secret = Secret("wrong-key")
    result = _test(settings)
    assert result.outcome is Outcome.AUTH_FAILED
    assert "refused the" in result.message
    assert "enter it again" in result.hint
    assert standin.received == []
    _no_secret(result)


@pytest.mark.parametrize("provider", ALL)
def test_rate_limited_reads_plainly_and_is_transient(standin, provider):
    standin.answer = "rate_limited"
    settings = _settings(provider, standin.url)
    result = _test(settings)
    assert result.outcome is Outcome.RATE_LIMITED
    assert "too many requests" in result.message
    assert "not lost" in result.hint
    with ProviderConnection(settings) as connection, pytest.raises(ProviderSendError) as caught:
        connection.send(EmailMessage("Hi", "Body", settings.from_header, ["a@example.org"]))
    transient, refused, text = classify_provider_error(caught.value)
    assert (transient, refused) == (True, False)
    assert text


@pytest.mark.parametrize("provider", ALL)
def test_an_unverified_sender_reads_plainly(standin, provider):
    standin.answer = "unverified_sender"
    result = _test(_settings(provider, standin.url))
    assert result.outcome is Outcome.SENDER_NOT_VERIFIED, result
    assert "notify@example.com" in result.message
    assert "not verified" in result.message
    assert result.hint == PROVIDERS[provider].verify_sender


@pytest.mark.parametrize("provider", ALL)
def test_sandbox_restrictions_read_plainly(standin, provider):
    standin.answer = "sandbox"
    result = _test(_settings(provider, standin.url))
    assert result.outcome is Outcome.SANDBOX, result
    assert "may send only to approved addresses" in result.message
    assert result.hint


@pytest.mark.parametrize("provider", ALL)
def test_an_unreachable_provider_reads_plainly_and_is_transient(db, provider):
    url = f"http://127.0.0.1:{closed_port()}/"
    settings = _settings(provider, url)
    result = _test(settings)
    assert result.outcome is Outcome.UNREACHABLE, result
    assert "could not be reached" in result.message
    assert "refused" in result.message
    with ProviderConnection(settings) as connection, pytest.raises(ProviderSendError) as caught:
        connection.send(EmailMessage("Hi", "Body", settings.from_header, ["a@example.org"]))
    assert caught.value.classification.transient
    assert not caught.value.classification.recipient_refused


@pytest.mark.parametrize("provider", ALL)
def test_a_provider_error_is_transient_and_keeps_its_words(standin, provider):
    standin.answer = "server_error"
    settings = _settings(provider, standin.url)
    result = _test(settings)
    assert result.outcome is Outcome.PROVIDER_ERROR
    with ProviderConnection(settings) as connection, pytest.raises(ProviderSendError) as caught:
        connection.send(EmailMessage("Hi", "Body", settings.from_header, ["a@example.org"]))
    assert caught.value.classification.transient


def test_auth_failure_is_permanent_and_says_so(standin):
    settings = _settings(Provider.SENDGRID, standin.url, secret=Secret("wrong"))
    with ProviderConnection(settings) as connection, pytest.raises(ProviderSendError) as caught:
        connection.send(EmailMessage("Hi", "Body", settings.from_header, ["a@example.org"]))
    found = caught.value.classification
    assert (found.transient, found.recipient_refused, found.auth_failed) == (False, False, True)
    assert found.status == 401
    assert "invalid, expired, or revoked" in found.text


def test_a_recipient_refused_by_the_provider_is_a_permanent_refusal(standin):
    standin.answer = "rejected_recipient"
    settings = _settings(Provider.POSTMARK, standin.url)
    with ProviderConnection(settings) as connection, pytest.raises(ProviderSendError) as caught:
        connection.send(EmailMessage("Hi", "Body", settings.from_header, ["Gone@example.org"]))
    transient, refused, _ = caught.value.classification
    assert (transient, refused) == (False, True)
    assert list(connection.refused) == ["Gone@example.org"]
    result = _test(settings, to="gone@example.org")
    assert result.outcome is Outcome.RECIPIENT_REJECTED
    assert "gone@example.org" in result.message


@pytest.mark.parametrize("provider", ALL)
def test_one_connection_carries_a_batch_and_returns_each_message_id(standin, provider):
    settings = _settings(provider, standin.url)
    with ProviderConnection(settings) as connection:
        replies, sessions = [], set()
        for n in range(3):
            message = EmailMessage(f"Hi {n}", "Body", settings.from_header, [f"r{n}@example.org"])
            replies.append(connection.send(message))
            backend = connection.backend
            # The same requests session (or boto3 client) for every message of the batch.
            sessions.add(id(getattr(backend, "session", None) or backend.client))
        assert len(sessions) == 1
    ids = [received.message_id for received in standin.received]
    assert len(ids) == 3
    assert [reply.message_id for reply in replies] == ids
    assert getattr(connection.backend, "session", None) is None  # closed
    assert getattr(connection.backend, "client", None) is None


def test_ses_sandbox_and_unverified_sender_are_told_apart_by_the_identity(standin):
    settings = _settings(Provider.AMAZON_SES, standin.url)
    standin.answer = "sandbox"
    assert _test(settings, to="boss@example.org").outcome is Outcome.SANDBOX
    standin.answer = "unverified_sender"
    assert _test(settings).outcome is Outcome.SENDER_NOT_VERIFIED


def test_the_stored_secret_is_used_and_a_typed_one_wins(standin):
    settings = _settings(Provider.BREVO, standin.url, secret=Secret("stale"))
    assert _test(settings).outcome is Outcome.AUTH_FAILED
    result = send_provider_test_email(
        settings, to="a@example.org", subject="s", body="b", secret=SECRETS[4]
    )
    assert result.ok


@pytest.mark.parametrize("provider", ALL)
def test_the_connection_timeout_setting_applies_to_providers(settings, provider):
    from apps.connections.providers import backend_params

    settings.CONNECTION_TIMEOUT = 7
    params = backend_params(_settings(provider, "http://127.0.0.1:9/"), secret="s")
    client = params.get("client_params", {}).get("config", {})
    timeouts = {params.get("timeout"), client.get("connect_timeout"), client.get("read_timeout")}
    assert timeouts - {None} == {7}
