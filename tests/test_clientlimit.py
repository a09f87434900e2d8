"""
Tests for L{twisted_smtpd._clientlimit} and the factory options it serves,
C{max_connections_per_client} and C{connection_limit_exceptions}: in
memory with L{StringTransport} and a L{Clock} (PROXY headers included),
and over real loopback TCP with raw sockets.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.internet.threads import deferToThread
from twisted.logger import capturedLogs, formatEvent
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase

from tests._support import HOSTNAME, listen, rawConnect, readReplies, readToEnd
from tests.test_proxyphase import v1Header, v2Header, v2Unaddressed
from twisted_smtpd import SMTP, SMTPFactory, _clientlimit
from twisted_smtpd._clientlimit import (
    DEFAULT_EXCEPTIONS,
    ClientCounts,
    clientAddress,
    exceptionNetworks,
)

GREETING_START = f"220 {HOSTNAME} ".encode()


def tooManyFrom(address: str) -> bytes:
    """
    The refusal of a connection over C{max_connections_per_client}.
    """
    return (
        f"421 4.7.0 {HOSTNAME} Error: too many connections from {address}\r\n"
    ).encode()


class Handler:
    """
    A handler with no hooks.
    """


class ExceptionNetworksTests(SynchronousTestCase):
    """
    L{exceptionNetworks} checks C{connection_limit_exceptions}.
    """

    def test_addressesAndNetworks(self) -> None:
        """
        Addresses become networks of one; networks keep their size, and
        host bits are dropped; L{ipaddress} objects are taken too.
        """
        self.assertEqual(
            exceptionNetworks(
                [
                    "192.0.2.1",
                    "10.1.2.3/8",
                    "2001:db8::/32",
                    ipaddress.ip_address("198.51.100.7"),
                    ipaddress.ip_network("203.0.113.0/24"),
                ]
            ),
            tuple(
                map(
                    ipaddress.ip_network,
                    [
                        "192.0.2.1/32",
                        "10.0.0.0/8",
                        "2001:db8::/32",
                        "198.51.100.7/32",
                        "203.0.113.0/24",
                    ],
                )
            ),
        )

    def test_mappedNetworks(self) -> None:
        """
        An IPv4-mapped IPv6 address or network is taken as the IPv4 one it
        carries, since clients are compared so.
        """
        self.assertEqual(
            exceptionNetworks(["::ffff:10.0.0.0/104", "::ffff:192.0.2.1"]),
            (
                ipaddress.ip_network("10.0.0.0/8"),
                ipaddress.ip_network("192.0.2.1/32"),
            ),
        )

    def test_empty(self) -> None:
        """
        An empty list exempts nobody.
        """
        self.assertEqual(exceptionNetworks([]), ())
        self.assertEqual(exceptionNetworks(()), ())

    def test_default(self) -> None:
        """
        The default is loopback, IPv4 and IPv6.
        """
        self.assertEqual(
            exceptionNetworks(DEFAULT_EXCEPTIONS),
            (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1")),
        )

    def test_notAList(self) -> None:
        """
        A single string, or anything not iterable, is refused with a
        L{TypeError}: a list is needed.
        """
        for value in ("127.0.0.1", b"127.0.0.1", 7, None):
            e = self.assertRaises(TypeError, exceptionNetworks, value)
            self.assertIn("must be a list of addresses or networks", str(e))

    def test_badItem(self) -> None:
        """
        An item that is not a string or L{ipaddress} object is a
        L{TypeError}; a string that is not an address or network a
        L{ValueError} naming it.
        """
        e = self.assertRaises(TypeError, exceptionNetworks, [7])
        self.assertIn("not 7", str(e))
        e = self.assertRaises(ValueError, exceptionNetworks, ["localhost"])
        self.assertEqual(
            str(e),
            "connection_limit_exceptions: not an IP address or network: 'localhost'",
        )


class ClientAddressTests(SynchronousTestCase):
    """
    L{clientAddress} finds the address a client is counted under.
    """

    def test_forms(self) -> None:
        """
        IPv4 and IPv6 peers give their address; an IPv4-mapped IPv6 one
        gives the IPv4 address; a UNIX socket's path, an empty peer or a
        host name gives C{None}.
        """
        self.assertEqual(
            clientAddress(("192.0.2.1", 25)), ipaddress.ip_address("192.0.2.1")
        )
        self.assertEqual(
            clientAddress(("2001:db8::1", 25, 0, 0)),
            ipaddress.ip_address("2001:db8::1"),
        )
        self.assertEqual(
            clientAddress(("::ffff:192.0.2.1", 25, 0, 0)),
            ipaddress.ip_address("192.0.2.1"),
        )
        for peer in ("/run/smtpd.sock", "", (), None, ("example.com", 25)):
            self.assertIsNone(clientAddress(peer))


class ClientCountsTests(SynchronousTestCase):
    """
    L{ClientCounts} counts connections by address, up to a limit.
    """

    def test_countAndRelease(self) -> None:
        """
        An address is full at the limit, not before; releasing makes room,
        and an address with nothing counted is forgotten.
        """
        counts = ClientCounts(2, ())
        key = counts.keyFor(("192.0.2.1", 1))
        self.assertFalse(counts.full(key))
        counts.add(key)
        self.assertFalse(counts.full(key))
        counts.add(key)
        self.assertTrue(counts.full(key))
        self.assertEqual(counts.count(key), 2)
        counts.release(key)
        self.assertFalse(counts.full(key))
        counts.release(key)
        self.assertEqual((counts.count(key), len(counts)), (0, 0))

    def test_notCounted(self) -> None:
        """
        With no limit, for an exempt address and for a peer without an IP
        address, there is no key: nothing is counted.
        """
        self.assertIsNone(ClientCounts(0, ()).keyFor(("192.0.2.1", 1)))
        exempt = ClientCounts(5, exceptionNetworks(["192.0.2.0/24"]))
        self.assertIsNone(exempt.keyFor(("192.0.2.77", 1)))
        self.assertIsNotNone(exempt.keyFor(("192.0.3.1", 1)))
        self.assertIsNone(exempt.keyFor("/run/smtpd.sock"))

    def test_keysRemembered(self) -> None:
        """
        A host seen again gets the same key, exempt or not, from what was
        remembered, and no more hosts are remembered than the bound.
        """
        counts = ClientCounts(5, exceptionNetworks(DEFAULT_EXCEPTIONS))
        first = counts.keyFor(("192.0.2.1", 1))
        self.assertIs(counts.keyFor(("192.0.2.1", 2)), first)
        self.assertIsNone(counts.keyFor(("127.0.0.1", 1)))
        self.assertIsNone(counts.keyFor(("127.0.0.1", 2)))
        self.patch(_clientlimit, "_KEYS_KEPT", 3)
        for host in range(10):
            counts.keyFor((f"198.51.100.{host}", 1))
            self.assertLessEqual(len(counts._keys), 3)
        self.assertEqual(str(counts.keyFor(("198.51.100.9", 1))), "198.51.100.9")

    def test_mappedCountedOnce(self) -> None:
        """
        An IPv4 client and the same address mapped into IPv6 are one
        client; an IPv4-mapped loopback address is exempt with loopback.
        """
        counts = ClientCounts(5, exceptionNetworks(DEFAULT_EXCEPTIONS))
        self.assertEqual(
            counts.keyFor(("::ffff:192.0.2.1", 1, 0, 0)),
            counts.keyFor(("192.0.2.1", 2)),
        )
        self.assertIsNone(counts.keyFor(("::ffff:127.0.0.1", 1, 0, 0)))
        self.assertIsNone(counts.keyFor(("::1", 1, 0, 0)))
        self.assertIsNone(counts.keyFor(("127.1.2.3", 1)))


class _ClientsTestCase(SynchronousTestCase):
    """
    Connections from chosen addresses to one factory, in memory.
    """

    def makeFactory(self, **options: Any) -> SMTPFactory:
        """
        Make the factory under test, without idle timeout.
        """
        self.clock = Clock()
        self.factory = SMTPFactory(
            Handler(), reactor=self.clock, timeout=None, hostname=HOSTNAME, **options
        )
        return self.factory

    def connect(self, host: str, port: int = 40000) -> SMTP:
        """
        Connect a client from C{host} (C{""} for a UNIX socket).
        """
        if not host:
            peer: Any = UNIXAddress("/run/smtpd.sock")
        elif ":" in host:
            peer = IPv6Address("TCP", host, port)
        else:
            peer = IPv4Address("TCP", host, port)
        server = self.factory.buildProtocol(peer)
        server.makeConnection(StringTransport(peerAddress=peer))
        return server

    def lose(self, server: SMTP) -> None:
        """
        Tell C{server} its connection ended.
        """
        server.connectionLost(Failure(ConnectionDone()))

    def assertServed(self, server: SMTP) -> None:
        """
        C{server} greeted its client, answers a command and stays open.
        """
        server.dataReceived(b"NOOP\r\n")
        value = server.transport.value()
        self.assertTrue(value.startswith(GREETING_START), value)
        self.assertTrue(value.endswith(b"\r\n250 OK\r\n"), value)
        self.assertFalse(server.transport.disconnecting)


class PerClientLimitTests(_ClientsTestCase):
    """
    C{max_connections_per_client}: one connection too many from an
    address gets C{421 4.7.0} and is closed; the client's other sessions
    go on.
    """

    def test_oneTooMany(self) -> None:
        """
        The connection over the limit gets exactly the 421 reply, without a
        greeting, and is closed; it reads nothing more; the two under the
        limit, and a client from another address, are served.
        """
        self.makeFactory(max_connections_per_client=2)
        first, second = self.connect("192.0.2.7"), self.connect("192.0.2.7")
        refused = self.connect("192.0.2.7")
        self.assertEqual(refused.transport.value(), tooManyFrom("192.0.2.7"))
        self.assertTrue(refused.transport.disconnecting)
        refused.dataReceived(b"NOOP\r\n")
        self.assertEqual(refused.transport.value(), tooManyFrom("192.0.2.7"))
        for server in (first, second, self.connect("192.0.2.8")):
            self.assertServed(server)
        self.assertEqual(self.factory.connections, 3)

    def test_slotFreed(self) -> None:
        """
        When one of a client's sessions ends, it may connect again; the end
        of a refused connection frees nothing.
        """
        self.makeFactory(max_connections_per_client=1)
        first = self.connect("192.0.2.7")
        refused = self.connect("192.0.2.7")
        self.lose(refused)
        self.assertEqual(self.connect("192.0.2.7").transport.value()[:4], b"421 ")
        self.lose(first)
        self.assertServed(self.connect("192.0.2.7"))

    def test_defaultFifty(self) -> None:
        """
        By default an address may have 50 connections, as in Postfix.
        """
        factory = self.makeFactory()
        self.assertEqual(factory.maxConnectionsPerClient, 50)
        servers = [self.connect("198.51.100.1") for _ in range(50)]
        self.assertFalse(any(s.transport.disconnecting for s in servers))
        self.assertEqual(
            self.connect("198.51.100.1").transport.value(),
            tooManyFrom("198.51.100.1"),
        )

    def test_zeroMeansNoLimit(self) -> None:
        """
        C{max_connections_per_client=0} limits nothing.
        """
        self.makeFactory(max_connections_per_client=0)
        servers = [self.connect("198.51.100.1") for _ in range(60)]
        self.assertFalse(any(s.transport.disconnecting for s in servers))

    def test_ipv6(self) -> None:
        """
        IPv6 clients are counted by address, and told theirs.
        """
        self.makeFactory(max_connections_per_client=1)
        self.assertServed(self.connect("2001:db8::7"))
        self.assertEqual(
            self.connect("2001:db8::7").transport.value(), tooManyFrom("2001:db8::7")
        )

    def test_mappedIsTheSameClient(self) -> None:
        """
        A client seen as an IPv4-mapped IPv6 address (a dual-stack socket)
        counts as its IPv4 address.
        """
        self.makeFactory(max_connections_per_client=1)
        self.assertServed(self.connect("192.0.2.7"))
        self.assertEqual(
            self.connect("::ffff:192.0.2.7").transport.value(),
            tooManyFrom("192.0.2.7"),
        )

    def test_unixNotCounted(self) -> None:
        """
        Clients of a UNIX socket have no address, and are not limited.
        """
        self.makeFactory(max_connections_per_client=1)
        for _ in range(3):
            self.assertServed(self.connect(""))

    def test_withMaxConnections(self) -> None:
        """
        C{max_connections} still counts every connection: one over it is
        refused with its own reply whatever the address.
        """
        self.makeFactory(max_connections=2, max_connections_per_client=5)
        self.connect("192.0.2.7")
        self.connect("192.0.2.8")
        refused = self.connect("192.0.2.9")
        self.assertEqual(
            refused.transport.value(),
            b"421 4.3.2 Too many connections, try again later\r\n",
        )

    def test_refusalsLoggedOnceASecond(self) -> None:
        """
        Refusals are summed up in one warning a second at most, naming the
        limit and the last address, not a line each.
        """
        self.makeFactory(max_connections_per_client=1)
        with capturedLogs() as events:
            self.connect("192.0.2.7")
            for _ in range(5):
                self.connect("192.0.2.7")
            self.connect("192.0.2.8")
            self.connect("192.0.2.8")
            self.clock.advance(1)
        texts = [formatEvent(e) for e in events if "refused" in formatEvent(e)]
        self.assertEqual(
            texts,
            [
                "refused 1 connection(s) over max_connections_per_client (1),"
                " the last from 192.0.2.7",
                "refused 5 connection(s) over max_connections_per_client (1),"
                " the last from 192.0.2.8",
            ],
        )


class ExceptionsTests(_ClientsTestCase):
    """
    C{connection_limit_exceptions}: the addresses the per-client limit
    does not apply to.
    """

    def test_loopbackExemptByDefault(self) -> None:
        """
        By default loopback clients, IPv4 (the whole of 127.0.0.0/8),
        IPv6 and IPv4-mapped, are never limited.
        """
        self.makeFactory(max_connections_per_client=1)
        for host in ("127.0.0.1", "127.0.0.2", "::1", "::ffff:127.0.0.1"):
            for _ in range(3):
                self.assertServed(self.connect(host))

    def test_emptyLimitsLoopback(self) -> None:
        """
        With no exceptions, loopback is limited like any address.
        """
        self.makeFactory(max_connections_per_client=1, connection_limit_exceptions=[])
        self.assertServed(self.connect("127.0.0.1"))
        self.assertEqual(
            self.connect("127.0.0.1").transport.value(), tooManyFrom("127.0.0.1")
        )

    def test_networks(self) -> None:
        """
        The addresses of the networks given are exempt; others, loopback
        included once the list is replaced, are not.
        """
        factory = self.makeFactory(
            max_connections_per_client=1,
            connection_limit_exceptions=["10.0.0.0/8", "2001:db8::/32"],
        )
        self.assertEqual(
            factory.connectionLimitExceptions,
            (
                ipaddress.ip_network("10.0.0.0/8"),
                ipaddress.ip_network("2001:db8::/32"),
            ),
        )
        for host in ("10.1.2.3", "2001:db8::99"):
            for _ in range(3):
                self.assertServed(self.connect(host))
        self.connect("127.0.0.1")
        self.assertEqual(
            self.connect("127.0.0.1").transport.value(), tooManyFrom("127.0.0.1")
        )


class OptionTests(SynchronousTestCase):
    """
    The factory checks C{max_connections_per_client} and
    C{connection_limit_exceptions} when it is made.
    """

    def test_maxConnectionsPerClientBad(self) -> None:
        """
        C{max_connections_per_client} must be an C{int} of at least 0: a
        negative number is a L{ValueError}, a C{bool}, C{float}, string or
        C{None} a L{TypeError}.
        """
        e = self.assertRaises(
            ValueError, SMTPFactory, Handler(), max_connections_per_client=-1
        )
        self.assertEqual(
            str(e), "max_connections_per_client must be at least 0, not -1"
        )
        for value in (True, 1.5, "3", None):
            e = self.assertRaises(
                TypeError, SMTPFactory, Handler(), max_connections_per_client=value
            )
            self.assertIn("max_connections_per_client must be an int", str(e))

    def test_exceptionsBad(self) -> None:
        """
        A bad C{connection_limit_exceptions} is refused when the factory is
        made.
        """
        self.assertRaises(
            TypeError, SMTPFactory, Handler(), connection_limit_exceptions="::1"
        )
        self.assertRaises(
            ValueError, SMTPFactory, Handler(), connection_limit_exceptions=["x"]
        )


class ProxiedClientTests(_ClientsTestCase):
    """
    Behind the PROXY protocol the client counted is the one the header
    names, not the proxy.
    """

    def test_realClientCounted(self) -> None:
        """
        Connections from one proxy for different clients are all served;
        one too many for the same client is told C{421 4.7.0} after its
        header, without a greeting, and closed.
        """
        self.makeFactory(max_connections_per_client=2, proxy_protocol_timeout=5)
        servers = []
        for number in range(4):
            server = self.connect("192.0.2.200", 50000 + number)
            server.dataReceived(v1Header((f"198.51.100.{number}", 40000)))
            servers.append(server)
        for _ in range(2):
            server = self.connect("192.0.2.200")
            server.dataReceived(v2Header(("198.51.100.0", 40001)))
            servers.append(server)
        for server in servers[:5]:
            self.assertServed(server)
        refused = servers[5]
        self.assertEqual(refused.transport.value(), tooManyFrom("198.51.100.0"))
        self.assertTrue(refused.transport.disconnecting)
        self.assertEqual(self.factory.connections, 5)

    def test_releasedAfterHeader(self) -> None:
        """
        A proxied connection that ends frees its client's place.
        """
        self.makeFactory(max_connections_per_client=1, proxy_protocol_timeout=5)
        server = self.connect("192.0.2.200")
        server.dataReceived(v1Header(("198.51.100.9", 40000)))
        self.lose(server)
        again = self.connect("192.0.2.200")
        again.dataReceived(v1Header(("198.51.100.9", 40001)))
        self.assertServed(again)

    def test_proxyNotCountedBeforeHeader(self) -> None:
        """
        Before its header a connection is not counted under the proxy's
        address: more connections than the limit may wait for theirs.
        """
        self.makeFactory(
            max_connections_per_client=1,
            connection_limit_exceptions=[],
            proxy_protocol_timeout=5,
        )
        waiting = [self.connect("127.0.0.1", 50000 + n) for n in range(3)]
        for server in waiting:
            self.assertEqual(server.transport.value(), b"")
            self.assertFalse(server.transport.disconnecting)

    def test_localCountsTheProxy(self) -> None:
        """
        A C{LOCAL} connection (the proxy's health check) names no client:
        the proxy's own address is counted.
        """
        self.makeFactory(max_connections_per_client=1, proxy_protocol_timeout=5)
        first, second = self.connect("192.0.2.200"), self.connect("192.0.2.200")
        first.dataReceived(v2Unaddressed(0))
        second.dataReceived(v2Unaddressed(0))
        self.assertServed(first)
        self.assertEqual(second.transport.value(), tooManyFrom("192.0.2.200"))

    def test_exemptRealClient(self) -> None:
        """
        A real client in the exceptions is not limited behind a proxy.
        """
        self.makeFactory(max_connections_per_client=1, proxy_protocol_timeout=5)
        for number in range(3):
            server = self.connect("192.0.2.200", 50000 + number)
            server.dataReceived(v1Header(("127.0.0.1", 40000 + number)))
            self.assertServed(server)


class ClientLimitIntegrationTests(TestCase):
    """
    Integration tests: C{max_connections_per_client} on a server listening
    on 127.0.0.1, with raw sockets as clients.
    """

    async def test_oneTooManyOnTheWire(self) -> None:
        """
        With no exceptions, the third connection from 127.0.0.1 with a
        limit of two gets the 421 reply and is closed; the first two still
        answer.
        """
        server = listen(
            self,
            Handler(),
            max_connections_per_client=2,
            connection_limit_exceptions=[],
        )

        def clients():
            first, second = rawConnect(server.port), rawConnect(server.port)
            try:
                greetings = [readReplies(s, 1) for s in (first, second)]
                with rawConnect(server.port) as third:
                    refused = readToEnd(third)
                replies = []
                for s in (first, second):
                    s.sendall(b"NOOP\r\n")
                    replies.append(readReplies(s, 1))
                return greetings, refused, replies
            finally:
                first.close()
                second.close()

        greetings, refused, replies = await deferToThread(clients)
        for greeting in greetings:
            self.assertTrue(greeting.startswith(GREETING_START), greeting)
        self.assertEqual(refused, tooManyFrom("127.0.0.1"))
        self.assertEqual(replies, [b"250 OK\r\n", b"250 OK\r\n"])

    async def test_loopbackExemptOnTheWire(self) -> None:
        """
        By default, clients on loopback are not limited.
        """
        server = listen(self, Handler(), max_connections_per_client=1)

        def clients():
            sockets = [rawConnect(server.port) for _ in range(3)]
            try:
                return [readReplies(s, 1) for s in sockets]
            finally:
                for s in sockets:
                    s.close()

        for greeting in await deferToThread(clients):
            self.assertTrue(greeting.startswith(GREETING_START), greeting)
