"""
Tests for L{twisted_smtpd._connection}: the session of one connection below
the commands (the greeting, the L{Session} and L{Envelope} the handler
sees, and their lifetimes), driven in memory. No sockets, no real time.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock

from tests._protocolsupport import (
    HOST,
    LOCAL_ERROR,
    SECRET,
    Boom,
    Collector,
    ProtocolTestCase,
    connect,
)
from twisted_smtpd import SMTPFactory, __version__
from twisted_smtpd.testing import Reply


class GreetingTests(ProtocolTestCase):
    """
    The 220 greeting.
    """

    def test_greeting(self) -> None:
        """
        The greeting is C{220 <hostname> <ident>}, the default ident naming
        the product and its version.
        """
        tester = self.makeTester()
        self.assertEqual(
            tester.transport.value(),
            f"220 {HOST} twisted_smtpd {__version__}\r\n".encode(),
        )

    def test_ident(self) -> None:
        """
        The C{ident} option replaces the product name in the greeting.
        """
        tester = self.makeTester(ident="Fancy ESMTP 1.0")
        self.assertEqual(tester.greeting, Reply(220, f"{HOST} Fancy ESMTP 1.0"))

    def test_greetingIsOneWrite(self) -> None:
        """
        The greeting is written once, as soon as the connection is made.
        """
        server, transport = connect(
            SMTPFactory(Collector(), reactor=Clock(), hostname=HOST)
        )
        self.assertEqual(len(transport.writes), 1)
        self.assertTrue(transport.writes[0].startswith(b"220 mx.example "))


class SessionEnvelopeTests(ProtocolTestCase):
    """
    L{Session} and L{Envelope} as the handler sees them.
    """

    def test_peer(self) -> None:
        """
        C{session.peer} is the client's C{(host, port)}.
        """
        tester = self.makeTester(peer=("192.0.2.7", 50001))
        self.assertEqual(tester.server.session.peer, ("192.0.2.7", 50001))
        self.assertEqual(self.makeTester().server.session.peer, ("127.0.0.1", 42424))

    def test_peerIPv6(self) -> None:
        """
        Over IPv6, C{session.peer} has asyncio's (so aiosmtpd's) four items:
        host, port, flow label and scope.
        """
        tester = self.makeTester(peer=("2001:db8::5", 50001))
        self.assertEqual(tester.server.session.peer, ("2001:db8::5", 50001, 0, 0))

    def test_initialState(self) -> None:
        """
        Before the greeting the session has no host name and no extensions,
        and the envelope is empty.
        """
        tester = self.makeTester()
        session, envelope = tester.server.session, tester.server.envelope
        self.assertIsNone(session.host_name)
        self.assertFalse(session.extended_smtp)
        self.assertIs(session.transport, tester.transport)
        self.assertIsNone(envelope.mail_from)
        self.assertEqual(envelope.mail_options, [])
        self.assertEqual(envelope.rcpt_tos, [])
        self.assertEqual(envelope.rcpt_options, [])
        self.assertIsNone(envelope.content)
        self.assertFalse(envelope.smtp_utf8)

    def test_sessionLivesAsLongAsConnection(self) -> None:
        """
        The session object stays the same through greetings, transactions
        and resets.
        """
        tester = self.makeTester()
        session = tester.server.session
        tester.sendmail("a@example.com", ["b@example.com"], b"x\r\n")
        tester.command("RSET")
        tester.command("HELO again.example")
        self.assertIs(tester.server.session, session)

    def test_hooksSeeSameObjects(self) -> None:
        """
        Hooks get the server's current session and envelope.
        """
        seen = []

        class Handler:
            def handle_RCPT(self, server, session, envelope, address, options):
                seen.append((server, session, envelope))

        tester = self.ready(Handler())
        tester.command("MAIL FROM:<a@example.com>")
        tester.command("RCPT TO:<b@example.com>")
        self.assertEqual(
            seen, [(tester.server, tester.server.session, tester.server.envelope)]
        )

    def test_newEnvelopeAfterError(self) -> None:
        """
        After a DATA error, a new envelope.
        """
        tester = self.inData(data_size_limit=10)
        old = tester.server.envelope
        tester.send(b"x" * 50 + b"\r\n.\r\n")
        self.assertEqual(tester.replies()[0].code, 552)
        self.assertIsNot(tester.server.envelope, old)

    def envelopeKept(self, verb: str, line: str) -> bool:
        """
        Whether the envelope of a transaction is still the server's after
        C{line}, whose hook C{handle_<verb>} raises.
        """

        class Handler:
            def fail(self, *args: Any) -> None:
                raise Boom(SECRET)

        handler = Handler()
        setattr(handler, "handle_" + verb, handler.fail)
        tester = self.ready(handler)
        tester.command("MAIL FROM:<a@example.com>")
        old = tester.server.envelope
        self.assertEqual(tester.command(line), LOCAL_ERROR)
        self.assertEqual(len(self.flushLoggedErrors(Boom)), 1)
        if tester.server.envelope is not old:
            self.assertIsNone(tester.server.envelope.mail_from)
            return False
        self.assertEqual(old.mail_from, "a@example.com")
        return True

    def test_newEnvelopeAfterException(self) -> None:
        """
        After an exception in a hook that ends the transaction (here
        C{handle_VRFY}), a new envelope.
        """
        self.assertFalse(self.envelopeKept("VRFY", "VRFY b@example.com"))

    def test_sameEnvelopeAfterExceptionInRcpt(self) -> None:
        """
        An exception in C{handle_RCPT} answers that RCPT and keeps the
        envelope, as aiosmtpd does.
        """
        self.assertTrue(self.envelopeKept("RCPT", "RCPT TO:<b@example.com>"))

    def test_envelopeAfterData(self) -> None:
        """
        After a completed DATA the handler's envelope keeps the message and
        the server has a new one.
        """
        handler = Collector()
        tester = self.ready(handler)
        tester.sendmail("a@example.com", ["b@example.com"], b"x\r\n", helo=None)
        envelope = handler.envelopes[0]
        self.assertIsNot(tester.server.envelope, envelope)
        self.assertEqual(envelope.content, b"x\r\n")
        self.assertEqual(envelope.rcpt_tos, ["b@example.com"])


class ConnectionStateTests(ProtocolTestCase):
    """
    What L{Connection} keeps for the command groups: per-group state,
    calls at close, a new session after STARTTLS.
    """

    def test_stateOf(self) -> None:
        """
        C{stateOf} makes a group's state once per connection and gives the
        same object after.
        """
        made: list[object] = []

        def factory() -> object:
            made.append(object())
            return made[-1]

        server = self.makeTester().server
        first = server.stateOf("key", factory)
        self.assertIs(server.stateOf("key", factory), first)
        self.assertIsNot(server.stateOf("other", factory), first)
        self.assertEqual(len(made), 2)
        self.assertIsNot(self.makeTester().server.stateOf("key", factory), first)

    def test_atClose(self) -> None:
        """
        The calls given to C{atClose} run once, in order, when the
        connection is lost.
        """
        calls: list[str] = []
        server = self.makeTester().server
        server.atClose(lambda: calls.append("one"))
        server.atClose(lambda: calls.append("two"))
        self.assertEqual(calls, [])
        server.connectionLost(None)
        server.connectionLost(None)
        self.assertEqual(calls, ["one", "two"])

    def test_resetSession(self) -> None:
        """
        C{resetSession} makes a new session that keeps the facts of the
        connection (peer, PROXY data, TLS, transport) and nothing else.
        """
        tester = self.ready()
        server = tester.server
        old = server.session
        old.proxy_data = proxy = object()
        old.ssl = {"protocol": "TLSv1.3"}
        old.authenticated = True
        server.resetSession()
        new = server.session
        self.assertIsNot(new, old)
        self.assertEqual(
            (new.peer, new.proxy_data, new.ssl, new.transport),
            (("127.0.0.1", 42424), proxy, {"protocol": "TLSv1.3"}, tester.transport),
        )
        self.assertEqual(
            (new.host_name, new.extended_smtp, new.authenticated), (None, False, None)
        )

    def test_timeoutReply(self) -> None:
        """
        C{timeoutConnection} says why before closing.
        """
        tester = self.makeTester()
        tester.server.timeoutConnection()
        self.assertEqual(
            tester.replies(), [Reply(421, f"4.4.2 {HOST} Error: timeout exceeded")]
        )
        self.assertTrue(tester.closed)

    def test_hookWithoutHandlerHook(self) -> None:
        """
        C{hook} for a verb the handler has no hook for passes C{None} on at
        once.
        """
        server = self.makeTester().server
        self.assertEqual(
            server.hook("NOOP", lambda status: ("then", status)), ("then", None)
        )

    def test_hookPending(self) -> None:
        """
        C{hook} gives a L{Deferred} while the handler's hook is pending, and
        passes its result on when it fires.
        """
        d: Deferred[str] = Deferred()

        class Handler:
            def handle_NOOP(self, server, session, envelope, arg):
                return d

        server = self.makeTester(Handler()).server
        result = server.hook("NOOP", lambda status: ("then", status), "arg")
        self.assertNoResult(result)
        d.callback("250 Later")
        self.assertEqual(self.successResultOf(result), ("then", "250 Later"))
