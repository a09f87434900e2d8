"""
Tests for the hooks on the life of a connection (C{handle_CONNECT},
C{handle_TIMEOUT}, C{handle_DISCONNECT}) and the PROXY allow-list
(C{proxy_protocol_trusted}), in L{twisted_smtpd._connhooks}; in memory,
with a L{Clock}.
"""

from __future__ import annotations

import base64
import smtplib
import socket
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone
from twisted.internet.task import deferLater
from twisted.internet.threads import deferToThread
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase

from tests._protocolsupport import HOST, Boom, connect
from tests._support import CLIENT_TIMEOUT, HOSTNAME, listen, readToEnd
from tests.test_proxyphase import CLIENT, startHAProxy, v1Header, v2Header
from tests.test_tls import FakeSSLTransport
from twisted_smtpd import LMTP, SMTPFactory, __version__, testing
from twisted_smtpd.testing import Reply, SMTPTester

GREETING = Reply(220, f"{HOST} twisted_smtpd {__version__}")
NO_VALID_SESSION = Reply(503, "5.5.1 Error: no valid session")


class LifeRecorder:
    """
    A handler that records the connection hooks it sees, and answers
    C{handle_CONNECT} and C{handle_TIMEOUT} with what it is given.

    @ivar calls: C{(hook, peer, proxy_data, extra)} for each call.
    """

    def __init__(self, connect: Any = None, timeout: Any = None) -> None:
        self.connectResult = connect
        self.timeoutResult = timeout
        self.calls: list[tuple[str, Any, Any, Any]] = []

    def handle_CONNECT(self, server, session, envelope):
        self.calls.append(("CONNECT", session.peer, session.proxy_data, envelope))
        return self.connectResult

    def handle_TIMEOUT(self, server, session, envelope):
        self.calls.append(("TIMEOUT", session.peer, None, None))
        return self.timeoutResult

    def handle_DISCONNECT(self, server, session, envelope, reason):
        self.calls.append(("DISCONNECT", session.peer, None, reason))

    def reasons(self) -> list[str]:
        """
        The reasons C{handle_DISCONNECT} was given, in order.
        """
        return [extra for hook, _, _, extra in self.calls if hook == "DISCONNECT"]


class DisconnectOnly:
    """
    A handler with C{handle_DISCONNECT} only.
    """

    def __init__(self) -> None:
        self.reasons: list[str] = []

    def handle_DISCONNECT(self, server, session, envelope, reason):
        self.reasons.append(reason)


def tester(handler: Any, **options: Any) -> SMTPTester:
    """
    Connect a server named L{HOST} to C{handler}.
    """
    options.setdefault("hostname", HOST)
    return SMTPTester(handler, **options)


def lose(tester: SMTPTester) -> None:
    """
    Tell the server its connection is gone, as the transport does once it
    closed (L{SMTPTester}'s transport only records that it was asked to).
    """
    tester.server.connectionLost(Failure(ConnectionDone()))


class ConnectTests(SynchronousTestCase):
    """
    C{handle_CONNECT} decides on a connection before the greeting.
    """

    def test_none(self) -> None:
        """
        C{None} greets as usual; the hook saw the peer, no PROXY data and an
        empty envelope.
        """
        handler = LifeRecorder()
        t = tester(handler)
        self.assertEqual(t.greeting, GREETING)
        [(hook, peer, proxyData, envelope)] = handler.calls
        self.assertEqual(
            (hook, peer, proxyData), ("CONNECT", ("127.0.0.1", 42424), None)
        )
        self.assertIsNone(envelope.mail_from)
        self.assertEqual(t.command("EHLO client.example").code, 250)

    def test_refuse421(self) -> None:
        """
        A C{421} reply is the only reply; the connection closes and
        C{handle_DISCONNECT} is told C{"refused"}.
        """
        handler = LifeRecorder("421 4.7.1 mx.example Go away")
        t = tester(handler)
        self.assertEqual(t.transport.value(), b"421 4.7.1 mx.example Go away\r\n")
        self.assertTrue(t.closed)
        t.send("EHLO client.example\r\n")
        self.assertEqual(t.replies(), [])
        lose(t)
        self.assertEqual(handler.reasons(), ["refused"])

    def test_greeting554(self) -> None:
        """
        A C{554} reply is the greeting; every command but QUIT then gets
        C{503}, unknown ones too, and QUIT gets C{221} (RFC 5321 section
        3.1).
        """
        handler = LifeRecorder("554 5.7.1 mx.example No SMTP service here")
        t = tester(handler)
        self.assertEqual(
            t.greeting, Reply(554, "5.7.1 mx.example No SMTP service here")
        )
        for line in [
            "EHLO client.example",
            "HELO client.example",
            "MAIL FROM:<a@example.com>",
            "RCPT TO:<b@example.com>",
            "DATA",
            "NOOP",
            "XYZZY",
        ]:
            self.assertEqual(t.command(line), NO_VALID_SESSION, line)
        self.assertFalse(t.closed)
        self.assertEqual(t.command("QUIT"), Reply(221, "Bye"))
        self.assertTrue(t.closed)
        lose(t)
        self.assertEqual(handler.reasons(), ["quit"])

    def test_greeting554Pipelined(self) -> None:
        """
        In the C{554} state, pipelined commands get one C{503} each, in
        order, and QUIT at the end still closes.
        """
        t = tester(LifeRecorder("554 No service"))
        t.send("EHLO a\r\nMAIL FROM:<a@example.com>\r\nQUIT\r\n")
        self.assertEqual(
            t.replies(), [NO_VALID_SESSION, NO_VALID_SESSION, Reply(221, "Bye")]
        )
        self.assertTrue(t.closed)

    def test_greeting554TooManyErrors(self) -> None:
        """
        The C{503} replies count as errors: a client that goes on is closed
        at C{hard_error_limit}.
        """
        t = tester(LifeRecorder("554 No service"), hard_error_limit=3)
        t.send("NOOP\r\n" * 5)
        self.assertEqual(
            t.replies(),
            [NO_VALID_SESSION] * 3
            + [Reply(421, f"4.7.0 {HOST} Error: too many errors")],
        )
        self.assertTrue(t.closed)

    def test_ownGreeting(self) -> None:
        """
        A C{220} reply is the greeting, sent as given.
        """
        t = tester(LifeRecorder("220 mx.example ESMTP ready"), protocol=LMTP)
        self.assertEqual(t.transport.value(), b"220 mx.example ESMTP ready\r\n")
        self.assertEqual(t.command("LHLO client.example").code, 250)

    def test_pending(self) -> None:
        """
        While the hook's L{Deferred} is pending, nothing is written and what
        the client sends is not read; once it fires, the greeting goes out
        and then the replies to what the client sent early.
        """
        decision: Deferred[Any] = Deferred()
        handler = LifeRecorder(decision)
        t = tester(handler)
        self.assertIsNone(t.greeting)
        t.send("EHLO client.example\r\nNOOP\r\n")
        self.assertEqual(t.transport.value(), b"")
        self.assertEqual(t.clock.getDelayedCalls(), [])
        decision.callback(None)
        replies = t.replies()
        self.assertEqual(replies[0], GREETING)
        self.assertEqual([r.code for r in replies[1:]], [250, 250])

    def test_pending421(self) -> None:
        """
        Early talkers are never read when the pending hook refuses.
        """
        decision: Deferred[Any] = Deferred()
        t = tester(LifeRecorder(decision))
        t.send("EHLO client.example\r\n")
        decision.callback("421 4.7.0 Not now")
        self.assertEqual(t.transport.value(), b"421 4.7.0 Not now\r\n")
        self.assertTrue(t.closed)

    def test_coroutine(self) -> None:
        """
        A coroutine hook works like a plain one, waiting or not.
        """
        decision: Deferred[Any] = Deferred()

        class Handler:
            async def handle_CONNECT(self, server, session, envelope):
                return await decision

        t = tester(Handler())
        self.assertEqual(t.transport.value(), b"")
        decision.callback("554 5.7.1 No")
        self.assertEqual(t.replies(), [Reply(554, "5.7.1 No")])
        self.assertEqual(t.command("HELO a"), NO_VALID_SESSION)

    def test_exception(self) -> None:
        """
        An exception in the hook is logged, and the client gets C{421} (no
        traceback, no exception text) and is disconnected.
        """

        class Handler:
            def handle_CONNECT(self, server, session, envelope):
                raise Boom("secret detail")

        t = tester(Handler())
        self.assertEqual(
            t.transport.value(),
            f"421 4.3.0 {HOST} Error: local error, try again later\r\n".encode(),
        )
        self.assertTrue(t.closed)
        self.assertEqual(len(self.flushLoggedErrors(Boom)), 1)

    def test_failedDeferred(self) -> None:
        """
        A L{Deferred} that fails is answered as an exception is.
        """
        decision: Deferred[Any] = Deferred()
        t = tester(LifeRecorder(decision))
        decision.errback(Boom())
        self.assertEqual([r.code for r in t.replies()], [421])
        self.assertTrue(t.closed)
        self.assertEqual(len(self.flushLoggedErrors(Boom)), 1)

    def test_clientGoneWhilePending(self) -> None:
        """
        A client that leaves while the hook decides gets nothing written
        and C{handle_DISCONNECT} is told C{"client gone"}, once.
        """
        decision: Deferred[Any] = Deferred()
        handler = LifeRecorder(decision)
        t = tester(handler)
        lose(t)
        decision.callback(None)
        self.assertEqual(t.transport.value(), b"")
        self.assertEqual(handler.reasons(), ["client gone"])

    def test_afterProxyHeader(self) -> None:
        """
        Behind a PROXY header, the hook runs after it, with the client it
        names as the peer and the header's data.
        """
        handler = LifeRecorder()
        t = tester(handler, proxy_protocol_timeout=5)
        self.assertEqual(handler.calls, [])
        t.send(v2Header())
        [(hook, peer, proxyData, _)] = handler.calls
        self.assertEqual((hook, peer), ("CONNECT", CLIENT))
        self.assertEqual(proxyData.version, 2)
        self.assertEqual(t.replies(), [GREETING])


class ConnectImplicitTLSTests(SynchronousTestCase):
    """
    On an implicit-TLS connection, C{handle_CONNECT} runs once the
    handshake is complete.
    """

    def test_afterHandshake(self) -> None:
        """
        Before the handshake completes the hook has not run and nothing is
        read; then it sees C{session.ssl}, and its C{554} greeting and the
        C{503} to what the client sent meanwhile go out.
        """
        seen = []

        class Handler:
            def handle_CONNECT(self, server, session, envelope):
                seen.append(session.ssl is not None)
                return "554 5.7.1 No"

        self.patch(testing, "StringTransport", FakeSSLTransport)
        t = tester(Handler())
        self.assertIsNone(t.greeting)
        t.send("EHLO client.example\r\n")
        self.assertEqual((seen, t.transport.value()), ([], b""))
        t.server.handshakeCompleted()
        self.assertEqual(seen, [True])
        self.assertEqual(t.replies(), [Reply(554, "5.7.1 No"), NO_VALID_SESSION])

    def test_refusedAfterHandshake(self) -> None:
        """
        A C{421} goes out over TLS once the handshake is complete, and the
        connection closes.
        """
        self.patch(testing, "StringTransport", FakeSSLTransport)
        t = tester(LifeRecorder("421 4.7.0 Not you"))
        t.server.handshakeCompleted()
        self.assertEqual(t.transport.value(), b"421 4.7.0 Not you\r\n")
        self.assertTrue(t.closed)

    def test_withoutHook(self) -> None:
        """
        Without the hook, the greeting is queued at once, as before.
        """
        self.patch(testing, "StringTransport", FakeSSLTransport)
        t = tester(DisconnectOnly())
        self.assertEqual(t.greeting, GREETING)


class DisconnectTests(SynchronousTestCase):
    """
    C{handle_DISCONNECT} is called once per connection, with the reason.
    """

    def test_quit(self) -> None:
        """
        QUIT: C{"quit"}, once, even if the connection is lost twice.
        """
        handler = DisconnectOnly()
        t = tester(handler)
        t.command("QUIT")
        self.assertEqual(handler.reasons, [])
        lose(t)
        self.assertEqual(handler.reasons, ["quit"])

    def test_clientGone(self) -> None:
        """
        A client that closes: C{"client gone"}; the envelope of the
        transaction cut short is still there for the hook.
        """
        envelopes = []

        class Handler:
            def handle_DISCONNECT(self, server, session, envelope, reason):
                envelopes.append((envelope.mail_from, reason))

        t = tester(Handler())
        t.command("EHLO client.example")
        t.command("MAIL FROM:<a@example.com>")
        lose(t)
        self.assertEqual(envelopes, [("a@example.com", "client gone")])

    def test_timeout(self) -> None:
        """
        An idle client: C{"timeout"}.
        """
        handler = DisconnectOnly()
        t = tester(handler, timeout=10)
        t.clock.advance(10)
        self.assertEqual(
            t.replies(), [Reply(421, f"4.4.2 {HOST} Error: timeout exceeded")]
        )
        lose(t)
        self.assertEqual(handler.reasons, ["timeout"])

    def test_limit(self) -> None:
        """
        A client closed for too many unknown commands: C{"limit"}.
        """
        handler = DisconnectOnly()
        t = tester(handler, max_unknown_commands=1)
        t.command("XYZZY")
        self.assertTrue(t.closed)
        lose(t)
        self.assertEqual(handler.reasons, ["limit"])

    def test_authFailureLimit(self) -> None:
        """
        A client closed for too many rejected AUTH attempts: C{"limit"}.
        """
        handler = DisconnectOnly()
        t = tester(
            handler,
            authenticator=lambda *args: False,
            auth_require_tls=False,
            auth_failure_limit=1,
        )
        t.command("EHLO c.example")
        blob = base64.b64encode(b"\0user\0wrong").decode()
        self.assertEqual(t.command(f"AUTH PLAIN {blob}").code, 535)
        self.assertEqual(t.command(f"AUTH PLAIN {blob}").code, 421)
        lose(t)
        self.assertEqual(handler.reasons, ["limit"])

    def test_shed(self) -> None:
        """
        A session closed to make room: C{"shed"}.
        """
        handler = DisconnectOnly()
        t = tester(handler)
        self.assertEqual(t.server.factory.shed(1), 1)
        lose(t)
        self.assertEqual(handler.reasons, ["shed"])

    def test_shutdown(self) -> None:
        """
        A session closed as the service shuts down: C{"shutdown"}.
        """
        handler = DisconnectOnly()
        t = tester(handler)
        t.server.factory.closeConnections(1)
        t.clock.advance(1)
        self.assertEqual(t.replies()[-1].code, 421)
        lose(t)
        self.assertEqual(handler.reasons, ["shutdown"])

    def test_refusedByLimit(self) -> None:
        """
        A connection over C{max_connections}: C{"refused"}, and the one
        served is not told anything.
        """
        handler = DisconnectOnly()
        factory = SMTPFactory(handler, max_connections=1, hostname=HOST)
        first, _ = connect(factory)
        second, transport = connect(factory)
        self.assertTrue(transport.value().startswith(b"421 "))
        second.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(handler.reasons, ["refused"])
        first.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(handler.reasons, ["refused", "client gone"])

    def test_badProxyHeader(self) -> None:
        """
        A bad PROXY header: C{"dropped"}.
        """
        handler = DisconnectOnly()
        t = tester(handler, proxy_protocol_timeout=5)
        t.send(b"GET / HTTP/1.0\r\n")
        self.assertTrue(t.transport.disconnected)
        lose(t)
        self.assertEqual(handler.reasons, ["dropped"])

    def test_exception(self) -> None:
        """
        An exception in the hook is logged; nothing reaches the client.
        """

        class Handler:
            def handle_DISCONNECT(self, server, session, envelope, reason):
                raise Boom()

        t = tester(Handler())
        t.command("QUIT")
        written = t.transport.value()
        lose(t)
        self.assertEqual(t.transport.value(), written)
        self.assertEqual(len(self.flushLoggedErrors(Boom)), 1)

    def test_deferredAndCoroutine(self) -> None:
        """
        A L{Deferred} or a coroutine is waited for by nobody: its failure
        is logged.
        """
        failing: Deferred[Any] = Deferred()
        seen = []

        class Handler:
            async def handle_DISCONNECT(self, server, session, envelope, reason):
                seen.append(reason)
                await failing

        t = tester(Handler())
        lose(t)
        failing.errback(Boom())
        self.assertEqual(seen, ["client gone"])
        self.assertEqual(len(self.flushLoggedErrors(Boom)), 1)


class TimeoutTests(SynchronousTestCase):
    """
    C{handle_TIMEOUT} runs before the C{421} of an idle client and may
    change that reply, not keep the connection.
    """

    def test_default(self) -> None:
        """
        C{None}: the usual C{421}.
        """
        handler = LifeRecorder(timeout=None)
        t = tester(handler, timeout=10)
        t.clock.advance(10)
        self.assertEqual(
            t.replies(), [Reply(421, f"4.4.2 {HOST} Error: timeout exceeded")]
        )
        self.assertIn("TIMEOUT", [c[0] for c in handler.calls])
        self.assertTrue(t.closed)

    def test_ownReply(self) -> None:
        """
        A reply replaces the C{421}; the connection closes anyway.
        """
        t = tester(LifeRecorder(timeout="421 4.4.2 Too slow, bye"), timeout=10)
        self.assertEqual(t.greeting, GREETING)
        t.clock.advance(10)
        self.assertEqual(t.replies(), [Reply(421, "4.4.2 Too slow, bye")])
        self.assertTrue(t.closed)

    def test_pending(self) -> None:
        """
        While the hook is pending, what the client sends is not read; then
        the reply closes the connection.
        """
        decision: Deferred[Any] = Deferred()
        t = tester(LifeRecorder(timeout=decision), timeout=10)
        t.clock.advance(10)
        t.send("NOOP\r\n")
        self.assertEqual(t.replies(), [])
        self.assertFalse(t.closed)
        decision.callback(None)
        self.assertEqual([r.code for r in t.replies()], [421])
        self.assertTrue(t.closed)

    def test_exception(self) -> None:
        """
        An exception is logged, and the usual C{421} closes.
        """

        class Handler:
            def handle_TIMEOUT(self, server, session, envelope):
                raise Boom()

        t = tester(Handler(), timeout=10)
        t.clock.advance(10)
        self.assertEqual(
            t.replies(), [Reply(421, f"4.4.2 {HOST} Error: timeout exceeded")]
        )
        self.assertEqual(len(self.flushLoggedErrors(Boom)), 1)


class TrustedProxyTests(SynchronousTestCase):
    """
    C{proxy_protocol_trusted}: the peers that may send a PROXY header.
    """

    def test_trusted(self) -> None:
        """
        A listed address may send a header, which works as usual.
        """
        handler = DisconnectOnly()
        t = tester(
            handler, proxy_protocol_timeout=5, proxy_protocol_trusted=["127.0.0.1"]
        )
        self.assertIsNone(t.greeting)
        t.send(v1Header())
        self.assertEqual(t.replies(), [GREETING])
        self.assertEqual(t.server.session.peer, CLIENT)
        self.assertEqual(handler.reasons, [])

    def test_trustedNetwork(self) -> None:
        """
        An address in a listed network, IPv4 or IPv6, may send a header.
        """
        for peer, trusted in [
            (("10.1.2.3", 1234), ["192.0.2.1", "10.0.0.0/8"]),
            (("2001:db8::5", 1234), ["2001:db8::/32"]),
            (("::ffff:10.1.2.3", 1234), ["10.0.0.0/8"]),
        ]:
            t = tester(
                DisconnectOnly(),
                peer=peer,
                proxy_protocol_timeout=5,
                proxy_protocol_trusted=trusted,
            )
            t.send(v2Header())
            self.assertEqual(t.replies(), [GREETING], peer)

    def test_untrusted(self) -> None:
        """
        Any other peer gets C{421} and is closed at once, before any of
        its bytes is read as a header; C{handle_DISCONNECT} is told
        C{"refused"}.
        """
        handler = DisconnectOnly()
        t = tester(
            handler,
            peer=("192.0.2.99", 5555),
            proxy_protocol_timeout=5,
            proxy_protocol_trusted=["127.0.0.1", "10.0.0.0/8"],
        )
        self.assertEqual(
            t.transport.value(),
            f"421 4.7.0 {HOST} Error: PROXY header not accepted from"
            " 192.0.2.99\r\n".encode(),
        )
        self.assertTrue(t.closed)
        t.send(v2Header() + b"EHLO a\r\n")
        self.assertEqual(t.server.session.peer, ("192.0.2.99", 5555))
        self.assertIsNone(t.server.session.proxy_data)
        # No PROXY header timer: only the one that ends the close.
        self.assertEqual(
            [call.func.__name__ for call in t.clock.getDelayedCalls()],
            ["abortConnection"],
        )
        lose(t)
        self.assertEqual(handler.reasons, ["refused"])
        self.assertEqual(t.server.factory.connections, 0)

    def test_emptyAnyPeer(self) -> None:
        """
        The default, an empty list, lets any peer send a header, as before.
        """
        t = tester(
            DisconnectOnly(), peer=("192.0.2.99", 5555), proxy_protocol_timeout=5
        )
        t.send(v1Header())
        self.assertEqual(t.replies(), [GREETING])

    def test_options(self) -> None:
        """
        The list needs C{proxy_protocol_timeout} and holds addresses and
        networks only.
        """
        with self.assertRaises(ValueError) as e:
            SMTPFactory(DisconnectOnly(), proxy_protocol_trusted=["127.0.0.1"])
        self.assertEqual(
            str(e.exception), "proxy_protocol_trusted needs a proxy_protocol_timeout"
        )
        with self.assertRaises(ValueError) as e:
            SMTPFactory(
                DisconnectOnly(),
                proxy_protocol_timeout=5,
                proxy_protocol_trusted=["proxy.example"],
            )
        self.assertIn("proxy_protocol_trusted: not an IP address", str(e.exception))
        with self.assertRaises(TypeError) as e:
            SMTPFactory(
                DisconnectOnly(),
                proxy_protocol_timeout=5,
                proxy_protocol_trusted="127.0.0.1",
            )
        self.assertIn("proxy_protocol_trusted must be a list", str(e.exception))


class NoHooksTests(SynchronousTestCase):
    """
    A handler without the connection hooks sees no change.
    """

    def test_plain(self) -> None:
        """
        The greeting is immediate and QUIT closes as before; none of the
        hooks is in C{config.hooks}.
        """
        t = tester(object())
        self.assertEqual(t.greeting, GREETING)
        hooks = t.server.config.hooks
        self.assertFalse({"CONNECT", "DISCONNECT", "TIMEOUT"} & set(hooks))
        self.assertEqual(t.command("QUIT"), Reply(221, "Bye"))
        lose(t)
        self.assertEqual(t.server.closeReason, "quit")


class ProxySeer:
    """
    A handler that records the peer C{handle_CONNECT} sees and the peer of
    each message, and why each connection ended.
    """

    def __init__(self) -> None:
        self.connected: list[Any] = []
        self.delivered: list[Any] = []
        self.reasons: list[str] = []

    def handle_CONNECT(self, server, session, envelope):
        self.connected.append((session.peer, session.proxy_data.version))

    def handle_DATA(self, server, session, envelope):
        self.delivered.append(session.peer)

    def handle_DISCONNECT(self, server, session, envelope, reason):
        self.reasons.append(reason)


async def waitFor(condition: Any, seconds: float = 5.0) -> None:
    """
    Wait, on the real reactor, until C{condition()} is true.

    @raise AssertionError: If it is not within C{seconds}.
    """
    from twisted.internet import reactor

    for _ in range(int(seconds / 0.01)):
        if condition():
            return
        await deferLater(reactor, 0.01)
    raise AssertionError(f"still not true after {seconds} seconds")


class TrustedHAProxyTests(TestCase):
    """
    A real HAProxy on 127.0.0.1 (Debian package C{haproxy}) sending PROXY
    headers to a server listening on 127.0.0.1 (real TCP, real reactor),
    with C{proxy_protocol_trusted} listing HAProxy's address or not.
    """

    timeout = 60

    async def test_trusted(self) -> None:
        """
        With HAProxy's address in the list, mail goes through and the hooks
        see the real client (its port is the client socket's, not
        HAProxy's).
        """
        handler = ProxySeer()
        listening = listen(
            self,
            handler,
            proxy_protocol_timeout=5,
            proxy_protocol_trusted=["127.0.0.0/8", "::1"],
        )
        proxy = startHAProxy(self, listening.port, "send-proxy")

        def client() -> Any:
            with smtplib.SMTP(
                "127.0.0.1", proxy.port, "client.example", CLIENT_TIMEOUT
            ) as c:
                local = c.sock.getsockname()
                refused = c.sendmail("a@example.com", ["b@example.com"], "Hi\r\n")
            return local, refused

        try:
            local, refused = await deferToThread(client)
        except Exception as e:
            raise AssertionError(f"{e!r}; {proxy.describe()}") from e
        self.assertEqual(refused, {})
        self.assertEqual(handler.connected, [(("127.0.0.1", local[1]), 1)])
        self.assertEqual(handler.delivered, [("127.0.0.1", local[1])])

    async def test_untrusted(self) -> None:
        """
        With HAProxy's address not in the list, the client gets the C{421}
        through HAProxy and the connection closes; C{handle_CONNECT} never
        runs and C{handle_DISCONNECT} is told C{"refused"}.
        """
        handler = ProxySeer()
        listening = listen(
            self,
            handler,
            proxy_protocol_timeout=5,
            proxy_protocol_trusted=["192.0.2.0/24"],
        )
        proxy = startHAProxy(self, listening.port, "send-proxy-v2")

        def client() -> bytes:
            with socket.create_connection(
                ("127.0.0.1", proxy.port), CLIENT_TIMEOUT
            ) as sock:
                return readToEnd(sock)

        data = await deferToThread(client)
        self.assertEqual(
            data,
            f"421 4.7.0 {HOSTNAME} Error: PROXY header not accepted from"
            " 127.0.0.1\r\n".encode(),
            proxy.describe(),
        )
        await waitFor(lambda: handler.reasons)
        self.assertEqual(handler.connected, [])
        self.assertEqual(handler.reasons, ["refused"])
