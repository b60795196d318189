"""No way into the host's network through a provider's API URL (apps/connections/netguard.py).

The same guard as a tenant's SMTP host (tests/connections/smtp/test_ssrf.py): the
name is resolved, every address checked, the socket connects to a checked
address (TLS verifying the name), public addresses only on HTTPS's port 443,
on Save, on Send test email and at every connection the engine makes. What a
tenant is told never tells one failure to connect from another, and never
shows what the remote end answered for an API URL the tenant chose.

Listeners here are plain sockets on 127.0.0.1 that never accept: a
connection that reached one waits in its backlog, so "nobody came" is a
non-blocking accept that finds nothing (no waiting, no sleeps).
"""

import http.server
import json
import socket
import ssl
import threading
from contextlib import contextmanager
from types import SimpleNamespace

import pytest
import requests
import trustme
from django.core.mail import EmailMessage
from django.urls import reverse

from apps.connections import netguard
from apps.connections import providers as transport
from apps.connections.catalog import Provider
from apps.connections.models import ProviderSettings
from apps.connections.providers import (
    Outcome,
    ProviderConnection,
    ProviderErrorClass,
    ProviderSendError,
    send_provider_test_email,
)
from apps.connections.services import api_url_error
from apps.connections.smtp import Outcome as SmtpOutcome
from apps.connections.smtp import classify, send_test_email
from apps.delivery.sending import ConnectError, Connection, ProviderLink
from tests.connections.providers.factories import ProviderSettingsFactory, provider_form_data
from tests.connections.smtp.factories import SmtpSettingsFactory, allow_private_network
from tests.smtp_servers import HOST, closed_port, greeting_server, silent_server

pytestmark = pytest.mark.django_db

CANARY = "internal-service-canary-7f3a"
RAW = b"From: notify@example.com\r\nTo: a@example.org\r\nSubject: x\r\n\r\nbody\r\n"


@pytest.fixture
def dns(monkeypatch):
    """Answers for names: a list per name (one per lookup, the last repeated); None: no name."""
    answers: dict[str, list] = {}
    lookups: list[str] = []
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host not in answers:
            return real(host, port, *args, **kwargs)
        lookups.append(host)
        queue = answers[host]
        addresses = queue.pop(0) if len(queue) > 1 else queue[0]
        if addresses is None:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (a, port))
            for a in addresses
        ]

    monkeypatch.setattr(netguard.socket, "getaddrinfo", getaddrinfo)
    return SimpleNamespace(answers=answers, lookups=lookups)


@contextmanager
def listener():
    """A port on 127.0.0.1 that completes handshakes from its backlog; `.reached()` says if any."""
    with socket.create_server((HOST, 0), backlog=16) as sock:

        def reached() -> bool:
            sock.setblocking(False)
            try:
                connection, _ = sock.accept()
            except BlockingIOError:
                return False
            connection.close()
            return True

        yield SimpleNamespace(port=sock.getsockname()[1], reached=reached)


@contextmanager
def web_server(status: int, body: bytes, *, context: ssl.SSLContext | None = None):
    """An internal web service answering every request with `status` and `body`."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self):
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer  # noqa: N815 (http.server's names)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer((HOST, 0), Handler)
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


def _url(tenant, name="edit"):
    return reverse(f"mailsettings_providers:{name}", args=[tenant.slug])


def _row(tenant, url, provider=Provider.POSTMARK, **kwargs) -> ProviderSettings:
    return ProviderSettingsFactory.build(
        tenant=tenant, provider=provider, api_url=url, private_network=False, **kwargs
    )


def _message(row):
    return EmailMessage("Hi", "Body", row.from_header, ["a@example.org"])


def _test_email(row):
    return send_provider_test_email(row, to="ops@example.org", subject="s", body="b")


# The guard, directly ---------------------------------------------------------------


def test_a_tenants_api_policy_is_https_on_public_addresses_and_the_host_is_unrestricted(tenant):
    assert netguard.api_policy_for(ProviderSettings(tenant=tenant)) == netguard.NetworkPolicy(
        private_allowed=False, ports=frozenset({443})
    )
    allow_private_network(tenant)
    assert netguard.api_policy_for(ProviderSettings(tenant=tenant)).private_allowed
    assert netguard.api_policy_for(ProviderSettings()) == netguard.UNRESTRICTED


def test_a_guarded_session_refuses_a_name_resolving_to_loopback(dns):
    dns.answers["evil.mailgun.net"] = [[HOST]]
    session = requests.Session()
    netguard.guard_session(session, netguard.NetworkPolicy(ports=netguard.HTTPS_PORTS))
    with listener() as port:
        with pytest.raises(requests.ConnectionError) as refused:
            session.get(f"http://evil.mailgun.net:{port.port}/", timeout=5)
        assert not port.reached()

    chain, error = [], refused.value
    while error is not None:
        chain.append(error)
        error = error.__cause__ or error.__context__
    assert any(type(e) is netguard.AddressNotAllowedError for e in chain)


def test_a_public_address_is_reached_on_443_only(dns):
    dns.answers["api.postmarkapp.com"] = [["8.8.8.8"]]
    policy = netguard.NetworkPolicy(ports=netguard.HTTPS_PORTS)

    with pytest.raises(netguard.PortNotAllowedError):
        netguard.connect("api.postmarkapp.com", 8443, policy=policy, timeout=1)


@pytest.fixture
def https_ca():
    return trustme.CA(organization_name="Postmaster netguard tests CA")


def _tls_context(ca, *names) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert(*names).configure_cert(context)
    return context


def test_https_connects_to_the_checked_address_and_verifies_the_name(dns, https_ca, tmp_path):
    # The first lookup (the guard's) gives 127.0.0.1; another one would give an
    # address nothing listens on: the answer arrives only through the checked address.
    dns.answers["api.pinned.example"] = [[HOST], ["192.0.2.1"]]
    bundle = tmp_path / "ca.pem"
    https_ca.cert_pem.write_to_path(str(bundle))
    policy = netguard.NetworkPolicy(private_allowed=True, ports=netguard.HTTPS_PORTS)
    session = requests.Session()
    netguard.guard_session(session, policy)

    with web_server(200, b"{}", context=_tls_context(https_ca, "api.pinned.example")) as port:
        answer = session.get(f"https://api.pinned.example:{port}/", verify=str(bundle), timeout=5)
    assert answer.status_code == 200
    assert dns.lookups == ["api.pinned.example"]

    # A certificate for another name (here the very address connected to) is refused.
    dns.answers["api.pinned.example"] = [[HOST]]
    with (
        web_server(200, b"{}", context=_tls_context(https_ca, HOST, "localhost")) as port,
        pytest.raises(requests.exceptions.SSLError),
    ):
        session.get(f"https://api.pinned.example:{port}/", verify=str(bundle), timeout=5)


# Save -------------------------------------------------------------------------------


@pytest.fixture
def admin_client(client, tenant, tenant_admin):
    """A tenant admin whose tenant is *not* allowed private addresses."""
    client.force_login(tenant_admin)
    return client


@pytest.mark.parametrize(
    ("provider", "host"),
    [(Provider.MAILGUN, "evil.mailgun.net"), (Provider.AMAZON_SES, "evil.amazonaws.com")],
)
def test_saving_an_api_url_whose_name_resolves_to_loopback_is_refused(
    admin_client, tenant, dns, provider, host
):
    dns.answers[host] = [[HOST]]
    with listener() as port:
        data = provider_form_data(provider, api_url=f"https://{host}:{port.port}/v3/")
        response = admin_client.post(_url(tenant), data)
        assert not port.reached()

    assert response.status_code == 200
    [error] = response.context["form"].errors[f"{provider}_api_url"]
    assert f"{host} resolves to an address that is not on the public internet" in error
    assert HOST not in error
    assert not ProviderSettings.objects.exists()


def test_saving_an_api_url_on_another_port_than_443_is_refused(admin_client, tenant, dns):
    dns.answers["api.postmarkapp.com"] = [["8.8.8.8"]]
    data = provider_form_data(Provider.POSTMARK, api_url="https://api.postmarkapp.com:8443/")

    errors = admin_client.post(_url(tenant), data).context["form"].errors

    assert errors["postmark_api_url"] == [
        "Port 8443 is not allowed: Postmark's API answers on the HTTPS port, 443. Leave the "
        "port out of the API URL."
    ]
    assert not ProviderSettings.objects.exists()
    data = provider_form_data(Provider.POSTMARK, api_url="https://api.postmarkapp.com:443/")
    assert admin_client.post(_url(tenant), data).status_code == 302


# Send test email ---------------------------------------------------------------------


def test_the_test_email_page_refuses_a_name_resolving_to_loopback(admin_client, tenant, dns):
    dns.answers["evil.mailgun.net"] = [[HOST]]
    with listener() as port:
        data = provider_form_data(
            Provider.MAILGUN,
            api_url=f"https://evil.mailgun.net:{port.port}/v3/",
            test_to="ops@example.org",
            _send_test="1",
        )
        response = admin_client.post(_url(tenant), data)
        assert not port.reached()

    assert response.context["test_result"] is None
    assert "mailgun_api_url" in response.context["form"].errors


@pytest.mark.parametrize(
    ("provider", "host"),
    [(Provider.MAILGUN, "rebind.mailgun.net"), (Provider.AMAZON_SES, "rebind.amazonaws.com")],
)
def test_the_test_email_checks_again_when_connecting(tenant, dns, provider, host):
    # Public when saved, 127.0.0.1 when connecting (DNS rebinding).
    dns.answers[host] = [["8.8.8.8"], [HOST]]
    assert api_url_error(_row(tenant, f"https://{host}/v3/", provider=provider)) is None
    with listener() as port:
        # The listener's port stands in for 443, past the save's check.
        row = _row(tenant, f"https://{host}:{port.port}/v3/", provider=provider)
        result = _test_email(row)
        assert not port.reached()

    assert result.outcome is Outcome.UNREACHABLE
    assert result.reply is None
    assert dns.lookups == [host, host]


# The engine -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "host"),
    [(Provider.POSTMARK, "evil.postmarkapp.com"), (Provider.AMAZON_SES, "evil.amazonaws.com")],
)
def test_the_engine_refuses_a_name_resolving_to_loopback_at_every_connection(
    tenant, dns, provider, host
):
    dns.answers[host] = [[HOST]]
    with listener() as port:
        row = _row(tenant, f"https://{host}:{port.port}/", provider=provider)
        link = ProviderLink(row, tenant_id=tenant.pk)
        with pytest.raises(ProviderSendError) as refused:
            link.send("a@example.org", RAW)
        link.close()
        assert not port.reached()

    found = refused.value.classification
    assert (found.outcome, found.transient) == (Outcome.UNREACHABLE, True)
    assert found.text == "The provider's API could not be reached."
    assert HOST not in found.text


# One answer for every failure to connect ------------------------------------------------


def test_closed_talking_and_silent_ports_read_the_same(admin_client, tenant, settings):
    # A tenant allowed the private network: the guard lets it through, the
    # answers must still not tell the three apart.
    allow_private_network(tenant)
    settings.CONNECTION_TIMEOUT = 1
    results, engine = {}, {}

    def attempt(kind, port):
        url = f"http://127.0.0.1:{port}/"
        data = provider_form_data(
            Provider.POSTMARK, api_url=url, test_to="ops@example.org", _send_test="1"
        )
        response = admin_client.post(_url(tenant), data)
        result = response.context["test_result"]
        html = response.content.decode()
        results[kind] = (result.outcome, result.message.replace(str(port), "PORT"), result.hint)
        assert result.reply is None
        for leak in ("refused", "in time", "failed", "OpenSSH", "internal-build"):
            assert leak not in html, (kind, leak)
        row = _row(tenant, url)
        with ProviderConnection(row) as connection, pytest.raises(ProviderSendError) as failed:
            connection.send(_message(row))
        engine[kind] = failed.value.classification

    attempt("closed", closed_port())
    with greeting_server(b"SSH-2.0-OpenSSH_9.6 internal-build-42\r\n") as port:
        attempt("talking", port)
    with silent_server() as silent:
        attempt("silent", silent.port)

    assert set(results.values()) == {
        (
            Outcome.UNREACHABLE,
            "Postmark could not be reached at http://127.0.0.1:PORT/.",
            results["closed"][2],
        )
    }
    assert {(c.outcome, c.text) for c in engine.values()} == {
        (Outcome.UNREACHABLE, "The provider's API could not be reached.")
    }


# No remote answer on a tenant's page ---------------------------------------------------


@pytest.mark.parametrize(
    ("status", "outcome", "words"),
    [
        (403, Outcome.AUTH_FAILED, "refused the Server API token"),
        (500, Outcome.PROVIDER_ERROR, "its API answered with an error (HTTP 500)"),
        (418, Outcome.PROVIDER_ERROR, "its API answered with an error (HTTP 418)"),
    ],
)
def test_a_remote_body_never_appears_on_the_page(admin_client, tenant, status, outcome, words):
    allow_private_network(tenant)
    body = json.dumps({"message": f"{CANARY} documented", "detail": CANARY}).encode()
    with web_server(status, body) as port:
        url = f"http://127.0.0.1:{port}/"
        data = provider_form_data(
            Provider.POSTMARK, api_url=url, test_to="ops@example.org", _send_test="1"
        )
        response = admin_client.post(_url(tenant), data)
        row = _row(tenant, url)
        with ProviderConnection(row) as connection, pytest.raises(ProviderSendError) as failed:
            connection.send(_message(row))

    result = response.context["test_result"]
    assert result.outcome is outcome
    assert words in result.message
    assert result.reply is None
    assert CANARY not in response.content.decode()
    assert "Provider's answer" not in response.content.decode()
    # The engine records the class of failure, never the body.
    assert CANARY not in failed.value.classification.text
    assert failed.value.classification.status == status


def test_the_host_still_sees_the_remote_answer(db):
    body = json.dumps({"message": "Server busy"}).encode()
    with web_server(500, body) as port:
        result = _test_email(ProviderSettingsFactory.build(api_url=f"http://127.0.0.1:{port}/"))

    assert result.outcome is Outcome.PROVIDER_ERROR
    assert str(result.reply) == "HTTP 500: Server busy"


def test_on_the_providers_own_url_only_its_documented_message_is_kept(tenant):
    own = ProviderSettings(tenant=tenant, provider=Provider.POSTMARK)
    chosen = ProviderSettings(tenant=tenant, provider=Provider.POSTMARK, api_url="https://x/")
    documented = ProviderErrorClass(Outcome.PROVIDER_ERROR, True, False, "Busy", 503)
    raw = ProviderErrorClass(Outcome.PROVIDER_ERROR, True, False, "<html>", 503, False)

    assert transport.for_tenant(documented, own) == documented
    assert transport.for_tenant(raw, own).text == "The provider's API answered with an error."
    replaced = "The provider's API answered with an error."
    assert transport.for_tenant(documented, chosen).text == replaced
    assert transport.for_tenant(raw, ProviderSettings(provider=Provider.POSTMARK)) == raw


# SMTP: a DNS failure reads like any other failure, and no address is shown --------------


def test_a_dns_failure_and_a_refused_connection_read_the_same_for_a_tenant(tenant, dns):
    dns.answers["smtp.nowhere.example"] = [None]
    allow_private_network(tenant)
    port = closed_port()

    def result(host):
        row = SmtpSettingsFactory.build(tenant=tenant, host=host, port=port)
        return send_test_email(row, password="", to="ops@example.com", subject="s", body="b")

    unknown, refused = result("smtp.nowhere.example"), result(HOST)

    assert unknown.outcome is refused.outcome is SmtpOutcome.UNREACHABLE
    assert unknown.hint == refused.hint
    assert unknown.message.replace("smtp.nowhere.example", HOST) == refused.message
    assert "could not be found" not in unknown.message


def test_a_refused_smtp_host_never_shows_the_address_its_name_resolved_to(tenant, dns):
    dns.answers["smtp.internal.example"] = [["10.20.30.40"]]
    row = SmtpSettingsFactory.build(
        tenant=tenant, host="smtp.internal.example", port=587, private_network=False
    )
    result = send_test_email(row, password="", to="ops@example.com", subject="s", body="b")
    connection = Connection(row, tenant_id=tenant.pk)
    with pytest.raises(ConnectError) as refused:
        connection.send("ops@example.com", b"Subject: x\r\n\r\nbody\r\n")

    shown = f"{result.message} {result.hint} {classify(refused.value.error).detail}"
    assert result.outcome is SmtpOutcome.UNREACHABLE
    assert "10.20.30.40" not in shown
    assert "smtp.internal.example resolves to an address that is not on the public" in shown
