# -*- test-case-name: tests.test_clientlimit -*-
"""
How many connections each client address has open, against
C{max_connections_per_client}, and the addresses exempt from that count
(C{connection_limit_exceptions}).

This is Postfix's C{smtpd_client_connection_count_limit} (50 by default)
with its C{smtpd_client_event_limit_exceptions}: one address cannot take
every place of a public server, while the machine itself (loopback: test
suites, the controller, local benchmarks, a content filter handing mail
back) is never limited.

Addresses are compared as L{ipaddress} objects, an IPv4-mapped IPv6
address (C{::ffff:192.0.2.1}, what a dual-stack socket reports for an IPv4
client) as the IPv4 address it carries, so that a client is counted once
whichever way it came. A client that is not an IP address (a UNIX socket)
is not counted.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

__all__ = [
    "DEFAULT_EXCEPTIONS",
    "ClientCounts",
    "clientAddress",
    "exceptionNetworks",
]

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

#: The default C{connection_limit_exceptions}: loopback, IPv4 and IPv6.
DEFAULT_EXCEPTIONS = ("127.0.0.0/8", "::1")

# Where IPv6 addresses carry IPv4 ones (RFC 4291 section 2.5.5.2).
_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")


def exceptionNetworks(value: Any) -> tuple[Network, ...]:
    """
    Check a C{connection_limit_exceptions} value and make networks of it.

    @param value: An iterable of addresses and networks, as strings
        (C{"192.0.2.1"}, C{"10.0.0.0/8"}, C{"2001:db8::/32"}) or
        L{ipaddress} objects; a network's host bits are dropped, as
        Postfix does (C{"10.1.2.3/8"} is C{10.0.0.0/8}).
    @return: The networks (an address is a network of one).
    @raise TypeError: For a single string (a list of them is needed) or
        anything but an iterable of strings and L{ipaddress} objects.
    @raise ValueError: For a string that is not an address or network.
    """
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise TypeError(
            "connection_limit_exceptions must be a list of addresses or"
            f" networks, not {value!r}"
        )
    networks = []
    for item in value:
        if isinstance(item, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
            item = str(item)
        elif not isinstance(item, (str, ipaddress.IPv4Network, ipaddress.IPv6Network)):
            raise TypeError(
                "connection_limit_exceptions must hold addresses or networks,"
                f" not {item!r}"
            )
        try:
            network = ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ValueError(
                f"connection_limit_exceptions: not an IP address or network: {item!r}"
            ) from None
        networks.append(_unmapped(network))
    return tuple(networks)


def _unmapped(network: Network) -> Network:
    """
    An IPv4-mapped IPv6 network (C{::ffff:192.0.2.0/120}) as the IPv4
    network it carries, since addresses are compared so.
    """
    if network.version == 6 and network.subnet_of(_MAPPED):  # type: ignore[arg-type]
        return ipaddress.IPv4Network(
            (int(network.network_address) & 0xFFFFFFFF, network.prefixlen - 96)
        )
    return network


def clientAddress(peer: Any) -> Address | None:
    """
    The IP address of a client, as counted.

    @param peer: A C{session.peer}: C{(host, port)} or C{(host, port,
        flowinfo, scope_id)}, or a path for a UNIX socket.
    @return: The address, IPv4 for an IPv4-mapped IPv6 address, or
        C{None} for a peer that is not an IP address.
    """
    if not isinstance(peer, tuple) or not peer or not isinstance(peer[0], str):
        return None
    try:
        address = ipaddress.ip_address(peer[0])
    except ValueError:
        return None
    if address.version == 6 and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


#: How many host strings L{ClientCounts.keyFor} remembers before it starts
#: again (a flood from many addresses must not grow it without bound).
_KEYS_KEPT = 4096


class ClientCounts:
    """
    The number of connections each client address has open, with the
    limit and its exceptions.

    Only counted addresses take memory: one C{dict} entry per address with
    a connection open.

    @ivar limit: The most connections one address may have open; C{0}
        for no limit.
    @ivar exceptions: The networks whose addresses are not counted.
    """

    def __init__(self, limit: int, exceptions: tuple[Network, ...]) -> None:
        self.limit = limit
        self.exceptions = exceptions
        self._counts: dict[Address, int] = {}
        # Host string -> key: parsing an address and matching it against
        # the networks costs microseconds, and clients come back.
        self._keys: dict[str, Address | None] = {}

    def keyFor(self, peer: Any) -> Address | None:
        """
        The address under which a client's connections are counted.

        @param peer: The client, as in L{clientAddress}.
        @return: Its address, or C{None} when it is not counted: no limit,
            an exempt address, or no IP address.
        """
        if not self.limit:
            return None
        host = peer[0] if isinstance(peer, tuple) and peer else None
        keys = self._keys
        if host in keys:
            return keys[host]
        address = clientAddress(peer)
        if address is not None and any(address in net for net in self.exceptions):
            address = None
        if isinstance(host, str):
            if len(keys) >= _KEYS_KEPT:
                keys.clear()
            keys[host] = address
        return address

    def full(self, key: Address) -> bool:
        """
        Whether C{key} has as many connections open as the limit allows.
        """
        return self._counts.get(key, 0) >= self.limit

    def add(self, key: Address) -> None:
        """
        Count one more connection of C{key}.
        """
        self._counts[key] = self._counts.get(key, 0) + 1

    def release(self, key: Address) -> None:
        """
        Count one connection of C{key} less; an address with none left is
        forgotten.
        """
        count = self._counts.pop(key, 0) - 1
        if count > 0:
            self._counts[key] = count

    def count(self, key: Address) -> int:
        """
        How many connections C{key} has open (as counted).
        """
        return self._counts.get(key, 0)

    def __len__(self) -> int:
        """
        @return: How many addresses have connections counted.
        """
        return len(self._counts)
