"""
Tests for L{twisted_smtpd._proxydata}: the parsed PROXY header
(L{ProxyData}) and the CRC32C that checks version 2 headers, the latter
against a bit-by-bit CRC32C computed independently here.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from tests.test_proxyparser import inet, inet6, slowCRC32C, v2
from twisted_smtpd._proxydata import ProxyData, crc32c
from twisted_smtpd._proxyparser import ProxyParser


class CRC32CTests(SynchronousTestCase):
    """
    Tests for L{crc32c}.
    """

    def test_checkValue(self) -> None:
        """
        The CRC32C of C{"123456789"} is the catalogued check value.
        """
        self.assertEqual(crc32c(b"123456789"), 0xE3069283)

    def test_iscsiVectors(self) -> None:
        """
        The test vectors of RFC 3720 appendix B.4 give their checksums.
        """
        self.assertEqual(crc32c(bytes(32)), 0x8A9136AA)
        self.assertEqual(crc32c(b"\xff" * 32), 0x62A8AB43)
        self.assertEqual(crc32c(bytes(range(32))), 0x46DD794E)
        self.assertEqual(crc32c(bytes(range(31, -1, -1))), 0x113FDB5C)

    def test_empty(self) -> None:
        """
        The CRC32C of nothing is zero.
        """
        self.assertEqual(crc32c(b""), 0)

    @given(st.binary(max_size=300))
    def test_matchesBitwise(self, data: bytes) -> None:
        """
        The table-driven CRC32C equals the bit-by-bit one.
        """
        self.assertEqual(crc32c(data), slowCRC32C(data))


class ProxyDataTests(SynchronousTestCase):
    """
    Tests for L{ProxyData}'s helpers.
    """

    def parse(self, data: bytes) -> ProxyData:
        """
        Parse a complete header.
        """
        result = ProxyParser().feed(data)
        assert result is not None
        return result

    def test_peerV1(self) -> None:
        """
        The peer of a TCP4 or TCP6 header is the source address and port,
        with a flow label and scope of 0 for IPv6, as asyncio gives.
        """
        self.assertEqual(
            self.parse(b"PROXY TCP4 192.0.2.1 192.0.2.2 4242 25\r\n").peer(),
            ("192.0.2.1", 4242),
        )
        self.assertEqual(
            self.parse(b"PROXY TCP6 2001:DB8:0::1 ::2 4242 25\r\n").peer(),
            ("2001:db8::1", 4242, 0, 0),
        )

    def test_peerV2(self) -> None:
        """
        The peer of a version 2 PROXY header over IP is the source address and
        port, also for DGRAM.
        """
        header = v2(inet("192.0.2.1", "192.0.2.2", 4242, 25))
        self.assertEqual(self.parse(header).peer(), ("192.0.2.1", 4242))
        header = v2(inet6("2001:db8::7", "::2", 0, 25), famProto=0x22)
        self.assertEqual(self.parse(header).peer(), ("2001:db8::7", 0, 0, 0))

    def test_noPeer(self) -> None:
        """
        UNKNOWN, LOCAL, UNSPEC and UNIX headers give no peer: the
        connection's own peer should be kept.
        """
        for header in [
            b"PROXY UNKNOWN 192.0.2.1 192.0.2.2 1 2\r\n",
            v2(command=0, famProto=0),
            v2(inet("192.0.2.1", "192.0.2.2", 1, 2), command=0),
            v2(famProto=0),
            v2(bytes(216), famProto=0x31),
        ]:
            self.assertIsNone(self.parse(header).peer())

    def test_valid(self) -> None:
        """
        A parsed header is valid and true; one with C{error} set is neither.
        """
        data = self.parse(b"PROXY UNKNOWN\r\n")
        self.assertTrue(data.valid)
        self.assertTrue(data)
        self.assertEqual(data.error, "")
        data.error = "something"
        self.assertFalse(data.valid)
        self.assertFalse(data)
