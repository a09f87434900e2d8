# -*- test-case-name: tests.test_inbox -*-
"""
The L{Inbox} handler: keep the messages a server receives in memory, for a
developer or a test suite to look at (see L{twisted_smtpd._inboxweb} for the
web page and JSON API that show them).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any

from attrs import frozen
from twisted.internet.defer import Deferred
from twisted.logger import Logger

from twisted_smtpd._hooks import settle

__all__ = ["DEFAULT_MAX_BYTES", "DEFAULT_MAX_MESSAGES", "Inbox", "InboxMessage"]

log = Logger(namespace="twisted_smtpd.inbox")

#: How many messages an L{Inbox} keeps by default.
DEFAULT_MAX_MESSAGES = 1000

#: How many octets of messages an L{Inbox} keeps by default (256 MiB).
DEFAULT_MAX_BYTES = 256 * 1024 * 1024


@frozen(eq=False)
class InboxMessage:
    """
    One message caught by an L{Inbox}, as the server received it. Two
    messages are the same only if they are the same object (each reception
    is its own message, even of the same bytes).

    @ivar id: The inbox's name for it: a decimal number, larger for later
        messages, never reused by the same inbox.
    @ivar mail_from: The envelope sender (MAIL FROM), C{""} for the null
        sender.
    @ivar rcpt_tos: The envelope recipients (RCPT TO), in order.
    @ivar peer: The client's address as the session gave it (a C{(host,
        port)} tuple for TCP), or C{None}.
    @ivar received: When it was received, in seconds since the epoch.
    @ivar raw: The message as received, in bytes.
    """

    id: str
    mail_from: str
    rcpt_tos: tuple[str, ...]
    peer: Any
    received: float
    raw: bytes

    @property
    def size(self) -> int:
        """
        The message's size in octets.
        """
        return len(self.raw)


def _text(value: Any) -> str:
    """
    An envelope address as C{str}, whatever the server's C{decode_data}.
    """
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return "" if value is None else str(value)


class Inbox:
    """
    A handler that keeps every message it receives in memory, newest last,
    within a bound: when a new message makes the inbox hold more than
    C{maxMessages} messages or more than C{maxBytes} octets, the oldest are
    dropped first (the newest is always kept, even when it alone is larger
    than C{maxBytes}).

    Subscribers (L{subscribe}) are told of each new message, which is how the
    web inbox shows new mail live and answers its long polls.

    @ivar maxMessages: The most messages kept.
    @ivar maxBytes: The most octets of messages kept.
    """

    def __init__(
        self,
        maxMessages: int = DEFAULT_MAX_MESSAGES,
        maxBytes: int = DEFAULT_MAX_BYTES,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """
        @param maxMessages: The most messages kept; at least 1.
        @param maxBytes: The most octets of messages kept; at least 1.
        @param clock: What gives the time of reception (for tests).
        @raise ValueError: For a bound below 1.
        """
        for name, value in (("maxMessages", maxMessages), ("maxBytes", maxBytes)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be an integer of at least 1")
        self.maxMessages = maxMessages
        self.maxBytes = maxBytes
        self._clock = clock
        self._messages: OrderedDict[str, InboxMessage] = OrderedDict()
        self._bytes = 0
        self._counter = 0
        self._subscribers: list[Callable[[InboxMessage], object]] = []

    @classmethod
    def from_cli(cls, parser: Any, *args: str) -> Inbox:
        """
        Make an L{Inbox} for the command line, which takes no arguments.

        @param parser: An object whose C{error(message)} reports a usage
            error (and raises).
        """
        if args:
            parser.error("Inbox handler does not accept arguments")
        return cls()

    def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """
        Keep the message and accept it.
        """
        self.addEnvelope(session, envelope)
        return "250 OK"

    def addEnvelope(self, session: Any, envelope: Any) -> InboxMessage:
        """
        Keep the message of an envelope, with its sender, recipients and
        the session's peer.

        @return: The message kept.
        """
        raw = envelope.original_content
        if raw is None:
            raw = envelope.content or b""
            if isinstance(raw, str):
                raw = raw.encode("utf-8", "surrogateescape")
        return self.add(
            _text(envelope.mail_from),
            [_text(r) for r in envelope.rcpt_tos],
            raw,
            peer=getattr(session, "peer", None),
        )

    def add(
        self, mail_from: str, rcpt_tos: list[str], raw: bytes, peer: Any = None
    ) -> InboxMessage:
        """
        Keep a message, drop the oldest ones beyond the bound, and tell the
        subscribers.

        @return: The message kept.
        """
        self._counter += 1
        message = InboxMessage(
            str(self._counter),
            mail_from,
            tuple(rcpt_tos),
            peer,
            self._clock(),
            bytes(raw),
        )
        self._messages[message.id] = message
        self._bytes += message.size
        while len(self._messages) > 1 and (
            len(self._messages) > self.maxMessages or self._bytes > self.maxBytes
        ):
            _, dropped = self._messages.popitem(last=False)
            self._bytes -= dropped.size
        for subscriber in list(self._subscribers):
            try:
                subscriber(message)
            except Exception:
                log.failure("An inbox subscriber failed")
        return message

    def __len__(self) -> int:
        return len(self._messages)

    def __iter__(self) -> Iterator[InboxMessage]:
        """
        The messages, newest first.
        """
        return reversed(list(self._messages.values()))

    @property
    def totalBytes(self) -> int:
        """
        The octets of all the messages kept.
        """
        return self._bytes

    def get(self, messageID: str) -> InboxMessage | None:
        """
        The message of this id, or C{None} if there is none (any more).
        """
        return self._messages.get(messageID)

    def delete(self, messageID: str) -> bool:
        """
        Forget a message.

        @return: Whether there was one of this id.
        """
        message = self._messages.pop(messageID, None)
        if message is None:
            return False
        self._bytes -= message.size
        return True

    def clear(self) -> None:
        """
        Forget every message.
        """
        self._messages.clear()
        self._bytes = 0

    def subscribe(
        self, subscriber: Callable[[InboxMessage], object]
    ) -> Callable[[], None]:
        """
        Have C{subscriber} called with each new message. An exception it
        raises is logged and does not stop the others.

        @return: A function that unsubscribes it.
        """
        self._subscribers.append(subscriber)

        def unsubscribe() -> None:
            if subscriber in self._subscribers:
                self._subscribers.remove(subscriber)

        return unsubscribe


class InboxAfter:
    """
    A handler that runs another handler, then keeps the message in an
    L{Inbox} whatever that handler replied (even an error reply or an
    exception), so one can catch mail and relay or store it too.

    Every other attribute (hooks, C{auth_*} mechanisms...) is the wrapped
    handler's, so that handler works as it would alone.

    @ivar handler: The handler run first.
    @ivar inbox: The inbox that keeps every message.
    """

    def __init__(self, handler: Any, inbox: Inbox) -> None:
        self.handler = handler
        self.inbox = inbox

    def __getattr__(self, name: str) -> Any:
        return getattr(self.handler, name)

    def __dir__(self) -> list[str]:
        """
        The wrapped handler's names too, so that the server finds its
        C{auth_*} mechanisms, which it looks for with C{dir}.
        """
        return sorted(set(super().__dir__()) | set(dir(self.handler)))

    def handle_DATA(self, server: Any, session: Any, envelope: Any) -> Any:
        """
        Run the wrapped handler's C{handle_DATA} (if it has one), keep the
        message, and reply what that handler replied.
        """
        hook = getattr(self.handler, "handle_DATA", None)
        if hook is None:
            self.inbox.addEnvelope(session, envelope)
            return "250 OK"
        try:
            result = settle(hook(server, session, envelope), server.config.asyncioLoop)
        except BaseException:
            self.inbox.addEnvelope(session, envelope)
            raise
        if not isinstance(result, Deferred):
            self.inbox.addEnvelope(session, envelope)
            return result

        def keep(outcome: Any) -> Any:
            self.inbox.addEnvelope(session, envelope)
            return outcome

        return result.addBoth(keep)
