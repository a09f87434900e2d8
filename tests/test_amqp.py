# -*- test-case-name: tests.test_amqp -*-
"""
Tests for L{twisted_smtpd.handlers.AMQP}: in memory with a fake publisher
and a L{Clock}, then against a real, private RabbitMQ node.
"""

from __future__ import annotations

import atexit
import smtplib
import time
import uuid
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.internet.threads import deferToThread
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from tests._protocolsupport import OK, ProtocolTestCase
from tests._support import listen, smtpClient
from twisted_smtpd import Envelope, LoginPassword, Session, _amqp
from twisted_smtpd._amqp import DEFAULT_MAX_MESSAGE_SIZE
from twisted_smtpd._amqpformat import (
    CONTENT_TYPE,
    FormatError,
    decodeMessage,
    encodeMessage,
    messageFacts,
)
from twisted_smtpd._amqppublisher import (
    IMessagePublisher,
    PikaPublisher,
    PublishFailed,
    connectionParameters,
)
from twisted_smtpd._cli import makeHandler
from twisted_smtpd.handlers import AMQP
from twisted_smtpd.testing import Reply

MESSAGE = b"Subject: hello\r\nMessage-ID: <1@example>\r\n\r\nBody\r\n.dot\r\n"


@implementer(IMessagePublisher)
class FakePublisher:
    """
    An L{IMessagePublisher} that records each publication and lets the test
    settle it.
    """

    def __init__(self, available: bool = True) -> None:
        self.available = available
        self.started = 0
        self.stopped = 0
        self.published: list[tuple[bytes, str, int, str]] = []
        self.confirms: list[Deferred[None]] = []

    def start(self) -> None:
        self.started += 1

    def stop(self) -> Deferred[None]:
        self.stopped += 1
        done: Deferred[None] = Deferred()
        done.callback(None)
        return done

    def publish(
        self, body: bytes, messageId: str, timestamp: int, contentType: str
    ) -> Deferred[None]:
        self.published.append((body, messageId, timestamp, contentType))
        confirm: Deferred[None] = Deferred()
        self.confirms.append(confirm)
        return confirm


class FormatTests(SynchronousTestCase):
    """
    The published body: a length, a JSON header, the message.
    """

    def test_roundTrip(self) -> None:
        """
        A body decodes back into its header and the exact message bytes.
        """
        facts = {"version": 1, "id": "x", "rcpt_tos": ["a@b"]}
        body = encodeMessage(facts, MESSAGE)
        self.assertEqual(body[:4], len(body[4 : -len(MESSAGE)]).to_bytes(4, "big"))
        self.assertEqual(decodeMessage(body), (facts, MESSAGE))

    def test_badBodies(self) -> None:
        """
        Short, truncated, unreadable or other-version bodies raise
        L{FormatError}, a L{ValueError}.
        """
        good = encodeMessage({"version": 1}, b"m")
        for body in (
            b"\x00\x00",
            good[:6],
            b"\x00\x00\x00\x02{x",
            encodeMessage({"version": 2}, b"m"),
            encodeMessage([1], b"m"),  # type: ignore[arg-type]
        ):
            self.assertRaises(FormatError, decodeMessage, body)
        self.assertTrue(issubclass(FormatError, ValueError))

    def test_facts(self) -> None:
        """
        The header carries the envelope, the DSN, SMTPUTF8 and REQUIRETLS
        facts, the peer, TLS and the AUTH login, never the password.
        """
        session = Session()
        session.peer = ("192.0.2.1", 4000)
        session.host_name = "client.example"
        session.ssl = {"protocol": "TLSv1.3", "cipher": ("TLS_AES", "TLSv1.3", 256)}
        session.authenticated = True
        session.auth_data = LoginPassword(b"jane", b"s3cret")
        envelope = Envelope()
        envelope.mail_from = "a@example.com"
        envelope.rcpt_tos = ["b@example.com"]
        envelope.smtp_utf8 = True
        envelope.requiretls = True
        envelope.dsn_ret = "HDRS"
        facts = messageFacts(session, envelope, "id1", 12.5)
        self.assertEqual(
            facts,
            {
                "version": 1,
                "id": "id1",
                "timestamp": 12.5,
                "mail_from": "a@example.com",
                "rcpt_tos": ["b@example.com"],
                "mail_options": [],
                "rcpt_options": [],
                "peer": ["192.0.2.1", 4000],
                "helo": "client.example",
                "tls": {"protocol": "TLSv1.3", "cipher": "TLS_AES"},
                "auth": {"login": "jane"},
                "smtputf8": True,
                "requiretls": True,
                "dsn": {"ret": "HDRS", "envid": None, "rcpt": [None]},
            },
        )
        self.assertNotIn(b"s3cret", encodeMessage(facts, b""))

    def test_plainFacts(self) -> None:
        """
        A plaintext, anonymous session over a UNIX socket without DSN has
        C{None} for TLS and AUTH and no C{dsn}, C{smtputf8}, C{requiretls}.
        """
        session = Session()
        session.peer = "/run/smtpd.sock"
        envelope = Envelope()
        envelope.mail_from = "<>"
        facts = messageFacts(session, envelope, "i", 1.0)
        self.assertEqual(facts["peer"], "/run/smtpd.sock")
        self.assertIsNone(facts["tls"])
        self.assertIsNone(facts["auth"])
        for key in ("dsn", "smtputf8", "requiretls"):
            self.assertNotIn(key, facts)


class HandlerTests(ProtocolTestCase):
    """
    The handler on the wire, with a fake publisher and a L{Clock}.
    """

    def setUp(self) -> None:
        super().setUp()
        self.clock = Clock()
        self.publisher = FakePublisher()

    def handler(self, **options: Any) -> AMQP:
        return AMQP(
            "amqp://guest:guest@127.0.0.1/",
            "mail",
            publisher=self.publisher,
            reactor=self.clock,
            **options,
        )

    def transaction(self, handler: AMQP, message: bytes = MESSAGE, **options: Any):
        """
        Run MAIL, RCPT, DATA and the message; return the tester and the
        replies to the end of data so far.
        """
        tester = self.inData(handler, reactor=self.clock, **options)
        tester.send(message.replace(b"\r\n.", b"\r\n..") + b".\r\n")
        return tester, tester.replies()

    def test_interface(self) -> None:
        """
        L{PikaPublisher} provides L{IMessagePublisher}; the handler starts
        its publisher with L{AMQP.start} and stops it with L{AMQP.stop}.
        """
        verifyObject(
            IMessagePublisher, PikaPublisher("amqp://h/", "q", reactor=self.clock)
        )
        handler = self.handler()
        handler.start()
        handler.start()
        self.assertEqual(self.publisher.started, 2)
        self.successResultOf(handler.stop())
        self.assertEqual(self.publisher.stopped, 1)

    def test_acceptedAfterConfirm(self) -> None:
        """
        The client gets 250 only once the broker confirmed; the published
        body decodes into the envelope and the exact message.
        """
        handler = self.handler()
        tester, replies = self.transaction(handler)
        self.assertEqual(replies, [])
        [(body, messageId, timestamp, contentType)] = self.publisher.published
        self.publisher.confirms[0].callback(None)
        self.assertEqual(tester.replies(), [Reply(250, f"OK queued as {messageId}")])
        facts, message = AMQP.decode(body)
        self.assertEqual(message, MESSAGE)
        self.assertEqual(contentType, CONTENT_TYPE)
        self.assertEqual(facts["id"], messageId)
        self.assertEqual(int(facts["timestamp"]), timestamp)
        self.assertEqual(facts["mail_from"], "a@example.com")
        self.assertEqual(facts["rcpt_tos"], ["b@example.com"])
        self.assertEqual(facts["peer"], ["127.0.0.1", 42424])
        self.assertEqual(handler.published, 1)
        self.assertOpen(tester)

    def test_eachMessageItsOwnId(self) -> None:
        """
        Two messages get two different message ids.
        """
        handler = self.handler()
        tester, _ = self.transaction(handler)
        self.publisher.confirms[0].callback(None)
        self.assertEqual(tester.replies()[0].code, 250)
        self.assertEqual(tester.command("MAIL FROM:<c@example.com>"), OK)
        self.assertEqual(tester.command("RCPT TO:<d@example.com>"), OK)
        tester.command("DATA")
        tester.send(MESSAGE + b".\r\n")
        self.publisher.confirms[1].callback(None)
        ids = {p[1] for p in self.publisher.published}
        self.assertEqual(len(ids), 2)

    def test_refused(self) -> None:
        """
        A nack, a return or a closed channel (L{PublishFailed}) gives 451
        4.3.0 with the reason, and the session goes on.
        """
        handler = self.handler()
        tester, _ = self.transaction(handler)
        self.publisher.confirms[0].errback(PublishFailed("message refused"))
        self.assertEqual(
            tester.replies(),
            [Reply(451, "4.3.0 Message not queued (message refused), try again later")],
        )
        self.assertEqual(handler.failed, {"message refused": 1})
        self.assertOpen(tester)

    def test_publishObserved(self) -> None:
        """
        Each publication is reported to the metrics (L{observePublish}):
        how long the broker took to decide, and whether it confirmed.
        """
        observed: list[tuple[float, bool]] = []
        self.patch(_amqp, "observePublish", lambda s, ok: observed.append((s, ok)))
        handler = self.handler()
        tester, _ = self.transaction(handler)
        self.clock.advance(0.25)
        self.publisher.confirms[0].callback(None)
        tester.send(
            b"MAIL FROM:<c@example.com>\r\nRCPT TO:<d@example.com>\r\nDATA\r\n"
            + MESSAGE.replace(b"\r\n.", b"\r\n..")
            + b".\r\n"
        )
        self.clock.advance(0.5)
        self.publisher.confirms[1].errback(PublishFailed("message refused"))
        self.assertEqual(observed, [(0.25, True), (0.5, False)])

    def test_unexpectedError(self) -> None:
        """
        Any other failure of the publisher is logged and gives 451 4.3.0.
        """
        handler = self.handler()
        tester, _ = self.transaction(handler)
        self.publisher.confirms[0].errback(RuntimeError("boom"))
        [reply] = tester.replies()
        self.assertEqual(reply.code, 451)
        self.assertIn("4.3.0", reply.text)
        self.assertNotIn("boom", reply.text)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_confirmTimeout(self) -> None:
        """
        No confirm within C{confirm_timeout} gives 451 4.3.0; a confirm
        that comes later changes nothing.
        """
        handler = self.handler(confirm_timeout=5)
        tester, _ = self.transaction(handler)
        self.clock.advance(4.9)
        self.assertEqual(tester.replies(), [])
        self.clock.advance(0.1)
        [reply] = tester.replies()
        self.assertEqual(
            reply,
            Reply(
                451,
                "4.3.0 Message not queued (no confirm from the broker in time),"
                " try again later",
            ),
        )
        self.publisher.confirms[0].callback(None)
        self.assertEqual(tester.replies(), [])
        self.assertOpen(tester)

    def test_unavailable(self) -> None:
        """
        While the broker is unavailable the end of data gets 451 4.3.0 at
        once and nothing is published.
        """
        self.publisher.available = False
        tester, replies = self.transaction(self.handler())
        self.assertEqual(
            replies, [Reply(451, "4.3.0 Message queue unavailable, try again later")]
        )
        self.assertEqual(self.publisher.published, [])

    def test_refuseAtMail(self) -> None:
        """
        With C{refuse_at_mail}, MAIL gets 451 4.3.0 while the broker is
        unavailable, and starts the transaction as usual when it is back.
        """
        handler = self.handler(refuse_at_mail=True)
        self.publisher.available = False
        tester = self.ready(handler, reactor=self.clock)
        self.assertEqual(
            tester.command("MAIL FROM:<a@example.com> BODY=8BITMIME"),
            Reply(451, "4.3.0 Message queue unavailable, try again later"),
        )
        self.publisher.available = True
        self.assertEqual(tester.command("MAIL FROM:<a@example.com> BODY=8BITMIME"), OK)
        self.assertEqual(tester.command("RCPT TO:<b@example.com>"), OK)
        tester.command("DATA")
        tester.send(MESSAGE + b".\r\n")
        facts, _ = AMQP.decode(self.publisher.published[0][0])
        self.assertEqual(facts["mail_from"], "a@example.com")
        self.assertEqual(facts["mail_options"], ["BODY=8BITMIME"])

    def test_noMailHookByDefault(self) -> None:
        """
        Without C{refuse_at_mail} the handler has no C{handle_MAIL}: MAIL
        costs no hook call.
        """
        self.assertFalse(hasattr(self.handler(), "handle_MAIL"))

    def test_tooBig(self) -> None:
        """
        A message over C{max_message_size} gets 552 5.3.4 and is not
        published; so does one that only the JSON header takes over it.
        """
        for limit in (len(MESSAGE) - 1, len(MESSAGE) + 10):
            self.publisher.published.clear()
            tester, replies = self.transaction(self.handler(max_message_size=limit))
            self.assertEqual(
                replies, [Reply(552, "5.3.4 Message too big for the message queue")]
            )
            self.assertEqual(self.publisher.published, [])
            self.assertOpen(tester)

    def test_defaultMaxSize(self) -> None:
        """
        The default maximum size is RabbitMQ's, 128 MiB.
        """
        self.assertEqual(self.handler().max_message_size, 128 * 1024 * 1024)
        self.assertEqual(DEFAULT_MAX_MESSAGE_SIZE, 128 * 1024 * 1024)

    def test_manyLongRecipients(self) -> None:
        """
        A thousand long recipients travel in the body, complete.
        """
        handler = self.handler()
        tester = self.ready(handler, reactor=self.clock)
        tester.command("MAIL FROM:<a@example.com>")
        rcpts = [f"{'r' * 200}{i}@example.com" for i in range(1000)]
        for rcpt in rcpts:
            tester.send(f"RCPT TO:<{rcpt}>\r\n")
        tester.send(b"DATA\r\n" + MESSAGE.replace(b"\n.", b"\n..") + b".\r\n")
        facts, message = AMQP.decode(self.publisher.published[0][0])
        self.assertEqual(facts["rcpt_tos"], rcpts)
        self.assertEqual(message, MESSAGE)

    def test_badOptions(self) -> None:
        """
        A missing queue or a non-positive limit is a L{ValueError}.
        """
        for options in (
            {"queue": ""},
            {"max_message_size": 0},
            {"confirm_timeout": -1},
            {"retry_max_delay": 0},
            {"max_length_bytes": 0},
        ):
            kwargs: dict[str, Any] = {"queue": "q", **options}
            self.assertRaises(
                ValueError,
                AMQP,
                "amqp://h/",
                publisher=self.publisher,
                reactor=self.clock,
                **kwargs,
            )

    def test_connectionParameters(self) -> None:
        """
        The URL gives host, port, vhost and credentials; heartbeat and the
        blocked-connection timeout default to 60 s unless the query sets
        them; a URL that is not C{amqp://} or C{amqps://} is refused.
        """
        parameters = connectionParameters("amqp://u:p@broker.example:5700/mail")
        self.assertEqual(
            (parameters.host, parameters.port, parameters.virtual_host),
            ("broker.example", 5700, "mail"),
        )
        self.assertEqual(parameters.credentials.username, "u")
        self.assertEqual(parameters.heartbeat, 60)
        self.assertEqual(parameters.blocked_connection_timeout, 60)
        parameters = connectionParameters(
            "amqp://h/?heartbeat=5&blocked_connection_timeout=7"
        )
        self.assertEqual(parameters.heartbeat, 5)
        self.assertEqual(parameters.blocked_connection_timeout, 7)
        self.assertRaises(ValueError, connectionParameters, "http://h/")


class FakeChannel:
    """
    Pika's Twisted channel as the publisher uses it: C{basic_publish}
    returns a L{Deferred} the test fires, as pika does on the confirm.
    """

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.published: list[tuple[Any, ...]] = []
        self.confirms: list[Deferred[Any]] = []

    def basic_publish(
        self, exchange: str, routingKey: str, body: bytes, *, properties, mandatory
    ) -> Deferred[Any]:
        if self.error is not None:
            raise self.error
        self.published.append((exchange, routingKey, body, properties, mandatory))
        self.confirms.append(Deferred())
        return self.confirms[-1]


class PikaPublisherTests(SynchronousTestCase):
    """
    L{PikaPublisher} on a fake channel: what it publishes and how pika's
    outcomes become L{PublishFailed}.
    """

    def setUp(self) -> None:
        self.publisher = PikaPublisher(
            "amqp://h/", "mail", maxLengthBytes=1000, reactor=Clock()
        )
        self.channel = FakeChannel()
        self.publisher._channel = self.channel

    def reason(self, confirmed: Deferred[None]) -> str:
        return self.failureResultOf(confirmed, PublishFailed).value.reason

    def test_queueArguments(self) -> None:
        """
        The queue is declared quorum, reject-publish, with the length limit.
        """
        self.assertEqual(
            self.publisher.arguments,
            {
                "x-queue-type": "quorum",
                "x-overflow": "reject-publish",
                "x-max-length-bytes": 1000,
            },
        )

    def test_published(self) -> None:
        """
        A persistent, mandatory message to the queue through the default
        exchange, with its id, timestamp and content type; the result fires
        on the confirm.
        """
        confirmed = self.publisher.publish(b"body", "id1", 1234, CONTENT_TYPE)
        [(exchange, key, body, properties, mandatory)] = self.channel.published
        self.assertEqual((exchange, key, body, mandatory), ("", "mail", b"body", True))
        self.assertEqual(
            (
                properties.delivery_mode,
                properties.message_id,
                properties.timestamp,
                properties.content_type,
            ),
            (2, "id1", 1234, CONTENT_TYPE),
        )
        self.assertNoResult(confirmed)
        self.channel.confirms[0].callback(object())
        self.assertIsNone(self.successResultOf(confirmed))

    def test_refusals(self) -> None:
        """
        A return (before the ack), a nack and a closed channel each fail
        with their own reason.
        """
        from pika.exceptions import ChannelClosedByBroker, NackError, UnroutableError

        for error, reason in [
            (UnroutableError([]), "returned by the broker as unroutable"),
            (NackError([]), "refused by the broker"),
            (
                ChannelClosedByBroker(320, "shutdown"),
                "channel closed before the confirm: ChannelClosedByBroker",
            ),
        ]:
            confirmed = self.publisher.publish(b"b", "i", 1, CONTENT_TYPE)
            self.channel.confirms[-1].errback(error)
            self.assertEqual(self.reason(confirmed), reason)

    def test_cancelledBeforeConfirm(self) -> None:
        """
        The caller may cancel its L{Deferred} (a timeout): pika's confirm
        that comes later fires nothing twice.
        """
        confirmed = self.publisher.publish(b"b", "i", 1, CONTENT_TYPE)
        confirmed.cancel()
        self.failureResultOf(confirmed)
        self.channel.confirms[0].callback(object())
        self.assertEqual(self.publisher._pending, set())

    def test_notConnected(self) -> None:
        """
        Without a channel, or on a channel pika says is closing, publishing
        fails at once.
        """
        from pika.exceptions import ChannelWrongStateError

        self.channel.error = ChannelWrongStateError("closing")
        self.assertEqual(
            self.reason(self.publisher.publish(b"b", "i", 1, CONTENT_TYPE)),
            "channel closing: ChannelWrongStateError",
        )
        self.publisher._channel = None
        self.assertFalse(self.publisher.available)
        self.assertEqual(
            self.reason(self.publisher.publish(b"b", "i", 1, CONTENT_TYPE)),
            "not connected to the broker",
        )

    def test_blocked(self) -> None:
        """
        While the broker blocks publishers, publishing is unavailable.
        """
        self.assertTrue(self.publisher.available)
        self.publisher._onBlocked(None, None)
        self.assertFalse(self.publisher.available)
        self.publisher._onUnblocked(None, None)
        self.assertTrue(self.publisher.available)

    def test_stopWaitsForConfirms(self) -> None:
        """
        L{PikaPublisher.stop} waits for the messages still unconfirmed.
        """
        confirmed = self.publisher.publish(b"b", "i", 1, CONTENT_TYPE)
        stopped = self.publisher.stop()
        self.assertNoResult(stopped)
        self.channel.confirms[0].callback(object())
        self.successResultOf(confirmed)
        self.successResultOf(stopped)


class CommandLineTests(TestCase):
    """
    C{--handler amqp URL QUEUE [NAME=VALUE ...]}.
    """

    def make(self, *arguments: str) -> AMQP:
        handler = makeHandler("amqp", list(arguments))
        self.addCleanup(handler.stop)
        return handler

    def test_dottedAndShortName(self) -> None:
        """
        The built-in name and the dotted path both make an L{AMQP} with the
        URL, the queue and the options given.
        """
        handler = self.make(
            "amqp://guest:guest@127.0.0.1:1/",
            "mail",
            "max_message_size=1000",
            "confirm-timeout=2.5",
            "refuse_at_mail=yes",
            "max_length_bytes=9",
        )
        self.assertIsInstance(handler, AMQP)
        self.assertEqual(
            (handler.queue, handler.max_message_size, handler.confirm_timeout),
            ("mail", 1000, 2.5),
        )
        self.assertTrue(hasattr(handler, "handle_MAIL"))
        self.assertEqual(handler.publisher.arguments["x-max-length-bytes"], 9)
        other = makeHandler("twisted_smtpd.handlers.AMQP", ["amqp://127.0.0.1:1/", "q"])
        self.addCleanup(other.stop)
        self.assertIsInstance(other, AMQP)

    def test_badArguments(self) -> None:
        """
        Missing arguments, unknown or malformed options and a bad URL are
        usage errors.
        """
        for arguments in (
            [],
            ["amqp://h/"],
            ["amqp://h/", "q", "nope=1"],
            ["amqp://h/", "q", "max_message_size"],
            ["amqp://h/", "q", "max_message_size=big"],
            ["amqp://h/", "q", "refuse_at_mail=maybe"],
            ["http://h/", "q"],
        ):
            self.assertRaises(usage.UsageError, makeHandler, "amqp", arguments)


def _sendmail(port: int, message: bytes, rcpts: list[str]) -> tuple[int, str]:
    """
    Send one message with C{smtplib} (in a thread); return the reply to the
    end of data.
    """
    client = smtpClient(port)
    try:
        client.ehlo()
        client.mail("sender@example.com")
        for rcpt in rcpts:
            client.rcpt(rcpt)
        try:
            code, text = client.data(message)
        except smtplib.SMTPDataError as e:
            return e.smtp_code, e.smtp_error.decode()
        return code, text.decode()
    finally:
        client.close()


def _drain(url: str, queue: str) -> list[tuple[Any, bytes]]:
    """
    Take every message of C{queue} with pika's blocking client (in a
    thread): its properties and body.
    """
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        taken = []
        while True:
            method, properties, body = channel.basic_get(queue, auto_ack=True)
            if method is None:
                return taken
            taken.append((properties, body))
    finally:
        connection.close()


def _deleteQueue(url: str, queue: str) -> None:
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        connection.channel().queue_delete(queue)
    finally:
        connection.close()


class RabbitMQTests(TestCase):
    """
    Integration tests, slow: a private C{rabbitmq-server} node started once
    for the class on loopback ports (skipped where it cannot start), a real
    TCP server, C{smtplib} as the client, pika's blocking client as the
    consumer.
    """

    node: Any = None
    # trial has no setUpClass: the first test starts the node, the last one
    # of the class stops it (atexit too, for a run that stops early or a
    # worker of trial -j that runs only some of them).
    _left: int | None = None

    def setUp(self) -> None:
        cls = type(self)
        if cls._left is None:
            cls._left = len([n for n in dir(cls) if n.startswith("test_")])
        if cls.node is None:
            from tests._rabbitmq import RabbitNode

            node = RabbitNode()
            atexit.register(node.stop)
            node.start()
            cls.node = node
        self.addCleanup(self._finished)

    @classmethod
    def _finished(cls) -> None:
        cls._left -= 1  # type: ignore[operator]
        if cls._left <= 0 and cls.node is not None:
            cls.node.stop()
            cls.node = None

    async def serve(self, **options: Any) -> tuple[AMQP, int, str]:
        """
        Start an L{AMQP} handler on a fresh queue and a server for it; wait
        until the queue is declared.
        """
        queue = f"mail-{uuid.uuid4().hex}"
        handler = AMQP(self.node.url, queue, retry_max_delay=0.5, **options)
        self.addCleanup(handler.stop)
        await handler.publisher.whenAvailable().addTimeout(20, _reactor())
        server = listen(self, handler)
        return handler, server.port, queue

    async def send(self, port: int, message: bytes = MESSAGE, rcpts=None):
        return await deferToThread(
            _sendmail, port, message, rcpts or ["rcpt@example.com"]
        )

    async def test_publishedAndConsumed(self) -> None:
        """
        A message with a thousand long recipients gets 250 and is in the
        queue, byte-exact, with its envelope, id, timestamp and content
        type.
        """
        handler, port, queue = await self.serve()
        message = MESSAGE + bytes(range(128, 256)) + b"\r\n"
        rcpts = [f"{'r' * 200}{i}@example.com" for i in range(1000)]
        before = int(time.time())
        code, text = await self.send(port, message, rcpts)
        self.assertEqual(code, 250, text)
        [(properties, body)] = await deferToThread(_drain, self.node.url, queue)
        facts, consumed = AMQP.decode(body)
        self.assertEqual(consumed, message)
        self.assertEqual(text, f"OK queued as {properties.message_id}")
        self.assertEqual(facts["id"], properties.message_id)
        self.assertEqual(properties.delivery_mode, 2)
        self.assertEqual(properties.content_type, CONTENT_TYPE)
        self.assertLessEqual(before, properties.timestamp)
        self.assertEqual(facts["mail_from"], "sender@example.com")
        self.assertEqual(facts["rcpt_tos"], rcpts)
        self.assertEqual(facts["peer"][0], "127.0.0.1")

    async def test_commandLine(self) -> None:
        """
        C{twistd smtpd --handler twisted_smtpd.handlers.AMQP URL QUEUE}
        makes a service that publishes: 250, and the message in the queue.
        """
        from twisted.scripts.twistd import ServerOptions

        from twisted_smtpd.tap import makeService

        queue = f"mail-{uuid.uuid4().hex}"
        config = ServerOptions()
        config.parseOptions(
            ["-n", "--pidfile=", "smtpd", "--listen", "tcp:0:interface=127.0.0.1"]
            + ["--handler", "twisted_smtpd.handlers.AMQP", self.node.url, queue]
            + ["confirm_timeout=10"]
        )
        service = makeService(config.subOptions)
        handler = service.factory.handler
        self.addCleanup(handler.stop)
        self.assertEqual((handler.queue, handler.confirm_timeout), (queue, 10.0))
        service.startService()
        self.addCleanup(service.stopService)
        [port] = await service.whenListening()
        await handler.publisher.whenAvailable().addTimeout(20, _reactor())
        code, text = await self.send(port.getHost().port)
        self.assertEqual(code, 250, text)
        [(_, body)] = await deferToThread(_drain, self.node.url, queue)
        self.assertEqual(AMQP.decode(body)[1], MESSAGE)

    async def test_brokerAway(self) -> None:
        """
        With the broker stopped (C{stop_app}) a message gets 451 at once;
        with it started again the next one gets 250 without restarting the
        server, and both messages that got 250 are in the queue.
        """
        handler, port, queue = await self.serve()
        first, _ = await self.send(port, MESSAGE + b"first\r\n")
        self.assertEqual(first, 250)
        await deferToThread(self.node.stopApp)
        started = time.monotonic()
        code, text = await self.send(port, MESSAGE + b"lost\r\n")
        self.assertEqual(code, 451, text)
        self.assertLess(time.monotonic() - started, 10)
        await deferToThread(self.node.startApp)
        await handler.publisher.whenAvailable().addTimeout(20, _reactor())
        code, text = await self.send(port, MESSAGE + b"second\r\n")
        self.assertEqual(code, 250, text)
        taken = await deferToThread(_drain, self.node.url, queue)
        self.assertEqual(
            [AMQP.decode(body)[1] for _, body in taken],
            [MESSAGE + b"first\r\n", MESSAGE + b"second\r\n"],
        )

    async def test_brokerRestart(self) -> None:
        """
        A restart of the whole node loses no message that got 250, and the
        handler reconnects by itself.
        """
        handler, port, queue = await self.serve()
        sent = [MESSAGE + b"%d\r\n" % i for i in range(3)]
        for message in sent:
            code, text = await self.send(port, message)
            self.assertEqual(code, 250, text)
        await deferToThread(self.node.restart)
        await handler.publisher.whenAvailable().addTimeout(20, _reactor())
        code, text = await self.send(port, b"Subject: after\r\n\r\nx\r\n")
        self.assertEqual(code, 250, text)
        taken = await deferToThread(_drain, self.node.url, queue)
        self.assertEqual(
            [AMQP.decode(body)[1] for _, body in taken],
            [*sent, b"Subject: after\r\n\r\nx\r\n"],
        )

    async def test_queueDeleted(self) -> None:
        """
        With the queue deleted the message is returned, then acked: the
        return wins and the client gets 451.
        """
        handler, port, queue = await self.serve()
        await deferToThread(_deleteQueue, self.node.url, queue)
        code, text = await self.send(port)
        self.assertEqual(code, 451, text)
        self.assertIn("returned by the broker", text)

    async def test_fullQueue(self) -> None:
        """
        A queue at its C{x-max-length-bytes} nacks the next message
        (C{reject-publish}): 451, and the queue keeps what it had.
        """
        handler, port, queue = await self.serve(max_length_bytes=100)
        codes = []
        for _ in range(3):
            code, text = await self.send(port, MESSAGE + b"x" * 200 + b"\r\n")
            codes.append(code)
            if code == 451:
                self.assertIn("refused by the broker", text)
                break
        self.assertEqual(codes[0], 250)
        self.assertEqual(codes[-1], 451)
        taken = await deferToThread(_drain, self.node.url, queue)
        self.assertEqual(len(taken), codes.count(250))

    async def test_tooBig(self) -> None:
        """
        A message over C{max_message_size} gets 552 5.3.4 and is not
        published.
        """
        handler, port, queue = await self.serve(max_message_size=1000)
        code, text = await self.send(port, MESSAGE + (b"y" * 100 + b"\r\n") * 10)
        self.assertEqual(
            (code, text), (552, "5.3.4 Message too big for the message queue")
        )
        self.assertEqual(await deferToThread(_drain, self.node.url, queue), [])
        code, _ = await self.send(port)
        self.assertEqual(code, 250)


def _reactor() -> Any:
    from twisted.internet import reactor

    return reactor
