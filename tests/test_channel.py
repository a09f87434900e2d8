"""
Tests for L{twisted_smtpd._channel}: what a connection reads and when
(pipelining, flow control, the idle timeout), driven in memory with a
L{StringTransport} and a L{Clock}. No sockets, no real time.
"""

from __future__ import annotations

import base64

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.logger import capturedLogs, formatEvent

from tests._protocolsupport import (
    GO_AHEAD,
    HOST,
    NEED_MAIL,
    NEED_RCPT,
    OK,
    Collector,
    ProtocolTestCase,
    connect,
    parseReplies,
)
from tests.test_tls import certificates, tlsTester
from twisted_smtpd import AuthResult, SMTPFactory
from twisted_smtpd._channel import PROGRESS_BYTES
from twisted_smtpd.testing import Reply, SMTPTester


class NoopGate:
    """
    A handler whose C{handle_NOOP} waits for a L{Deferred}: the server is
    busy until it fires.
    """

    def __init__(self, gate: Deferred) -> None:
        self.gate = gate

    def handle_NOOP(self, server, session, envelope, arg):
        return self.gate


class TimeoutTestCase(ProtocolTestCase):
    """
    Tests of the idle timeout, on a L{Clock}.
    """

    TIMED_OUT = Reply(421, f"4.4.2 {HOST} Error: timeout exceeded")

    def assertCutAt(self, tester: SMTPTester, deadline: float) -> None:
        """
        Advance to just before C{deadline}: the connection is open; then to
        it: the client got the timeout's 421 and the connection is closed.
        """
        tester.clock.advance(deadline - 0.1 - tester.clock.seconds())
        self.assertEqual(tester.replies(), [])
        self.assertFalse(tester.closed)
        tester.clock.advance(0.1)
        self.assertEqual(tester.replies(), [self.TIMED_OUT])
        self.assertTrue(tester.closed)


class TimeoutTests(TimeoutTestCase):
    """
    The idle timeout, on a L{Clock}.
    """

    def test_defaultTimeout(self) -> None:
        """
        After 300 idle seconds the server says why and closes.
        """
        self.assertCutAt(self.makeTester(), 300)

    def test_timeoutOption(self) -> None:
        """
        C{timeout} sets the idle time.
        """
        tester = self.makeTester(timeout=10)
        tester.clock.advance(9)
        self.assertFalse(tester.closed)
        tester.clock.advance(1)
        self.assertEqual(tester.replies(), [self.TIMED_OUT])
        self.assertTrue(tester.closed)

    def test_noTimeout(self) -> None:
        """
        With C{timeout=None} the connection never times out.
        """
        tester = self.makeTester(timeout=None)
        tester.clock.advance(10**7)
        self.assertFalse(tester.closed)
        self.assertEqual(tester.replies(), [])

    def test_commandResetsTimer(self) -> None:
        """
        Each command starts the idle time again.
        """
        tester = self.makeTester(timeout=10)
        for _ in range(5):
            tester.clock.advance(8)
            self.assertEqual(tester.command("NOOP"), OK)
        tester.clock.advance(9)
        self.assertFalse(tester.closed)
        tester.clock.advance(1)
        self.assertTrue(tester.closed)

    def test_partialInputStartsLineTime(self) -> None:
        """
        The first bytes of a command line start its time: the line has the
        whole timeout from there, not from the end of the previous one.
        """
        tester = self.makeTester(timeout=10)
        tester.clock.advance(8)
        tester.send(b"NO")
        tester.clock.advance(8)
        self.assertFalse(tester.closed)
        tester.send(b"OP\r\n")
        self.assertEqual(tester.replies(), [OK])

    def test_dataChunksDoNotResetTimer(self) -> None:
        """
        Short chunks of message data do not start the idle time again: the
        message must be complete within the timeout unless it brings 64 KiB
        (see L{SlowClientTests}).
        """
        handler = Collector()
        tester = self.inData(handler, timeout=10)
        for i in range(4):
            tester.clock.advance(2)
            tester.send(f"line {i}\r\n".encode())
        tester.clock.advance(1.9)
        tester.send(b".\r\n")
        self.assertEqual(tester.replies(), [OK])
        self.assertEqual(len(handler.messages), 1)
        handler.messages.clear()
        self.assertEqual(tester.command("MAIL FROM:<a@example.com>"), OK)
        self.assertEqual(tester.command("RCPT TO:<b@example.com>"), OK)
        self.assertEqual(tester.command("DATA"), GO_AHEAD)
        for i in range(5):
            tester.clock.advance(2)
            tester.send(f"line {i}\r\n".encode())
        self.assertEqual(tester.replies(), [self.TIMED_OUT])
        self.assertTrue(tester.closed)
        self.assertEqual(handler.messages, [])

    def test_stoppedWhileDataHookWorks(self) -> None:
        """
        The idle clock stops while C{handle_DATA} works, however long it
        takes, since a 421 after the end of the data would make the client
        send the message again; once the hook replied, the client has the
        whole timeout again for its next command.
        """
        gate: Deferred = Deferred()

        class Handler:
            def handle_DATA(self, server, session, envelope):
                return gate

        tester = self.inData(Handler(), timeout=10)
        tester.send(b"Hello\r\n.\r\n")
        tester.clock.advance(1000)
        self.assertEqual(tester.replies(), [])
        self.assertFalse(tester.closed)
        gate.callback("250 Stored")
        self.assertEqual(tester.replies(), [Reply(250, "Stored")])
        tester.clock.advance(9.9)
        self.assertFalse(tester.closed)
        tester.clock.advance(0.1)
        self.assertEqual(tester.replies(), [self.TIMED_OUT])
        self.assertTrue(tester.closed)

    def test_stoppedWhilePipelinedHookWorks(self) -> None:
        """
        A slow hook with commands pipelined behind it is not cut off either,
        and the commands behind it run when it is done.
        """
        gate: Deferred = Deferred()

        class Handler:
            def handle_MAIL(self, server, session, envelope, address, options):
                return gate

        tester = self.ready(Handler(), timeout=10)
        tester.send(b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\n")
        tester.clock.advance(60)
        # Bytes that still arrive do not start the clock again either.
        tester.send(b"NOOP\r\n")
        tester.clock.advance(60)
        self.assertFalse(tester.closed)
        gate.callback(None)
        self.assertEqual(tester.replies(), [OK, OK, OK])
        self.assertEqual(tester.server.envelope.rcpt_tos, ["b@example.com"])
        tester.clock.advance(10)
        self.assertTrue(tester.closed)

    def test_notRestartedByHookAfterClose(self) -> None:
        """
        A hook that finishes after the client went away does not start the
        idle clock of the closed connection again.
        """
        gate: Deferred = Deferred()
        tester = self.ready(NoopGate(gate), timeout=10)
        tester.send(b"NOOP\r\n")
        tester.server.connectionLost(None)
        with capturedLogs() as events:
            gate.callback(None)
            tester.clock.advance(100)
        self.assertEqual([formatEvent(e) for e in events], [])

    def test_nothingKeptAfterClose(self) -> None:
        """
        Bytes that still arrive after the server closed (a TLS transport
        reads on until the client's close_notify) are neither run nor kept.
        """
        tester = self.ready()
        self.assertEqual(tester.command("QUIT"), Reply(221, "Bye"))
        tester.send(b"NOOP\r\n" * 10000)
        self.assertEqual(tester.replies(), [])
        # Kept, they would only cost memory.
        self.assertEqual(tester.server._unread, b"")

    def test_noTimeoutAfterQuit(self) -> None:
        """
        A connection closed by QUIT has no idle timer left: time passing
        writes nothing more and raises nothing.
        """
        tester = self.ready(timeout=10)
        self.assertEqual(tester.command("QUIT"), Reply(221, "Bye"))
        written = tester.transport.value()
        tester.clock.advance(1000)
        self.assertEqual(tester.transport.value(), written)

    def test_timeoutInData(self) -> None:
        """
        A client that stops in the middle of the data times out too, and
        the handler never sees the message.
        """
        handler = Collector()
        tester = self.inData(handler, timeout=10)
        tester.send(b"Partial\r\n")
        tester.clock.advance(10)
        self.assertEqual(tester.replies(), [self.TIMED_OUT])
        self.assertTrue(tester.closed)
        self.assertEqual(handler.messages, [])


class SlowClientTests(TimeoutTestCase):
    """
    Clients that send a byte now and then to hold a connection (slowloris):
    a command line or an answer must be complete within C{timeout} of its
    first byte, and message data must bring L{PROGRESS_BYTES} within each
    C{timeout}. On a L{Clock}.
    """

    def trickle(self, tester: SMTPTester, data: bytes, seconds: float) -> None:
        """
        Send C{data} a byte at a time, C{seconds} apart, the first now.
        """
        for i in range(len(data)):
            if i:
                tester.clock.advance(seconds)
            tester.send(data[i : i + 1])

    def test_lineTrickledWithoutEnd(self) -> None:
        """
        A client that sends a byte a second and never a line end gets 421
        and is disconnected C{timeout} seconds after the line began.
        """
        tester = self.ready(timeout=10)
        tester.clock.advance(4)
        self.trickle(tester, b"NOOP NOOP ", 1)
        self.assertEqual(tester.clock.seconds(), 13)
        self.assertCutAt(tester, 14)

    def test_lineCompletedInTime(self) -> None:
        """
        A line trickled in but complete within the timeout is answered, and
        the idle time then starts from its end.
        """
        tester = self.ready(timeout=10)
        tester.clock.advance(4)
        self.trickle(tester, b"NOOP\r", 2)
        tester.clock.advance(1.9)
        tester.send(b"\n")
        self.assertEqual(tester.replies(), [OK])
        self.assertCutAt(tester, 23.9)

    def test_nextLineHasItsOwnTime(self) -> None:
        """
        The bytes after a line's end, in the same chunk, begin the next
        line, whose time starts then, however long the first one took.
        """
        tester = self.ready(timeout=10)
        tester.send(b"NO")
        tester.clock.advance(9)
        tester.send(b"OP\r\nNO")
        self.assertEqual(tester.replies(), [OK])
        tester.clock.advance(9)
        tester.send(b"O")
        self.assertCutAt(tester, 19)

    def test_overlongLineTrickled(self) -> None:
        """
        The rest of a line too long, which the server skips, does not start
        the line's time again either.
        """
        tester = self.ready(timeout=10, line_length_limit=100, command_size_limit=64)
        for _ in range(9):
            tester.send(b"x" * 60)
            tester.clock.advance(1)
        self.assertCutAt(tester, 10)

    def test_overlongLineAfterCommand(self) -> None:
        """
        A line too long that begins in the chunk of the command before it
        has its time from that chunk too.
        """
        tester = self.ready(timeout=10, line_length_limit=100, command_size_limit=64)
        tester.send(b"NOOP\r\n" + b"x" * 150)
        self.assertEqual(tester.replies(), [OK])
        for _ in range(9):
            tester.clock.advance(1)
            tester.send(b"x" * 60)
        self.assertCutAt(tester, 10)

    def test_answerTrickled(self) -> None:
        """
        An answer to an AUTH challenge trickled in without a line end gets
        421 C{timeout} seconds after its first byte.
        """
        tester = self.ready(
            timeout=10, authenticator=lambda *args: None, auth_require_tls=False
        )
        self.assertEqual(tester.command("AUTH PLAIN"), Reply(334, ""))
        tester.clock.advance(3)
        self.trickle(tester, b"AGFsaWNl", 1)
        self.assertCutAt(tester, 13)

    def test_answerCompletedInTime(self) -> None:
        """
        An answer trickled in but complete within the timeout is read as
        the answer.
        """
        users = {b"alice": b"secret"}

        def authenticator(server, session, envelope, mechanism, data):
            ok = users.get(data.login) == data.password
            return AuthResult(success=ok, handled=False)

        tester = self.ready(
            timeout=10, authenticator=authenticator, auth_require_tls=False
        )
        self.assertEqual(tester.command("AUTH PLAIN"), Reply(334, ""))
        answer = base64.b64encode(b"\0alice\0secret") + b"\r\n"
        self.trickle(tester, answer, 9.9 / (len(answer) - 1))
        self.assertEqual(
            tester.replies(), [Reply(235, "2.7.0 Authentication successful")]
        )

    def test_messageInBigChunks(self) -> None:
        """
        A big message whose 64 KiB chunks each come just under the timeout
        apart is received whole: every 64 KiB starts the clock again.
        """
        self.assertEqual(PROGRESS_BYTES, 65536)
        handler = Collector()
        tester = self.inData(handler, timeout=10)
        chunk = b"a" * 62 + b"\r\n"
        block = chunk * (PROGRESS_BYTES // len(chunk))
        for _ in range(20):
            tester.clock.advance(9.9)
            tester.send(block)
        tester.clock.advance(9.9)
        tester.send(b".\r\n")
        self.assertEqual(tester.replies(), [OK])
        self.assertEqual(handler.messages[0][2], block * 20)

    def test_progressCountsBytesNotChunks(self) -> None:
        """
        The clock starts again each time another 64 KiB has arrived, in
        whatever chunks; no sooner.
        """
        handler = Collector()
        tester = self.inData(handler, timeout=10)
        half = (b"a" * 62 + b"\r\n") * (PROGRESS_BYTES // 128)
        tester.clock.advance(5)
        tester.send(half)
        tester.clock.advance(4)
        tester.send(half[:-1])
        # 64 KiB but a byte: the clock still runs from the 354.
        self.assertCutAt(tester, 10)

    def test_shortLinesAfterProgress(self) -> None:
        """
        Short lines trickled after 64 KiB of data are cut C{timeout} seconds
        after the 64 KiB were complete, and the handler gets nothing.
        """
        handler = Collector()
        tester = self.inData(handler, timeout=10)
        block = (b"a" * 62 + b"\r\n") * (PROGRESS_BYTES // 64)
        tester.clock.advance(5)
        tester.send(block[:1000])
        tester.clock.advance(3)
        tester.send(block[1000:])
        for _ in range(9):
            tester.clock.advance(1)
            tester.send(b"line\r\n")
        self.assertCutAt(tester, 18)
        self.assertEqual(handler.messages, [])

    def test_serverTimeNotCounted(self) -> None:
        """
        A line begun while a hook works has its time from when the hook is
        done: the server's slowness is not the client's.
        """
        gate: Deferred = Deferred()
        tester = self.ready(NoopGate(gate), timeout=10)
        tester.send(b"NOOP\r\nRS")
        tester.clock.advance(100)
        self.assertFalse(tester.closed)
        gate.callback(None)
        self.assertEqual(tester.replies(), [OK])
        tester.clock.advance(9)
        tester.send(b"ET\r\n")
        self.assertEqual(tester.replies(), [OK])
        self.assertCutAt(tester, 119)


class PipeliningTests(ProtocolTestCase):
    """
    Pipelined commands (RFC 2920): order, batching of replies, and slow
    hooks.
    """

    def test_oneWritePerBatch(self) -> None:
        """
        The replies to a batch of pipelined commands are written in order,
        in one write; the data and the next transaction likewise.
        """
        handler = Collector()
        server, transport = connect(
            SMTPFactory(handler, reactor=Clock(), hostname=HOST)
        )
        server.dataReceived(
            b"EHLO c.example\r\nMAIL FROM:<a@example.com>\r\n"
            b"RCPT TO:<b@example.com>\r\nDATA\r\n"
        )
        self.assertEqual(len(transport.writes), 2)
        self.assertEqual(
            transport.writes[1],
            b"250-mx.example\r\n250-SIZE 33554432\r\n250-8BITMIME\r\n"
            b"250-DSN\r\n250-CHUNKING\r\n250-BINARYMIME\r\n"
            b"250-PIPELINING\r\n250 HELP\r\n"
            b"250 OK\r\n250 OK\r\n"
            b"354 End data with <CR><LF>.<CR><LF>\r\n",
        )
        server.dataReceived(
            b"first\r\n.\r\nMAIL FROM:<c@example.com>\r\n"
            b"RCPT TO:<d@example.com>\r\nRCPT TO:<e@example.com>\r\nDATA\r\n"
            b"second\r\n.\r\n"
        )
        self.assertEqual(len(transport.writes), 3)
        self.assertEqual(
            transport.writes[2],
            b"250 OK\r\n250 OK\r\n250 OK\r\n250 OK\r\n"
            b"354 End data with <CR><LF>.<CR><LF>\r\n250 OK\r\n",
        )
        self.assertEqual(
            [(m[0], m[1], m[2]) for m in handler.messages],
            [
                ("a@example.com", ["b@example.com"], b"first\r\n"),
                ("c@example.com", ["d@example.com", "e@example.com"], b"second\r\n"),
            ],
        )

    def test_errorsInBatch(self) -> None:
        """
        Refusals in a batch are answered in their place, and the commands
        after them are still handled.
        """
        tester = self.makeTester()
        tester.send(
            b"MAIL FROM:<a@example.com>\r\nEHLO c.example\r\n"
            b"RCPT TO:<b@example.com>\r\nMAIL FROM:<a@example.com>\r\n"
            b"DATA\r\nRCPT TO:<b@example.com>\r\nDATA\r\n"
        )
        self.assertEqual(
            [r.code for r in tester.replies()], [503, 250, 503, 250, 503, 250, 354]
        )

    def slowMail(self):
        """
        Return a handler whose C{handle_MAIL} returns a L{Deferred} that the
        test fires, and the list of those L{Deferred}s.
        """
        pending: list[Deferred] = []

        class Handler(Collector):
            def handle_MAIL(self, server, session, envelope, address, options):
                d = Deferred()
                pending.append(d)
                return d

        return Handler(), pending

    def test_slowHookHoldsLaterReplies(self) -> None:
        """
        While C{handle_MAIL}'s L{Deferred} is pending, the pipelined
        commands after it get no reply and reading is paused; when it fires,
        all replies come in order and reading resumes.
        """
        handler, pending = self.slowMail()
        tester = self.ready(handler)
        tester.send(b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n")
        self.assertEqual(tester.replies(), [])
        self.assertEqual(len(pending), 1)
        self.assertEqual(tester.transport.producerState, "paused")
        pending[0].callback(None)
        self.assertEqual(tester.replies(), [OK, OK, GO_AHEAD])
        self.assertEqual(tester.transport.producerState, "producing")
        self.assertEqual(tester.server.envelope.mail_from, "a@example.com")

    def test_slowHookStatus(self) -> None:
        """
        A slow C{handle_MAIL} that refuses: the pipelined RCPT and DATA are
        then answered as without a transaction.
        """
        handler, pending = self.slowMail()
        tester = self.ready(handler)
        tester.send(b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n")
        pending[0].callback("550 5.7.1 Go away")
        self.assertEqual(
            tester.replies(), [Reply(550, "5.7.1 Go away"), NEED_MAIL, NEED_RCPT]
        )

    def test_inputWhilePending(self) -> None:
        """
        Input that arrives while a hook is pending is queued and answered
        after it, in order.
        """
        handler, pending = self.slowMail()
        tester = self.ready(handler)
        tester.send(b"MAIL FROM:<a@example.com>\r\n")
        tester.send(b"RCPT TO:<b@example.com>\r\n")
        tester.send(b"NOOP\r\n")
        self.assertEqual(tester.replies(), [])
        pending[0].callback(None)
        self.assertEqual(tester.replies(), [OK, OK, OK])

    def test_asyncHookAwaitingDeferred(self) -> None:
        """
        An C{async def} hook awaiting a L{Deferred} holds the later replies
        and pauses reading until it returns.
        """
        gate = Deferred()

        class Handler(Collector):
            async def handle_MAIL(self, server, session, envelope, address, options):
                await gate
                envelope.mail_from = address
                return "250 2.1.0 Sender ok"

        tester = self.ready(Handler())
        tester.send(b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nNOOP\r\n")
        self.assertEqual(tester.replies(), [])
        self.assertEqual(tester.transport.producerState, "paused")
        gate.callback(None)
        self.assertEqual(tester.replies(), [Reply(250, "2.1.0 Sender ok"), OK, OK])
        self.assertEqual(tester.transport.producerState, "producing")

    def test_slowDataHook(self) -> None:
        """
        A slow C{handle_DATA} holds the replies of the next transaction
        pipelined after the data.
        """
        gate = Deferred()
        seen = []

        class Handler:
            def handle_DATA(self, server, session, envelope):
                seen.append(envelope.content)
                return gate

        tester = self.inData(Handler())
        tester.send(
            b"one\r\n.\r\nMAIL FROM:<c@example.com>\r\nRCPT TO:<d@example.com>\r\n"
        )
        self.assertEqual(tester.replies(), [])
        self.assertEqual(seen, [b"one\r\n"])
        gate.callback("250 Queued")
        self.assertEqual(tester.replies(), [Reply(250, "Queued"), OK, OK])
        self.assertEqual(tester.server.envelope.rcpt_tos, ["d@example.com"])

    def test_connectionLostWhilePending(self) -> None:
        """
        When the connection is lost while a hook is pending, the commands
        queued behind it are never run.
        """
        handler, pending = self.slowMail()
        calls = []
        handler.handle_RSET = lambda *args: calls.append("RSET")
        handler.handle_QUIT = lambda *args: calls.append("QUIT")
        tester = self.ready(handler)
        tester.send(b"MAIL FROM:<a@example.com>\r\nRSET\r\nQUIT\r\n")
        tester.server.connectionLost(None)
        pending[0].callback(None)
        self.assertEqual(calls, [])

    def test_severalSlowHooks(self) -> None:
        """
        Several slow RCPT hooks in a row are answered one after the other,
        each waiting for the one before.
        """
        pending: list[Deferred] = []

        class Handler:
            def handle_RCPT(self, server, session, envelope, address, options):
                d = Deferred()
                pending.append((address, d))
                return d

        tester = self.ready(Handler())
        tester.command("MAIL FROM:<a@example.com>")
        tester.send(b"RCPT TO:<b@example.com>\r\nRCPT TO:<c@example.com>\r\nNOOP\r\n")
        self.assertEqual([a for a, d in pending], ["b@example.com"])
        pending[0][1].callback(None)
        self.assertEqual(tester.replies(), [OK])
        self.assertEqual([a for a, d in pending], ["b@example.com", "c@example.com"])
        pending[1][1].callback("550 No such user")
        self.assertEqual(tester.replies(), [Reply(550, "No such user"), OK])
        self.assertEqual(tester.server.envelope.rcpt_tos, ["b@example.com"])


class BackpressureTests(ProtocolTestCase):
    """
    The server as a producer: when the transport's write buffer is full it
    stops handling input.
    """

    def test_pauseStopsProcessing(self) -> None:
        """
        After C{pauseProducing}, pipelined commands are not handled until
        C{resumeProducing}.
        """
        tester = self.makeTester()
        tester.server.pauseProducing()
        self.assertEqual(tester.transport.producerState, "paused")
        tester.send(b"NOOP\r\nHELO c.example\r\n")
        self.assertEqual(tester.replies(), [])
        self.assertIsNone(tester.server.session.host_name)
        tester.server.resumeProducing()
        self.assertEqual(tester.replies(), [OK, Reply(250, HOST)])
        self.assertEqual(tester.transport.producerState, "producing")

    def test_pauseInData(self) -> None:
        """
        While paused, message data is not consumed either.
        """
        handler = Collector()
        tester = self.ready(handler)
        tester.server.pauseProducing()
        tester.send(
            b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\n"
            b"DATA\r\nbody\r\n.\r\n"
        )
        self.assertEqual(tester.replies(), [])
        self.assertEqual(handler.messages, [])
        tester.server.resumeProducing()
        self.assertEqual(tester.replies(), [OK, OK, GO_AHEAD, OK])
        self.assertEqual(handler.messages[0][2], b"body\r\n")

    def test_resumeWhileHookPending(self) -> None:
        """
        C{resumeProducing} while a hook is pending does not run the commands
        queued behind the hook.
        """
        gate = Deferred()

        class Handler:
            def handle_NOOP(self, server, session, envelope, arg):
                return gate

        tester = self.makeTester(Handler())
        tester.send(b"NOOP\r\nRSET\r\n")
        tester.server.pauseProducing()
        tester.server.resumeProducing()
        self.assertEqual(tester.replies(), [])
        self.assertEqual(tester.transport.producerState, "paused")
        gate.callback(None)
        self.assertEqual(tester.replies(), [OK, OK])
        self.assertEqual(tester.transport.producerState, "producing")

    def test_hookFiresWhilePaused(self) -> None:
        """
        A hook that finishes while the transport is paused gets its reply
        out, but the commands behind it wait for C{resumeProducing}.
        """
        gate = Deferred()

        class Handler:
            def handle_NOOP(self, server, session, envelope, arg):
                return gate

        tester = self.makeTester(Handler())
        tester.send(b"NOOP\r\nRSET\r\n")
        tester.server.pauseProducing()
        gate.callback("250 Done")
        self.assertEqual(tester.replies(), [Reply(250, "Done")])
        tester.server.resumeProducing()
        self.assertEqual(tester.replies(), [OK])


class InputModeLoopTests(ProtocolTestCase):
    """
    The loop that reads the unread bytes in whatever mode each unit leaves
    the connection (L{Channel._process}).
    """

    def test_transactionInOneChunk(self) -> None:
        """
        A whole transaction and QUIT in one chunk switch from commands to
        data and back in the middle of it: every command is answered, in
        one write, and the message holds only its data.
        """
        handler = Collector()
        server, transport = connect(
            SMTPFactory(handler, reactor=Clock(), hostname=HOST)
        )
        server.dataReceived(
            b"EHLO c.example\r\nMAIL FROM:<a@example.com>\r\n"
            b"RCPT TO:<b@example.com>\r\nDATA\r\nNOOP\r\n.\r\nNOOP\r\nQUIT\r\n"
        )
        self.assertEqual(len(transport.writes), 2)
        replies = parseReplies(transport.writes[1])
        self.assertEqual([r.code for r in replies], [250, 250, 250, 354, 250, 250, 221])
        self.assertEqual(handler.messages[0][2], b"NOOP\r\n")
        self.assertTrue(transport.disconnecting)

    def test_dataEndWhileDataHookPending(self) -> None:
        """
        The commands after the end of the data, in the same chunk, wait for
        a pending C{handle_DATA} and are then read as commands, in order.
        """
        pending: list[Deferred] = []

        class Handler(Collector):
            def handle_DATA(self, server, session, envelope):
                super().handle_DATA(server, session, envelope)
                pending.append(Deferred())
                return pending[-1]

        handler = Handler()
        tester = self.inData(handler)
        tester.send(
            b"one\r\n.\r\nMAIL FROM:<c@example.com>\r\nRCPT TO:<d@example.com>\r\n"
        )
        self.assertEqual(tester.replies(), [])
        self.assertEqual(tester.transport.producerState, "paused")
        pending[0].callback("250 Delivered")
        self.assertEqual(tester.replies(), [Reply(250, "Delivered"), OK, OK])
        self.assertEqual(tester.transport.producerState, "producing")
        self.assertEqual([m[2] for m in handler.messages], [b"one\r\n"])
        self.assertEqual(tester.server.envelope.rcpt_tos, ["d@example.com"])

    def test_partialLinesWhileHookPending(self) -> None:
        """
        Bytes arriving in several chunks while a hook is pending, a line cut
        between two of them included, are kept and read after it, in order.
        """
        pending: list[Deferred] = []

        class Handler(Collector):
            def handle_MAIL(self, server, session, envelope, address, options):
                envelope.mail_from = address
                pending.append(Deferred())
                return pending[-1]

        tester = self.ready(Handler())
        tester.send(b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@exa")
        tester.send(b"mple.com>\r\nRCPT TO:<c@example.com>\r")
        tester.send(b"\nNO")
        tester.send(b"OP\r\n")
        self.assertEqual(tester.replies(), [])
        pending[0].callback(None)
        self.assertEqual(tester.replies(), [OK, OK, OK, OK])
        self.assertEqual(
            tester.server.envelope.rcpt_tos, ["b@example.com", "c@example.com"]
        )

    def test_startTLSDropsPartialLine(self) -> None:
        """
        What follows STARTTLS in its chunk is dropped, an incomplete line
        too: the bytes after the handshake do not complete it.
        """
        tester = tlsTester(
            self, Collector(), tls_context=certificates(self).serverOptions()
        )
        tester.send(b"EHLO c.example\r\nSTARTTLS\r\nMAIL FROM:<a")
        self.assertEqual(
            [r.code for r in tester.replies()], [250, 220], "EHLO, STARTTLS"
        )
        tester.server.handshakeCompleted()
        tester.send(b"@example.com>\r\nEHLO c.example\r\n")
        [refused, ehlo] = tester.replies()
        self.assertEqual(refused, Reply(500, "Error: bad syntax"))
        self.assertEqual(ehlo.code, 250)
        self.assertIsNone(tester.server.envelope.mail_from)

    def test_nothingRunAfterQuitInChunk(self) -> None:
        """
        The commands after QUIT in the same chunk are not run, nor are
        those completed by later bytes.
        """
        handler = Collector()
        tester = self.ready(handler)
        tester.send(b"NOOP\r\nQUIT\r\nMAIL FROM:<a@example.com>\r\nNOOP\r\nNO")
        self.assertEqual(tester.replies(), [OK, Reply(221, "Bye")])
        tester.send(b"OP\r\n")
        self.assertEqual(tester.replies(), [])
        self.assertIsNone(tester.server.envelope.mail_from)

    def test_nothingKeptAfterQuitInChunk(self) -> None:
        """
        The bytes after QUIT in the same chunk are not kept once the
        connection closes, as bytes arriving after it are not.
        """
        tester = self.ready()
        tester.send(b"QUIT\r\n" + b"NOOP\r\n" * 10000)
        self.assertEqual(tester.replies(), [Reply(221, "Bye")])
        self.assertEqual(tester.server._unread, b"")
