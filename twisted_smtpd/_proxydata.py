# -*- test-case-name: tests.test_proxydata -*-
"""
What a PROXY protocol header says: L{ProxyData}, its TLVs and its enums,
with aiosmtpd's names, so that C{handle_PROXY} hooks written for aiosmtpd
read them unchanged. L{twisted_smtpd._proxyparser} makes them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from ipaddress import IPv4Address, IPv6Address
from typing import Any, Union


class V2_CMD(IntEnum):
    """
    The command of a PROXY header (the low nibble of byte 13 in version 2).
    """

    LOCAL = 0
    PROXY = 1


class AF(IntEnum):
    """
    The address family of the proxied connection. Version 1 C{UNKNOWN} is
    reported as C{UNSPEC}.
    """

    UNSPEC = 0
    INET = 1
    INET6 = 2
    UNIX = 3


class PROTO(IntEnum):
    """
    The transport protocol of the proxied connection. Version 1 C{UNKNOWN} is
    reported as C{UNSPEC}.
    """

    UNSPEC = 0
    STREAM = 1
    DGRAM = 2


class ProxyError(ValueError):
    """
    The bytes are not a PROXY header, or the header is malformed,
    unsupported or longer than allowed.
    """


def _crc32cTable() -> list[int]:
    """
    Build the lookup table of the reflected Castagnoli polynomial.
    """
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC32C_TABLE = _crc32cTable()


def crc32c(data: bytes) -> int:
    """
    Compute the CRC32C (Castagnoli) checksum of RFC 4960 appendix B, which
    version 2 headers may carry in a C{CRC32C} TLV.

    @param data: The bytes to checksum.
    @return: The checksum as an unsigned 32-bit integer.
    """
    table = _CRC32C_TABLE
    crc = 0xFFFFFFFF
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


class ProxyTLV(dict):  # type: ignore[type-arg]
    """
    The TLVs of a version 2 header by name, as in aiosmtpd: C{"ALPN"},
    C{"AUTHORITY"}, C{"CRC32C"}, C{"NOOP"}, C{"UNIQUE_ID"}, C{"SSL"},
    C{"NETNS"}, the SSL sub-TLVs C{"SSL_VERSION"}, C{"SSL_CN"},
    C{"SSL_CIPHER"}, C{"SSL_SIG_ALG"} and C{"SSL_KEY_ALG"}, and C{"xNN"}
    (two upper-case hex digits) for other types. Values are the raw bytes,
    except C{"SSL_CLIENT"} and C{"SSL_VERIFY"}, the integer fields of the SSL
    TLV. When a type occurs more than once, the last one wins.

    Names can also be read as attributes (C{tlv.ALPN}), which give C{None}
    for a TLV that was not sent.
    """

    __slots__ = ()

    def __getattr__(self, name: str) -> bytes | int | None:
        if name.startswith("_"):
            raise AttributeError(name)
        return self.get(name)


Address = Union[IPv4Address, IPv6Address, bytes]


@dataclass
class ProxyData:
    """
    What a PROXY header said, with aiosmtpd's attribute names.

    @ivar version: C{1} or C{2}.
    @ivar command: L{V2_CMD.LOCAL} (a connection the proxy made for itself,
        such as a health check) or L{V2_CMD.PROXY}; always C{PROXY} for
        version 1.
    @ivar family: An L{AF}; C{UNSPEC} for version 1 C{UNKNOWN}.
    @ivar protocol: A L{PROTO}; C{UNSPEC} for version 1 C{UNKNOWN}.
        C{DGRAM} is accepted and reported as sent, although SMTP itself
        always runs over a stream.
    @ivar src_addr: The client's address: an C{IPv4Address} or
        C{IPv6Address}, the raw 108-byte NUL-padded path field for
        L{AF.UNIX}, or C{None} for LOCAL, C{UNKNOWN} and L{AF.UNSPEC}.
    @ivar dst_addr: The address the client connected to, in the same form.
    @ivar src_port: The client's port, or C{None} when there is no
        IP address.
    @ivar dst_port: The port the client connected to, or C{None}.
    @ivar rest: For version 1 C{UNKNOWN}, what followed C{UNKNOWN} on the
        line (with its leading space); for version 2, the TLV bytes after
        the address block.
    @ivar whole_raw: The header exactly as received.
    @ivar tlv_start: The offset of the TLVs in C{whole_raw}, or C{None}
        when there are none.
    @ivar tlv: The parsed TLVs (a L{ProxyTLV}); empty for version 1.
    @ivar error: Always C{""}: a malformed header raises L{ProxyError}.
        Kept for handlers written for aiosmtpd.
    """

    version: int
    command: V2_CMD
    family: AF
    protocol: PROTO
    src_addr: Address | None = None
    dst_addr: Address | None = None
    src_port: int | None = None
    dst_port: int | None = None
    rest: bytes = b""
    whole_raw: bytes = b""
    tlv_start: int | None = None
    tlv: ProxyTLV = field(default_factory=ProxyTLV)
    error: str = ""

    @property
    def valid(self) -> bool:
        """
        C{True} unless C{error} is set, as in aiosmtpd.
        """
        return not self.error and self.version is not None

    def __bool__(self) -> bool:
        return self.valid

    def peer(self) -> tuple[Any, ...] | None:
        """
        Return the client address the SMTP session should see.

        @return: From the source address of a PROXY header, C{(host,
            port)} over IPv4 and C{(host, port, 0, 0)} over IPv6 (the
            shapes of C{session.peer}); C{None} for LOCAL, C{UNKNOWN},
            L{AF.UNSPEC} and L{AF.UNIX}, where the connection's own peer
            should be kept.
        """
        if (
            self.command != V2_CMD.PROXY
            or self.family not in (AF.INET, AF.INET6)
            or self.src_port is None
        ):
            return None
        if self.family == AF.INET6:
            return (str(self.src_addr), self.src_port, 0, 0)
        return (str(self.src_addr), self.src_port)
