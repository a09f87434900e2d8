# -*- test-case-name: tests.test_proxyparser -*-
"""
Pure parsing of the PROXY protocol header, versions 1 and 2.

A proxy in front of the server (HAProxy, nginx, a cloud load balancer)
prepends one header to the connection saying who the real client is; see
U{https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt}.
L{ProxyParser} is fed the first bytes of a connection and returns a
L{ProxyData} once the whole header is in, keeping the bytes that followed it
(the start of the SMTP or TLS stream) in L{ProxyParser.rest}.

Nothing here touches a transport or a reactor: the protocol feeds the bytes,
runs the header timeout and decides what to do with the result.

Differences from aiosmtpd 1.4.6, which does not raise but returns a
C{ProxyData} with C{error} set:
  - any malformed, unsupported or oversized header raises L{ProxyError}, as
    early as the bytes received so far allow, so a L{ProxyData} is always
    valid;
  - the CRC32C TLV is checked (the specification says a receiver that
    supports it MUST check it) and a mismatch is an error;
  - version 2 family/protocol bytes other than the seven the specification
    lists (C{0x00}, C{0x11}, C{0x12}, C{0x21}, C{0x22}, C{0x31}, C{0x32})
    are rejected, as the specification requires;
  - a LOCAL header carries no addresses (the specification says to discard
    them); its TLVs are still parsed;
  - a version 1 header has C{command} L{V2_CMD.PROXY} instead of C{None};
  - C{tlv} is parsed eagerly, so a malformed TLV is an error, and is an empty
    L{ProxyTLV} instead of C{None} when there are none; the C{"SSL"} entry is
    the raw value of the SSL TLV rather than C{True}.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from ipaddress import IPv4Address, IPv6Address

from twisted_smtpd._proxydata import (
    AF,
    PROTO,
    V2_CMD,
    ProxyData,
    ProxyError,
    ProxyTLV,
    crc32c,
)

#: The 12 bytes that start a version 2 header.
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"

_V1_PREFIX = b"PROXY "
#: The longest version 1 header, CRLF included.
_V1_MAX = 107
_V1_PROTOCOLS = (b"TCP4", b"TCP6", b"UNKNOWN")
_LINE_END = re.compile(rb"[\r\n]")
_PORT = re.compile(rb"0|[1-9][0-9]{0,4}")
_IPV4_CHARS = re.compile(rb"[0-9.]+")
_IPV6_CHARS = re.compile(rb"[0-9A-Fa-f:.]+")

_V2_FIXED = 16
#: The size of the address block of each valid family/protocol byte.
_V2_ADDRESS_SIZES = {
    0x00: 0,
    0x11: 12,
    0x12: 12,
    0x21: 36,
    0x22: 36,
    0x31: 216,
    0x32: 216,
}
_TLV_NAMES = {
    0x01: "ALPN",
    0x02: "AUTHORITY",
    0x03: "CRC32C",
    0x04: "NOOP",
    0x05: "UNIQUE_ID",
    0x20: "SSL",
    0x21: "SSL_VERSION",
    0x22: "SSL_CN",
    0x23: "SSL_CIPHER",
    0x24: "SSL_SIG_ALG",
    0x25: "SSL_KEY_ALG",
    0x30: "NETNS",
}
_TLV_CRC32C = 0x03
_TLV_SSL = 0x20


class ProxyParser:
    """
    Read one PROXY header, version 1 or 2, from the start of a connection.

    Feed it every chunk received until L{feed} returns a L{ProxyData}; the
    bytes that followed the header are then in L{rest} and belong to the
    next protocol. The header may arrive in pieces of any size, down to one
    byte at a time. Garbage is refused as soon as it can be told apart from
    a header: the first byte must be C{P} (version 1) or C{CR} (version 2),
    and every byte must fit the format so far.

    @ivar rest: The bytes after the header once L{feed} returned a
        L{ProxyData}; C{b""} before.
    """

    def __init__(self, maxV2Length: int = _V2_FIXED + 0xFFFF) -> None:
        """
        @param maxV2Length: The longest version 2 header accepted, in bytes,
            the 16 fixed bytes included. The default is the most the format
            can express, 65551 bytes.
        """
        self._maxV2Length = maxV2Length
        self._buffer = bytearray()
        self._result: ProxyData | None = None
        self._error: ProxyError | None = None
        self.rest = b""

    def feed(self, data: bytes) -> ProxyData | None:
        """
        Take the next chunk of the connection.

        @param data: Bytes as received from the transport.
        @return: C{None} while the header is incomplete, then the parsed
            header.
        @raise ProxyError: The bytes are not a valid PROXY header. The
            parser is then finished and raises again if fed more.
        @raise RuntimeError: The header was already returned.
        """
        if self._result is not None:
            raise RuntimeError("the PROXY header was already parsed")
        if self._error is not None:
            raise self._error
        self._buffer += data
        try:
            self._result = self._parse()
        except ProxyError as e:
            self._error = e
            self._buffer = bytearray()
            raise
        return self._result

    def _parse(self) -> ProxyData | None:
        """
        Check what was buffered and parse it once the header is complete.
        """
        buf = self._buffer
        if not buf:
            return None
        if buf[0] == _V1_PREFIX[0]:
            size = _v1Length(buf)
            parse = _parseV1
        elif buf[0] == V2_SIGNATURE[0]:
            size = _v2Length(buf, self._maxV2Length)
            parse = _parseV2
        else:
            raise ProxyError("not a PROXY protocol header")
        if size is None:
            return None
        header = bytes(buf[:size])
        self.rest = bytes(buf[size:])
        self._buffer = bytearray()
        return parse(header)


def _v1Length(buf: bytearray) -> int | None:
    """
    Find the end of a version 1 header, checking what can be checked of an
    incomplete one.

    @return: The length of the header with its CRLF, or C{None} if more
        bytes are needed.
    @raise ProxyError: The bytes cannot start a valid version 1 header.
    """
    prefix = min(len(buf), len(_V1_PREFIX))
    if buf[:prefix] != _V1_PREFIX[:prefix]:
        raise ProxyError("not a PROXY protocol header")
    # The CR of the longest header is at offset _V1_MAX - 2.
    end = _LINE_END.search(buf, 0, _V1_MAX - 1)
    if end is None:
        if len(buf) >= _V1_MAX - 1:
            raise ProxyError(f"PROXY v1 header longer than {_V1_MAX} bytes")
        _checkV1Protocol(bytes(buf[len(_V1_PREFIX) :]), complete=False)
        return None
    at = end.start()
    if buf[at] == ord("\n"):
        raise ProxyError("PROXY v1 header ends in a bare LF")
    _checkV1Protocol(bytes(buf[len(_V1_PREFIX) : at]), complete=True)
    if at + 1 == len(buf):
        return None
    if buf[at + 1] != ord("\n"):
        raise ProxyError("PROXY v1 header has a CR without LF")
    return at + 2


def _checkV1Protocol(line: bytes, complete: bool) -> None:
    """
    Check the protocol field of a version 1 line, or as much of it as was
    received.

    @param line: The line after C{"PROXY "}, without its CRLF.
    @param complete: Whether C{line} is the whole line.
    @raise ProxyError: The field cannot be C{TCP4}, C{TCP6} or C{UNKNOWN}.
    """
    space = line.find(b" ")
    if space >= 0 or complete:
        if line[: space if space >= 0 else None] in _V1_PROTOCOLS:
            return
    elif any(p.startswith(line) for p in _V1_PROTOCOLS):
        return
    raise ProxyError("PROXY v1 header has an unknown protocol")


def _parseV1(header: bytes) -> ProxyData:
    """
    Parse a complete version 1 header.

    @param header: The header, from C{"PROXY "} to its CRLF included.
    @raise ProxyError: The header is malformed.
    """
    line = header[len(_V1_PREFIX) : -2]
    fields = line.split(b" ")
    if fields[0] == b"UNKNOWN":
        return ProxyData(
            version=1,
            command=V2_CMD.PROXY,
            family=AF.UNSPEC,
            protocol=PROTO.UNSPEC,
            rest=line[len(b"UNKNOWN") :],
            whole_raw=header,
        )
    if len(fields) != 5:
        raise ProxyError("PROXY v1 header needs exactly 5 fields after PROXY")
    proto, src, dst, srcPort, dstPort = fields
    if proto == b"TCP4":
        family, addressType, chars = AF.INET, IPv4Address, _IPV4_CHARS
    else:
        family, addressType, chars = AF.INET6, IPv6Address, _IPV6_CHARS
    addresses = []
    for text in (src, dst):
        try:
            if not chars.fullmatch(text):
                raise ValueError(text)
            addresses.append(addressType(text.decode("ascii")))
        except ValueError:
            raise ProxyError(f"PROXY v1 header has a bad {proto.decode()} address")
    ports = []
    for text in (srcPort, dstPort):
        if not _PORT.fullmatch(text) or int(text) > 0xFFFF:
            raise ProxyError("PROXY v1 header has a bad port")
        ports.append(int(text))
    return ProxyData(
        version=1,
        command=V2_CMD.PROXY,
        family=family,
        protocol=PROTO.STREAM,
        src_addr=addresses[0],
        dst_addr=addresses[1],
        src_port=ports[0],
        dst_port=ports[1],
        whole_raw=header,
    )


def _v2Length(buf: bytearray, maxLength: int) -> int | None:
    """
    Find the length of a version 2 header, checking the fixed part as it
    arrives.

    @param maxLength: The longest header accepted, in bytes.
    @return: The length of the whole header, or C{None} if more bytes are
        needed before it is complete.
    @raise ProxyError: The bytes cannot start a valid version 2 header.
    """
    prefix = min(len(buf), len(V2_SIGNATURE))
    if buf[:prefix] != V2_SIGNATURE[:prefix]:
        raise ProxyError("not a PROXY protocol header")
    if len(buf) > 12:
        if buf[12] >> 4 != 2:
            raise ProxyError(f"PROXY v2 header has version {buf[12] >> 4}")
        if buf[12] & 0x0F not in (V2_CMD.LOCAL, V2_CMD.PROXY):
            raise ProxyError(f"PROXY v2 header has command {buf[12] & 0x0F}")
    if len(buf) > 13 and buf[13] not in _V2_ADDRESS_SIZES:
        raise ProxyError(f"PROXY v2 header has family/protocol 0x{buf[13]:02X}")
    if len(buf) < _V2_FIXED:
        return None
    length = int.from_bytes(buf[14:16], "big")
    if length < _V2_ADDRESS_SIZES[buf[13]]:
        raise ProxyError(f"PROXY v2 length {length} is too short for its family")
    if _V2_FIXED + length > maxLength:
        raise ProxyError(f"PROXY v2 header longer than {maxLength} bytes")
    if len(buf) < _V2_FIXED + length:
        return None
    return _V2_FIXED + length


def _parseV2(header: bytes) -> ProxyData:
    """
    Parse a complete version 2 header whose fixed part L{_v2Length} checked.

    @param header: The whole header.
    @raise ProxyError: A TLV is malformed or the checksum does not match.
    """
    command = V2_CMD(header[12] & 0x0F)
    family = AF(header[13] >> 4)
    protocol = PROTO(header[13] & 0x0F)
    tlvStart = _V2_FIXED + _V2_ADDRESS_SIZES[header[13]]
    tlv = _parseTLVs(header, tlvStart)
    data = ProxyData(
        version=2,
        command=command,
        family=family,
        protocol=protocol,
        rest=header[tlvStart:],
        whole_raw=header,
        tlv_start=tlvStart if tlvStart < len(header) else None,
        tlv=tlv,
    )
    if command == V2_CMD.PROXY:
        block = header[_V2_FIXED:tlvStart]
        if family == AF.INET:
            data.src_addr = IPv4Address(block[0:4])
            data.dst_addr = IPv4Address(block[4:8])
            data.src_port = int.from_bytes(block[8:10], "big")
            data.dst_port = int.from_bytes(block[10:12], "big")
        elif family == AF.INET6:
            data.src_addr = IPv6Address(block[0:16])
            data.dst_addr = IPv6Address(block[16:32])
            data.src_port = int.from_bytes(block[32:34], "big")
            data.dst_port = int.from_bytes(block[34:36], "big")
        elif family == AF.UNIX:
            data.src_addr = block[0:108]
            data.dst_addr = block[108:216]
    return data


def _iterTLVs(data: bytes, start: int, end: int) -> Iterator[tuple[int, int, int]]:
    """
    Walk the TLVs in C{data[start:end]}.

    @return: An iterator of C{(type, valueStart, valueEnd)}.
    @raise ProxyError: A TLV runs past C{end}.
    """
    offset = start
    while offset < end:
        if offset + 3 > end:
            raise ProxyError("PROXY v2 header has a truncated TLV")
        valueStart = offset + 3
        valueEnd = valueStart + int.from_bytes(data[offset + 1 : valueStart], "big")
        if valueEnd > end:
            raise ProxyError(f"PROXY v2 TLV 0x{data[offset]:02X} runs past its end")
        yield data[offset], valueStart, valueEnd
        offset = valueEnd


def _tlvName(kind: int) -> str:
    """
    Name a TLV type as aiosmtpd does.
    """
    return _TLV_NAMES.get(kind, f"x{kind:02X}")


def _parseTLVs(header: bytes, start: int) -> ProxyTLV:
    """
    Parse and check the TLVs of a version 2 header.

    @param header: The whole header.
    @param start: Where the TLVs start.
    @raise ProxyError: A TLV is malformed or the CRC32C does not match.
    """
    tlv = ProxyTLV()
    checksumAt = None
    for kind, valueStart, valueEnd in _iterTLVs(header, start, len(header)):
        value = header[valueStart:valueEnd]
        if kind == _TLV_CRC32C:
            if len(value) != 4 or checksumAt is not None:
                raise ProxyError("PROXY v2 header has a malformed CRC32C TLV")
            checksumAt = valueStart
        elif kind == _TLV_SSL:
            if len(value) < 5:
                raise ProxyError("PROXY v2 header has a truncated SSL TLV")
            tlv["SSL_CLIENT"] = value[0]
            tlv["SSL_VERIFY"] = int.from_bytes(value[1:5], "big")
            for subKind, subStart, subEnd in _iterTLVs(
                header, valueStart + 5, valueEnd
            ):
                tlv[_tlvName(subKind)] = header[subStart:subEnd]
        tlv[_tlvName(kind)] = value
    if checksumAt is not None:
        expected = int.from_bytes(header[checksumAt : checksumAt + 4], "big")
        zeroed = header[:checksumAt] + bytes(4) + header[checksumAt + 4 :]
        if crc32c(zeroed) != expected:
            raise ProxyError("PROXY v2 header fails its CRC32C check")
    return tlv
