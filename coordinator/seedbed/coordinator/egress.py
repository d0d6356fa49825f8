"""Where the coordinator's own outgoing requests may go: the address policy of webhook reporters.

A reporter's URL is written by whoever may edit a scenario, and the coordinator sends the request
from inside the operator's network. Without a rule, a URL naming a loopback service, the cloud
metadata address (169.254.169.254) or a private host would make the coordinator reach what the
scenario editor cannot: a server-side request forgery.

The rule: an address is *internal* when it is loopback, link-local, private (RFC 1918, IPv6 unique
local), unspecified, multicast, shared (CGNAT 100.64.0.0/10), a cloud metadata address, or otherwise
not globally reachable (documentation, benchmarking, reserved ranges); an IPv6 address that carries
an IPv4 one (IPv4-mapped, NAT64, 6to4) is judged by the IPv4 address inside. Every address a host
name resolves to must be public, unless the operator lists the host name, the address or a network
holding it in ``SEEDBED_WEBHOOK_ALLOWED_HOSTS``.

The check must hold for the connection actually made, so delivery resolves a name once, checks every
address and connects to a checked address (``reporting``'s transport); a name whose answer changes
between check and connect (DNS rebinding) cannot switch the destination. Rejected: checking the URL's
host name by pattern (names resolve anywhere), and checking a resolution made separately from the
connection (the second answer may differ).

Pure logic: the standard ``ipaddress`` module only.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

SETTING = "SEEDBED_WEBHOOK_ALLOWED_HOSTS"

LOOPBACK = "loopback"
LINK_LOCAL = "link-local"
PRIVATE = "private"
UNSPECIFIED = "unspecified"
MULTICAST = "multicast"
SHARED = "shared (carrier-grade NAT)"
METADATA = "cloud metadata"
RESERVED = "reserved"

# The instance metadata services of the common clouds (AWS, GCP, Azure, OpenStack and Oracle on
# 169.254.169.254; AWS ECS task metadata; Alibaba; AWS over IPv6; Oracle's older address). Every one
# is internal anyway; naming them gives the clearer message.
_METADATA = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "100.100.100.200", "192.0.0.192", "fd00:ec2::254")
)

_CLASSES: tuple[tuple[IPNetwork, str], ...] = tuple(
    (ipaddress.ip_network(net), label)
    for net, label in (
        ("0.0.0.0/8", UNSPECIFIED),
        ("127.0.0.0/8", LOOPBACK),
        ("10.0.0.0/8", PRIVATE),
        ("172.16.0.0/12", PRIVATE),
        ("192.168.0.0/16", PRIVATE),
        ("100.64.0.0/10", SHARED),
        ("169.254.0.0/16", LINK_LOCAL),
        ("224.0.0.0/4", MULTICAST),
        ("240.0.0.0/4", RESERVED),
        ("::/128", UNSPECIFIED),
        ("::1/128", LOOPBACK),
        ("fc00::/7", PRIVATE),
        ("fec0::/10", PRIVATE),  # site-local, deprecated but still routed inside some networks
        ("fe80::/10", LINK_LOCAL),
        ("ff00::/8", MULTICAST),
    )
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_SIX_TO_FOUR = ipaddress.ip_network("2002::/16")
_HOST_NAME = re.compile(
    r"^(?=.{1,253}$)[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*$"
)


def embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (IPv4-mapped, NAT64, 6to4), if any."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in _SIX_TO_FOUR:
        return address.sixtofour
    return None


def internal_class(address: IPAddress) -> str | None:
    """Why ``address`` is internal ("loopback", "private", …), or None for a public address."""
    inner = embedded_ipv4(address)
    if inner is not None:
        return internal_class(inner)
    if address in _METADATA:
        return METADATA
    for network, label in _CLASSES:
        if address.version == network.version and address in network:
            return label
    if not address.is_global:
        return RESERVED
    return None


def literal_address(host: str) -> IPAddress | None:
    """The address a URL's host stands for without asking DNS: an IP literal, or an IPv4 address in
    one of the legacy forms resolvers still accept (``127.1``, ``0x7f.0.0.1``, ``2130706433``)."""
    host = host.strip("[]")
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    if re.fullmatch(r"[0-9a-fx.]+", host.lower()) and any(c.isdigit() for c in host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


@dataclass(frozen=True)
class EgressPolicy:
    """The operator's exceptions to the rule: host names, addresses and networks that may be
    reached although internal. Build with ``parse``."""

    hosts: frozenset[str] = frozenset()
    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> EgressPolicy:
        """From the setting's entries: host names, IP addresses or CIDR networks. Raises ValueError
        naming the first entry that is none of them."""
        hosts: set[str] = set()
        networks: list[IPNetwork] = []
        for raw in entries:
            entry = normalize_entry(raw)
            if "/" in entry or literal_address(entry) is not None:
                networks.append(ipaddress.ip_network(entry.strip("[]")))
            else:
                hosts.add(entry)
        return cls(frozenset(hosts), tuple(networks))

    def allows(self, host: str, address: IPAddress) -> bool:
        """Whether the operator listed ``host`` (as named in the URL) or ``address``."""
        if host.lower().rstrip(".") in self.hosts:
            return True
        candidates = [address]
        inner = embedded_ipv4(address)
        if inner is not None:
            candidates.append(inner)
        return any(a.version == net.version and a in net for a in candidates for net in self.networks)

    def refusal(self, host: str, address: IPAddress) -> str | None:
        """Why ``address`` (which ``host`` resolved to) may not be reached, or None when it may."""
        label = internal_class(address)
        if label is None or self.allows(host, address):
            return None
        named = "" if literal_address(host) == address else f"{host} resolves to {address}: "
        article = "an" if label[0] in "aeiou" else "a"
        return (
            f"{named}{address} is {article} {label} address; reports are not sent to loopback, "
            f"link-local, private, metadata or other internal addresses unless the operator lists "
            f"the host or its address in {SETTING}"
        )


PUBLIC_ONLY = EgressPolicy()
"""The policy with no exceptions: public addresses only."""


def normalize_entry(raw: str) -> str:
    """One allow-list entry, lower-cased and checked; raises ValueError with what is accepted."""
    entry = raw.strip().lower().rstrip(".")
    base, slash, _ = entry.partition("/")
    if slash and literal_address(base) is not None:
        try:
            return str(ipaddress.ip_network(entry.strip("[]")))
        except ValueError as exc:
            raise ValueError(
                f"{SETTING}: {raw!r} is not a network ({exc}); write it as e.g. 10.0.0.0/8 or fd00::/8"
            ) from None
    address = literal_address(entry)
    if address is not None:
        return str(address)
    if slash or not _HOST_NAME.match(entry):
        raise ValueError(
            f"{SETTING}: {raw!r} is not a host name, an IP address or a network; list entries such as "
            "hooks.internal, 10.0.0.7, 10.0.0.0/8, separated by commas (a host alone, not a URL)"
        )
    return entry
