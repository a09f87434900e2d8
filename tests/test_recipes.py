"""
The three recipes of docs/architecture.rst, as written there: a new verb, an
EHLO extension with a MAIL parameter, and a new input mode. No sockets, no
real time.
"""

from __future__ import annotations

from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from tests._protocolsupport import Collector
from twisted_smtpd import SMTP, syntax
from twisted_smtpd._address import PathRefused
from twisted_smtpd._lines import COMMAND
from twisted_smtpd._verbs import CommandGroup, Parameter
from twisted_smtpd.testing import Reply, SMTPTester


class XAuditSMTP(SMTP):
    @syntax("XAUDIT <text>")
    def smtp_XAUDIT(self, arg):
        if not arg:
            self.push("501 Syntax: XAUDIT <text>")
            return None
        return self.hook("XAUDIT", lambda status: self.push(status or "250 OK"), arg)


PRIORITIES = {str(n) for n in range(-9, 10)}


def checkPriority(server, value):
    if value not in PRIORITIES:
        raise PathRefused("501 5.5.4 Error: MT-PRIORITY must be -9 to 9")


class Priority(CommandGroup):
    mailParameters = (Parameter("MT-PRIORITY", checkPriority),)

    def keywords(self, server):
        return ["MT-PRIORITY MIXER"]


class PrioritySMTP(SMTP):
    # The order of the groups is the order of their EHLO keywords.
    commandGroups = (*SMTP.commandGroups[:-1], Priority(), SMTP.commandGroups[-1])


class Chunk:
    reads = True  # the connection reads in this mode
    timed = True  # the idle clock runs (the server waits for the client)
    streamed = True  # ... and restarts per 64 KiB received, not per unit

    def __init__(self, size, received):
        self._left = size
        self._parts = []
        self._received = received

    def frame(self, data, start, config):
        take = min(self._left, len(data) - start)
        self._parts.append(data[start : start + take])
        self._left -= take
        if self._left:
            return None, start + take
        return b"".join(self._parts), start + take

    def act(self, server, chunk):
        server.setMode(COMMAND)
        server.run(self._received, server, chunk)


class ChunkSMTP(SMTP):
    """
    A server with a command that reads a chunk of a given size with the
    L{Chunk} mode and replies with what it read.
    """

    chunks: list[bytes]

    def smtp_XCHUNK(self, arg: str | None) -> None:
        self.setMode(Chunk(int(arg or "0"), self._chunkReceived))

    def _chunkReceived(self, server: Any, chunk: bytes) -> None:
        self.__dict__.setdefault("chunks", []).append(chunk)
        self.reply(f"250 {len(chunk)} octets")


class AddVerbTests(SynchronousTestCase):
    """
    The recipe "add a verb".
    """

    def test_verb(self) -> None:
        """
        The new verb runs, refuses a missing argument, and is listed by
        HELP with its syntax.
        """
        tester = SMTPTester(Collector(), protocol=XAuditSMTP)
        self.assertEqual(tester.command("XAUDIT hello"), Reply(250, "OK"))
        self.assertEqual(tester.command("XAUDIT"), Reply(501, "Syntax: XAUDIT <text>"))
        self.assertEqual(
            tester.command("HELP XAUDIT"), Reply(214, "Syntax: XAUDIT <text>")
        )


class ExtensionTests(SynchronousTestCase):
    """
    The recipe "add an EHLO extension with a parameter".
    """

    def test_keyword(self) -> None:
        """
        EHLO lists the keyword before PIPELINING and HELP.
        """
        tester = SMTPTester(Collector(), protocol=PrioritySMTP)
        lines = tester.command("EHLO client.example").lines
        self.assertEqual(lines[-3:], ["MT-PRIORITY MIXER", "PIPELINING", "HELP"])

    def test_parameter(self) -> None:
        """
        A valid value is accepted and kept in C{mail_options}; a bad one is
        refused with the group's reply.
        """
        handler = Collector()
        tester = SMTPTester(handler, protocol=PrioritySMTP)
        tester.command("EHLO client.example")
        self.assertEqual(
            tester.command("MAIL FROM:<a@example.com> MT-PRIORITY=10"),
            Reply(501, "5.5.4 Error: MT-PRIORITY must be -9 to 9"),
        )
        self.assertEqual(
            tester.command("MAIL FROM:<a@example.com> MT-PRIORITY=-3"), Reply(250, "OK")
        )
        self.assertEqual(tester.server.envelope.mail_options, ["MT-PRIORITY=-3"])

    def test_plainSMTPRefusesIt(self) -> None:
        """
        Without the group the parameter is unknown.
        """
        tester = SMTPTester(Collector())
        tester.command("EHLO client.example")
        self.assertEqual(
            tester.command("MAIL FROM:<a@example.com> MT-PRIORITY=1").code, 555
        )


class InputModeTests(SynchronousTestCase):
    """
    The recipe "add an input mode".
    """

    def test_chunkInOneRead(self) -> None:
        """
        A chunk read in the same read as its command, followed by a command.
        """
        tester = SMTPTester(Collector(), protocol=ChunkSMTP)
        tester.send(b"XCHUNK 5\r\nab\r\ncNOOP\r\n")
        self.assertEqual(tester.replies(), [Reply(250, "5 octets"), Reply(250, "OK")])
        self.assertEqual(tester.server.chunks, [b"ab\r\nc"])

    def test_chunkByteByByte(self) -> None:
        """
        The same chunk sent one byte at a time.
        """
        tester = SMTPTester(Collector(), protocol=ChunkSMTP)
        for byte in b"XCHUNK 5\r\nab\r\ncNOOP\r\n":
            tester.send(bytes([byte]))
        self.assertEqual(tester.replies(), [Reply(250, "5 octets"), Reply(250, "OK")])
        self.assertEqual(tester.server.chunks, [b"ab\r\nc"])
