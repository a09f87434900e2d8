# -*- test-case-name: tests.test_amqp -*-
"""
L{AMQP}: the handler that hands every message to a durable RabbitMQ queue
and says C{250} only once the broker has confirmed it.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from twisted.internet.defer import Deferred, TimeoutError
from twisted.logger import Logger

from twisted_smtpd._amqpformat import (
    CONTENT_TYPE,
    FormatError,
    decodeMessage,
    encodeMessage,
    messageFacts,
)
from twisted_smtpd._amqppublisher import IMessagePublisher, PikaPublisher, PublishFailed
from twisted_smtpd.metrics import observePublish

log = Logger(namespace="twisted_smtpd.amqp")

#: RabbitMQ's default C{max_message_size}: 128 MiB.
DEFAULT_MAX_MESSAGE_SIZE = 128 * 1024 * 1024

_TOO_BIG = "552 5.3.4 Message too big for the message queue"
_UNAVAILABLE = "451 4.3.0 Message queue unavailable, try again later"

# The handler's options that the command line and the URL's query may set,
# with the type of each.
_OPTIONS = {
    "max_message_size": int,
    "max_length_bytes": int,
    "confirm_timeout": float,
    "retry_max_delay": float,
    "refuse_at_mail": bool,
}


def _boolean(value: str) -> bool:
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"not a boolean: {value!r}")


def _cliOptions(parser: Any, arguments: tuple[str, ...]) -> dict[str, Any]:
    """
    Read C{NAME=VALUE} handler arguments into keyword arguments of L{AMQP}.
    """
    options: dict[str, Any] = {}
    for argument in arguments:
        name, equals, value = argument.partition("=")
        name = name.replace("-", "_")
        kind = _OPTIONS.get(name)
        if not equals or kind is None:
            parser.error(
                f"AMQP: {argument!r} is not NAME=VALUE with NAME one of"
                f" {', '.join(_OPTIONS)}"
            )
            continue
        try:
            options[name] = _boolean(value) if kind is bool else kind(value)
        except ValueError as e:
            parser.error(f"AMQP: {name}: {e}")
    return options


class AMQP:
    """
    Publish every message to a durable RabbitMQ quorum queue, and reply
    C{250} only after the broker confirmed it: a client never gets C{250}
    for a message the queue does not hold.

    A message the broker refuses (nack, e.g. a full queue), returns
    (unroutable, e.g. the queue was deleted), loses with its channel, or
    does not confirm within C{confirm_timeout} gets C{451 4.3.0}, and the
    client tries again later; while the broker is unreachable every
    transaction gets C{451 4.3.0} at once (at the end of DATA, or at MAIL
    with C{refuse_at_mail}) while the handler reconnects with backoff. A
    message whose published body would exceed C{max_message_size} gets
    C{552 5.3.4} without being published.

    Delivery is at least once: a C{451} after a timeout, or a C{250} lost
    with the connection, makes the client send a message again that the
    queue may already hold. Consumers deduplicate (see C{docs/amqp.rst}).

    The published body is described by L{decode}; the AMQP properties are
    C{message_id}, C{timestamp}, C{delivery_mode=2} (persistent) and
    C{content_type} (C{application/x-twisted-smtpd-message; version=1}).

    The connection starts once the reactor runs (or with L{start}) and
    ends at reactor shutdown (or with L{stop}).

    @ivar publisher: The L{IMessagePublisher} in use.
    @ivar published: How many messages the broker confirmed.
    @ivar failed: How many publications failed, by reason.
    """

    def __init__(
        self,
        url: str,
        queue: str,
        *,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        max_length_bytes: int | None = None,
        confirm_timeout: float = 30.0,
        retry_max_delay: float = 30.0,
        refuse_at_mail: bool = False,
        publisher: Any = None,
        reactor: Any = None,
    ) -> None:
        """
        @param url: The broker, as C{amqp://USER:PASS@HOST:PORT/VHOST}
            (C{amqps://} for TLS); pika's query parameters (C{heartbeat},
            C{blocked_connection_timeout}, ...) apply, and both default to
            60 seconds here.
        @param queue: The queue's name; it is declared durable, quorum,
            C{x-overflow=reject-publish}.
        @param max_message_size: The broker's C{max_message_size}: a larger
            body gets C{552 5.3.4} before it is published.
        @param max_length_bytes: The queue's C{x-max-length-bytes}, or
            C{None} for no limit.
        @param confirm_timeout: Seconds to wait for the broker's confirm
            before replying C{451}.
        @param retry_max_delay: The longest wait, in seconds, between two
            attempts to reconnect.
        @param refuse_at_mail: Reply C{451} to MAIL, not only at the end of
            DATA, while the broker is unavailable.
        @param publisher: An L{IMessagePublisher} to use instead of pika's.
        @param reactor: The reactor for connections and timeouts; the
            global one by default.
        """
        if reactor is None:
            from twisted.internet import reactor
        self._reactor = reactor
        if not queue:
            raise ValueError("AMQP needs a queue name")
        for name, value in (
            ("max_message_size", max_message_size),
            ("confirm_timeout", confirm_timeout),
            ("retry_max_delay", retry_max_delay),
        ):
            if value <= 0:
                raise ValueError(f"AMQP {name} must be positive, not {value!r}")
        if max_length_bytes is not None and max_length_bytes <= 0:
            raise ValueError("AMQP max_length_bytes must be positive")
        if publisher is None:
            publisher = PikaPublisher(
                url,
                queue,
                maxLengthBytes=max_length_bytes,
                retryMaxDelay=retry_max_delay,
                reactor=reactor,
            )
        self.publisher: IMessagePublisher = publisher
        self.url = url
        self.queue = queue
        self.max_message_size = max_message_size
        self.confirm_timeout = confirm_timeout
        self.published = 0
        self.failed: dict[str, int] = {}
        self._shutdownTrigger: Any = None
        if refuse_at_mail:
            # Only then is there a MAIL hook: no hook call per MAIL for a
            # handler that does not use it.
            self.handle_MAIL = self._mailWhenAvailable
        # Connect once the reactor runs: not before twistd forks into the
        # background, and not at all if stopped first.
        self._stopped = False
        callWhenRunning = getattr(reactor, "callWhenRunning", None)
        if callWhenRunning is not None:
            callWhenRunning(self._startUnlessStopped)

    @classmethod
    def from_cli(cls, parser: Any, *args: str) -> AMQP:
        """
        Make an L{AMQP} for the command line: C{URL QUEUE [NAME=VALUE ...]},
        where C{NAME} is C{max_message_size}, C{max_length_bytes},
        C{confirm_timeout}, C{retry_max_delay} or C{refuse_at_mail}.

        @param parser: An object whose C{error(message)} reports a usage
            error (and raises).
        """
        if len(args) < 2:
            parser.error(
                "AMQP takes a URL (amqp://USER:PASS@HOST:PORT/VHOST) and a queue"
            )
        return cls(args[0], args[1], **_cliOptions(parser, args[2:]))

    @staticmethod
    def decode(body: bytes) -> tuple[dict[str, Any], bytes]:
        """
        Split a published body into its JSON header (the envelope and the
        session's facts, see C{docs/amqp.rst}) and the message as received.

        @raise ValueError: For a body not in this format.
        """
        return decodeMessage(body)

    def start(self) -> None:
        """
        Start connecting to the broker, and stop at reactor shutdown; done
        by itself once the reactor runs, calling it again does nothing.
        """
        if self._shutdownTrigger is None and hasattr(
            self._reactor, "addSystemEventTrigger"
        ):
            self._shutdownTrigger = self._reactor.addSystemEventTrigger(
                "before", "shutdown", self.stop
            )
        self.publisher.start()

    def _startUnlessStopped(self) -> None:
        if not self._stopped:
            self.start()

    def stop(self) -> Deferred[None]:
        """
        Wait for the messages still waiting for a confirm, then disconnect.
        """
        self._stopped = True
        trigger, self._shutdownTrigger = self._shutdownTrigger, None
        if trigger is not None:
            self._reactor.removeSystemEventTrigger(trigger)
        return self.publisher.stop()

    def _mailWhenAvailable(
        self,
        server: Any,
        session: Any,
        envelope: Any,
        address: str,
        mail_options: list[str],
    ) -> str:
        """
        C{handle_MAIL} with C{refuse_at_mail}: refuse the transaction while
        the broker is unavailable.
        """
        if not self.publisher.available:
            return _UNAVAILABLE
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    def _failure(self, reason: str) -> str:
        self.failed[reason] = self.failed.get(reason, 0) + 1
        log.warn("AMQP publication failed: {reason}", reason=reason)
        return f"451 4.3.0 Message not queued ({reason}), try again later"

    def handle_DATA(self, server: Any, session: Any, envelope: Any) -> Any:
        """
        Publish the message; reply once the broker decided (a L{Deferred},
        which runs on any reactor, asyncio's included).
        """
        message = envelope.original_content
        if len(message) > self.max_message_size:
            return _TOO_BIG
        if not self.publisher.available:
            self._failure("broker unavailable")
            return _UNAVAILABLE
        received = time.time()
        messageId = uuid.uuid4().hex
        body = encodeMessage(
            messageFacts(session, envelope, messageId, received), message
        )
        if len(body) > self.max_message_size:
            return _TOO_BIG
        started = self._reactor.seconds()
        confirmed = self.publisher.publish(body, messageId, int(received), CONTENT_TYPE)
        confirmed.addTimeout(self.confirm_timeout, self._reactor)
        return confirmed.addCallbacks(
            self._accepted, self._refused, (messageId, started), None, (started,)
        )

    def _accepted(self, ignored: None, messageId: str, started: float) -> str:
        self.published += 1
        observePublish(self._reactor.seconds() - started, True)
        return f"250 OK queued as {messageId}"

    def _refused(self, failure: Any, started: float) -> str:
        observePublish(self._reactor.seconds() - started, False)
        if failure.check(PublishFailed):
            return self._failure(failure.value.reason)
        if failure.check(TimeoutError):
            return self._failure("no confirm from the broker in time")
        log.failure("AMQP publication failed unexpectedly", failure)
        return self._failure("unexpected error")


__all__ = ["AMQP", "FormatError", "PublishFailed"]
