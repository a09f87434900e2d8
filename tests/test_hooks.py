"""
Tests for L{twisted_smtpd._hooks} and the one place hooks are called
(L{twisted_smtpd._connection.Connection.hook}): every hook, with each way a
hook may deliver its result (a value, a L{Deferred}, a coroutine), driven in
memory. No sockets, no real time.
"""

from __future__ import annotations

import gc
import sys
from typing import Any

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.task import Clock, deferLater
from twisted.trial.unittest import SynchronousTestCase

from tests._protocolsupport import (
    EHLO_LINES,
    GO_AHEAD,
    HOST,
    LOCAL_ERROR,
    NEED_MAIL,
    NEED_RCPT,
    OK,
    SECRET,
    SEND_HELO,
    VRFY_OK,
    Boom,
    ProtocolTestCase,
)
from twisted_smtpd._hooks import DONE, settle
from twisted_smtpd.testing import Reply, SMTPTester


class HookStyleMixin:
    """
    Tests of every hook, run once per way a hook can deliver its result:
    L{deliver} turns a value (or an exception to raise) into what the hook
    returns, and L{command} sends a line and lets the L{Clock} run.
    """

    clock: Clock

    def deliver(self, value: Any) -> Any:
        raise NotImplementedError()

    def setUp(self) -> None:
        super().setUp()
        self.clock = Clock()

    def handler(self, **results: Any) -> StyledHandler:
        """
        Make a handler whose hooks return C{results[verb]} in this style.
        """
        return StyledHandler(self.deliver, results)

    def connect(self, handler: Any, **options: Any) -> SMTPTester:
        options.setdefault("hostname", HOST)
        return SMTPTester(handler, reactor=self.clock, **options)

    def command(self, tester: SMTPTester, line: str) -> Reply:
        """
        Send C{line}, let any delayed hook (and a delayed
        C{handle_exception} after it) finish, and return the one reply.
        """
        tester.send(line.encode() + b"\r\n")
        for _ in range(3):
            self.clock.advance(1)
        replies = tester.replies()
        self.assertEqual(len(replies), 1, replies)
        return replies[0]

    def greeted(self, handler: Any, **options: Any) -> SMTPTester:
        tester = self.connect(handler, **options)
        self.assertEqual(self.command(tester, "EHLO c.example").code, 250)
        return tester

    def inTransaction(self, handler: Any) -> SMTPTester:
        tester = self.greeted(handler)
        self.assertEqual(self.command(tester, "MAIL FROM:<a@example.com>"), OK)
        self.assertEqual(self.command(tester, "RCPT TO:<b@example.com>"), OK)
        return tester

    # HELO and EHLO

    def test_heloNone(self) -> None:
        """
        C{handle_HELO} returning C{None}: the default reply and the host
        name recorded.
        """
        handler = self.handler()
        tester = self.connect(handler)
        self.assertEqual(self.command(tester, "HELO c.example"), Reply(250, HOST))
        self.assertEqual(tester.server.session.host_name, "c.example")
        self.assertEqual(handler.calls, [("HELO", "c.example")])

    def test_heloStatusWithoutHostName(self) -> None:
        """
        C{handle_HELO} returning a status: sent verbatim, and the host name
        is not recorded unless the hook sets it.
        """
        tester = self.connect(self.handler(HELO="250 Hello there"))
        self.assertEqual(
            self.command(tester, "HELO c.example"), Reply(250, "Hello there")
        )
        self.assertIsNone(tester.server.session.host_name)
        self.assertEqual(self.command(tester, "MAIL FROM:<a@example.com>"), SEND_HELO)

    def test_heloStatusSettingHostName(self) -> None:
        """
        C{handle_HELO} that sets C{session.host_name} and returns a status
        lets the transaction go on.
        """

        def helo(server, session, envelope, hostname):
            session.host_name = hostname
            return "250 Welcome"

        tester = self.connect(self.handler(HELO=helo))
        self.assertEqual(self.command(tester, "HELO c.example"), Reply(250, "Welcome"))
        self.assertEqual(tester.server.session.host_name, "c.example")
        self.assertEqual(self.command(tester, "MAIL FROM:<a@example.com>"), OK)

    def test_heloRefused(self) -> None:
        """
        C{handle_HELO} may refuse the greeting.
        """
        tester = self.connect(self.handler(HELO="550 5.7.1 Not you"))
        self.assertEqual(
            self.command(tester, "HELO c.example"), Reply(550, "5.7.1 Not you")
        )
        self.assertEqual(self.command(tester, "MAIL FROM:<a@example.com>"), SEND_HELO)

    def test_ehloNewNone(self) -> None:
        """
        A 5-argument C{handle_EHLO} gets the reply lines and, returning
        C{None}, the default lines are sent and the host name recorded.
        """
        handler = self.handler()
        tester = self.connect(handler)
        reply = self.command(tester, "EHLO c.example")
        self.assertEqual(reply.lines, EHLO_LINES)
        self.assertEqual(tester.server.session.host_name, "c.example")
        self.assertEqual(
            handler.calls,
            [
                (
                    "EHLO",
                    "c.example",
                    ["250-" + line for line in EHLO_LINES[:-1]] + ["250 HELP"],
                )
            ],
        )

    def test_ehloNewReplaces(self) -> None:
        """
        The list returned by a 5-argument C{handle_EHLO} replaces the
        reply lines.
        """

        def ehlo(server, session, envelope, hostname, responses):
            session.host_name = hostname
            return ["250-mx.example greets " + hostname, "250-X-CUSTOM", "250 HELP"]

        tester = self.connect(self.handler(EHLO=ehlo))
        reply = self.command(tester, "EHLO c.example")
        self.assertEqual(
            reply.lines, ["mx.example greets c.example", "X-CUSTOM", "HELP"]
        )
        self.assertEqual(self.command(tester, "MAIL FROM:<a@example.com>"), OK)

    def test_ehloNewRefused(self) -> None:
        """
        A 5-argument C{handle_EHLO} may return a single refusal line.
        """
        tester = self.connect(self.handler(EHLO=["554 5.7.1 Go away"]))
        self.assertEqual(
            self.command(tester, "EHLO c.example"), Reply(554, "5.7.1 Go away")
        )
        self.assertEqual(self.command(tester, "MAIL FROM:<a@example.com>"), SEND_HELO)

    def test_ehloOld(self) -> None:
        """
        A 4-argument C{handle_EHLO}: the server's lines are sent, then the
        hook's status as the last line.
        """
        handler = OldEhloHandler(self.deliver, {"EHLO": "250 Have fun"})
        tester = self.connect(handler)
        reply = self.command(tester, "EHLO c.example")
        self.assertEqual(reply.lines, EHLO_LINES[:-1] + ["Have fun"])
        self.assertEqual(handler.calls, [("EHLO", "c.example")])

    def test_ehloOldNone(self) -> None:
        """
        A 4-argument C{handle_EHLO} returning C{None} ends with the default
        C{250 HELP} line.
        """
        handler = OldEhloHandler(self.deliver, {})
        tester = self.connect(handler)
        self.assertEqual(self.command(tester, "EHLO c.example").lines, EHLO_LINES)
        self.assertEqual(tester.server.session.host_name, "c.example")

    # NOOP, QUIT, VRFY, RSET

    def test_noop(self) -> None:
        """
        C{handle_NOOP} gets the argument; its status is sent verbatim.
        """
        handler = self.handler(NOOP="250 2.0.0 Nothing done")
        tester = self.connect(handler)
        self.assertEqual(
            self.command(tester, "NOOP some thing"), Reply(250, "2.0.0 Nothing done")
        )
        self.assertEqual(handler.calls, [("NOOP", "some thing")])

    def test_noopNone(self) -> None:
        """
        C{handle_NOOP} returning C{None}: C{250 OK}; without an argument the
        hook gets C{None}.
        """
        handler = self.handler()
        tester = self.connect(handler)
        self.assertEqual(self.command(tester, "NOOP"), OK)
        self.assertEqual(handler.calls, [("NOOP", None)])

    def test_quit(self) -> None:
        """
        C{handle_QUIT}'s status is sent, then the connection is closed.
        """
        handler = self.handler(QUIT="221 2.0.0 See you")
        tester = self.connect(handler)
        self.assertEqual(self.command(tester, "QUIT"), Reply(221, "2.0.0 See you"))
        self.assertTrue(tester.closed)
        self.assertEqual(handler.calls, [("QUIT",)])

    def test_quitNone(self) -> None:
        """
        C{handle_QUIT} returning C{None}: C{221 Bye} and the close.
        """
        tester = self.connect(self.handler())
        self.assertEqual(self.command(tester, "QUIT"), Reply(221, "Bye"))
        self.assertTrue(tester.closed)

    def test_vrfy(self) -> None:
        """
        C{handle_VRFY} gets the address; its status is sent verbatim.
        """
        handler = self.handler(VRFY="250 Bob <bob@example.com>")
        tester = self.connect(handler)
        self.assertEqual(
            self.command(tester, "VRFY bob@example.com"),
            Reply(250, "Bob <bob@example.com>"),
        )
        self.assertEqual(handler.calls, [("VRFY", "bob@example.com")])

    def test_vrfyNone(self) -> None:
        """
        C{handle_VRFY} returning C{None}: the default 252.
        """
        tester = self.connect(self.handler())
        self.assertEqual(self.command(tester, "VRFY bob@example.com"), VRFY_OK)

    def test_rset(self) -> None:
        """
        C{handle_RSET}'s status is sent verbatim, and the envelope is new
        anyway.
        """
        handler = self.handler(RSET="250 2.0.0 Flushed")
        tester = self.inTransaction(handler)
        self.assertEqual(self.command(tester, "RSET"), Reply(250, "2.0.0 Flushed"))
        self.assertIsNone(tester.server.envelope.mail_from)
        self.assertIn(("RSET",), handler.calls)

    def test_rsetNone(self) -> None:
        """
        C{handle_RSET} returning C{None}: C{250 OK}.
        """
        tester = self.inTransaction(self.handler())
        self.assertEqual(self.command(tester, "RSET"), OK)
        self.assertIsNone(tester.server.envelope.mail_from)

    # MAIL, RCPT, DATA

    def test_mailNone(self) -> None:
        """
        C{handle_MAIL} returning C{None}: C{250 OK}, and the server still
        records the sender and options.
        """
        handler = self.handler()
        tester = self.greeted(handler)
        self.assertEqual(
            self.command(tester, "MAIL FROM:<a@example.com> BODY=8BITMIME"), OK
        )
        self.assertEqual(tester.server.envelope.mail_from, "a@example.com")
        self.assertEqual(tester.server.envelope.mail_options, ["BODY=8BITMIME"])
        self.assertIn(("MAIL", "a@example.com", ["BODY=8BITMIME"]), handler.calls)

    def test_mailRefused(self) -> None:
        """
        C{handle_MAIL}'s refusal is sent verbatim and no transaction
        starts.
        """
        tester = self.greeted(self.handler(MAIL="550 5.7.1 Sender blocked"))
        self.assertEqual(
            self.command(tester, "MAIL FROM:<a@example.com>"),
            Reply(550, "5.7.1 Sender blocked"),
        )
        self.assertIsNone(tester.server.envelope.mail_from)
        self.assertEqual(self.command(tester, "RCPT TO:<b@example.com>"), NEED_MAIL)

    def test_mailAcceptedByHook(self) -> None:
        """
        C{handle_MAIL} that sets C{envelope.mail_from} itself and returns a
        status starts the transaction with that status.
        """

        def mail(server, session, envelope, address, options):
            envelope.mail_from = address
            envelope.mail_options.extend(options)
            return f"250 2.1.0 Sender <{address}> ok"

        tester = self.greeted(self.handler(MAIL=mail))
        self.assertEqual(
            self.command(tester, "MAIL FROM:<a@example.com>"),
            Reply(250, "2.1.0 Sender <a@example.com> ok"),
        )
        self.assertEqual(tester.server.envelope.mail_from, "a@example.com")
        self.assertEqual(self.command(tester, "RCPT TO:<b@example.com>"), OK)

    def test_rcptNone(self) -> None:
        """
        C{handle_RCPT} returning C{None}: C{250 OK} and the recipient
        recorded.
        """
        handler = self.handler()
        tester = self.greeted(handler)
        self.command(tester, "MAIL FROM:<a@example.com>")
        self.assertEqual(self.command(tester, "RCPT TO:<b@example.com>"), OK)
        self.assertEqual(tester.server.envelope.rcpt_tos, ["b@example.com"])
        self.assertIn(("RCPT", "b@example.com", []), handler.calls)

    def test_rcptRefused(self) -> None:
        """
        C{handle_RCPT}'s refusal is sent verbatim and the recipient is not
        recorded.
        """
        tester = self.greeted(self.handler(RCPT="550 5.1.1 No such user"))
        self.command(tester, "MAIL FROM:<a@example.com>")
        self.assertEqual(
            self.command(tester, "RCPT TO:<b@example.com>"),
            Reply(550, "5.1.1 No such user"),
        )
        self.assertEqual(tester.server.envelope.rcpt_tos, [])
        self.assertEqual(self.command(tester, "DATA"), NEED_RCPT)

    def test_rcptAcceptedByHook(self) -> None:
        """
        C{handle_RCPT} appending to C{rcpt_tos} itself and returning a
        status: the recipient is recorded once.
        """

        def rcpt(server, session, envelope, address, options):
            envelope.rcpt_tos.append(address)
            return "250 2.1.5 Recipient ok"

        tester = self.greeted(self.handler(RCPT=rcpt))
        self.command(tester, "MAIL FROM:<a@example.com>")
        self.assertEqual(
            self.command(tester, "RCPT TO:<b@example.com>"),
            Reply(250, "2.1.5 Recipient ok"),
        )
        self.assertEqual(tester.server.envelope.rcpt_tos, ["b@example.com"])

    def test_data(self) -> None:
        """
        C{handle_DATA} sees the whole envelope; its status is sent verbatim.
        """
        seen = []

        def data(server, session, envelope):
            seen.append((envelope.mail_from, envelope.rcpt_tos, envelope.content))
            return "250 2.0.0 Queued as X1"

        tester = self.inTransaction(self.handler(DATA=data))
        self.assertEqual(self.command(tester, "DATA"), GO_AHEAD)
        self.assertEqual(
            self.command(tester, "Hello\r\n."), Reply(250, "2.0.0 Queued as X1")
        )
        self.assertEqual(seen, [("a@example.com", ["b@example.com"], b"Hello\r\n")])
        self.assertIsNone(tester.server.envelope.mail_from)

    def test_dataNone(self) -> None:
        """
        C{handle_DATA} returning C{None}: C{250 OK}.
        """
        tester = self.inTransaction(self.handler())
        self.command(tester, "DATA")
        self.assertEqual(self.command(tester, "Hello\r\n."), OK)

    def test_dataRefused(self) -> None:
        """
        C{handle_DATA} may refuse the message; the envelope is new.
        """
        tester = self.inTransaction(self.handler(DATA="554 5.6.0 Bad message"))
        self.command(tester, "DATA")
        self.assertEqual(
            self.command(tester, "Hello\r\n."), Reply(554, "5.6.0 Bad message")
        )
        self.assertIsNone(tester.server.envelope.mail_from)

    # Exceptions

    def assertLocalError(self, tester: SMTPTester, reply: Reply) -> None:
        """
        Assert a 451 that does not leak the exception, one logged L{Boom},
        a clear envelope and a usable connection.
        """
        self.assertEqual(reply, LOCAL_ERROR)
        self.assertNotIn(SECRET.encode(), tester.transport.value())
        self.assertNotIn(b"Boom", tester.transport.value())
        self.assertEqual(len(self.flushLoggedErrors(Boom)), 1)
        self.assertIsNone(tester.server.envelope.mail_from)
        self.assertEqual(tester.server.envelope.rcpt_tos, [])
        self.assertFalse(tester.closed)
        self.assertEqual(self.command(tester, "RSET"), OK)

    def test_exceptionInHelo(self) -> None:
        """
        An exception in C{handle_HELO} gives 451.
        """
        tester = self.connect(self.handler(HELO=Boom(SECRET)))
        self.assertLocalError(tester, self.command(tester, "HELO c.example"))

    def test_exceptionInEhlo(self) -> None:
        """
        An exception in C{handle_EHLO} gives 451.
        """
        tester = self.connect(self.handler(EHLO=Boom(SECRET)))
        self.assertLocalError(tester, self.command(tester, "EHLO c.example"))

    def test_exceptionInNoop(self) -> None:
        """
        An exception in C{handle_NOOP} gives 451.
        """
        tester = self.connect(self.handler(NOOP=Boom(SECRET)))
        self.assertLocalError(tester, self.command(tester, "NOOP"))

    def test_exceptionInVrfy(self) -> None:
        """
        An exception in C{handle_VRFY} gives 451.
        """
        tester = self.connect(self.handler(VRFY=Boom(SECRET)))
        self.assertLocalError(tester, self.command(tester, "VRFY a@example.com"))

    def test_exceptionInQuit(self) -> None:
        """
        An exception in C{handle_QUIT} gives 451.
        """
        tester = self.connect(self.handler(QUIT=Boom(SECRET)))
        self.assertLocalError(tester, self.command(tester, "QUIT"))

    def test_exceptionInMail(self) -> None:
        """
        An exception in C{handle_MAIL} gives 451 and no transaction.
        """
        tester = self.greeted(self.handler(MAIL=Boom(SECRET)))
        self.assertLocalError(tester, self.command(tester, "MAIL FROM:<a@example.com>"))
        self.assertEqual(self.command(tester, "RCPT TO:<b@example.com>"), NEED_MAIL)

    def test_exceptionInRcpt(self) -> None:
        """
        An exception in C{handle_RCPT} gives 451 for that recipient alone:
        the transaction goes on, and the message goes to the recipients
        accepted, as with aiosmtpd.
        """

        def rcpt(server, session, envelope, address, options):
            return Boom(SECRET) if address == "b@example.com" else None

        handler = self.handler(RCPT=rcpt, DATA=lambda *args: None)
        tester = self.greeted(handler)
        self.assertEqual(self.command(tester, "MAIL FROM:<a@example.com>"), OK)
        self.assertEqual(self.command(tester, "RCPT TO:<b@example.com>"), LOCAL_ERROR)
        self.assertNotIn(SECRET.encode(), tester.transport.value())
        self.assertEqual(len(self.flushLoggedErrors(Boom)), 1)
        self.assertEqual(self.command(tester, "RCPT TO:<c@example.com>"), OK)
        envelope = tester.server.envelope
        self.assertEqual(self.command(tester, "DATA"), GO_AHEAD)
        self.assertEqual(self.command(tester, "Hello\r\n."), OK)
        self.assertEqual(
            (envelope.mail_from, envelope.rcpt_tos, envelope.content),
            ("a@example.com", ["c@example.com"], b"Hello\r\n"),
        )

    def test_exceptionInRset(self) -> None:
        """
        An exception in C{handle_RSET} gives 451.
        """
        tester = self.inTransaction(self.handler(RSET=Boom(SECRET)))
        reply = self.command(tester, "RSET")
        self.assertEqual(reply, LOCAL_ERROR)
        self.assertEqual(len(self.flushLoggedErrors(Boom)), 1)
        self.assertIsNone(tester.server.envelope.mail_from)
        self.assertEqual(self.command(tester, "NOOP"), OK)

    def test_exceptionInData(self) -> None:
        """
        An exception in C{handle_DATA} gives 451 after the dot, and the next
        transaction works.
        """
        tester = self.inTransaction(self.handler(DATA=Boom(SECRET)))
        self.command(tester, "DATA")
        self.assertLocalError(tester, self.command(tester, "Hello\r\n."))
        self.assertEqual(self.command(tester, "MAIL FROM:<c@example.com>"), OK)
        self.assertEqual(self.command(tester, "RCPT TO:<d@example.com>"), OK)
        self.assertEqual(self.command(tester, "DATA"), GO_AHEAD)

    def test_handleException(self) -> None:
        """
        The reply of C{handle_exception} is used, and it gets the exception.
        """
        handler = self.handler(NOOP=Boom(SECRET), exception="421 4.3.0 Sorry")
        tester = self.connect(handler)
        self.assertEqual(self.command(tester, "NOOP"), Reply(421, "4.3.0 Sorry"))
        self.flushLoggedErrors(Boom)
        [(name, error)] = [c for c in handler.calls if c[0] == "exception"]
        self.assertIsInstance(error, Boom)

    def test_handleExceptionNone(self) -> None:
        """
        C{handle_exception} returning C{None} gives 451.
        """
        handler = self.handler(NOOP=Boom(SECRET), exception=None)
        tester = self.connect(handler)
        self.assertLocalError(tester, self.command(tester, "NOOP"))

    def test_handleExceptionRaises(self) -> None:
        """
        C{handle_exception} raising gives 451 and both errors are logged.
        """
        handler = self.handler(NOOP=Boom(SECRET), exception=ValueError("again"))
        tester = self.connect(handler)
        reply = self.command(tester, "NOOP")
        self.assertEqual(reply, LOCAL_ERROR)
        self.assertNotIn(b"again", tester.transport.value())
        self.assertEqual(len(self.flushLoggedErrors(Boom)), 1)
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)
        self.assertFalse(tester.closed)
        self.assertEqual(self.command(tester, "RSET"), OK)

    def assertOpen(self, tester: SMTPTester) -> None:
        self.assertFalse(tester.closed)
        self.assertEqual(self.command(tester, "NOOP"), OK)


class StyledHandler:
    """
    A handler with every hook; each records its call and returns
    C{results[verb]} (called first if it is a function) through C{deliver}.
    The key C{"exception"}, when present, adds C{handle_exception}.
    """

    def __init__(self, deliver: Any, results: dict[str, Any]) -> None:
        self.deliver = deliver
        self.results = results
        self.calls: list[tuple[Any, ...]] = []
        if "exception" in results:
            self.handle_exception = self._handleException

    def _call(self, verb: str, hookArgs: tuple[Any, ...], *args: Any) -> Any:
        self.calls.append((verb, *args))
        value = self.results.get(verb)
        if callable(value) and not isinstance(value, Exception):
            value = value(*hookArgs, *args)
        return self.deliver(value)

    def _handleException(self, error: Exception) -> Any:
        self.calls.append(("exception", error))
        return self.deliver(self.results["exception"])

    def handle_HELO(self, server, session, envelope, hostname):
        return self._call("HELO", (server, session, envelope), hostname)

    def handle_EHLO(self, server, session, envelope, hostname, responses):
        self.calls.append(("EHLO", hostname, list(responses)))
        value = self.results.get("EHLO")
        if callable(value) and not isinstance(value, Exception):
            value = value(server, session, envelope, hostname, responses)
        return self.deliver(value)

    def handle_NOOP(self, server, session, envelope, arg):
        return self._call("NOOP", (server, session, envelope), arg)

    def handle_QUIT(self, server, session, envelope):
        return self._call("QUIT", (server, session, envelope))

    def handle_VRFY(self, server, session, envelope, address):
        return self._call("VRFY", (server, session, envelope), address)

    def handle_MAIL(self, server, session, envelope, address, mail_options):
        return self._call("MAIL", (server, session, envelope), address, mail_options)

    def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        return self._call("RCPT", (server, session, envelope), address, rcpt_options)

    def handle_RSET(self, server, session, envelope):
        return self._call("RSET", (server, session, envelope))

    def handle_DATA(self, server, session, envelope):
        return self._call("DATA", (server, session, envelope))


class OldEhloHandler(StyledHandler):
    """
    A L{StyledHandler} whose C{handle_EHLO} has aiosmtpd's old 4-argument
    form.
    """

    def handle_EHLO(self, server, session, envelope, hostname):  # type: ignore
        return self._call("EHLO", (server, session, envelope), hostname)


class PlainHookTests(HookStyleMixin, ProtocolTestCase):
    """
    Hooks that return their result, or raise.
    """

    def deliver(self, value: Any) -> Any:
        if isinstance(value, Exception):
            raise value
        return value


class FiredDeferredHookTests(HookStyleMixin, ProtocolTestCase):
    """
    Hooks that return a L{Deferred} that has already fired.
    """

    def deliver(self, value: Any) -> Any:
        if isinstance(value, Exception):
            return fail(value)
        return succeed(value)


class LaterDeferredHookTests(HookStyleMixin, ProtocolTestCase):
    """
    Hooks that return a L{Deferred} that fires a second later on the
    L{Clock}.
    """

    def deliver(self, value: Any) -> Any:
        def result() -> Any:
            if isinstance(value, Exception):
                raise value
            return value

        return deferLater(self.clock, 1, result)


class CoroutineHookTests(HookStyleMixin, ProtocolTestCase):
    """
    Hooks that return a coroutine awaiting a L{Deferred} that fires a second
    later on the L{Clock}, as a Twisted-style C{async def} does.
    """

    def deliver(self, value: Any) -> Any:
        async def hook() -> Any:
            await deferLater(self.clock, 1, lambda: None)
            if isinstance(value, Exception):
                raise value
            return value

        return hook()


class AbandonedCoroutineTests(ProtocolTestCase):
    """
    A coroutine hook still waiting when its connection is gone.
    """

    def test_collectedQuietly(self) -> None:
        """
        A coroutine hook waiting forever on a connection that is gone is
        closed when it is collected (its C{finally} runs) without an
        "exception ignored" report.
        """
        finalized = []

        class Handler:
            async def handle_NOOP(self, server, session, envelope, arg):
                try:
                    await Deferred()
                finally:
                    finalized.append(True)

        tester = self.ready(Handler())
        tester.send(b"NOOP\r\n")
        tester.server.connectionLost(None)
        unraisable: list[Any] = []
        self.patch(sys, "unraisablehook", unraisable.append)
        del tester
        gc.collect()
        self.assertEqual(unraisable, [])
        self.assertEqual(finalized, [True])


class AsyncHandlerTests(ProtocolTestCase):
    """
    Handlers written for aiosmtpd: C{async def} hooks and C{await
    server.push(...)}.
    """

    def test_aiosmtpdStyleHandler(self) -> None:
        """
        A handler written the aiosmtpd way runs unchanged.
        """
        messages = []

        class Handler:
            async def handle_RCPT(self, server, session, envelope, address, options):
                if not address.endswith("@example.com"):
                    return "550 not relaying to that domain"
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_DATA(self, server, session, envelope):
                messages.append(
                    (
                        session.peer,
                        envelope.mail_from,
                        envelope.rcpt_tos,
                        envelope.content,
                    )
                )
                return "250 Message accepted for delivery"

        tester = self.ready(Handler())
        self.assertEqual(tester.command("MAIL FROM:<a@example.org>"), OK)
        self.assertEqual(
            tester.command("RCPT TO:<b@example.net>"),
            Reply(550, "not relaying to that domain"),
        )
        self.assertEqual(tester.command("RCPT TO:<b@example.com>"), OK)
        self.assertEqual(tester.command("DATA"), GO_AHEAD)
        tester.send(b"Hi\r\n.\r\n")
        self.assertEqual(
            tester.replies(), [Reply(250, "Message accepted for delivery")]
        )
        self.assertEqual(
            messages,
            [(("127.0.0.1", 42424), "a@example.org", ["b@example.com"], b"Hi\r\n")],
        )

    def test_awaitPushInHook(self) -> None:
        """
        C{await server.push(...)} in a hook sends its line before the hook's
        reply.
        """

        class Handler:
            async def handle_NOOP(self, server, session, envelope, arg):
                await server.push("250-pushed first")
                return "250 then returned"

        tester = self.makeTester(Handler())
        self.assertEqual(
            tester.command("NOOP"), Reply(250, "pushed first\nthen returned")
        )

    def test_pushFromPlainHook(self) -> None:
        """
        A plain hook may push lines too.
        """

        class Handler:
            def handle_VRFY(self, server, session, envelope, address):
                server.push("252-about " + address)
                return "252 will try"

        tester = self.makeTester(Handler())
        self.assertEqual(
            tester.command("VRFY a@example.com"),
            Reply(252, "about a@example.com\nwill try"),
        )

    def test_asyncHandleException(self) -> None:
        """
        An C{async def handle_exception} that awaits: its reply is used.
        """
        gate = Deferred()

        class Handler:
            def handle_NOOP(self, server, session, envelope, arg):
                raise Boom(SECRET)

            async def handle_exception(self, error):
                await gate
                return f"450 4.3.0 {type(error).__name__} happened"

        tester = self.makeTester(Handler())
        tester.send(b"NOOP\r\nRSET\r\n")
        self.assertEqual(tester.replies(), [])
        gate.callback(None)
        self.assertEqual(tester.replies(), [Reply(450, "4.3.0 Boom happened"), OK])
        self.assertEqual(len(self.flushLoggedErrors(Boom)), 1)

    def test_asyncHandleExceptionRaises(self) -> None:
        """
        An C{async def handle_exception} that raises gives 451.
        """

        class Handler:
            def handle_NOOP(self, server, session, envelope, arg):
                raise Boom(SECRET)

            async def handle_exception(self, error):
                raise ValueError("nope")

        tester = self.makeTester(Handler())
        self.assertEqual(tester.command("NOOP"), LOCAL_ERROR)
        self.assertEqual(len(self.flushLoggedErrors(Boom, ValueError)), 2)
        self.assertFalse(tester.closed)
        self.assertEqual(tester.command("RSET"), OK)


class SettleTests(SynchronousTestCase):
    """
    L{settle}: a hook's result as a value when it is known, else as a
    L{Deferred}.
    """

    def test_value(self) -> None:
        """
        A plain value comes back as it is.
        """
        marker = object()
        self.assertIs(settle(marker), marker)
        self.assertIsNone(settle(None))

    def test_firedDeferred(self) -> None:
        """
        A L{Deferred} that already fired gives its result.
        """
        self.assertEqual(settle(succeed("250 OK")), "250 OK")

    def test_failedDeferred(self) -> None:
        """
        A L{Deferred} that already failed raises its exception.
        """
        self.assertRaises(Boom, settle, fail(Boom()))

    def test_pendingDeferred(self) -> None:
        """
        A pending L{Deferred} comes back as it is.
        """
        d: Deferred[str] = Deferred()
        self.assertIs(settle(d), d)

    def test_coroutineDone(self) -> None:
        """
        A coroutine that does not wait gives its value, with no
        L{Deferred}.
        """

        async def hook() -> str:
            return "250 Done"

        self.assertEqual(settle(hook()), "250 Done")

    def test_coroutineRaises(self) -> None:
        """
        A coroutine that raises before waiting raises at once.
        """

        async def hook() -> None:
            raise Boom()

        self.assertRaises(Boom, settle, hook())

    def test_coroutineWaits(self) -> None:
        """
        A coroutine that waits becomes a L{Deferred} of its value, resumed
        with what it awaited.
        """
        gate: Deferred[str] = Deferred()

        async def hook() -> str:
            value = await gate
            return value + " later"

        result = settle(hook())
        self.assertIsInstance(result, Deferred)
        self.assertNoResult(result)
        gate.callback("250")
        self.assertEqual(self.successResultOf(result), "250 later")

    def test_coroutineWaitFails(self) -> None:
        """
        An exception in what a waiting coroutine awaits is thrown into it.
        """
        gate: Deferred[str] = Deferred()

        async def hook() -> str:
            try:
                await gate
            except Boom:
                return "451 caught"
            return "250 not caught"

        result = settle(hook())
        gate.errback(Boom())
        self.assertEqual(self.successResultOf(result), "451 caught")

    def test_done(self) -> None:
        """
        L{DONE} is an awaitable that completes at once.
        """

        async def hook() -> str:
            await DONE
            await DONE
            return "250 OK"

        self.assertEqual(settle(hook()), "250 OK")
        self.assertEqual(repr(DONE), "<Done>")
