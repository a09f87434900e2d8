"""
Tests for L{twisted_smtpd._errors}: what the client is told, and what is
logged, when a command or a hook raises. No sockets, no real time.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from twisted.logger import capturedLogs, formatEvent
from twisted.trial.unittest import SynchronousTestCase

from tests._protocolsupport import (
    LOCAL_ERROR,
    NEED_MAIL,
    OK,
    SECRET,
    Boom,
    ProtocolTestCase,
)
from twisted_smtpd import LMTP, SMTP
from twisted_smtpd._errors import LOCAL_ERROR as LOCAL_REPLY
from twisted_smtpd._errors import errorReply
from twisted_smtpd.testing import Reply

PEER = ("192.0.2.1", 4242)


class ExceptionLoggingTests(ProtocolTestCase):
    """
    How exceptions are reported.
    """

    def test_loggedWithTwistedLogger(self) -> None:
        """
        An exception in a hook is logged as a failure event in the server's
        namespace.
        """

        class Handler:
            def handle_NOOP(self, server, session, envelope, arg):
                raise Boom(SECRET)

        tester = self.makeTester(Handler())
        with capturedLogs() as events:
            self.assertEqual(tester.command("NOOP"), LOCAL_ERROR)
        failures = [e for e in events if "log_failure" in e]
        self.assertEqual(len(failures), 1)
        self.assertIsInstance(failures[0]["log_failure"].value, Boom)
        self.assertEqual(failures[0]["log_namespace"], "twisted_smtpd.server")
        self.assertEqual(len(self.flushLoggedErrors(Boom)), 1)

    def test_exceptionInSubclassCommand(self) -> None:
        """
        An exception in a subclass's C{smtp_<VERB>} gives 451 too.
        """

        class Broken(SMTP):
            def smtp_XBROKEN(self, arg):
                raise Boom(SECRET)

        tester = self.makeTester(protocol=Broken)
        self.assertEqual(tester.command("XBROKEN"), LOCAL_ERROR)
        self.assertNotIn(SECRET.encode(), tester.transport.value())
        self.assertEqual(len(self.flushLoggedErrors(Boom)), 1)
        self.assertOpen(tester)

    def test_exceptionPipelined(self) -> None:
        """
        After an exception, pipelined commands are still answered in order.
        """

        class Handler:
            def handle_MAIL(self, server, session, envelope, address, options):
                raise Boom(SECRET)

        tester = self.ready(Handler())
        tester.send(b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nNOOP\r\n")
        self.assertEqual(tester.replies(), [LOCAL_ERROR, NEED_MAIL, OK])
        self.flushLoggedErrors(Boom)


class ExceptionHandler:
    """
    A handler whose C{handle_exception} returns (or raises) what it is
    given, and records the exceptions.
    """

    def __init__(self, result: Any) -> None:
        self.result = result
        self.errors: list[BaseException] = []

    def handle_exception(self, error: BaseException) -> Any:
        self.errors.append(error)
        if isinstance(self.result, Exception):
            raise self.result
        return self.result


class ErrorReplyTests(SynchronousTestCase):
    """
    L{errorReply}, on its own.
    """

    def test_noHook(self) -> None:
        """
        Without C{handle_exception} the reply is the generic 451, never the
        exception's text.
        """
        self.assertEqual(errorReply(object(), Boom(SECRET), PEER, None), LOCAL_REPLY)

    def test_str(self) -> None:
        """
        A C{str} that C{handle_exception} returns is the reply, and the hook
        is given the exception.
        """
        handler = ExceptionHandler("421 4.3.0 Sorry")
        error = Boom(SECRET)
        self.assertEqual(errorReply(handler, error, PEER, None), "421 4.3.0 Sorry")
        self.assertEqual(handler.errors, [error])

    def test_bytes(self) -> None:
        """
        C{bytes} from C{handle_exception} are the reply too.
        """
        handler = ExceptionHandler(b"451 4.3.0 Later")
        self.assertEqual(errorReply(handler, Boom(), PEER, None), b"451 4.3.0 Later")

    def test_none(self) -> None:
        """
        C{None} (or anything not a reply) from C{handle_exception} gives the
        generic 451.
        """
        for result in (None, 421, ["421 x"]):
            handler = ExceptionHandler(result)
            self.assertEqual(errorReply(handler, Boom(), PEER, None), LOCAL_REPLY)

    def test_raises(self) -> None:
        """
        C{handle_exception} raising gives the generic 451, its exception
        logged with the peer.
        """
        handler = ExceptionHandler(ValueError(SECRET))
        with capturedLogs() as events:
            self.assertEqual(errorReply(handler, Boom(), PEER, None), LOCAL_REPLY)
        [event] = [e for e in events if "log_failure" in e]
        self.assertIn("error in handle_exception", formatEvent(event))
        self.assertEqual(event["peer"], PEER)
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)

    def test_deferred(self) -> None:
        """
        A L{Deferred} from C{handle_exception} gives a L{Deferred} of the
        reply.
        """
        d: Deferred[str] = Deferred()
        result = errorReply(ExceptionHandler(d), Boom(), PEER, None)
        self.assertIsInstance(result, Deferred)
        self.assertNoResult(result)
        d.callback("421 4.3.0 Later")
        self.assertEqual(self.successResultOf(result), "421 4.3.0 Later")

    def test_deferredNone(self) -> None:
        """
        A L{Deferred} firing with C{None} gives the generic 451.
        """
        d: Deferred[None] = Deferred()
        result = errorReply(ExceptionHandler(d), Boom(), PEER, None)
        d.callback(None)
        self.assertEqual(self.successResultOf(result), LOCAL_REPLY)

    def test_deferredFails(self) -> None:
        """
        A L{Deferred} from C{handle_exception} that fails gives the generic
        451, the failure logged.
        """
        d: Deferred[str] = Deferred()
        result = errorReply(ExceptionHandler(d), Boom(), PEER, None)
        d.errback(ValueError(SECRET))
        self.assertEqual(self.successResultOf(result), LOCAL_REPLY)
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)

    def test_coroutine(self) -> None:
        """
        An C{async def handle_exception} that does not wait gives its reply
        at once.
        """

        class Handler:
            async def handle_exception(self, error):
                return "421 4.3.0 Async sorry"

        self.assertEqual(
            errorReply(Handler(), Boom(), PEER, None), "421 4.3.0 Async sorry"
        )


class ServerErrorReplyTests(ProtocolTestCase):
    """
    What the client gets when C{handle_exception} answers late or fails.
    """

    def test_deferredFailsThroughServer(self) -> None:
        """
        A hook that raises, then a C{handle_exception} whose L{Deferred}
        fails later: the client gets one 451 then, and the commands sent
        meanwhile are answered after it.
        """
        pending: list[Deferred] = []

        class Handler:
            def handle_NOOP(self, server, session, envelope, arg):
                raise Boom(SECRET)

            def handle_exception(self, error):
                pending.append(Deferred())
                return pending[-1]

        tester = self.makeTester(Handler())
        tester.send(b"NOOP\r\nRSET\r\n")
        self.assertEqual(tester.replies(), [])
        pending[0].errback(ValueError(SECRET))
        self.assertEqual(tester.replies(), [LOCAL_ERROR, OK])
        self.assertNotIn(SECRET.encode(), tester.transport.value())
        self.assertEqual(len(self.flushLoggedErrors(Boom, ValueError)), 2)

    def test_repliesNotCounted(self) -> None:
        """
        The replies to an exception, one per recipient after LMTP's data,
        report the server's trouble: they do not count towards
        C{hard_error_limit}, and the session goes on.
        """

        class Handler:
            def handle_DATA(self, server, session, envelope):
                raise Boom(SECRET)

        tester = self.makeTester(Handler(), protocol=LMTP, hard_error_limit=1)
        tester.send(
            b"LHLO c.example\r\nMAIL FROM:<a@example.com>\r\n"
            b"RCPT TO:<b@example.com>\r\nRCPT TO:<c@example.com>\r\n"
            b"DATA\r\nHello\r\n.\r\n"
        )
        self.assertEqual(
            [reply.code for reply in tester.replies()],
            [250, 250, 250, 250, 354, 451, 451],
        )
        self.assertEqual(len(self.flushLoggedErrors(Boom)), 1)
        self.assertFalse(tester.closed)
        self.assertEqual(tester.command("NOOP"), Reply(250, "2.0.0 OK"))
