"""No way into the host's network through a tenant's SMTP settings (apps/connections/netguard.py).

Tenants here are *not* allowed private addresses unless a test says so
(`SmtpSettingsFactory(private_network=False)`), and the servers are real
ones on 127.0.0.1: a refusal shows as a server that never saw a connection.
Names other than localhost do not resolve without a network, so a DNS
answer is stood in for by replacing `socket.getaddrinfo` where a test needs one.
"""

import ipaddress
import socket
from types import SimpleNamespace

import pytest
from django.urls import reverse

from apps.audit.models import AuditEntry
from apps.connections import netguard
from apps.connections.forms import SmtpSettingsForm
from apps.connections.models import SmtpSettings
from apps.connections.services import tenant_smtp_network_update
from apps.connections.smtp import Outcome, send_test_email
from apps.delivery.sending import ConnectError, Connection
from tests.connections.smtp.factories import SmtpSettingsFactory, smtp_form_data
from tests.smtp_servers import HOST, closed_port, greeting_server, silent_server, smtp_server

pytestmark = pytest.mark.django_db

REFUSED = [
    ("127.0.0.1", "loopback"),
    ("127.8.9.10", "loopback"),
    ("10.1.2.3", "private"),
    ("172.16.0.1", "private"),
    ("192.168.1.1", "private"),
    ("169.254.169.254", "link-local"),  # the cloud metadata service
    ("100.64.0.1", "carrier-grade NAT"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("0.0.0.0", "unspecified"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "reserved"),
    ("192.0.2.10", "special-purpose"),  # documentation
    ("::1", "loopback"),
    ("::", "unspecified"),
    ("fe80::1", "link-local"),
    ("fc00::1", "private"),
    ("fd12:3456::1", "private"),
    ("fec0::1", "site-local"),
    ("ff02::1", "multicast"),
    ("ff0e::1", "multicast"),
    ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped
    ("::ffff:10.0.0.1", "private"),
    ("2002:7f00:1::", "loopback"),  # 6to4 around 127.0.0.1
    ("2002:a00:1::", "private"),  # 6to4 around 10.0.0.1
    ("64:ff9b::7f00:1", "loopback"),  # NAT64 around 127.0.0.1
    ("64:ff9b::a9fe:a9fe", "link-local"),  # NAT64 around 169.254.169.254
    ("2001:db8::1", "special-purpose"),  # documentation
]
ALLOWED = ["8.8.8.8", "1.1.1.1", "2606:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"]


@pytest.mark.parametrize(("address", "kind"), REFUSED)
def test_non_public_addresses_are_named_and_refused(address, kind):
    assert kind in netguard.address_refusal(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ALLOWED)
def test_public_addresses_pass(address):
    assert netguard.address_refusal(ipaddress.ip_address(address)) is None


@pytest.fixture
def dns(monkeypatch):
    """Answers for names (a list per name: one answer per lookup, the last one repeated)."""
    answers: dict[str, list[list[str]]] = {}
    lookups: list[str] = []
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host not in answers:
            return real(host, port, *args, **kwargs)
        lookups.append(host)
        queue = answers[host]
        addresses = queue.pop(0) if len(queue) > 1 else queue[0]
        return [
            (
                socket.AF_INET6 if ":" in a else socket.AF_INET,
                socket.SOCK_STREAM,
                socket.IPPROTO_TCP,
                "",
                (a, port, 0, 0) if ":" in a else (a, port),
            )
            for a in addresses
        ]

    monkeypatch.setattr(netguard.socket, "getaddrinfo", getaddrinfo)
    return SimpleNamespace(answers=answers, lookups=lookups)


# Saving ---------------------------------------------------------------------------


def tenant_form(tenant, **overrides) -> SmtpSettingsForm:
    data = smtp_form_data(**{"host": "smtp.example.com", "port": "587"} | overrides)
    return SmtpSettingsForm(data, instance=SmtpSettings(tenant=tenant))


@pytest.mark.parametrize(
    ("host", "named"),
    [
        ("127.0.0.1", "127.0.0.1, a loopback address"),
        # A name: never the address it resolved to (that would map the host's network).
        ("localhost", "localhost resolves to an address that is not on the public internet"),
        ("169.254.169.254", "169.254.169.254, a link-local address"),
        ("10.0.0.5", "10.0.0.5, a private or special-purpose address"),
        ("::1", "::1, a loopback address"),
        ("::ffff:127.0.0.1", "a loopback address inside an IPv6 address (127.0.0.1)"),
        # Decimal, octal and hex spellings of 127.0.0.1 are read as what they are.
        ("2130706433", "2130706433 resolves to 127.0.0.1, a loopback address"),
        ("0177.0.0.1", "0177.0.0.1 resolves to 127.0.0.1, a loopback address"),
        ("0x7f.1", "0x7f.1 resolves to 127.0.0.1, a loopback address"),
    ],
)
def test_a_tenant_cannot_save_a_host_on_a_private_address(tenant, host, named):
    form = tenant_form(tenant, host=host)

    assert not form.is_valid()
    [error] = form.errors["host"]
    assert named in error
    assert "only connects to servers on the public internet" in error


def test_a_name_resolving_to_public_and_private_addresses_is_refused(tenant, dns):
    dns.answers["smtp.mixed.example"] = [["8.8.8.8", "10.0.0.7"]]

    form = tenant_form(tenant, host="smtp.mixed.example")

    assert not form.is_valid()
    [error] = form.errors["host"]
    assert "smtp.mixed.example resolves to an address that is not on the public internet" in error
    assert "10.0.0.7" not in error


@pytest.mark.parametrize("port", ["25", "465", "587", "2525"])
def test_the_usual_smtp_ports_are_allowed(tenant, dns, port):
    dns.answers["smtp.example.com"] = [["8.8.8.8"]]

    assert tenant_form(tenant, port=port).is_valid()


def test_other_ports_need_a_system_administrators_permission(tenant, dns, system_admin):
    dns.answers["smtp.example.com"] = [["8.8.8.8"]]
    form = tenant_form(tenant, port="6379")

    assert not form.is_valid()
    assert form.errors["port"] == [
        "Port 6379 is not allowed. Use one of 25, 465, 587, 2525; a system administrator "
        "can allow other ports for your tenant."
    ]

    tenant_smtp_network_update(
        tenant=tenant, private_allowed=False, extra_ports="6379", actor=system_admin
    )
    assert tenant_form(tenant, port="6379").is_valid()
    # Unresolvable now: the port is still checked.
    assert "port" in tenant_form(tenant, host="smtp.example.invalid", port="8080").errors


def test_an_allowed_tenant_may_use_private_addresses_on_any_port(tenant, system_admin):
    tenant_smtp_network_update(
        tenant=tenant, private_allowed=True, extra_ports="", actor=system_admin
    )

    assert tenant_form(tenant, host="127.0.0.1", port="1025").is_valid()


def test_the_host_settings_may_use_private_addresses_and_any_port():
    form = SmtpSettingsForm(smtp_form_data(host="127.0.0.1", port="1025"))

    assert form.is_valid(), form.errors


# Connecting -----------------------------------------------------------------------


def test_stored_settings_on_a_private_address_are_refused_when_connecting(tenant):
    with smtp_server() as server:
        row = SmtpSettingsFactory(tenant=tenant, **server.connection, private_network=False)
        result = send_test_email(row, password="", to="ops@example.com", subject="s", body="b")

    assert result.outcome is Outcome.UNREACHABLE
    assert server.greetings == 0
    assert server.messages == []


def test_the_delivery_engine_is_refused_too(tenant):
    with smtp_server() as server:
        row = SmtpSettingsFactory(tenant=tenant, **server.connection, private_network=False)
        connection = Connection(row, tenant_id=tenant.pk)
        with pytest.raises(ConnectError) as refused:
            connection.send("ops@example.com", b"Subject: x\r\n\r\nbody\r\n")

    assert isinstance(refused.value.error, netguard.AddressNotAllowedError)
    assert server.greetings == 0


def test_a_name_that_rebinds_to_a_private_address_after_saving_is_refused(tenant, dns):
    # Public when the form checks it, 127.0.0.1 (the test server) when connecting.
    dns.answers["smtp.rebind.example"] = [["8.8.8.8"], [HOST]]
    with smtp_server() as server:
        form = tenant_form(tenant, host="smtp.rebind.example", port="587")
        assert form.is_valid(), form.errors
        form.instance.port = server.port  # the test server's port, past the form's check
        result = send_test_email(
            form.instance, password="", to="ops@example.com", subject="s", body="b"
        )

    assert result.outcome is Outcome.UNREACHABLE
    assert dns.lookups == ["smtp.rebind.example", "smtp.rebind.example"]
    assert server.greetings == 0


def test_the_socket_connects_to_the_address_that_was_checked(tenant, dns):
    # One lookup per connection: a second one (as smtplib would make) gets an
    # address nothing listens on, so the message arrives only if the checked
    # address is the one connected to.
    dns.answers["smtp.pinned.example"] = [[HOST], ["192.0.2.1"]]
    tenant.smtp_private_network_allowed = True
    with smtp_server() as server:
        row = SmtpSettingsFactory.build(tenant=tenant, host="smtp.pinned.example", port=server.port)
        result = send_test_email(row, password="", to="ops@example.com", subject="s", body="b")

    assert result.ok, result.message
    assert dns.lookups == ["smtp.pinned.example"]
    assert len(server.messages) == 1


@pytest.mark.parametrize("tls", ["starttls", "implicit"])
def test_tls_verifies_the_certificate_against_the_name_not_the_address(
    tenant, dns, trusted_ca, tls
):
    # The test certificate names 127.0.0.1 and localhost, not this name.
    dns.answers["smtp.other-name.example"] = [[HOST]]
    tenant.smtp_private_network_allowed = True
    with smtp_server(tls=tls) as server:
        fields = server.connection | {"host": "smtp.other-name.example"}
        mismatch = SmtpSettingsFactory.build(tenant=tenant, **fields)
        refused = send_test_email(mismatch, password="", to="a@example.com", subject="s", body="b")
        matching = SmtpSettingsFactory.build(
            tenant=tenant, **server.connection | {"host": "localhost"}
        )
        accepted = send_test_email(matching, password="", to="a@example.com", subject="s", body="b")

    assert refused.outcome is Outcome.CERTIFICATE_NOT_TRUSTED
    assert "smtp.other-name.example" in refused.message
    assert accepted.ok, accepted.message
    assert len(server.messages) == 1


def test_a_public_address_on_another_port_is_refused_before_connecting(dns):
    dns.answers["smtp.example.com"] = [["8.8.8.8"]]
    policy = netguard.NetworkPolicy()

    with pytest.raises(netguard.PortNotAllowedError):
        netguard.connect("smtp.example.com", 6379, policy=policy, timeout=1)


# One answer for every connection failure ------------------------------------------


def answer(tenant, port, *, allowed=True, timeout=5):
    row = SmtpSettingsFactory.build(
        tenant=tenant, host=HOST, port=port, timeout=timeout, private_network=False
    )
    tenant.smtp_private_network_allowed = allowed
    return send_test_email(row, password="", to="ops@example.com", subject="s", body="b")


def test_refused_unreachable_silent_and_foreign_services_read_the_same(tenant):
    with smtp_server() as server:
        blocked = answer(tenant, server.port, allowed=False)
    closed = answer(tenant, closed_port())
    with silent_server() as listener:
        silent = answer(tenant, listener.port, timeout=1)
    with greeting_server(b"SSH-2.0-OpenSSH_9.6 internal-build-42\r\n") as port:
        foreign = answer(tenant, port)
    with greeting_server(b"554 5.3.2 db-master-7 says go away\r\n") as port:
        refusing = answer(tenant, port)

    results = [blocked, closed, silent, foreign, refusing]
    assert {r.outcome for r in results} == {Outcome.UNREACHABLE}
    assert {r.hint for r in results} == {blocked.hint}
    assert {r.message.split(" on port ")[0] for r in results} == {
        "Postmaster could not connect to a mail server at 127.0.0.1"
    }
    assert all(r.reply is None for r in results)
    shown = " ".join(f"{r.message} {r.hint}" for r in results)
    for leak in ("OpenSSH", "internal-build", "db-master", "refused the connection", "seconds"):
        assert leak not in shown


def test_the_host_settings_keep_the_detailed_answer():
    with greeting_server(b"554 5.3.2 busy\r\n") as port:
        row = SmtpSettingsFactory.build(host=HOST, port=port)
        result = send_test_email(row, password="", to="ops@example.com", subject="s", body="b")

    assert result.outcome is Outcome.GREETING_REFUSED
    assert str(result.reply) == "554 5.3.2 busy"


# The host portal ------------------------------------------------------------------


def test_a_system_administrator_allows_a_tenant_in_the_admin_and_it_is_audited(
    admin_client, tenant, system_admin
):
    change = reverse("admin:tenancy_tenant_change", args=[tenant.pk])
    page = admin_client.get(change).content.decode()
    assert "May use private network addresses for SMTP" in page
    assert "Extra allowed SMTP ports" in page

    response = admin_client.post(
        change,
        {
            "name": tenant.name,
            "is_active": "on",
            "smtp_private_network_allowed": "on",
            "smtp_extra_ports": "8025 2526,8025",
        },
    )

    assert response.status_code == 302
    tenant.refresh_from_db()
    assert tenant.smtp_private_network_allowed
    assert tenant.smtp_extra_ports == "2526, 8025"
    entry = AuditEntry.objects.get(action="tenant.smtp_network_update")
    assert (entry.tenant, entry.actor) == (tenant, system_admin)
    assert entry.changes == {
        "smtp_extra_ports": ["", "2526, 8025"],
        "smtp_private_network_allowed": [False, True],
    }


def test_extra_ports_are_validated_in_plain_words(admin_client, tenant):
    change = reverse("admin:tenancy_tenant_change", args=[tenant.pk])

    response = admin_client.post(
        change, {"name": tenant.name, "is_active": "on", "smtp_extra_ports": "25, 70000"}
    )

    assert response.status_code == 200
    assert "“70000” is not a port" in response.content.decode()
    tenant.refresh_from_db()
    assert tenant.smtp_extra_ports == ""
    assert not AuditEntry.objects.filter(action="tenant.smtp_network_update").exists()
