# -*- test-case-name: tests.test_testing -*-
"""
Drive a handler through a real server protocol, in memory.

L{SMTPTester} connects an L{SMTP} server (or a subclass, such as L{LMTP}) to
a L{StringTransport} and a L{Clock}, so that a test suite can check what a
handler does with exact commands and replies, without sockets or real time::

    from twisted_smtpd.testing import SMTPTester

    tester = SMTPTester(MyHandler(), hostname="mx.example")
    assert tester.command("EHLO client.example").code == 250
    replies = tester.sendmail("a@example.com", ["b@example.com"], b"Hi\\r\\n")
    assert replies[-1] == (250, "OK")

Replies a hook sends later (from a L{Deferred} or a coroutine waiting on
something) show up in L{SMTPTester.replies} once that has happened.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from twisted_smtpd._factory import SMTPFactory
from twisted_smtpd._smtp import SMTP

__all__ = ["Reply", "SMTPTester"]


class Reply(NamedTuple):
    """
    One SMTP reply: the code and the text of its lines joined by C{"\\n"},
    as C{smtplib} gives them, so that C{reply == (250, "OK")} reads well.
    """

    code: int
    text: str

    @property
    def lines(self) -> list[str]:
        """
        The text of each line of the reply.
        """
        return self.text.split("\n")


class SMTPTester:
    """
    A client double connected to a fresh server protocol.

    @ivar server: The server protocol.
    @ivar transport: The L{StringTransport} the server writes to.
    @ivar clock: The L{Clock} the server's timers run on, unless a
        C{reactor} was given.
    @ivar greeting: The server's 220 greeting, or C{None} when the server
        waits for a PROXY header first (send it, then read L{replies}).
    """

    def __init__(
        self,
        handler: Any,
        *,
        protocol: type[SMTP] = SMTP,
        peer: tuple[str, int] = ("127.0.0.1", 42424),
        reactor: Any = None,
        **options: Any,
    ) -> None:
        """
        @param handler: The handler under test.
        @param protocol: The server class (L{SMTP}, L{LMTP} or a subclass).
        @param peer: The client address the server sees, C{(host, port)};
            an IPv6 host makes it an IPv6 connection.
        @param reactor: The reactor for timers; a new L{Clock} by default.
        @param options: Options of the server, as for L{SMTPFactory}.
        """
        self.clock = Clock() if reactor is None else reactor
        factory = SMTPFactory(handler, protocol=protocol, reactor=self.clock, **options)
        if ":" in peer[0]:
            peerAddress: Any = IPv6Address("TCP", *peer)
            hostAddress: Any = IPv6Address("TCP", "::1", 25)
        else:
            peerAddress = IPv4Address("TCP", *peer)
            hostAddress = IPv4Address("TCP", "127.0.0.1", 25)
        self.transport = StringTransport(
            hostAddress=hostAddress, peerAddress=peerAddress
        )
        self.server = factory.buildProtocol(peerAddress)
        self._read = 0
        self._partial = b""
        self.server.makeConnection(self.transport)
        greeting = self.replies()
        self.greeting = greeting[0] if greeting else None

    @property
    def closed(self) -> bool:
        """
        Whether the server has closed the connection.
        """
        return bool(self.transport.disconnecting)

    def send(self, data: bytes | str) -> None:
        """
        Send raw bytes (a C{str} is encoded as UTF-8), exactly as given.
        """
        if isinstance(data, str):
            data = data.encode("utf-8")
        self.server.dataReceived(data)

    def replies(self) -> list[Reply]:
        """
        Return the replies written since the last call, complete ones only.
        """
        written = self.transport.value()
        data = self._partial + written[self._read :]
        self._read = len(written)
        replies = []
        lines: list[str] = []
        pos = consumed = 0
        while True:
            end = data.find(b"\r\n", pos)
            if end < 0:
                break
            line = data[pos:end].decode("utf-8", "replace")
            pos = end + 2
            lines.append(line[4:])
            if line[3:4] != "-":
                replies.append(Reply(int(line[:3]), "\n".join(lines)))
                lines = []
                consumed = pos
        # An unfinished reply waits for the next call.
        self._partial = data[consumed:]
        return replies

    def command(self, line: str) -> Reply:
        """
        Send one command line and return its one reply.

        @raise AssertionError: If the command did not get exactly one reply
            yet (e.g. a hook is still pending; use L{send} and L{replies}).
        """
        self.send(line + "\r\n")
        replies = self.replies()
        if len(replies) != 1:
            raise AssertionError(f"{line!r} got {replies!r}, not one reply")
        return replies[0]

    def sendmail(
        self,
        mail_from: str,
        rcpt_tos: list[str],
        message: bytes | str,
        *,
        helo: str | None = "tester.example",
    ) -> list[Reply]:
        """
        Run a whole transaction in lock-step, dot-stuffing C{message}.

        @param mail_from: The reverse-path, without angle brackets.
        @param rcpt_tos: The forward-paths, without angle brackets.
        @param message: The message; a final CRLF is added if missing.
        @param helo: Send C{EHLO helo} first, unless C{None}.
        @return: The replies, one per command sent, up to the first one
            refused (the transaction stops there), the last being the reply
            to the end of the data.
        """
        replies = []
        commands = [f"MAIL FROM:<{mail_from}>"] + [f"RCPT TO:<{r}>" for r in rcpt_tos]
        if helo is not None:
            commands.insert(0, f"EHLO {helo}")
        for line in commands + ["DATA"]:
            reply = self.command(line)
            replies.append(reply)
            if reply.code >= 400:
                return replies
        if isinstance(message, str):
            message = message.encode("utf-8")
        if not message.endswith(b"\r\n"):
            message += b"\r\n"
        if message.startswith(b"."):
            message = b"." + message
        self.send(message.replace(b"\r\n.", b"\r\n..") + b".\r\n")
        replies.extend(self.replies())
        return replies
