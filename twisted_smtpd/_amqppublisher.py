# -*- test-case-name: tests.test_amqp -*-
"""
Publishing to RabbitMQ: L{IMessagePublisher}, the small interface the
L{AMQP <twisted_smtpd._amqp.AMQP>} handler needs, and L{PikaPublisher}, its
implementation on pika's Twisted adapter, kept behind the interface because
pika 2 plans to drop that adapter.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from twisted.application.internet import ClientService, backoffPolicy
from twisted.internet.defer import Deferred, gatherResults, succeed
from twisted.internet.endpoints import HostnameEndpoint, wrapClientTLS
from twisted.internet.protocol import Factory
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import Attribute, Interface, implementer

from twisted_smtpd.metrics import observeHandoff

log = Logger(namespace="twisted_smtpd.amqp")


class PublishFailed(Exception):
    """
    The broker did not take a message: C{reason} says why, in words fit
    for a log and for a 451 reply (no client input in them).
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class IMessagePublisher(Interface):
    """
    Publish messages to one durable queue, confirmed by the broker.
    """

    available = Attribute(
        "True while publishing can be tried: connected, the queue declared,"
        " and the broker not blocking publishers."
    )

    def start() -> None:
        """
        Start connecting (and reconnecting whenever the connection is
        lost); calling it again does nothing.
        """

    def stop() -> Deferred[None]:
        """
        Wait for the publications still unconfirmed, then disconnect for
        good.
        """

    def publish(
        body: bytes, messageId: str, timestamp: int, contentType: str
    ) -> Deferred[None]:
        """
        Publish one persistent message to the queue.

        @return: A L{Deferred} that fires with C{None} once the broker
            confirmed the message, or fails with L{PublishFailed} if it
            refused it (nack), returned it (unroutable), or the channel
            closed first.
        """


def connectionParameters(url: str) -> Any:
    """
    Parse an C{amqp://} or C{amqps://} URL with pika, with a heartbeat and
    a blocked-connection timeout of 60 seconds unless its query sets them.

    @raise ValueError: For a URL pika cannot read.
    """
    try:
        import pika
    except ImportError:
        raise ValueError(
            "the AMQP handler needs pika: pip install 'twisted_smtpd[amqp]'"
        ) from None
    scheme = urlsplit(url).scheme
    if scheme not in ("amqp", "amqps"):
        raise ValueError(f"an AMQP URL starts with amqp:// or amqps://, not {url!r}")
    parameters = pika.URLParameters(url)
    query = urlsplit(url).query
    if "heartbeat" not in query:
        parameters.heartbeat = 60
    if "blocked_connection_timeout" not in query:
        parameters.blocked_connection_timeout = 60
    return parameters


class _ConnectionFactory(Factory):
    """
    Make pika's Twisted protocol for each connection attempt.
    """

    def __init__(self, parameters: Any, reactor: Any) -> None:
        self.parameters = parameters
        self.reactor = reactor

    def buildProtocol(self, addr: Any) -> Any:
        from pika.adapters.twisted_connection import TwistedProtocolConnection

        return TwistedProtocolConnection(self.parameters, custom_reactor=self.reactor)


@implementer(IMessagePublisher)
class PikaPublisher:
    """
    L{IMessagePublisher} on pika's Twisted adapter, reconnecting through a
    L{ClientService} with exponential backoff.

    Each connection opens one channel in confirm mode and declares the
    queue: durable, C{x-queue-type=quorum}, C{x-overflow=reject-publish}
    (a full queue nacks instead of dropping old messages) and, if given,
    C{x-max-length-bytes}. A channel closed by the broker takes the
    connection down with it, so that the next connection starts clean.
    """

    def __init__(
        self,
        url: str,
        queue: str,
        *,
        maxLengthBytes: int | None = None,
        retryMaxDelay: float = 30.0,
        reactor: Any = None,
    ) -> None:
        if reactor is None:
            from twisted.internet import reactor
        self._reactor = reactor
        self.parameters = connectionParameters(url)
        self.queue = queue
        self.arguments: dict[str, Any] = {
            "x-queue-type": "quorum",
            "x-overflow": "reject-publish",
        }
        if maxLengthBytes is not None:
            self.arguments["x-max-length-bytes"] = maxLengthBytes
        self._retryMaxDelay = retryMaxDelay
        self._service: ClientService | None = None
        self._channel: Any = None
        self._connection: Any = None
        self._blocked = False
        self._pending: set[Deferred[Any]] = set()
        self._readyWaiters: list[Deferred[None]] = []

    @property
    def available(self) -> bool:
        """
        See L{IMessagePublisher.available}.
        """
        return self._channel is not None and not self._blocked

    def _endpoint(self) -> Any:
        host = self.parameters.host
        endpoint = HostnameEndpoint(self._reactor, host, self.parameters.port)
        if self.parameters.ssl_options is not None:
            from twisted.internet.ssl import optionsForClientTLS

            endpoint = wrapClientTLS(optionsForClientTLS(host), endpoint)
        return endpoint

    def start(self) -> None:
        """
        See L{IMessagePublisher.start}.
        """
        if self._service is not None:
            return
        self._service = ClientService(
            self._endpoint(),
            _ConnectionFactory(self.parameters, self._reactor),
            retryPolicy=backoffPolicy(initialDelay=0.5, maxDelay=self._retryMaxDelay),
            clock=self._reactor,
            prepareConnection=self._prepare,
        )
        self._service.startService()
        log.info(
            "AMQP publisher connecting to {host}:{port} for queue {queue}",
            host=self.parameters.host,
            port=self.parameters.port,
            queue=self.queue,
        )

    def whenAvailable(self) -> Deferred[None]:
        """
        A L{Deferred} that fires once publishing is available (at once if
        it is now): for tests and for callers that would rather wait.
        """
        if self.available:
            return succeed(None)
        waiter: Deferred[None] = Deferred()
        self._readyWaiters.append(waiter)
        return waiter

    async def _open(self, connection: Any) -> None:
        """
        Open the confirmed channel on a new connection and declare the
        queue; then publishing is available.
        """
        await connection.ready
        connection._impl.add_on_connection_blocked_callback(self._onBlocked)
        connection._impl.add_on_connection_unblocked_callback(self._onUnblocked)
        channel = await connection.channel()
        await channel.confirm_delivery()
        await channel.queue_declare(
            self.queue, durable=True, arguments=dict(self.arguments)
        )
        channel.on_closed.addBoth(self._channelClosed, connection)
        self._connection = connection
        self._channel = channel
        self._blocked = False
        observeHandoff(True)
        log.info("AMQP publisher ready: queue {queue} declared", queue=self.queue)
        waiters, self._readyWaiters = self._readyWaiters, []
        for waiter in waiters:
            waiter.callback(None)

    def _prepare(self, connection: Any) -> Deferred[None]:
        """
        C{prepareConnection} of the L{ClientService}: a connection counts
        as made once its channel is ready; an error here drops it and the
        service tries again after its backoff.
        """
        opened = Deferred.fromCoroutine(self._open(connection))
        opened.addTimeout(30, self._reactor)

        def failed(failure: Any) -> Any:
            log.error(
                "AMQP publisher could not open its channel: {why}",
                why=failure.getErrorMessage() or failure.type.__name__,
            )
            if connection.transport is not None:
                connection.transport.loseConnection()
            return failure

        return opened.addErrback(failed)

    def _channelClosed(self, reason: Any, connection: Any) -> None:
        """
        The channel is gone (the broker closed it, or the connection went
        away): publishing is unavailable until the service reconnects.
        """
        if self._connection is connection:
            self._channel = None
            self._connection = None
            observeHandoff(False)
        log.warn(
            "AMQP publisher lost its channel ({why}); reconnecting",
            why=getattr(reason, "getErrorMessage", lambda: repr(reason))(),
        )
        if connection.transport is not None and not connection.is_closed:
            connection.transport.loseConnection()

    def _onBlocked(self, connection: Any, method: Any) -> None:
        self._blocked = True
        observeHandoff(False)
        log.warn("AMQP broker blocks publishers (resource alarm)")

    def _onUnblocked(self, connection: Any, method: Any) -> None:
        self._blocked = False
        observeHandoff(self.available)
        log.info("AMQP broker unblocked publishers")

    def publish(
        self, body: bytes, messageId: str, timestamp: int, contentType: str
    ) -> Deferred[None]:
        """
        See L{IMessagePublisher.publish}.
        """
        import pika
        from pika.exceptions import NackError, UnroutableError

        channel = self._channel
        if channel is None:
            return _failed("not connected to the broker")
        properties = pika.BasicProperties(
            content_type=contentType,
            delivery_mode=2,
            message_id=messageId,
            timestamp=timestamp,
        )
        try:
            confirmed = channel.basic_publish(
                "", self.queue, body, properties=properties, mandatory=True
            )
        except Exception as e:
            # pika raises at once on a channel or connection that is closing.
            return _failed(f"channel closing: {type(e).__name__}")

        def refused(failure: Any) -> None:
            # pika fails with UnroutableError when a return came before the
            # ack: the return wins, the message is not in the queue.
            if failure.check(UnroutableError):
                raise PublishFailed("returned by the broker as unroutable")
            if failure.check(NackError):
                raise PublishFailed("refused by the broker")
            raise PublishFailed(
                f"channel closed before the confirm: {failure.type.__name__}"
            )

        confirmed.addCallbacks(lambda _: None, refused)
        self._pending.add(confirmed)
        # The caller gets a Deferred of its own: cancelling it (a timeout)
        # must not fire the one pika fires later on the confirm.
        outcome: Deferred[None] = Deferred()
        confirmed.addBoth(self._settled, confirmed, outcome)
        return outcome

    def _settled(self, result: Any, confirmed: Deferred[Any], outcome: Any) -> None:
        self._pending.discard(confirmed)
        if not outcome.called:
            if isinstance(result, Failure):
                outcome.errback(result)
            else:
                outcome.callback(result)

    async def _stop(self) -> None:
        if self._pending:
            await gatherResults(list(self._pending), consumeErrors=True).addErrback(
                lambda f: None
            )
        connection, service = self._connection, self._service
        self._channel = self._connection = self._service = None
        if connection is not None and connection.is_open:
            closed = connection.close()
            if closed is not None:
                await closed
        if service is not None:
            await service.stopService()
        log.info("AMQP publisher stopped")

    def stop(self) -> Deferred[None]:
        """
        See L{IMessagePublisher.stop}.
        """
        return Deferred.fromCoroutine(self._stop())


def _failed(reason: str) -> Deferred[None]:
    failed: Deferred[None] = Deferred()
    failed.errback(PublishFailed(reason))
    return failed
