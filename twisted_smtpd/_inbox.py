# -*- test-case-name: tests.test_inbox -*-
"""
The L{Inbox} handler: keep the messages a server receives in memory, for a
developer or a test suite to look at (see L{twisted_smtpd._inboxweb} for the
web page and JSON API that show them).
"""

from __future__ import annotations

import os
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any

from attrs import frozen
from twisted.internet.defer import Deferred, succeed
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger

from twisted_smtpd._hooks import settle
from twisted_smtpd._maildir import (
    MaildirFile,
    envelopeLine,
    maildirMessages,
    removeMessage,
    splitEnvelope,
)

__all__ = ["DEFAULT_MAX_BYTES", "DEFAULT_MAX_MESSAGES", "Inbox", "InboxMessage"]

log = Logger(namespace="twisted_smtpd.inbox")

#: How many messages an L{Inbox} keeps by default.
DEFAULT_MAX_MESSAGES = 1000

#: How many octets of messages an L{Inbox} keeps by default (256 MiB).
DEFAULT_MAX_BYTES = 256 * 1024 * 1024

#: The reply when an L{Inbox} with a Maildir could not store a message.
NOT_STORED = "451 4.3.0 Message not stored, try again later"


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


def _facts(session: Any, envelope: Any) -> tuple[str, list[str], bytes, Any]:
    """
    The sender, recipients, message bytes and peer of an envelope.
    """
    raw = envelope.original_content
    if raw is None:
        raw = envelope.content or b""
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
    return (
        _text(envelope.mail_from),
        [_text(r) for r in envelope.rcpt_tos],
        bytes(raw),
        getattr(session, "peer", None),
    )


def _fileBytes(
    mail_from: str, rcpt_tos: list[str], raw: bytes, peer: Any, received: float
) -> bytes:
    """
    A message's file in an inbox's Maildir: its envelope field, then the
    message as received.
    """
    facts = {
        "mail_from": mail_from,
        "rcpt_tos": list(rcpt_tos),
        "peer": list(peer) if isinstance(peer, tuple) else peer,
        "received": received,
    }
    return envelopeLine(facts) + raw


def _writeFile(maildir: str, data: bytes) -> str:
    """
    Store C{data} durably in C{maildir}'s C{new/} (blocking).

    @return: The file's path.
    """
    name = MaildirFile(maildir).finish(data)
    return os.path.join(maildir, "new", name)


class Inbox:
    """
    A handler that keeps every message it receives in memory, newest last,
    within a bound: when a new message makes the inbox hold more than
    C{maxMessages} messages or more than C{maxBytes} octets, the oldest are
    dropped first (the newest is always kept, even when it alone is larger
    than C{maxBytes}).

    Subscribers (L{subscribe}) are told of each new message, which is how the
    web inbox shows new mail live and answers its long polls.

    With a C{maildir}, every message is also stored durably in that Maildir
    before the client gets its 250 (a failure to store it gets C{451} and
    nothing is kept), the messages already there are loaded when the inbox
    is made (so they survive a restart), and a message deleted or dropped
    from the inbox is removed from the Maildir. Each file starts with an
    C{X-Inbox-Envelope} header field that keeps the envelope (sender,
    recipients, peer, time) as one line of JSON; the inbox shows the
    message without it, as it was received.

    @ivar maxMessages: The most messages kept.
    @ivar maxBytes: The most octets of messages kept.
    @ivar maildir: The Maildir the messages are kept in, or C{None}.
    """

    def __init__(
        self,
        maxMessages: int = DEFAULT_MAX_MESSAGES,
        maxBytes: int = DEFAULT_MAX_BYTES,
        *,
        clock: Callable[[], float] = time.time,
        maildir: str | None = None,
        reactor: Any = None,
    ) -> None:
        """
        @param maxMessages: The most messages kept; at least 1.
        @param maxBytes: The most octets of messages kept; at least 1.
        @param clock: What gives the time of reception (for tests).
        @param maildir: A Maildir directory to keep the messages in too
            (made if missing), or C{None} to keep them in memory only.
        @param reactor: The reactor whose thread pool writes the files; the
            global one by default.
        @raise ValueError: For a bound below 1.
        @raise OSError: When the Maildir cannot be made or read.
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
        self.maildir = maildir
        self._reactor = reactor
        self._files: dict[str, str] = {}
        if maildir is not None:
            self._load(maildir)

    def _load(self, maildir: str) -> None:
        """
        Keep the messages already in C{maildir}, oldest first, within the
        bound. A file without an envelope field is shown whole, with an
        empty envelope and its modification time.
        """
        for path, mtime, data in maildirMessages(maildir):
            facts, raw = splitEnvelope(data)
            facts = facts or {}
            peer = facts.get("peer")
            rcpt_tos = facts.get("rcpt_tos")
            received = facts.get("received")
            if not isinstance(received, (int, float)):
                received = mtime
            self._keep(
                _text(facts.get("mail_from")),
                [_text(r) for r in rcpt_tos] if isinstance(rcpt_tos, list) else [],
                raw,
                tuple(peer) if isinstance(peer, list) else peer,
                float(received),
                path,
            )

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

    def handle_DATA(self, server: Any, session: Any, envelope: Any) -> Any:
        """
        Keep the message and accept it (with a Maildir, once it is stored;
        C{451} if it cannot be).
        """
        if self.maildir is None:
            self.addEnvelope(session, envelope)
            return "250 OK"

        def stored(message: InboxMessage | None) -> str:
            return NOT_STORED if message is None else "250 OK"

        return self.storeEnvelope(session, envelope).addCallback(stored)

    def addEnvelope(self, session: Any, envelope: Any) -> InboxMessage:
        """
        Keep the message of an envelope, with its sender, recipients and
        the session's peer (with a Maildir, written in the reactor's thread,
        which blocks: the server uses L{storeEnvelope}).

        @return: The message kept.
        """
        return self.add(*_facts(session, envelope))

    def storeEnvelope(
        self, session: Any, envelope: Any
    ) -> Deferred[InboxMessage | None]:
        """
        Keep the message of an envelope as L{addEnvelope} does, writing it
        to the Maildir (if there is one) in a thread.

        @return: A L{Deferred} that fires with the message kept, or with
            C{None} if it could not be stored (which is logged).
        """
        mail_from, rcpt_tos, raw, peer = _facts(session, envelope)
        if self.maildir is None:
            return succeed(self.add(mail_from, rcpt_tos, raw, peer))
        received = self._clock()
        data = _fileBytes(mail_from, rcpt_tos, raw, peer, received)
        if self._reactor is None:
            from twisted.internet import reactor
        else:
            reactor = self._reactor
        writing = deferToThreadPool(
            reactor, reactor.getThreadPool(), _writeFile, self.maildir, data
        )

        def written(path: str) -> InboxMessage:
            return self._keep(mail_from, rcpt_tos, raw, peer, received, path)

        def failed(failure: Any) -> None:
            log.failure("The inbox could not store a message", failure)
            return None

        return writing.addCallbacks(written, failed)

    def add(
        self, mail_from: str, rcpt_tos: list[str], raw: bytes, peer: Any = None
    ) -> InboxMessage:
        """
        Keep a message, drop the oldest ones beyond the bound, and tell the
        subscribers.

        With a Maildir, the message is written there first, in this thread
        (which blocks).

        @return: The message kept.
        @raise OSError: When it cannot be stored in the Maildir (it is not
            kept then).
        """
        received = self._clock()
        path = None
        if self.maildir is not None:
            data = _fileBytes(mail_from, rcpt_tos, raw, peer, received)
            path = _writeFile(self.maildir, data)
        return self._keep(mail_from, rcpt_tos, raw, peer, received, path)

    def _keep(
        self,
        mail_from: str,
        rcpt_tos: list[str],
        raw: bytes,
        peer: Any,
        received: float,
        path: str | None,
    ) -> InboxMessage:
        """
        Keep a message (stored at C{path} if not C{None}), drop the oldest
        ones beyond the bound, and tell the subscribers.
        """
        self._counter += 1
        message = InboxMessage(
            str(self._counter),
            mail_from,
            tuple(rcpt_tos),
            peer,
            received,
            bytes(raw),
        )
        self._messages[message.id] = message
        if path is not None:
            self._files[message.id] = path
        self._bytes += message.size
        while len(self._messages) > 1 and (
            len(self._messages) > self.maxMessages or self._bytes > self.maxBytes
        ):
            dropped = next(iter(self._messages))
            self.delete(dropped)
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
        path = self._files.pop(messageID, None)
        if path is not None:
            removeMessage(path)
        return True

    def clear(self) -> None:
        """
        Forget every message (and remove their files).
        """
        self._messages.clear()
        self._bytes = 0
        files, self._files = self._files, {}
        for path in files.values():
            removeMessage(path)

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
        message, and reply what that handler replied (with a Maildir, once
        the message is stored or could not be, which is logged).
        """
        hook = getattr(self.handler, "handle_DATA", None)
        if hook is None:
            return self._keepThen(session, envelope, "250 OK")
        try:
            result = settle(hook(server, session, envelope), server.config.asyncioLoop)
        except BaseException:
            self._keepThen(session, envelope, None)
            raise
        if not isinstance(result, Deferred):
            return self._keepThen(session, envelope, result)

        def keep(outcome: Any) -> Any:
            return self._keepThen(session, envelope, outcome)

        return result.addBoth(keep)

    def _keepThen(self, session: Any, envelope: Any, outcome: Any) -> Any:
        """
        Keep the message in the inbox, then give C{outcome} (at once without
        a Maildir, or from a L{Deferred} once the message is stored).
        """
        if self.inbox.maildir is None:
            self.inbox.addEnvelope(session, envelope)
            return outcome
        return self.inbox.storeEnvelope(session, envelope).addCallback(
            lambda _: outcome
        )
