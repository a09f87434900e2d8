"""
Tests for L{twisted_smtpd._proxyparser}: PROXY protocol headers, version 1
and 2, parsed from bytes fed in any chunks.

Version 2 headers are built here with C{struct} and checksummed with a
bit-by-bit CRC32C, independently of the parser under test.
"""

from __future__ import annotations

import struct
from ipaddress import IPv4Address, IPv6Address

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from twisted_smtpd._proxydata import (
    AF,
    PROTO,
    V2_CMD,
    ProxyData,
    ProxyError,
    ProxyTLV,
)
from twisted_smtpd._proxyparser import ProxyParser

SIGNATURE = b"\x0d\x0a\x0d\x0a\x00\x0d\x0a\x51\x55\x49\x54\x0a"
CLIENT_HELLO = bytes.fromhex("16030100c4010000c00303") + bytes(32)


def slowCRC32C(data: bytes) -> int:
    """
    CRC32C computed bit by bit from the reflected Castagnoli polynomial.
    """
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 * (crc & 1))
    return crc ^ 0xFFFFFFFF


def tlv(kind: int, value: bytes) -> bytes:
    """
    Encode one TLV.
    """
    return struct.pack("!BH", kind, len(value)) + value


def v2(
    block: bytes = b"",
    tlvs: bytes = b"",
    command: int = 1,
    famProto: int = 0x11,
    version: int = 2,
    length: int | None = None,
) -> bytes:
    """
    Build a version 2 header; C{length} overrides the length field.
    """
    body = block + tlvs
    if length is None:
        length = len(body)
    fixed = struct.pack("!BBH", (version << 4) | command, famProto, length)
    return SIGNATURE + fixed + body


def withCRC(header: bytes, at: int) -> bytes:
    """
    Fill in the 4-byte CRC32C value that starts at offset C{at} of
    C{header}, which holds zeros there.
    """
    assert header[at : at + 4] == bytes(4)
    checksum = struct.pack("!I", slowCRC32C(header))
    return header[:at] + checksum + header[at + 4 :]


def inet(src: str, dst: str, srcPort: int, dstPort: int) -> bytes:
    """
    An IPv4 address block.
    """
    return struct.pack(
        "!4s4sHH", IPv4Address(src).packed, IPv4Address(dst).packed, srcPort, dstPort
    )


def inet6(src: str, dst: str, srcPort: int, dstPort: int) -> bytes:
    """
    An IPv6 address block.
    """
    return struct.pack(
        "!16s16sHH",
        IPv6Address(src).packed,
        IPv6Address(dst).packed,
        srcPort,
        dstPort,
    )


def parseOneByOne(data: bytes) -> tuple[ProxyData, bytes]:
    """
    Feed C{data} a byte at a time; return the header and everything after it.
    """
    parser = ProxyParser()
    for i in range(len(data)):
        result = parser.feed(data[i : i + 1])
        if result is not None:
            return result, parser.rest + data[i + 1 :]
    raise AssertionError("the header never completed")


def errorOffset(data: bytes, **kwargs: int) -> int | None:
    """
    Feed C{data} a byte at a time and return the offset of the byte whose
    feed raised L{ProxyError}, or C{None} if none did.
    """
    parser = ProxyParser(**kwargs)
    for i in range(len(data)):
        try:
            if parser.feed(data[i : i + 1]) is not None:
                return None
        except ProxyError:
            return i
    return None


class V1Tests(SynchronousTestCase):
    """
    Version 1 (text) headers.
    """

    def parse(self, data: bytes) -> tuple[ProxyData | None, bytes]:
        """
        Feed C{data} at once; return the result and the rest.
        """
        parser = ProxyParser()
        return parser.feed(data), parser.rest

    def assertRefused(self, data: bytes, message: str) -> None:
        """
        Assert that C{data}, fed at once, raises L{ProxyError} whose message
        contains C{message}.
        """
        exc = self.assertRaises(ProxyError, ProxyParser().feed, data)
        self.assertIn(message, str(exc))

    def test_tcp4(self) -> None:
        """
        A TCP4 header gives IPv4 addresses and integer ports.
        """
        header = b"PROXY TCP4 192.0.2.1 198.51.100.7 56324 25\r\n"
        self.assertEqual(
            self.parse(header + b"EHLO x\r\n"),
            (
                ProxyData(
                    version=1,
                    command=V2_CMD.PROXY,
                    family=AF.INET,
                    protocol=PROTO.STREAM,
                    src_addr=IPv4Address("192.0.2.1"),
                    dst_addr=IPv4Address("198.51.100.7"),
                    src_port=56324,
                    dst_port=25,
                    whole_raw=header,
                ),
                b"EHLO x\r\n",
            ),
        )

    def test_tcp6(self) -> None:
        """
        A TCP6 header gives IPv6 addresses, in any valid notation.
        """
        header = b"PROXY TCP6 2001:DB8::1 ::ffff:192.0.2.9 0 65535\r\n"
        data, rest = self.parse(header)
        self.assertEqual(
            data,
            ProxyData(
                version=1,
                command=V2_CMD.PROXY,
                family=AF.INET6,
                protocol=PROTO.STREAM,
                src_addr=IPv6Address("2001:db8::1"),
                dst_addr=IPv6Address("::ffff:192.0.2.9"),
                src_port=0,
                dst_port=65535,
                whole_raw=header,
            ),
        )
        self.assertEqual(rest, b"")

    def test_tcp6Longest(self) -> None:
        """
        The longest TCP6 header, 104 bytes, is accepted.
        """
        address = ":".join(["ffff"] * 8).encode()
        header = b"PROXY TCP6 " + address + b" " + address + b" 65535 65535\r\n"
        self.assertEqual(len(header), 104)
        data, _ = self.parse(header)
        self.assertEqual(data.src_addr, IPv6Address(address.decode()))

    def test_unknownShort(self) -> None:
        """
        C{PROXY UNKNOWN} gives no addresses and an empty C{rest}.
        """
        header = b"PROXY UNKNOWN\r\n"
        self.assertEqual(
            self.parse(header + b"QUIT\r\n"),
            (
                ProxyData(
                    version=1,
                    command=V2_CMD.PROXY,
                    family=AF.UNSPEC,
                    protocol=PROTO.UNSPEC,
                    whole_raw=header,
                ),
                b"QUIT\r\n",
            ),
        )

    def test_unknownIgnoresFields(self) -> None:
        """
        Whatever follows C{UNKNOWN} on the line is not parsed, only kept in
        C{rest}, leading space included.
        """
        header = b"PROXY UNKNOWN not-an-address  999999 x\r\n"
        data, rest = self.parse(header)
        self.assertEqual(data.rest, b" not-an-address  999999 x")
        self.assertIsNone(data.src_addr)
        self.assertIsNone(data.src_port)
        self.assertEqual(rest, b"")

    def test_longestAccepted(self) -> None:
        """
        A 107-byte header, the longest allowed, is accepted.
        """
        header = b"PROXY UNKNOWN " + b"x" * 91 + b"\r\n"
        self.assertEqual(len(header), 107)
        data, rest = self.parse(header + b"EHLO")
        self.assertEqual(data.whole_raw, header)
        self.assertEqual(rest, b"EHLO")

    def test_tooLong(self) -> None:
        """
        A 108-byte line is refused.
        """
        self.assertRefused(
            b"PROXY UNKNOWN " + b"x" * 92 + b"\r\n", "longer than 107 bytes"
        )

    def test_badProtocol(self) -> None:
        """
        Protocols other than TCP4, TCP6 and UNKNOWN are refused.
        """
        for line in [
            b"PROXY UDP4 192.0.2.1 192.0.2.2 1 2\r\n",
            b"PROXY TCP 192.0.2.1 192.0.2.2 1 2\r\n",
            b"PROXY TCP44 192.0.2.1 192.0.2.2 1 2\r\n",
            b"PROXY tcp4 192.0.2.1 192.0.2.2 1 2\r\n",
            b"PROXY UNKNOWNX\r\n",
            b"PROXY\r\n",
            b"PROXY \r\n",
        ]:
            self.assertRaises(ProxyError, ProxyParser().feed, line)

    def test_familyMismatch(self) -> None:
        """
        Addresses that do not match the announced family are refused.
        """
        self.assertRefused(b"PROXY TCP4 ::1 192.0.2.2 1 2\r\n", "bad TCP4 address")
        self.assertRefused(b"PROXY TCP4 192.0.2.1 ::1 1 2\r\n", "bad TCP4 address")
        self.assertRefused(b"PROXY TCP6 192.0.2.1 ::1 1 2\r\n", "bad TCP6 address")
        self.assertRefused(b"PROXY TCP6 ::1 192.0.2.1 1 2\r\n", "bad TCP6 address")

    def test_badAddresses(self) -> None:
        """
        Malformed addresses are refused: leading zeros, too few parts, host
        names, scope identifiers, signs and non-ASCII digits.
        """
        for src in [
            b"192.0.2.01",
            b"192.0.2",
            b"256.0.0.1",
            b"localhost",
            b"+1.2.3.4",
            b"\xd9\xa1.2.3.4",
        ]:
            line = b"PROXY TCP4 " + src + b" 192.0.2.2 1 2\r\n"
            self.assertRaises(ProxyError, ProxyParser().feed, line)
        for src in [b"fe80::1%eth0", b"1::2::3", b"::g", b"[::1]"]:
            line = b"PROXY TCP6 " + src + b" ::1 1 2\r\n"
            self.assertRaises(ProxyError, ProxyParser().feed, line)

    def test_badPorts(self) -> None:
        """
        Ports above 65535, with leading zeros, signs or not decimal are
        refused.
        """
        for ports in [
            b"65536 25",
            b"25 65536",
            b"0025 25",
            b"25 00",
            b"+25 25",
            b"-1 25",
            b"0x19 25",
            b"25 ",
            b"99999999999 1",
        ]:
            line = b"PROXY TCP4 192.0.2.1 192.0.2.2 " + ports + b"\r\n"
            exc = self.assertRaises(ProxyError, ProxyParser().feed, line)
            self.assertIn("PROXY v1", str(exc))

    def test_fieldCount(self) -> None:
        """
        Missing or extra fields are refused.
        """
        self.assertRefused(b"PROXY TCP4 192.0.2.1 192.0.2.2 1\r\n", "exactly 5 fields")
        self.assertRefused(
            b"PROXY TCP4 192.0.2.1 192.0.2.2 1 2 3\r\n", "exactly 5 fields"
        )

    def test_spaces(self) -> None:
        """
        Fields must be separated by exactly one space, with none at the ends.
        """
        for line in [
            b"PROXY  TCP4 192.0.2.1 192.0.2.2 1 2\r\n",
            b"PROXY TCP4  192.0.2.1 192.0.2.2 1 2\r\n",
            b"PROXY TCP4 192.0.2.1  192.0.2.2 1 2\r\n",
            b"PROXY TCP4 192.0.2.1 192.0.2.2  1 2\r\n",
            b"PROXY TCP4 192.0.2.1 192.0.2.2 1  2\r\n",
            b"PROXY TCP4 192.0.2.1 192.0.2.2 1 2 \r\n",
            b"PROXY TCP4\t192.0.2.1 192.0.2.2 1 2\r\n",
        ]:
            self.assertRaises(ProxyError, ProxyParser().feed, line)

    def test_bareLF(self) -> None:
        """
        A line ended by a bare LF is refused as soon as the LF arrives.
        """
        line = b"PROXY TCP4 192.0.2.1 192.0.2.2 1 2\nEHLO x\r\n"
        self.assertRefused(line, "bare LF")
        self.assertEqual(errorOffset(line), line.index(b"\n"))

    def test_bareCR(self) -> None:
        """
        A CR not followed by LF is refused as soon as the next byte arrives.
        """
        line = b"PROXY TCP4 192.0.2.1 192.0.2.2 1 2\rEHLO x\r\n"
        self.assertRefused(line, "CR without LF")
        self.assertEqual(errorOffset(line), line.index(b"\r") + 1)
        self.assertRaises(ProxyError, ProxyParser().feed, b"PROXY UNKNOWN a\rb\r\n")

    def test_missingCRLF(self) -> None:
        """
        Without its CRLF the header is incomplete, not accepted, however much
        of it arrived.
        """
        parser = ProxyParser()
        self.assertIsNone(parser.feed(b"PROXY TCP4 192.0.2.1 192.0.2.2 1 2"))
        self.assertIsNone(parser.feed(b"\r"))
        self.assertEqual(parser.rest, b"")
        data = parser.feed(b"\n")
        self.assertEqual(data.src_port, 1)

    def test_lowercase(self) -> None:
        """
        C{proxy} in lower case is garbage from its first byte.
        """
        self.assertRefused(b"proxy TCP4 192.0.2.1 192.0.2.2 1 2\r\n", "not a PROXY")
        self.assertEqual(errorOffset(b"proxy TCP4 192.0.2.1 192.0.2.2 1 2\r\n"), 0)

    def test_signatureChecked(self) -> None:
        """
        Each of the first six bytes must match C{"PROXY "}.
        """
        self.assertEqual(errorOffset(b"PROXX TCP4"), 4)
        self.assertEqual(errorOffset(b"PROXY\r\n"), 5)
        self.assertEqual(errorOffset(b"PROXYTCP4 "), 5)
        self.assertEqual(errorOffset(b"PRIVMSG x\r\n"), 2)

    def test_protocolCheckedEarly(self) -> None:
        """
        An unknown protocol is refused at its first wrong byte, before the
        CRLF.
        """
        self.assertEqual(errorOffset(b"PROXY TCP5 192.0.2.1"), 9)
        self.assertEqual(errorOffset(b"PROXY UNKNOWNX"), 13)
        self.assertEqual(errorOffset(b"PROXY TCP4X"), 10)
        self.assertEqual(errorOffset(b"PROXY  TCP4"), 6)
        self.assertEqual(errorOffset(b"PROXY TCP4 1.2.3.4 1.2.3.4 1 2"), None)

    def test_tooLongEarly(self) -> None:
        """
        A line with no CRLF is refused at the first byte that makes a valid
        header impossible, before anything beyond 107 bytes is needed.
        """
        line = b"PROXY UNKNOWN " + b"x" * 200
        self.assertEqual(errorOffset(line), 105)
        self.assertRefused(line, "longer than 107 bytes")


class V2Tests(SynchronousTestCase):
    """
    Version 2 (binary) headers.
    """

    def parse(self, data: bytes) -> tuple[ProxyData | None, bytes]:
        """
        Feed C{data} at once; return the result and the rest.
        """
        parser = ProxyParser()
        return parser.feed(data), parser.rest

    def assertRefused(self, data: bytes, message: str) -> None:
        """
        Assert that C{data}, fed at once, raises L{ProxyError} whose message
        contains C{message}.
        """
        exc = self.assertRaises(ProxyError, ProxyParser().feed, data)
        self.assertIn(message, str(exc))

    def test_local(self) -> None:
        """
        A LOCAL header with no address block has no addresses and no TLVs.
        """
        header = v2(command=0, famProto=0x00)
        self.assertEqual(
            self.parse(header + b"EHLO x\r\n"),
            (
                ProxyData(
                    version=2,
                    command=V2_CMD.LOCAL,
                    family=AF.UNSPEC,
                    protocol=PROTO.UNSPEC,
                    whole_raw=header,
                ),
                b"EHLO x\r\n",
            ),
        )

    def test_localDiscardsAddresses(self) -> None:
        """
        The address block of a LOCAL header is skipped, not reported, and the
        TLVs after it are parsed.
        """
        alpn = tlv(0x01, b"smtp")
        header = v2(inet("192.0.2.1", "192.0.2.2", 1, 2), alpn, command=0)
        data, _ = self.parse(header)
        self.assertEqual(data.command, V2_CMD.LOCAL)
        self.assertEqual(data.family, AF.INET)
        self.assertEqual(data.protocol, PROTO.STREAM)
        self.assertIsNone(data.src_addr)
        self.assertIsNone(data.dst_addr)
        self.assertIsNone(data.src_port)
        self.assertIsNone(data.dst_port)
        self.assertEqual(data.rest, alpn)
        self.assertEqual(data.tlv_start, 28)
        self.assertEqual(data.tlv, {"ALPN": b"smtp"})
        self.assertIsNone(data.peer())

    def test_inet(self) -> None:
        """
        A PROXY header over TCP/IPv4 gives the addresses and ports.
        """
        header = v2(inet("192.0.2.1", "198.51.100.7", 56324, 25))
        self.assertEqual(
            self.parse(header + b"EHLO x\r\n"),
            (
                ProxyData(
                    version=2,
                    command=V2_CMD.PROXY,
                    family=AF.INET,
                    protocol=PROTO.STREAM,
                    src_addr=IPv4Address("192.0.2.1"),
                    dst_addr=IPv4Address("198.51.100.7"),
                    src_port=56324,
                    dst_port=25,
                    whole_raw=header,
                ),
                b"EHLO x\r\n",
            ),
        )

    def test_inet6(self) -> None:
        """
        A PROXY header over TCP/IPv6 gives the addresses and ports.
        """
        header = v2(inet6("2001:db8::1", "2001:db8::25", 65535, 0), famProto=0x21)
        data, rest = self.parse(header)
        self.assertEqual(
            data,
            ProxyData(
                version=2,
                command=V2_CMD.PROXY,
                family=AF.INET6,
                protocol=PROTO.STREAM,
                src_addr=IPv6Address("2001:db8::1"),
                dst_addr=IPv6Address("2001:db8::25"),
                src_port=65535,
                dst_port=0,
                whole_raw=header,
            ),
        )
        self.assertEqual(rest, b"")

    def test_unix(self) -> None:
        """
        A PROXY header over a UNIX stream socket gives the raw 108-byte
        address fields and no ports.
        """
        block = struct.pack("!108s108s", b"/run/client.sock", b"\x00abstract")
        header = v2(block, famProto=0x31)
        data, _ = self.parse(header)
        self.assertEqual(data.family, AF.UNIX)
        self.assertEqual(data.protocol, PROTO.STREAM)
        self.assertEqual(data.src_addr, b"/run/client.sock" + bytes(92))
        self.assertEqual(data.dst_addr, b"\x00abstract" + bytes(99))
        self.assertIsNone(data.src_port)
        self.assertIsNone(data.dst_port)
        self.assertEqual(data.rest, b"")
        self.assertIsNone(data.tlv_start)
        self.assertIsNone(data.peer())

    def test_dgram(self) -> None:
        """
        DGRAM headers are accepted and reported as such.
        """
        data, _ = self.parse(v2(inet("192.0.2.1", "192.0.2.2", 53, 53), famProto=0x12))
        self.assertEqual((data.family, data.protocol), (AF.INET, PROTO.DGRAM))
        self.assertEqual(data.src_addr, IPv4Address("192.0.2.1"))
        data, _ = self.parse(v2(inet6("::1", "::2", 1, 2), famProto=0x22))
        self.assertEqual((data.family, data.protocol), (AF.INET6, PROTO.DGRAM))
        data, _ = self.parse(v2(bytes(216), famProto=0x32))
        self.assertEqual((data.family, data.protocol), (AF.UNIX, PROTO.DGRAM))

    def test_proxyUnspec(self) -> None:
        """
        A PROXY header with the UNSPEC family is accepted without addresses;
        whatever follows the fixed part is TLVs.
        """
        tlvs = tlv(0x05, b"id-1")
        data, _ = self.parse(v2(b"", tlvs, famProto=0x00))
        self.assertEqual((data.command, data.family), (V2_CMD.PROXY, AF.UNSPEC))
        self.assertIsNone(data.src_addr)
        self.assertEqual(data.rest, tlvs)
        self.assertEqual(data.tlv_start, 16)
        self.assertEqual(data.tlv, {"UNIQUE_ID": b"id-1"})
        self.assertIsNone(data.peer())

    def test_tlvs(self) -> None:
        """
        TLVs after the addresses are parsed by name, unknown types as
        C{xNN}; C{rest} holds their raw bytes.
        """
        tlvs = (
            tlv(0x01, b"h2")
            + tlv(0x02, b"mx.example.com")
            + tlv(0x04, b"\x00\x00\x00")
            + tlv(0x05, b"\x01" * 128)
            + tlv(0x30, b"blue")
            + tlv(0xE3, b"custom")
            + tlv(0x0A, b"")
        )
        header = v2(inet("192.0.2.1", "192.0.2.2", 1, 2), tlvs)
        data, rest = self.parse(header + b"\x16\x03\x01")
        self.assertEqual(
            data.tlv,
            {
                "ALPN": b"h2",
                "AUTHORITY": b"mx.example.com",
                "NOOP": b"\x00\x00\x00",
                "UNIQUE_ID": b"\x01" * 128,
                "NETNS": b"blue",
                "xE3": b"custom",
                "x0A": b"",
            },
        )
        self.assertIsInstance(data.tlv, ProxyTLV)
        self.assertEqual(data.rest, tlvs)
        self.assertEqual(data.tlv_start, 28)
        self.assertEqual(data.whole_raw[data.tlv_start :], tlvs)
        self.assertEqual(data.whole_raw, header)
        self.assertEqual(rest, b"\x16\x03\x01")

    def test_tlvAttributes(self) -> None:
        """
        TLVs can be read as attributes, as in aiosmtpd; a missing one is
        C{None}.
        """
        data, _ = self.parse(v2(inet("192.0.2.1", "192.0.2.2", 1, 2), tlv(1, b"x")))
        self.assertEqual(data.tlv.ALPN, b"x")
        self.assertIsNone(data.tlv.AUTHORITY)
        self.assertRaises(AttributeError, getattr, data.tlv, "_private")

    def test_repeatedTLV(self) -> None:
        """
        When a TLV type occurs twice, the last value wins.
        """
        tlvs = tlv(0x02, b"first") + tlv(0x02, b"second")
        data, _ = self.parse(v2(inet("192.0.2.1", "192.0.2.2", 1, 2), tlvs))
        self.assertEqual(data.tlv, {"AUTHORITY": b"second"})

    def test_ssl(self) -> None:
        """
        The SSL TLV gives its client and verify fields and its sub-TLVs by
        name, and its raw value under C{"SSL"}.
        """
        subs = (
            tlv(0x21, b"TLSv1.3")
            + tlv(0x22, b"client.example.com")
            + tlv(0x23, b"TLS_AES_256_GCM_SHA384")
            + tlv(0x24, b"RSA-SHA256")
            + tlv(0x25, b"RSA2048")
            + tlv(0x77, b"?")
        )
        ssl = struct.pack("!BI", 0x07, 0) + subs
        tlvs = tlv(0x20, ssl) + tlv(0x01, b"smtp")
        data, _ = self.parse(v2(inet6("::1", "::2", 1, 2), tlvs, famProto=0x21))
        self.assertEqual(
            data.tlv,
            {
                "SSL": ssl,
                "SSL_CLIENT": 0x07,
                "SSL_VERIFY": 0,
                "SSL_VERSION": b"TLSv1.3",
                "SSL_CN": b"client.example.com",
                "SSL_CIPHER": b"TLS_AES_256_GCM_SHA384",
                "SSL_SIG_ALG": b"RSA-SHA256",
                "SSL_KEY_ALG": b"RSA2048",
                "x77": b"?",
                "ALPN": b"smtp",
            },
        )

    def test_sslVerifyField(self) -> None:
        """
        The SSL verify field is read as a big-endian 32-bit integer.
        """
        tlvs = tlv(0x20, struct.pack("!BI", 0x01, 0x01020304))
        data, _ = self.parse(v2(inet("192.0.2.1", "192.0.2.2", 1, 2), tlvs))
        self.assertEqual(data.tlv["SSL_CLIENT"], 1)
        self.assertEqual(data.tlv["SSL_VERIFY"], 0x01020304)

    def test_sslTooShort(self) -> None:
        """
        An SSL TLV shorter than its 5 fixed bytes is refused.
        """
        block = inet("192.0.2.1", "192.0.2.2", 1, 2)
        self.assertRefused(v2(block, tlv(0x20, b"\x01\x00\x00\x00")), "SSL TLV")

    def test_sslSubTLVOverrun(self) -> None:
        """
        An SSL sub-TLV running past the end of the SSL TLV is refused, even
        when the header has bytes after it.
        """
        ssl = struct.pack("!BI", 1, 0) + struct.pack("!BH", 0x21, 10) + b"TLS"
        tlvs = tlv(0x20, ssl) + tlv(0x04, b"0123456789")
        self.assertRefused(
            v2(inet("192.0.2.1", "192.0.2.2", 1, 2), tlvs), "runs past its end"
        )

    def test_truncatedTLV(self) -> None:
        """
        A TLV whose value runs past the end of the header is refused.
        """
        tlvs = struct.pack("!BH", 0x01, 5) + b"smtp"
        header = v2(inet("192.0.2.1", "192.0.2.2", 1, 2), tlvs)
        self.assertRefused(header + b"EHLO", "runs past its end")

    def test_truncatedTLVHeader(self) -> None:
        """
        One or two bytes left after the last TLV are refused: a TLV needs
        at least three.
        """
        block = inet("192.0.2.1", "192.0.2.2", 1, 2)
        self.assertRefused(v2(block, b"\x01"), "truncated TLV")
        self.assertRefused(v2(block, tlv(0x04, b"") + b"\x01\x00"), "truncated TLV")

    def test_crc32c(self) -> None:
        """
        A header with a correct CRC32C TLV is accepted, the checksum being
        computed over the whole header with its own field zeroed.
        """
        block = inet("192.0.2.1", "192.0.2.2", 1, 2)
        header = withCRC(v2(block, tlv(0x01, b"smtp") + tlv(0x03, bytes(4))), 38)
        data, _ = self.parse(header + b"EHLO")
        self.assertEqual(data.tlv["CRC32C"], header[38:42])
        self.assertEqual(data.tlv["ALPN"], b"smtp")
        self.assertEqual(data.whole_raw, header)

    def test_crc32cFirst(self) -> None:
        """
        The CRC32C TLV is checked wherever it is, here before other TLVs.
        """
        tlvs = tlv(0x03, bytes(4)) + tlv(0x02, b"mx.example.com")
        header = withCRC(v2(inet6("::1", "::2", 1, 2), tlvs, famProto=0x21), 55)
        data, _ = self.parse(header)
        self.assertEqual(data.tlv["AUTHORITY"], b"mx.example.com")

    def test_crc32cLocal(self) -> None:
        """
        The CRC32C TLV of a LOCAL header is checked too.
        """
        header = withCRC(v2(b"", tlv(0x03, bytes(4)), command=0, famProto=0), 19)
        data, _ = self.parse(header)
        self.assertEqual(data.command, V2_CMD.LOCAL)
        bad = header[:-1] + bytes([header[-1] ^ 1])
        self.assertRefused(bad, "CRC32C check")

    def test_crc32cMismatch(self) -> None:
        """
        A header whose CRC32C does not match is refused, whether the
        checksum or the checksummed bytes were changed.
        """
        block = inet("192.0.2.1", "192.0.2.2", 1, 2)
        header = withCRC(v2(block, tlv(0x01, b"smtp") + tlv(0x03, bytes(4))), 38)
        badChecksum = header[:-1] + bytes([header[-1] ^ 0x80])
        self.assertRefused(badChecksum, "CRC32C check")
        badAddress = header[:16] + b"\xc1" + header[17:]
        self.assertRefused(badAddress, "CRC32C check")

    def test_crc32cByteOrder(self) -> None:
        """
        The checksum is stored in network byte order: the same value
        little-endian is refused.
        """
        block = inet("192.0.2.1", "192.0.2.2", 1, 2)
        header = withCRC(v2(block, tlv(0x03, bytes(4))), 31)
        swapped = header[:31] + header[31:35][::-1]
        self.assertNotEqual(swapped, header)
        self.assertRefused(swapped, "CRC32C check")

    def test_crc32cMalformed(self) -> None:
        """
        A CRC32C TLV that is not 4 bytes long, or a second one, is refused.
        """
        block = inet("192.0.2.1", "192.0.2.2", 1, 2)
        self.assertRefused(v2(block, tlv(0x03, bytes(3))), "malformed CRC32C")
        self.assertRefused(v2(block, tlv(0x03, bytes(5))), "malformed CRC32C")
        header = withCRC(v2(block, tlv(0x03, bytes(4)) + tlv(0x03, bytes(4))), 31)
        self.assertRefused(header, "malformed CRC32C")

    def test_badVersion(self) -> None:
        """
        Versions other than 2 are refused as soon as byte 13 arrives.
        """
        for version in (0, 1, 3, 15):
            header = v2(inet("192.0.2.1", "192.0.2.2", 1, 2), version=version)
            self.assertRefused(header, f"version {version}")
            self.assertEqual(errorOffset(header), 12)

    def test_badCommand(self) -> None:
        """
        Commands other than LOCAL and PROXY are refused as soon as byte 13
        arrives.
        """
        for command in (2, 15):
            header = v2(inet("192.0.2.1", "192.0.2.2", 1, 2), command=command)
            self.assertRefused(header, f"command {command}")
            self.assertEqual(errorOffset(header), 12)

    def test_badFamilyProtocol(self) -> None:
        """
        Family/protocol bytes outside the seven the specification lists are
        refused as soon as byte 14 arrives, for LOCAL headers too.
        """
        for famProto in (0x01, 0x02, 0x10, 0x13, 0x20, 0x30, 0x33, 0x41, 0xFF):
            for command in (0, 1):
                header = v2(bytes(216), famProto=famProto, command=command)
                self.assertRefused(header, f"0x{famProto:02X}")
                self.assertEqual(errorOffset(header), 13)

    def test_lengthTooShort(self) -> None:
        """
        A length smaller than the family's address block is refused as soon
        as the length field is complete.
        """
        for famProto, size in [(0x11, 12), (0x12, 12), (0x21, 36), (0x31, 216)]:
            for command in (0, 1):
                header = v2(
                    bytes(size - 1), famProto=famProto, command=command
                ) + bytes(1)
                self.assertRefused(header, "too short for its family")
                self.assertEqual(errorOffset(header), 15)

    def test_addressesOnly(self) -> None:
        """
        A length of exactly the address block gives no TLVs.
        """
        data, rest = self.parse(v2(inet("192.0.2.1", "192.0.2.2", 1, 2)) + b"\x00")
        self.assertEqual(data.rest, b"")
        self.assertEqual(data.tlv, {})
        self.assertIsNone(data.tlv_start)
        self.assertEqual(rest, b"\x00")

    def test_maxLength(self) -> None:
        """
        A header longer than C{maxV2Length} is refused as soon as its length
        field is complete; one of exactly that length is accepted.
        """
        block = inet("192.0.2.1", "192.0.2.2", 1, 2)
        header = v2(block, tlv(0x04, bytes(100)))
        self.assertEqual(len(header), 131)
        self.assertEqual(errorOffset(header, maxV2Length=130), 15)
        exc = self.assertRaises(ProxyError, ProxyParser(maxV2Length=130).feed, header)
        self.assertIn("longer than 130 bytes", str(exc))
        self.assertEqual(ProxyParser(maxV2Length=131).feed(header).whole_raw, header)

    def test_largestDefault(self) -> None:
        """
        By default the largest header the format allows, 65551 bytes, is
        accepted.
        """
        block = inet("192.0.2.1", "192.0.2.2", 1, 2)
        header = v2(block, tlv(0x04, bytes(0xFFFF - 12 - 3)))
        self.assertEqual(len(header), 65551)
        data, rest = self.parse(header + b"EHLO")
        self.assertEqual(len(data.tlv["NOOP"]), 0xFFFF - 15)
        self.assertEqual(rest, b"EHLO")

    def test_signatureChecked(self) -> None:
        """
        Each of the twelve signature bytes is checked as it arrives.
        """
        for i in range(1, 12):
            bad = SIGNATURE[:i] + bytes([SIGNATURE[i] ^ 0x20]) + SIGNATURE[i + 1 :]
            self.assertEqual(errorOffset(bad + b"\x21\x11\x00\x0c"), i)

    def test_incomplete(self) -> None:
        """
        A header missing its last byte is incomplete, not accepted.
        """
        header = v2(inet("192.0.2.1", "192.0.2.2", 1, 2), tlv(0x01, b"smtp"))
        parser = ProxyParser()
        self.assertIsNone(parser.feed(header[:-1]))
        self.assertEqual(parser.feed(header[-1:]).tlv, {"ALPN": b"smtp"})


class ParserTests(SynchronousTestCase):
    """
    Incremental feeding, the bytes after the header and garbage.
    """

    headers = [
        b"PROXY TCP4 192.0.2.1 198.51.100.7 56324 25\r\n",
        b"PROXY TCP6 2001:db8::1 2001:db8::2 1 2\r\n",
        b"PROXY UNKNOWN\r\n",
        b"PROXY UNKNOWN ::1 ::2 1 2\r\n",
        v2(command=0, famProto=0),
        v2(inet("192.0.2.1", "192.0.2.2", 1, 2), tlv(0x02, b"mx")),
        v2(inet6("::1", "::2", 1, 2), tlv(0x20, struct.pack("!BI", 1, 0)), 1, 0x21),
        v2(struct.pack("!108s108s", b"/a", b"/b"), famProto=0x31),
        withCRC(v2(inet("192.0.2.1", "192.0.2.2", 1, 2), tlv(3, bytes(4))), 31),
    ]

    def test_byteByByte(self) -> None:
        """
        Feeding a header and what follows a byte at a time gives the same
        result and the same following bytes as feeding it at once.
        """
        trailer = b"EHLO x\r\nMAIL FROM:<a@b>\r\n"
        for header in self.headers:
            parser = ProxyParser()
            atOnce = parser.feed(header + trailer)
            self.assertEqual(parser.rest, trailer)
            self.assertEqual(parseOneByOne(header + trailer), (atOnce, trailer))
            parser = ProxyParser()
            for i in range(len(header) - 1):
                self.assertIsNone(parser.feed(header[i : i + 1]))
            self.assertEqual(parser.feed(header[-1:] + trailer), atOnce)
            self.assertEqual(parser.rest, trailer)

    def test_restPreserved(self) -> None:
        """
        The bytes after the header are kept exactly, binary included.
        """
        trailer = b"\x16\x03\x01\x00\xc4\r\n\x00PROXY \r\n\r\n\x00\r\nQUIT\n"
        for header in self.headers:
            parser = ProxyParser()
            self.assertEqual(parser.feed(header + trailer).whole_raw, header)
            self.assertEqual(parser.rest, trailer)

    def test_restEmptyBefore(self) -> None:
        """
        C{rest} is empty until the header is complete, and when nothing
        followed it.
        """
        parser = ProxyParser()
        self.assertEqual(parser.rest, b"")
        parser.feed(b"PROXY UNKNOWN")
        self.assertEqual(parser.rest, b"")
        parser.feed(b"\r\n")
        self.assertEqual(parser.rest, b"")

    def test_emptyFeed(self) -> None:
        """
        Feeding nothing needs more bytes, before and during a header.
        """
        parser = ProxyParser()
        self.assertIsNone(parser.feed(b""))
        self.assertIsNone(parser.feed(b"PRO"))
        self.assertIsNone(parser.feed(b""))
        self.assertEqual(parser.feed(b"XY UNKNOWN\r\n").family, AF.UNSPEC)

    def test_garbage(self) -> None:
        """
        An SMTP command, a TLS ClientHello, HTTP and nothing but a CRLF are
        refused on their first wrong byte.
        """
        self.assertEqual(errorOffset(b"EHLO x\r\n"), 0)
        self.assertEqual(errorOffset(CLIENT_HELLO), 0)
        self.assertEqual(errorOffset(b"GET / HTTP/1.1\r\n"), 0)
        self.assertEqual(errorOffset(b"\x00"), 0)
        self.assertEqual(errorOffset(b" PROXY UNKNOWN\r\n"), 0)
        self.assertEqual(errorOffset(b"\r\nEHLO x\r\n"), 2)
        self.assertEqual(errorOffset(b"\r\n\r\n\r\n"), 4)
        for data in (b"EHLO x\r\n", CLIENT_HELLO):
            exc = self.assertRaises(ProxyError, ProxyParser().feed, data)
            self.assertEqual(str(exc), "not a PROXY protocol header")

    def test_proxyErrorIsValueError(self) -> None:
        """
        L{ProxyError} is a C{ValueError}.
        """
        self.assertTrue(issubclass(ProxyError, ValueError))

    def test_failedStaysFailed(self) -> None:
        """
        After an error, feeding more raises L{ProxyError} again, even with a
        valid header.
        """
        parser = ProxyParser()
        self.assertRaises(ProxyError, parser.feed, b"EHLO")
        self.assertRaises(ProxyError, parser.feed, b"PROXY UNKNOWN\r\n")
        self.assertEqual(parser.rest, b"")

    def test_feedAfterResult(self) -> None:
        """
        Feeding after the header was returned is a programming error: the
        bytes belong to the next protocol.
        """
        parser = ProxyParser()
        parser.feed(b"PROXY UNKNOWN\r\nEHLO")
        self.assertRaises(RuntimeError, parser.feed, b" x\r\n")
        self.assertEqual(parser.rest, b"EHLO")


addressV4 = st.ip_addresses(v=4)
addressV6 = st.ip_addresses(v=6)
port = st.integers(0, 65535)


@st.composite
def v1Headers(draw: st.DrawFn) -> bytes:
    """
    Valid version 1 headers.
    """
    kind = draw(st.sampled_from(["TCP4", "TCP6", "UNKNOWN"]))
    if kind == "UNKNOWN":
        tail = draw(
            st.binary(max_size=92).filter(lambda b: b"\r" not in b and b"\n" not in b)
        )
        return b"PROXY UNKNOWN" + (b" " + tail if tail else b"") + b"\r\n"
    addresses = addressV4 if kind == "TCP4" else addressV6
    fields = [kind, draw(addresses), draw(addresses), draw(port), draw(port)]
    return ("PROXY " + " ".join(str(f) for f in fields) + "\r\n").encode()


@st.composite
def v2Headers(draw: st.DrawFn) -> bytes:
    """
    Valid version 2 headers, with TLVs and sometimes a CRC32C.
    """
    famProto, size = draw(
        st.sampled_from(
            [(0x00, 0), (0x11, 12), (0x12, 12), (0x21, 36), (0x22, 36), (0x31, 216)]
        )
    )
    command = draw(st.sampled_from([0, 1]))
    block = draw(st.binary(min_size=size, max_size=size))
    values = st.binary(max_size=40)
    kinds = st.integers(0, 255).filter(lambda k: k not in (0x03, 0x20))
    tlvs = b"".join(tlv(k, v) for k, v in draw(st.lists(st.tuples(kinds, values))))
    if draw(st.booleans()):
        tlvs += tlv(0x20, struct.pack("!BI", 1, draw(port)) + tlv(0x21, b"TLSv1.2"))
    if draw(st.booleans()):
        at = 16 + size + len(tlvs) + 3
        return withCRC(v2(block, tlvs + tlv(0x03, bytes(4)), command, famProto), at)
    return v2(block, tlvs, command, famProto)


class ChunkingTests(SynchronousTestCase):
    """
    Property tests: how the bytes are split never changes the result.
    """

    @given(st.one_of(v1Headers(), v2Headers()), st.binary(max_size=64), st.data())
    def test_randomChunks(self, header: bytes, trailer: bytes, data: st.DataObject):
        """
        Any split of a valid header and the bytes after it gives the same
        L{ProxyData} as one chunk, and the following bytes exactly.
        """
        stream = header + trailer
        whole = ProxyParser()
        expected = whole.feed(stream)
        self.assertIsNotNone(expected)
        self.assertEqual(expected.whole_raw, header)
        self.assertEqual(whole.rest, trailer)

        cuts = sorted(
            data.draw(st.sets(st.integers(0, len(stream)), max_size=len(stream)))
        )
        bounds = [0, *cuts, len(stream)]
        pending = [stream[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]
        parser = ProxyParser()
        result = None
        while result is None:
            if not pending:
                self.fail("the header never completed")
            result = parser.feed(pending.pop(0))
        self.assertEqual(result, expected)
        self.assertEqual(parser.rest + b"".join(pending), trailer)

    @given(
        st.one_of(v1Headers(), v2Headers()),
        st.integers(min_value=0),
        st.integers(0, 255),
        st.data(),
    )
    def test_corruptedHeaders(
        self, header: bytes, where: int, byte: int, data: st.DataObject
    ) -> None:
        """
        A valid header with one byte replaced, then fed in random chunks,
        either parses or raises L{ProxyError}, never another exception.
        """
        where %= len(header)
        stream = header[:where] + bytes([byte]) + header[where + 1 :] + b"EHLO x\r\n"
        cuts = sorted(data.draw(st.sets(st.integers(0, len(stream)), max_size=8)))
        bounds = [0, *cuts, len(stream)]
        parser = ProxyParser()
        try:
            for a, b in zip(bounds, bounds[1:], strict=False):
                if parser.feed(stream[a:b]) is not None:
                    break
        except ProxyError:
            pass

    @given(st.sampled_from([b"PROXY ", SIGNATURE + b"\x21"]), st.binary(max_size=300))
    def test_randomBytes(self, prefix: bytes, tail: bytes) -> None:
        """
        Random bytes after a valid start either parse or raise L{ProxyError},
        never another exception.
        """
        try:
            ProxyParser().feed(prefix + tail)
        except ProxyError:
            pass
