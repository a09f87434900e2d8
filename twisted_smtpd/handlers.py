# -*- test-case-name: tests.test_handlers -*-
"""
Ready-made handlers: give one to L{twisted_smtpd.SMTPFactory}.

    - L{Sink} accepts every message and throws it away.
    - L{Debugging} prints every message (it also covers what the stdlib
      C{smtpd.DebuggingServer} did).
    - L{Message} and L{AsyncMessage} hand each message, parsed by the
      C{email} package, to a C{handle_message} method of yours.
    - L{Mailbox} stores each message durably in a Maildir.
    - L{AMQP} publishes each message to a durable RabbitMQ queue and says
      C{250} only once the broker confirmed it (needs the C{amqp} extra).
    - L{Proxy} relays each message to another SMTP server and reports that
      server's verdict to the client.
    - L{Inbox} keeps each message in memory, for the web inbox of
      C{twistd smtpd --web} (see C{docs/inbox.rst}).
    - L{ProcessMessage} runs a C{process_message} method written for the
      stdlib C{smtpd.SMTPServer}.

Handlers that the command line can name have a C{from_cli(parser, *args)}
class method, as in aiosmtpd.
"""

from __future__ import annotations

import email
import inspect
import os
import re
import sys
from abc import ABCMeta, abstractmethod
from collections.abc import Callable
from email.message import Message as EmailMessage
from typing import IO, Any
from weakref import WeakKeyDictionary

from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger

from twisted_smtpd._amqp import AMQP
from twisted_smtpd._headers import withHeaders
from twisted_smtpd._hooks import asyncioLoopOf
from twisted_smtpd._inbox import Inbox
from twisted_smtpd._maildir import MaildirFile, MessageStream
from twisted_smtpd._relay import Proxy

__all__ = [
    "AMQP",
    "AsyncMessage",
    "Debugging",
    "Inbox",
    "Mailbox",
    "Message",
    "ProcessMessage",
    "Proxy",
    "Sink",
]

log = Logger(namespace="twisted_smtpd.handlers")

_NEWLINE = re.compile(r"\r\n|\r|\n")


def _inAsyncioTask() -> bool:
    """
    Whether the caller runs inside an asyncio task (Twisted's asyncio
    reactor runs coroutine hooks as tasks), where a L{Deferred} cannot be
    awaited directly.
    """
    import asyncio

    try:
        return asyncio.current_task() is not None
    except RuntimeError:
        return False


async def _outcome(result: Any) -> Any:
    """
    Wait for what a user's method returned: a plain value, a L{Deferred} or
    a coroutine; return its value.
    """
    if isinstance(result, Deferred):
        if _inAsyncioTask():
            import asyncio

            return await result.asFuture(asyncio.get_running_loop())
        return await result
    if inspect.isawaitable(result):
        return await result
    return result


class Sink:
    """
    Accept every message and discard it: the server's default replies, no
    hooks at all.
    """

    @classmethod
    def from_cli(cls, parser: Any, *args: str) -> Sink:
        """
        Make a L{Sink} for the command line, which takes no arguments.

        @param parser: An object whose C{error(message)} reports a usage
            error (and raises), such as an C{argparse.ArgumentParser}.
        """
        if args:
            parser.error("Sink handler does not accept arguments")
        return cls()


class Debugging:
    """
    Print every message to a stream, after the envelope's MAIL options, with
    an C{X-Peer} header field added where the header section ends.

    This is also the replacement for the stdlib C{smtpd.DebuggingServer}.
    Unlike aiosmtpd, a message without an empty line (all header) still gets
    its C{X-Peer} line, at its end.
    """

    def __init__(self, stream: IO[str] | None = None) -> None:
        """
        @param stream: Where to print; C{None} means C{sys.stdout} as it is
            when each message is printed.
        """
        self._stream = stream

    @property
    def stream(self) -> IO[str]:
        """
        The stream the next message is printed to.
        """
        return sys.stdout if self._stream is None else self._stream

    @stream.setter
    def stream(self, stream: IO[str] | None) -> None:
        self._stream = stream

    @classmethod
    def from_cli(cls, parser: Any, *args: str) -> Debugging:
        """
        Make a L{Debugging} for the command line, which takes an optional
        C{stdout} (the default) or C{stderr}.

        @param parser: An object whose C{error(message)} reports a usage
            error (and raises).
        """
        if len(args) > 1 or (args and args[0] not in ("stdout", "stderr")):
            parser.error("Debugging takes one optional argument: stdout or stderr")
        if args and args[0] == "stderr":
            return cls(sys.stderr)
        return cls()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """
        Print the message and accept it. A coroutine, as in aiosmtpd, so
        that a subclass may C{return await super().handle_DATA(...)}.
        """
        stream = self.stream
        out = ["---------- MESSAGE FOLLOWS ----------"]
        if envelope.mail_options:
            out.append(f"mail options: {envelope.mail_options!r}")
        if envelope.rcpt_options:
            out.append(f"rcpt options: {envelope.rcpt_options!r}")
        if len(out) > 1:
            out.append("")
        content = envelope.content
        if isinstance(content, bytes):
            content = content.decode("utf-8", "replace")
        lines = _NEWLINE.split(content)
        if lines[-1] == "":
            # The final line ending ends the last line; it starts none.
            lines.pop()
        peerLine = f"X-Peer: {session.peer!r}"
        try:
            end = lines.index("")
        except ValueError:
            end = len(lines)
        lines.insert(end, peerLine)
        out.extend(lines)
        out.append("------------ END MESSAGE ------------")
        stream.write("\n".join(out) + "\n")
        stream.flush()
        return "250 OK"


class _MessageBase(metaclass=ABCMeta):
    """
    What L{Message} and L{AsyncMessage} share: turning the envelope into an
    C{email} message.
    """

    def __init__(self, message_class: type[EmailMessage] | None = None) -> None:
        """
        @param message_class: The class of the messages made, a subclass of
            C{email.message.Message}; C{email.message.Message} by default.
        """
        self.message_class = message_class

    def prepare_message(self, session: Any, envelope: Any) -> EmailMessage:
        """
        Parse the message and add the header fields C{X-Peer} (the client's
        address), C{X-MailFrom} (the reverse-path) and C{X-RcptTo} (the
        recipients, joined by C{", "}).

        Override it to make the message differently.

        @raise TypeError: If the content is neither C{bytes} nor C{str}.
        """
        data = envelope.content
        if isinstance(data, (bytes, bytearray)):
            message = email.message_from_bytes(data, self.message_class)
        elif isinstance(data, str):
            message = email.message_from_string(data, self.message_class)
        else:
            raise TypeError(f"message content must be bytes or str, not {data!r}")
        message["X-Peer"] = str(session.peer)
        message["X-MailFrom"] = envelope.mail_from
        message["X-RcptTo"] = ", ".join(envelope.rcpt_tos)
        return message

    @abstractmethod
    def handle_message(self, message: EmailMessage) -> Any:
        """
        Do something with the message.
        """


class Message(_MessageBase):
    """
    A base class for handlers that want each message as an C{email}
    message: implement L{handle_message}.
    """

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """
        Give the message to L{handle_message} and accept it. A coroutine, as
        in aiosmtpd, so that a subclass may C{return await
        super().handle_DATA(...)}.
        """
        self.handle_message(self.prepare_message(session, envelope))
        return "250 OK"

    @abstractmethod
    def handle_message(self, message: EmailMessage) -> None:
        """
        Do something with the message; it is accepted once this returns, and
        refused with a 451 reply if this raises.

        @param message: What L{prepare_message} made.
        """


class AsyncMessage(_MessageBase):
    """
    Like L{Message}, but L{handle_message} may wait: it may return a
    L{Deferred} or be a coroutine function, and the message is accepted only
    once that has finished (refused with a 451 reply if it failed).

    Under Twisted's asyncio reactor a L{Deferred} returned is waited for
    through an asyncio future, and a coroutine may await asyncio objects.
    """

    def __init__(
        self, message_class: type[EmailMessage] | None = None, *, loop: Any = None
    ) -> None:
        """
        @param message_class: As for L{Message}.
        @param loop: Given as C{self.loop} for handlers written for
            aiosmtpd (see L{loop}); not used otherwise.
        """
        super().__init__(message_class)
        self._loop = loop

    @property
    def loop(self) -> Any:
        """
        The loop given, else what C{session.loop} is: the asyncio event
        loop under Twisted's asyncio reactor, otherwise the reactor.
        """
        if self._loop is not None:
            return self._loop
        from twisted.internet import reactor

        return asyncioLoopOf(reactor) or reactor

    @loop.setter
    def loop(self, loop: Any) -> None:
        self._loop = loop

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """
        Give the message to L{handle_message}, wait for it, and accept the
        message.
        """
        await _outcome(self.handle_message(self.prepare_message(session, envelope)))
        return "250 OK"

    @abstractmethod
    def handle_message(self, message: EmailMessage) -> Any:
        """
        Do something with the message.

        @param message: What L{prepare_message} made.
        @return: C{None}, a L{Deferred} or a coroutine.
        """


class ProcessMessage(metaclass=ABCMeta):
    """
    Run a C{process_message} method written for the stdlib
    C{smtpd.SMTPServer} (removed in Python 3.12): subclass this instead of
    C{SMTPServer} and keep the method.

    It gets what C{smtpd} gave it: C{peer} (a C{(host, port)} tuple),
    C{mailfrom} (C{"<>"} for the null reverse-path), C{rcpttos} (a list),
    and C{data}: C{bytes} (C{str} with C{decode_data=True}), dot-unstuffed,
    with each CRLF turned into LF and without the final line ending. As in
    C{smtpd}, the keyword arguments C{mail_options} and C{rcpt_options}
    (lists) are passed only when the data is C{bytes}.

    For C{smtpd.DebuggingServer}, use L{Debugging}; for
    C{smtpd.PureProxy}, L{Proxy}.
    """

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> Any:
        """
        Call L{process_message} and send its reply, C{"250 OK"} for
        C{None}.
        """
        data = envelope.content
        newline = b"\r\n" if isinstance(data, bytes) else "\r\n"
        if data.endswith(newline):
            data = data[:-2]
        data = data.replace(newline, newline[1:])
        kwargs = {}
        if isinstance(data, bytes):
            kwargs = {
                "mail_options": list(envelope.mail_options),
                "rcpt_options": list(envelope.rcpt_options),
            }
        result = self.process_message(
            session.peer,
            envelope.mail_from,
            list(envelope.rcpt_tos),
            data,
            **kwargs,
        )
        result = await _outcome(result)
        return "250 OK" if result is None else result

    @abstractmethod
    def process_message(
        self,
        peer: Any,
        mailfrom: str,
        rcpttos: list[str],
        data: bytes | str,
        **kwargs: Any,
    ) -> Any:
        """
        Do something with the message.

        @return: C{None} to accept it with C{250 OK}, or the reply to send
            (such as C{"550 No such user"}); or a L{Deferred} or a coroutine
            for either.
        """


#: The hooks through which L{Mailbox} takes a message as it streams in.
_STREAMING_HOOKS = ("handle_DATA_CHUNK", "handle_DATA_END", "handle_DATA_ABORT")

#: The methods whose override makes a L{Mailbox} subclass want the whole
#: message in C{handle_DATA}, as before streaming.
_BUFFERED_METHODS = ("handle_DATA", "prepare_message", "handle_message")


class Mailbox(Message):
    """
    Store every message in a Maildir, durably: the message is written to
    C{tmp/}, flushed to disk, moved into C{new/} and the directory flushed,
    all in a thread, before the client gets C{250 OK}. If that fails, the
    client gets a 451 reply and nothing is left in the Maildir.

    The stored message is the message as received, byte for byte (line
    endings included), with the header fields C{X-Peer}, C{X-MailFrom} and
    C{X-RcptTo} of L{Message.prepare_message} added at the end of its header
    section. aiosmtpd re-serialises the parsed message instead.

    The message streams to disk as it arrives (C{handle_DATA_CHUNK},
    C{handle_DATA_END}, C{handle_DATA_ABORT}), so that the server never
    holds all of it: only its header section is held, up to 1 MiB, until
    the empty line that ends it, and then up to 256 KiB at a time. A
    message with no empty line in its first MiB gets the three fields at
    its start instead. A subclass that overrides C{handle_DATA},
    L{prepare_message} or L{handle_message} gets the whole message through
    C{handle_DATA}, as before: its streaming hooks are C{None} unless it
    defines them itself.

    @ivar mailbox: The C{mailbox.Maildir}, for reading the messages.
    @ivar mail_dir: The directory of the Maildir.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """
        Keep the buffered C{handle_DATA} for a subclass that overrides one of
        the methods it calls (see the class docstring).
        """
        super().__init_subclass__(**kwargs)
        mro = cls.__mro__
        between = mro[: mro.index(Mailbox)]
        if any(name in k.__dict__ for k in between for name in _BUFFERED_METHODS):
            for hook in _STREAMING_HOOKS:
                if not any(hook in k.__dict__ for k in between):
                    setattr(cls, hook, None)

    def __init__(
        self,
        mail_dir: str | os.PathLike[str],
        message_class: type[EmailMessage] | None = None,
        *,
        reactor: Any = None,
    ) -> None:
        """
        @param mail_dir: The directory of the Maildir; it is created, with
            its C{tmp}, C{new} and C{cur} directories, if missing.
        @param message_class: As for L{Message}.
        @param reactor: The reactor whose thread pool does the writing; the
            global one by default.
        """
        import mailbox

        super().__init__(message_class)
        self.mail_dir = mail_dir
        # Absolute now: twistd --rundir changes the directory later.
        path = os.path.abspath(os.fspath(mail_dir))
        for sub in ("tmp", "new", "cur"):
            os.makedirs(os.path.join(path, sub), mode=0o700, exist_ok=True)
        self.mailbox = mailbox.Maildir(path, create=False)
        self._path = path
        self._reactor = reactor
        # The messages streaming in, by envelope: one per transaction, of
        # any number of connections at once.
        self._streams: WeakKeyDictionary[Any, MessageStream] = WeakKeyDictionary()

    @classmethod
    def from_cli(cls, parser: Any, *args: str) -> Mailbox:
        """
        Make a L{Mailbox} for the command line, which takes exactly one
        argument: the directory.

        @param parser: An object whose C{error(message)} reports a usage
            error (and raises).
        """
        if len(args) != 1:
            parser.error("Mailbox takes exactly one argument: the Maildir directory")
        return cls(args[0])

    def reset(self) -> None:
        """
        Delete every message of the Maildir.
        """
        self.mailbox.clear()

    def _headers(self, session: Any, envelope: Any) -> list[bytes]:
        """
        The header fields added to every message stored.
        """
        rcpts = ", ".join(envelope.rcpt_tos)
        return [
            f"X-Peer: {session.peer}".encode("utf-8", "replace"),
            f"X-MailFrom: {envelope.mail_from}".encode(),
            f"X-RcptTo: {rcpts}".encode(),
        ]

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """
        Store the message; accept it once it is on disk.

        A subclass that overrides L{prepare_message} or L{handle_message},
        as aiosmtpd's documentation shows, gets them called instead: the
        message it made is stored with C{as_bytes()}, and is accepted once
        what L{handle_message} returns (a L{Deferred} or coroutine, such as
        C{super().handle_message(message)}) has finished.
        """
        cls = type(self)
        if (
            cls.prepare_message is not _MessageBase.prepare_message
            or cls.handle_message is not Mailbox.handle_message
        ):
            message = self.prepare_message(session, envelope)
            await _outcome(self.handle_message(message))
            return "250 OK"
        headers = self._headers(session, envelope)
        data = withHeaders(envelope.original_content, headers)
        await _outcome(self.store(data))
        return "250 OK"

    def handle_DATA_CHUNK(
        self, server: Any, session: Any, envelope: Any, data: bytes, size: int
    ) -> Deferred[None] | None:
        """
        Take the next piece of a message streaming in: pieces are gathered
        into writes of 256 KiB, the first of which makes the message's file
        in C{tmp/}.

        @return: C{None} while the piece is only held (in the header
            section, or gathered), or a L{Deferred} that fires once a write
            is done, so that the server reads no more meanwhile; it fails
            with the C{OSError} that prevented it, after the file is removed.
        """
        stream = self._streams.get(envelope)
        if stream is None:
            headers = self._headers(session, envelope)
            stream = MessageStream(self._path, headers, self._inThread)
            self._streams[envelope] = stream
        return stream.write(data)

    def handle_DATA_END(
        self, server: Any, session: Any, envelope: Any, size: int
    ) -> Deferred[str]:
        """
        Finish a message that streamed in: flush it to disk and move it into
        C{new/}.

        @return: A L{Deferred} that fires with C{"250 OK"} once the message
            is there, or fails with the C{OSError} that prevented it (the
            client gets a 451 reply and nothing is left).
        """
        stream = self._streams.pop(envelope, None)
        if stream is None:
            # An empty message: no piece came.
            headers = self._headers(session, envelope)
            stream = MessageStream(self._path, headers, self._inThread)
        return stream.end().addCallback(lambda name: "250 OK")

    def handle_DATA_ABORT(
        self, server: Any, session: Any, envelope: Any, reason: str
    ) -> None:
        """
        Remove what was written of a message that will not complete.
        """
        stream = self._streams.pop(envelope, None)
        if stream is not None:
            stream.abort()

    def handle_message(self, message: EmailMessage) -> Deferred:
        """
        Store an C{email} message, serialised with C{as_bytes()}.

        @return: A L{Deferred} that fires with its key in the Maildir.
        """
        return self.store(message.as_bytes())

    def store(self, data: bytes) -> Deferred:
        """
        Add a message to the Maildir durably, in a thread.

        @param data: The message, stored exactly as given.
        @return: A L{Deferred} that fires with the message's key once it is
            in C{new/}, or fails with the C{OSError} that prevented it.
        """
        return self._inThread(MaildirFile(self._path).finish, data)

    def _inThread(self, f: Callable[..., Any], *args: Any) -> Deferred[Any]:
        """
        Run C{f(*args)} in the reactor's thread pool.
        """
        reactor = self._reactor
        if reactor is None:
            from twisted.internet import reactor
        return deferToThreadPool(reactor, reactor.getThreadPool(), f, *args)
