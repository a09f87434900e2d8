"""
Tests for L{twisted_smtpd._transport}: the client's address in aiosmtpd's
shape, the details of TLS, and sending. No sockets, no real time.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from twisted_smtpd._transport import peerOf, send, tlsDetails


class PeerOfTests(SynchronousTestCase):
    """
    L{peerOf}: a transport address as asyncio would give it.
    """

    def test_ipv4(self) -> None:
        """
        An IPv4 address is C{(host, port)}.
        """
        self.assertEqual(
            peerOf(IPv4Address("TCP", "192.0.2.1", 4242)), ("192.0.2.1", 4242)
        )

    def test_ipv6(self) -> None:
        """
        An IPv6 address is C{(host, port, flowinfo, scope_id)}.
        """
        self.assertEqual(
            peerOf(IPv6Address("TCP", "2001:db8::1", 4242, 7, 3)),
            ("2001:db8::1", 4242, 7, 3),
        )
        self.assertEqual(peerOf(IPv6Address("TCP", "::1", 25)), ("::1", 25, 0, 0))

    def test_unixBytes(self) -> None:
        """
        A UNIX socket path given as bytes becomes C{str}; bytes that are not
        UTF-8 are replaced.
        """
        self.assertEqual(peerOf(UNIXAddress(b"/run/smtpd.sock")), "/run/smtpd.sock")
        self.assertEqual(peerOf(UNIXAddress(b"/run/\xff.sock")), "/run/\ufffd.sock")

    def test_unixStr(self) -> None:
        """
        A UNIX socket path given as C{str} stays as it is.
        """
        self.assertEqual(peerOf(UNIXAddress("/run/smtpd.sock")), "/run/smtpd.sock")

    def test_unnamed(self) -> None:
        """
        An unnamed UNIX socket (the client end of a connection usually is),
        or an address of no known shape, gives C{""}.
        """
        self.assertEqual(peerOf(UNIXAddress(None)), "")
        self.assertEqual(peerOf(object()), "")


class FakeConnection:
    """
    The OpenSSL connection methods L{tlsDetails} reads.
    """

    def __init__(self, certificate: Any = None, broken: bool = False) -> None:
        self.certificate = certificate
        self.broken = broken

    def get_protocol_version_name(self) -> str:
        if self.broken:
            raise ValueError("no TLS yet")
        return "TLSv1.3"

    def get_cipher_name(self) -> str:
        return "TLS_AES_256_GCM_SHA384"

    def get_cipher_version(self) -> str:
        return "TLSv1.3"

    def get_cipher_bits(self) -> int:
        return 256

    def get_peer_certificate(self) -> Any:
        return self.certificate


class FakeCertificate:
    """
    A pyOpenSSL certificate as far as L{tlsDetails} uses it.
    """

    def to_cryptography(self) -> str:
        return "the cryptography certificate"


class HandleTransport:
    """
    A transport whose handle is a L{FakeConnection}.
    """

    def __init__(self, connection: FakeConnection) -> None:
        self.connection = connection

    def getHandle(self) -> FakeConnection:
        return self.connection


class TLSDetailsTests(SynchronousTestCase):
    """
    L{tlsDetails}: C{session.ssl} as aiosmtpd fills it.
    """

    def test_details(self) -> None:
        """
        The protocol, the cipher as C{(name, protocol, bits)}, the peer
        certificate (C{None} without one) and the OpenSSL connection.
        """
        connection = FakeConnection()
        self.assertEqual(
            tlsDetails(HandleTransport(connection)),
            {
                "ssl_object": connection,
                "protocol": "TLSv1.3",
                "cipher": ("TLS_AES_256_GCM_SHA384", "TLSv1.3", 256),
                "peercert": None,
            },
        )

    def test_peerCertificate(self) -> None:
        """
        A client certificate is given as a C{cryptography} certificate.
        """
        details = tlsDetails(HandleTransport(FakeConnection(FakeCertificate())))
        self.assertEqual(details["peercert"], "the cryptography certificate")

    def test_failure(self) -> None:
        """
        When OpenSSL cannot tell, the details hold the connection alone and
        the error is logged, not raised.
        """
        connection = FakeConnection(broken=True)
        self.assertEqual(
            tlsDetails(HandleTransport(connection)), {"ssl_object": connection}
        )
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)


class SendTests(SynchronousTestCase):
    """
    L{send}, for transports other than a plain TCP server connection.
    """

    def test_write(self) -> None:
        """
        Any other transport is written to, in order.
        """
        transport = StringTransport()
        send(transport, b"250 OK\r\n")
        send(transport, b"221 Bye\r\n")
        self.assertEqual(transport.value(), b"250 OK\r\n221 Bye\r\n")
