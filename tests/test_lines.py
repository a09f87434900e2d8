"""
Tests for L{twisted_smtpd._lines}: the pure line framers (the line modes'
C{frame}, and the skipping of an overlong line) on their own, and the two
line modes (command lines, the answer to an AUTH challenge) fed through a
connection in every possible split. No sockets, no real time.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from tests._protocolsupport import (
    Collector,
    ProtocolTestCase,
    assertSplitsAgree,
    parseReplies,
)
from tests.test_auth import LOGIN_PASSWORD, LOGIN_USER, PLAIN_BLOB, Authenticator
from twisted_smtpd._lines import ANSWER, COMMAND, OVERLONG, TOO_LONG


def nextLine(data: bytes, start: int, limit: int) -> tuple[Any, int]:
    """
    Frame the next line as the command mode does, with a line limit of
    C{limit}.
    """
    return COMMAND.frame(data, start, SimpleNamespace(line_length_limit=limit))


def skipLine(data: bytes, start: int) -> tuple[Any, int]:
    """
    Skip the rest of an overlong line as the command mode does.
    """
    return COMMAND.skipping.frame(data, start, None)


class NextLineTests(SynchronousTestCase):
    """
    L{nextLine}: one line out of the bytes, or what else it found.
    """

    def test_line(self) -> None:
        """
        A complete line comes back without its CRLF, with the index after
        the CRLF.
        """
        self.assertEqual(nextLine(b"NOOP\r\nQUIT\r\n", 0, 100), (b"NOOP", 6))

    def test_fromStart(self) -> None:
        """
        Framing starts at C{start}: the bytes before it are not looked at.
        """
        self.assertEqual(nextLine(b"NOOP\r\nQUIT\r\n", 6, 100), (b"QUIT", 12))

    def test_bareLf(self) -> None:
        """
        A bare LF does not end a line (RFC 5321 section 2.3.8): the line
        goes on to the CRLF, the LF in it, for the caller to refuse once.
        """
        self.assertEqual(nextLine(b"NOOP\nQUIT\r\n", 0, 100), (b"NOOP\nQUIT", 11))
        self.assertEqual(nextLine(b"NOOP\n", 0, 100), (None, 0))

    def test_emptyLine(self) -> None:
        """
        An empty line is a line.
        """
        self.assertEqual(nextLine(b"\r\n", 0, 100), (b"", 2))

    def test_crInsideKept(self) -> None:
        """
        A CR inside the line is not a line end: only CRLF is.
        """
        self.assertEqual(nextLine(b"QUIT\rNOOP\r\n", 0, 100), (b"QUIT\rNOOP", 11))

    def test_incomplete(self) -> None:
        """
        An incomplete tail asks for more input and consumes nothing.
        """
        self.assertEqual(nextLine(b"NOO", 0, 100), (None, 0))
        self.assertEqual(nextLine(b"NOOP\r\nQUI", 6, 100), (None, 6))
        self.assertEqual(nextLine(b"NOOP\r", 0, 100), (None, 0))

    def test_nothing(self) -> None:
        """
        No bytes, or none after C{start}, ask for more input.
        """
        self.assertEqual(nextLine(b"", 0, 100), (None, 0))
        self.assertEqual(nextLine(b"NOOP\r\n", 6, 100), (None, 6))

    def test_exactlyLimit(self) -> None:
        """
        A line of exactly C{limit} octets, CRLF included, is a line.
        """
        line = b"x" * 98 + b"\r\n"
        self.assertEqual(nextLine(line, 0, 100), (line[:-2], 100))

    def test_oneOverLimit(self) -> None:
        """
        A complete line one octet over C{limit} is consumed as L{TOO_LONG}.
        """
        line = b"x" * 99 + b"\r\n"
        self.assertEqual(nextLine(line + b"NOOP\r\n", 0, 100), (TOO_LONG, 101))

    def test_limitCountsFromStart(self) -> None:
        """
        The limit applies to the line that starts at C{start}, not to the
        bytes before it.
        """
        data = b"y" * 200 + b"x" * 98 + b"\r\n"
        self.assertEqual(nextLine(data, 200, 100), (data[200:-2], 300))
        self.assertEqual(nextLine(data, 199, 100), (TOO_LONG, 300))

    def test_incompleteAtLimit(self) -> None:
        """
        An incomplete tail of C{limit} octets can only end over the limit:
        it is all consumed as L{OVERLONG}.
        """
        self.assertEqual(nextLine(b"x" * 100, 0, 100), (OVERLONG, 100))
        self.assertEqual(nextLine(b"NOOP\n" + b"x" * 100, 5, 100), (OVERLONG, 105))

    def test_overlongKeepsFinalCR(self) -> None:
        """
        When an overlong tail ends in CR, that CR is not consumed: it may
        begin the CRLF that ends the line in the next chunk.
        """
        self.assertEqual(nextLine(b"x" * 99 + b"\r", 0, 100), (OVERLONG, 99))

    def test_incompleteUnderLimit(self) -> None:
        """
        An incomplete tail of C{limit - 1} octets may still end in time (a
        CR followed by the LF that is the last octet allowed): more input
        is needed.
        """
        self.assertEqual(nextLine(b"x" * 98 + b"\r", 0, 100), (None, 0))
        self.assertEqual(nextLine(b"x" * 98 + b"\r\n", 0, 100), (b"x" * 98, 100))

    @given(st.lists(st.binary(max_size=30).map(lambda b: b.replace(b"\r", b""))))
    def test_framesEveryLine(self, lines: list[bytes]) -> None:
        """
        Framing from one CRLF to the next gives back every line, bare LFs
        included, in order, and consumes everything.
        """
        data = b"".join(line + b"\r\n" for line in lines)
        found, start = [], 0
        while True:
            line, start = nextLine(data, start, 100)
            if line is None:
                break
            found.append(line)
        self.assertEqual((found, start), (lines, len(data)))


class SkipLineTests(SynchronousTestCase):
    """
    L{skipLine}: the rest of a line too long to read.
    """

    def test_toLineEnd(self) -> None:
        """
        The rest of the line is consumed up to and including its CRLF, as
        L{TOO_LONG}; a bare LF does not end it.
        """
        self.assertEqual(skipLine(b"xxx\r\nNOOP\r\n", 0), (TOO_LONG, 5))
        self.assertEqual(skipLine(b"NOOP\r\nxxx\nQUIT\r\n", 6), (TOO_LONG, 16))

    def test_noLineEnd(self) -> None:
        """
        Without a CRLF, everything is consumed and more input is needed,
        but a final CR, which may begin the CRLF.
        """
        self.assertEqual(skipLine(b"xxxx", 0), (None, 4))
        self.assertEqual(skipLine(b"NOOP\r\nxxx", 6), (None, 9))
        self.assertEqual(skipLine(b"xxx\r", 0), (None, 3))
        self.assertEqual(skipLine(b"\r", 0), (None, 0))


class CommandSplitTests(ProtocolTestCase):
    """
    Commands read the same however the stream is cut into chunks.
    """

    def transcript(self, chunks: list[bytes], **options: Any) -> Any:
        """
        Feed a new server C{chunks}; return what it wrote, what its
        handler received and whether it closed.
        """
        handler = Collector()
        tester = self.makeTester(handler, **options)
        for chunk in chunks:
            tester.send(chunk)
        return tester.transport.value(), handler.messages, tester.closed

    def test_commands(self) -> None:
        """
        Pipelined commands, a line with a bare LF (which does not end it),
        a line with a bare CR and an empty line get the same replies in any
        split as in one chunk.
        """
        data = (
            b"EHLO c.example\r\nNOOP\r\nHELO x\nVRFY a@example.com\r\n"
            b"QUIT\rNOOP\r\n\r\nRSET\r\nQUIT\r\n"
        )
        written, _, closed = assertSplitsAgree(self, self.transcript, data)
        codes = [reply.code for reply in parseReplies(written)]
        self.assertEqual(codes, [220, 250, 250, 500, 500, 500, 250, 221])
        self.assertTrue(closed)

    def test_overlongLine(self) -> None:
        """
        A line over C{line_length_limit} gets one 500 and no part of it is
        run, in any split, even when the split falls at the limit.
        """
        data = b"NOOP\r\n" + b"QUIT " * 30 + b"\r\nNOOP\r\n"

        def transcript(chunks: list[bytes]) -> Any:
            return self.transcript(chunks, line_length_limit=100, command_size_limit=64)

        written, _, closed = assertSplitsAgree(self, transcript, data)
        self.assertEqual(
            [(r.code, r.text) for r in parseReplies(written)[1:]],
            [(250, "OK"), (500, "Command line too long"), (250, "OK")],
        )
        self.assertFalse(closed)


class AnswerSplitTests(ProtocolTestCase):
    """
    The answers to AUTH challenges read the same however the stream is cut.
    """

    def transcript(self, chunks: list[bytes]) -> Any:
        """
        Feed a new server that allows AUTH in plaintext C{chunks}; return
        what it wrote and what its authenticator was given.
        """
        authenticator = Authenticator()
        tester = self.makeTester(authenticator=authenticator, auth_require_tls=False)
        for chunk in chunks:
            tester.send(chunk)
        calls = [(m, d.login, d.password) for m, d in authenticator.calls]
        return tester.transport.value(), calls, tester.server.session.authenticated

    def test_authLogin(self) -> None:
        """
        AUTH LOGIN's two answers, sent with the command and what follows,
        are read as answers in any split.
        """
        data = (
            f"EHLO c.example\r\nAUTH LOGIN\r\n{LOGIN_USER}\r\n{LOGIN_PASSWORD}\r\n"
            "NOOP\r\n"
        ).encode()
        written, calls, authenticated = assertSplitsAgree(self, self.transcript, data)
        codes = [reply.code for reply in parseReplies(written)]
        self.assertEqual(codes, [220, 250, 334, 334, 235, 250])
        self.assertEqual(calls, [("LOGIN", b"user", b"s3cret-Pa55word")])
        self.assertTrue(authenticated)

    def test_authCancelThenPlain(self) -> None:
        """
        A cancelled AUTH LOGIN, then AUTH PLAIN's answer to an empty
        challenge, read the same in any split.
        """
        data = (
            f"EHLO c.example\r\nAUTH LOGIN\r\n*\r\nAUTH PLAIN\r\n{PLAIN_BLOB}\r\n"
            "NOOP\r\n"
        ).encode()
        written, calls, authenticated = assertSplitsAgree(self, self.transcript, data)
        codes = [reply.code for reply in parseReplies(written)]
        self.assertEqual(codes, [220, 250, 334, 501, 334, 235, 250])
        self.assertEqual(calls, [("PLAIN", b"user", b"s3cret-Pa55word")])
        self.assertTrue(authenticated)


class AnswerFramerTests(SynchronousTestCase):
    """
    The answer mode frames lines as the command mode does.
    """

    @given(st.binary(max_size=60), st.integers(0, 60), st.integers(2, 40))
    def test_sameFramer(self, data: bytes, start: int, limit: int) -> None:
        """
        For any bytes, start and limit, the answer mode's framer gives what
        the command mode's gives.
        """
        config = SimpleNamespace(line_length_limit=limit)
        start = min(start, len(data))
        self.assertEqual(
            ANSWER.frame(data, start, config), COMMAND.frame(data, start, config)
        )
