# -*- test-case-name: tests.test_transport -*-
"""
What the connection needs to know about its transport: sending without a
reactor turn when possible, the client's address in aiosmtpd's shape, and
the details of TLS.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.address import IPv6Address
from twisted.internet.tcp import Server as _TCPServer
from twisted.logger import Logger

log = Logger(namespace="twisted_smtpd.server")


def send(transport: Any, data: bytes) -> None:
    """
    Write to a transport, straight to the socket when nothing is waiting to
    go out before it.

    Twisted's TCP transport only buffers in C{write} and sends on the next
    turn of the reactor, after registering for and receiving a "writable"
    event. For a reply of a few hundred bytes the socket has room at once,
    and sending it now, as asyncio does, saves two C{epoll_ctl} calls and a
    reactor turn: about a third of the CPU a pipelined message costs. Only
    a plain (no TLS) L{twisted.internet.tcp.Server} whose own buffers are
    empty qualifies, so the order of the bytes is kept; whatever the socket
    does not take now, and every other transport, goes through C{write}.
    """
    if type(transport) is _TCPServer:
        try:
            if (
                transport.connected
                and not transport.TLS
                and not transport.dataBuffer
                and not transport._tempDataBuffer
            ):
                sent = transport.socket.send(data)
                if sent == len(data):
                    return
                data = data[sent:]
        except (OSError, AttributeError):
            # A full or failing socket: write() buffers the data, and the
            # reactor reports a failure as the connection's loss.
            pass
    transport.write(data)


def mayHoldWrites(transport: Any) -> bool:
    """
    Whether a transport may still hold bytes to write, which a client that
    reads nothing could keep it from sending (and so from closing): C{False}
    only for a plain (no TLS) L{twisted.internet.tcp.Server} whose buffers
    are empty, which closes as soon as it is asked to.
    """
    if type(transport) is not _TCPServer:
        return True
    try:
        return bool(transport.TLS or transport.dataBuffer or transport._tempDataBuffer)
    except AttributeError:
        return True


def peerOfTransport(transport: Any) -> Any:
    """
    The client's address of a transport, in the shape of L{peerOf}: for a
    TCP connection, the address as the socket gave it, which is already
    that shape (making Twisted's address object for it costs more).
    """
    if type(transport) is _TCPServer:
        client = getattr(transport, "client", None)
        if type(client) is tuple:
            return client
    return peerOf(transport.getPeer())


def peerOf(address: Any) -> Any:
    """
    Give a transport address in aiosmtpd's (that is, asyncio's) shape:
    C{(host, port)} for IPv4, C{(host, port, flowinfo, scope_id)} for IPv6,
    the path for UNIX sockets.
    """
    host = getattr(address, "host", None)
    if host is not None:
        if isinstance(address, IPv6Address):
            return (host, address.port, address.flowInfo, address.scopeID)
        return (host, address.port)
    name = getattr(address, "name", None)
    if isinstance(name, bytes):
        return name.decode("utf-8", "replace")
    return name if name is not None else ""


def tlsDetails(transport: Any) -> dict[str, Any]:
    """
    Describe the TLS of a connection as aiosmtpd's C{session.ssl} does, as
    far as OpenSSL tells: the protocol version, the cipher as C{(name,
    protocol, bits)} and the peer certificate (C{None} when the client sent
    none).
    """
    connection = transport.getHandle()
    details: dict[str, Any] = {"ssl_object": connection}
    try:
        details["protocol"] = connection.get_protocol_version_name()
        details["cipher"] = (
            connection.get_cipher_name(),
            connection.get_cipher_version(),
            connection.get_cipher_bits(),
        )
        certificate = connection.get_peer_certificate()
        details["peercert"] = (
            None if certificate is None else certificate.to_cryptography()
        )
    except Exception:
        log.failure("could not read the TLS details")
    return details
