"""Where a tenant's SMTP settings may connect: no way into the host's own network.

A tenant types an SMTP host; Postmaster connects to it from inside the
host's network. Unless a system administrator allowed it for that tenant,
a name that resolves to a loopback, private, link-local, shared (carrier-grade
NAT), multicast, reserved or unspecified address is refused; on a public
address only the usual SMTP ports (and the tenant's extra ones) are allowed.
A tenant allowed the private network may use any port there: that is what
the exception is for (a relay or mail catcher inside the network).

The check runs when the settings are saved (`check_host`, for the form's
error) and again on every connection (`connect`): the name is resolved once
more, every address it gives is checked, and the socket connects to a
checked address itself, so a DNS answer that changes in between (rebinding)
cannot slip through. TLS still verifies the certificate against the host
*name* (smtplib passes it as server_hostname).

The same rule holds for every other connection a tenant can aim: the API URL
of an email-service provider (`api_policy_for`, HTTPS on port 443 only on
public addresses). Its HTTP clients (requests for anymail, urllib3 under
botocore for SES) connect through `GuardedConnectionMixin`: the socket goes to
an address `connect` resolved and checked, while TLS still sends the host name
(SNI) and verifies the certificate against it. `guard_pool_manager` and
`GuardedAdapter` put it in place; a tenant's connection never goes through a
proxy, which would resolve the name itself.

What a tenant is told of a refusal never names the address a *name* resolved
to (a system administrator finds it in the log); an address typed as such is
named, since the tenant typed it.

The host's own settings are edited only by system administrators, the same
people who grant these exceptions, so they are not restricted.
"""

import functools
import ipaddress
import logging
import socket
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError

logger = logging.getLogger(__name__)

# The ports mail submission and relay use: SMTP, implicit TLS, submission, and
# the common alternative of hosted providers.
STANDARD_PORTS = frozenset({25, 465, 587, 2525})
# The port of the providers' HTTPS APIs.
HTTPS_PORTS = frozenset({443})
# RFC 6052's well-known NAT64 prefix: the IPv4 address is the last 32 bits.
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
SHARED = ipaddress.IPv4Network("100.64.0.0/10")

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class AddressNotAllowedError(OSError):
    """The host resolves to an address (or the settings use a port) this tenant may not use."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class PortNotAllowedError(AddressNotAllowedError):
    pass


@dataclass(frozen=True)
class NetworkPolicy:
    # Non-public addresses allowed, on any port.
    private_allowed: bool = False
    # The ports allowed on public addresses; None: any (the host's own settings).
    ports: frozenset[int] | None = STANDARD_PORTS


UNRESTRICTED = NetworkPolicy(private_allowed=True, ports=None)


def parse_ports(text: str) -> list[int]:
    """ "1025, 2526" → [1025, 2526]; raises ValueError with a plain-words message."""
    ports = []
    for item in text.replace(";", ",").replace(" ", ",").split(","):
        if not item:
            continue
        if not item.isdigit() or not 1 <= int(item) <= 65535:
            raise ValueError(
                f"“{item}” is not a port: enter numbers between 1 and 65535, "
                "separated by commas, like 1025, 2526."
            )
        ports.append(int(item))
    return sorted(set(ports))


def validate_ports(text: str) -> None:
    try:
        parse_ports(text)
    except ValueError as error:
        raise ValidationError(str(error), code="ports") from None


def policy_for(smtp_settings) -> NetworkPolicy:
    """The policy for these settings: the host's are unrestricted, a tenant's as allowed."""
    tenant = smtp_settings.tenant if smtp_settings.tenant_id else None
    if tenant is None:
        return UNRESTRICTED
    extra = parse_ports(tenant.smtp_extra_ports or "")
    return NetworkPolicy(
        private_allowed=tenant.smtp_private_network_allowed,
        ports=STANDARD_PORTS | frozenset(extra),
    )


def api_policy_for(provider_settings) -> NetworkPolicy:
    """The policy for a provider connection's API: the host's unrestricted, a tenant's HTTPS."""
    tenant = provider_settings.tenant if provider_settings.tenant_id else None
    if tenant is None:
        return UNRESTRICTED
    return NetworkPolicy(private_allowed=tenant.smtp_private_network_allowed, ports=HTTPS_PORTS)


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address inside an IPv4-mapped, 6to4 or NAT64 address, if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def address_refusal(address: Address) -> str | None:
    """Why an address is not on the public internet ("a loopback address"), or None if it is.

    Python's `is_global` knows the IANA special-purpose registries (private,
    shared, documentation, reserved, ...); multicast and IPv6 site-local
    addresses count as global there, so they are named here, as are IPv4
    addresses tucked inside IPv6 ones.
    """
    if isinstance(address, ipaddress.IPv6Address):
        inner = _embedded_ipv4(address)
        if inner is not None:
            reason = address_refusal(inner)
            return f"{reason} inside an IPv6 address ({inner})" if reason else None
    if address.is_unspecified:
        return "the unspecified address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if isinstance(address, ipaddress.IPv4Address) and address in SHARED:
        return "a carrier-grade NAT (shared) address"
    if isinstance(address, ipaddress.IPv6Address) and address.is_site_local:
        return "a site-local address"
    if address.is_reserved:
        return "a reserved address"
    if address.is_private:
        return "a private or special-purpose address"
    if not address.is_global:
        return "a special-purpose address, not on the public internet"
    return None


def check_port(port: int, policy: NetworkPolicy) -> None:
    """Raise PortNotAllowedError for a port not allowed on a public address."""
    if policy.ports is not None and port not in policy.ports:
        allowed = ", ".join(str(p) for p in sorted(policy.ports))
        raise PortNotAllowedError(
            f"Port {port} is not allowed. Use one of {allowed}; a system administrator "
            "can allow other ports for your tenant."
        )


def _check_address(host: str, port: int, address: Address, policy: NetworkPolicy) -> None:
    reason = address_refusal(address)
    if reason is None:
        check_port(port, policy)
    elif not policy.private_allowed:
        logger.warning("Refused a tenant's connection to %s (%s): %s", host, address, reason)
        if _is_address(host):
            named = str(address) if host == str(address) else f"{host} resolves to {address}"
            named = f"{named}, {reason}"
        else:
            # Never the address a name resolved to: that would map the host's network.
            named = f"{host} resolves to an address that is not on the public internet"
        raise AddressNotAllowedError(
            f"{named}. Postmaster only connects to servers on the public internet; a "
            "system administrator can allow private addresses for your tenant."
        )


def _is_address(host: str) -> bool:
    """Whether `host` is an IP address as typed (any spelling getaddrinfo reads as one)."""
    try:
        ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        pass
    else:
        return True
    try:
        socket.inet_aton(host)  # 2130706433, 0177.0.0.1, 0x7f.1
    except (OSError, UnicodeError, ValueError):
        return False
    return True


def resolve_allowed(host: str, port: int, policy: NetworkPolicy) -> list[tuple]:
    """Every address `host` resolves to, as getaddrinfo gives them, all checked.

    Raises AddressNotAllowedError (PortNotAllowedError) if any address (or the port on a
    public one) is not allowed (a
    name with one public and one private address is refused: it is either a
    mistake or an attempt), socket.gaierror if the name does not resolve.
    getaddrinfo also reads the odd spellings of IPv4 addresses
    (2130706433, 0177.0.0.1, 0x7f.1), so they are checked as what they are.
    """
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    for *_, sockaddr in infos:
        # An IPv6 sockaddr may carry a zone ("fe80::1%eth0"): the address is before it.
        _check_address(host, port, ipaddress.ip_address(sockaddr[0].split("%")[0]), policy)
    return infos


def check_host(host: str, port: int, policy: NetworkPolicy) -> None:
    """For saving: raise AddressNotAllowedError if the port or the resolved host is refused.

    A name that does not resolve (now) passes if the port is allowed on a
    public address: the test email says so, and every connection checks again.
    """
    if policy == UNRESTRICTED:
        return
    try:
        resolve_allowed(host, port, policy)
    except (socket.gaierror, UnicodeError):
        check_port(port, policy)


def connect(
    host: str,
    port: int,
    *,
    policy: NetworkPolicy,
    timeout: float | None,
    source_address: tuple | None = None,
) -> socket.socket:
    """A TCP connection to `host`, made to one of its checked addresses (as create_connection)."""
    error: OSError | None = None
    for family, type_, proto, _, sockaddr in resolve_allowed(host, port, policy):
        sock = socket.socket(family, type_, proto)
        try:
            if timeout is not None:
                sock.settimeout(timeout)
            if source_address:
                sock.bind(source_address)
            sock.connect(sockaddr)
            return sock
        except OSError as exc:
            error = exc
            sock.close()
    raise error or OSError(f"{host} has no address to connect to.")


# HTTP(S) through the guard ------------------------------------------------------------


class GuardedConnectionMixin:
    """For a urllib3 connection class: the socket goes where `connect` allows.

    urllib3 keeps the host name for TLS (SNI and the certificate check) and
    the Host header; only the address the socket connects to comes from here.
    """

    netguard_policy: NetworkPolicy

    def _new_conn(self) -> socket.socket:
        timeout = self.timeout
        if timeout is not None and not isinstance(timeout, int | float):
            timeout = socket.getdefaulttimeout()  # urllib3's "default" sentinel
        try:
            sock = connect(
                self._dns_host,
                self.port,
                policy=self.netguard_policy,
                timeout=timeout,
                source_address=self.source_address,
            )
        except socket.gaierror as error:
            raise NameResolutionError(self.host, self, error) from error
        except TimeoutError as error:
            raise ConnectTimeoutError(self, f"Connection to {self.host} timed out.") from error
        except OSError as error:
            raise NewConnectionError(self, f"Failed to establish a connection: {error}") from error
        for option in self.socket_options or ():
            sock.setsockopt(*option)
        return sock


@functools.cache
def _guarded_pool_class(pool_class: type, policy: NetworkPolicy) -> type:
    base = pool_class.ConnectionCls
    connection_class = type(
        f"Guarded{base.__name__}", (GuardedConnectionMixin, base), {"netguard_policy": policy}
    )
    return type(f"Guarded{pool_class.__name__}", (pool_class,), {"ConnectionCls": connection_class})


def guard_pool_manager(manager, policy: NetworkPolicy) -> None:
    """Every connection of a urllib3 PoolManager (requests', botocore's) through `connect`."""
    manager.pool_classes_by_scheme = {
        scheme: _guarded_pool_class(pool_class, policy)
        for scheme, pool_class in manager.pool_classes_by_scheme.items()
    }
    manager.clear()  # no pool made before this keeps an unguarded connection


class GuardedAdapter(HTTPAdapter):
    """A requests adapter whose connections go through `connect`, never through a proxy."""

    def __init__(self, policy: NetworkPolicy, **kwargs):
        self.netguard_policy = policy
        super().__init__(**kwargs)

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        guard_pool_manager(self.poolmanager, self.netguard_policy)

    def send(self, request, **kwargs):
        kwargs["proxies"] = None  # a proxy would resolve the name itself
        return super().send(request, **kwargs)


def guard_session(session, policy: NetworkPolicy) -> None:
    """Route every request of a requests Session through `connect`."""
    adapter = GuardedAdapter(policy)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
