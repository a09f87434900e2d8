"""
Tests for L{twisted_smtpd.handlers}, on the wire: through
L{twisted_smtpd.testing.SMTPTester}, and over loopback TCP for the handlers
that write files in threads or talk to an upstream server.
"""

from __future__ import annotations

import asyncio
import email.message
import io
import mailbox
import os
import shutil
import sys
import time
from typing import Any

from twisted.internet import reactor, task
from twisted.internet.defer import Deferred, gatherResults, succeed
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import capturedLogs
from twisted.trial.unittest import SynchronousTestCase, TestCase

from twisted_smtpd import SMTP, Envelope, Session, SMTPFactory
from twisted_smtpd.handlers import (
    AsyncMessage,
    Debugging,
    Mailbox,
    Message,
    ProcessMessage,
    Proxy,
    Sink,
)
from twisted_smtpd.testing import Reply, SMTPTester

#: A message with a header section, a body line starting with a dot and a
#: line that is a single dot (both dot-stuffed on the wire).
SAMPLE = (
    b"From: Anne <anne@example.com>\r\n"
    b"Subject: A test\r\n"
    b"\r\n"
    b"Hi Bart.\r\n"
    b".leading dot\r\n"
    b".\r\n"
    b"Bye.\r\n"
)

#: What L{Debugging} prints for L{SAMPLE} from the tester's default peer.
SAMPLE_PRINTED = (
    "---------- MESSAGE FOLLOWS ----------\n"
    "From: Anne <anne@example.com>\n"
    "Subject: A test\n"
    "X-Peer: ('127.0.0.1', 42424)\n"
    "\n"
    "Hi Bart.\n"
    ".leading dot\n"
    ".\n"
    "Bye.\n"
    "------------ END MESSAGE ------------\n"
)

OK = Reply(250, "OK")
LOCAL_ERROR = Reply(451, "Requested action aborted: local error in processing")
UNAVAILABLE = Reply(451, "4.4.1 Upstream not available")


class ParserError(Exception):
    """
    What L{FakeParser.error} raises, as C{argparse} exits.
    """


class FakeParser:
    """
    The part of C{argparse.ArgumentParser} that C{from_cli} uses.

    @ivar errors: The messages given to L{error}.
    """

    def __init__(self) -> None:
        self.errors: list[str] = []

    def error(self, message: str) -> None:
        self.errors.append(message)
        raise ParserError(message)


def transaction(
    tester: SMTPTester,
    message: bytes,
    *,
    mail: str = "MAIL FROM:<anne@example.com>",
    rcpts: tuple[str, ...] = ("bart@example.com",),
) -> list[Reply]:
    """
    Run EHLO, a MAIL command as given, RCPTs and DATA with C{message}
    (dot-stuffed here) in lock-step; return the replies so far (the last
    one missing while the handler is pending).
    """
    replies = [tester.command("EHLO client.example"), tester.command(mail)]
    replies += [tester.command(f"RCPT TO:<{rcpt}>") for rcpt in rcpts]
    replies.append(tester.command("DATA"))
    stuffed = b"." + message if message.startswith(b".") else message
    tester.send(stuffed.replace(b"\r\n.", b"\r\n..") + b".\r\n")
    return replies + tester.replies()


async def waitForReplies(tester: SMTPTester, count: int, within: float = 10.0):
    """
    Poll C{tester} with the real reactor until C{count} more replies came.

    @raise AssertionError: If they did not come C{within} seconds.
    """
    got: list[Reply] = []
    deadline = time.monotonic() + within
    while True:
        got += tester.replies()
        if len(got) >= count:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"{count} replies expected, got {got!r}")
        await task.deferLater(reactor, 0.005, lambda: None)


class SinkTests(SynchronousTestCase):
    """
    Tests for L{Sink}.
    """

    def test_acceptsMessage(self) -> None:
        """
        A message gets C{250 OK}.
        """
        replies = SMTPTester(Sink()).sendmail(
            "a@example.com", ["b@example.com"], SAMPLE
        )
        self.assertEqual(replies[-1], OK)

    def test_fromCli(self) -> None:
        """
        Without arguments, C{from_cli} makes a L{Sink}.
        """
        self.assertIsInstance(Sink.from_cli(FakeParser()), Sink)

    def test_fromCliRefusesArguments(self) -> None:
        """
        C{from_cli} reports any argument as an error.
        """
        parser = FakeParser()
        self.assertRaises(ParserError, Sink.from_cli, parser, "x")
        self.assertEqual(parser.errors, ["Sink handler does not accept arguments"])


class Recording(io.StringIO):
    """
    A text stream that counts its flushes.
    """

    flushes = 0

    def flush(self) -> None:
        self.flushes += 1
        super().flush()


class DebuggingTests(SynchronousTestCase):
    """
    Tests for L{Debugging}.
    """

    def test_output(self) -> None:
        """
        The message is printed in aiosmtpd's shape, with C{X-Peer} where the
        headers end, and accepted.
        """
        stream = Recording()
        replies = transaction(SMTPTester(Debugging(stream)), SAMPLE)
        self.assertEqual(replies[-1], OK)
        self.assertEqual(stream.getvalue(), SAMPLE_PRINTED)
        self.assertEqual(stream.flushes, 1)

    def test_subclassAwaitsSuper(self) -> None:
        """
        A subclass written the aiosmtpd way, C{return await
        super().handle_DATA(...)}, prints the message once and is accepted.
        """

        class Counting(Debugging):
            async def handle_DATA(self, server, session, envelope):
                return await super().handle_DATA(server, session, envelope)

        stream = Recording()
        replies = transaction(SMTPTester(Counting(stream)), SAMPLE)
        self.assertEqual(replies[-1], OK)
        self.assertEqual(stream.getvalue(), SAMPLE_PRINTED)

    def test_mailOptions(self) -> None:
        """
        MAIL parameters are printed first, followed by an empty line.
        """
        stream = io.StringIO()
        tester = SMTPTester(Debugging(stream))
        replies = transaction(
            tester, SAMPLE, mail="MAIL FROM:<a@example.com> BODY=8BITMIME SIZE=100"
        )
        self.assertEqual(replies[-1], OK)
        self.assertEqual(
            stream.getvalue(),
            "---------- MESSAGE FOLLOWS ----------\n"
            "mail options: ['BODY=8BITMIME', 'SIZE=100']\n"
            "\n" + SAMPLE_PRINTED.split("\n", 1)[1],
        )

    def test_decodeData(self) -> None:
        """
        With C{decode_data}, the content is a C{str}; the output is the
        same.
        """
        stream = io.StringIO()
        replies = transaction(SMTPTester(Debugging(stream), decode_data=True), SAMPLE)
        self.assertEqual(replies[-1], OK)
        self.assertEqual(stream.getvalue(), SAMPLE_PRINTED)

    def test_invalidUTF8(self) -> None:
        """
        Bytes that are not UTF-8 are printed as replacement characters.
        """
        stream = io.StringIO()
        transaction(
            SMTPTester(Debugging(stream)),
            b"Subject: caf\xc3\xa9 \xff\r\n\r\nbody\r\n",
            mail="MAIL FROM:<a@example.com> BODY=8BITMIME",
        )
        self.assertIn("Subject: caf\xe9 \ufffd\nX-Peer:", stream.getvalue())

    def test_headersOnly(self) -> None:
        """
        A message without an empty line is all header: C{X-Peer} comes at
        its end.
        """
        stream = io.StringIO()
        transaction(SMTPTester(Debugging(stream)), b"Subject: x\r\n")
        self.assertEqual(
            stream.getvalue(),
            "---------- MESSAGE FOLLOWS ----------\n"
            "Subject: x\n"
            "X-Peer: ('127.0.0.1', 42424)\n"
            "------------ END MESSAGE ------------\n",
        )

    def test_defaultStreamIsStdoutAtPrintTime(self) -> None:
        """
        Without a stream, messages go to C{sys.stdout} as it is when they
        are printed.
        """
        handler = Debugging()
        stream = io.StringIO()
        self.patch(sys, "stdout", stream)
        transaction(SMTPTester(handler), SAMPLE)
        self.assertEqual(stream.getvalue(), SAMPLE_PRINTED)
        self.assertIs(handler.stream, stream)
        other = io.StringIO()
        handler.stream = other
        self.assertIs(handler.stream, other)

    def test_fromCli(self) -> None:
        """
        C{from_cli} takes nothing, C{stdout} or C{stderr}.
        """
        parser = FakeParser()
        self.assertIs(Debugging.from_cli(parser).stream, sys.stdout)
        self.assertIs(Debugging.from_cli(parser, "stdout").stream, sys.stdout)
        self.assertIs(Debugging.from_cli(parser, "stderr").stream, sys.stderr)
        self.assertEqual(parser.errors, [])

    def test_fromCliErrors(self) -> None:
        """
        C{from_cli} reports another name, or more than one argument.
        """
        for args in (("stdin",), ("stdout", "stderr")):
            parser = FakeParser()
            self.assertRaises(ParserError, Debugging.from_cli, parser, *args)
            self.assertEqual(
                parser.errors,
                ["Debugging takes one optional argument: stdout or stderr"],
            )


class Collecting(Message):
    """
    A L{Message} that keeps the messages, or raises.
    """

    def __init__(self, *args: Any, error: Exception | None = None, **kw: Any):
        super().__init__(*args, **kw)
        self.messages: list[email.message.Message] = []
        self.error = error

    def handle_message(self, message: email.message.Message) -> None:
        if self.error is not None:
            raise self.error
        self.messages.append(message)


class CustomMessage(email.message.Message):
    """
    A message class of the user's.
    """


class MessageTests(SynchronousTestCase):
    """
    Tests for L{Message}.
    """

    def test_headers(self) -> None:
        """
        C{handle_message} gets the parsed message with C{X-Peer},
        C{X-MailFrom} and C{X-RcptTo} added; the message is accepted.
        """
        handler = Collecting()
        replies = transaction(
            SMTPTester(handler), SAMPLE, rcpts=("bart@example.com", "cate@example.com")
        )
        self.assertEqual(replies[-1], OK)
        [message] = handler.messages
        self.assertIs(type(message), email.message.Message)
        self.assertEqual(
            message.items(),
            [
                ("From", "Anne <anne@example.com>"),
                ("Subject", "A test"),
                ("X-Peer", "('127.0.0.1', 42424)"),
                ("X-MailFrom", "anne@example.com"),
                ("X-RcptTo", "bart@example.com, cate@example.com"),
            ],
        )
        self.assertEqual(
            message.get_payload(), "Hi Bart.\r\n.leading dot\r\n.\r\nBye.\r\n"
        )

    def test_subclassAwaitsSuper(self) -> None:
        """
        A subclass that wraps C{handle_DATA} with C{await super()} gets each
        message handled once and accepted.
        """

        class Wrapping(Collecting):
            async def handle_DATA(self, server, session, envelope):
                status = await super().handle_DATA(server, session, envelope)
                return status.replace("OK", "Queued")

        handler = Wrapping()
        replies = transaction(SMTPTester(handler), SAMPLE)
        self.assertEqual(replies[-1], Reply(250, "Queued"))
        self.assertEqual(len(handler.messages), 1)

    def test_nullSender(self) -> None:
        """
        The null reverse-path is C{<>} in C{X-MailFrom}.
        """
        handler = Collecting()
        transaction(SMTPTester(handler), SAMPLE, mail="MAIL FROM:<>")
        self.assertEqual(handler.messages[0]["X-MailFrom"], "<>")

    def test_messageClass(self) -> None:
        """
        The message is made with C{message_class}.
        """
        handler = Collecting(CustomMessage)
        transaction(SMTPTester(handler), SAMPLE)
        self.assertIs(type(handler.messages[0]), CustomMessage)

    def test_decodeData(self) -> None:
        """
        With C{decode_data}, the C{str} content is parsed the same way.
        """
        handler = Collecting()
        replies = transaction(SMTPTester(handler, decode_data=True), SAMPLE)
        self.assertEqual(replies[-1], OK)
        message = handler.messages[0]
        self.assertEqual(message["Subject"], "A test")
        self.assertEqual(message["X-Peer"], "('127.0.0.1', 42424)")

    def test_failure(self) -> None:
        """
        An exception in C{handle_message} refuses the message with 451.
        """
        handler = Collecting(error=RuntimeError("disk full"))
        replies = transaction(SMTPTester(handler), SAMPLE)
        self.assertEqual(replies[-1], LOCAL_ERROR)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_abstract(self) -> None:
        """
        L{Message} itself cannot be made: C{handle_message} is missing.
        """
        self.assertRaises(TypeError, Message)


class Waiting(AsyncMessage):
    """
    An L{AsyncMessage} whose C{handle_message} returns what C{make} makes.
    """

    def __init__(self, make: Any, **kw: Any) -> None:
        super().__init__(**kw)
        self.make = make
        self.messages: list[email.message.Message] = []

    def handle_message(self, message: email.message.Message) -> Any:
        self.messages.append(message)
        return self.make()


class AsyncMessageTests(SynchronousTestCase):
    """
    Tests for L{AsyncMessage}.
    """

    def test_waitsForDeferred(self) -> None:
        """
        The reply waits until the L{Deferred} from C{handle_message} fires.
        """
        pending: Deferred[None] = Deferred()
        handler = Waiting(lambda: pending)
        tester = SMTPTester(handler)
        replies = transaction(tester, SAMPLE)
        self.assertEqual(replies[-1], Reply(354, "End data with <CR><LF>.<CR><LF>"))
        self.assertEqual(handler.messages[0]["X-RcptTo"], "bart@example.com")
        pending.callback(None)
        self.assertEqual(tester.replies(), [OK])

    def test_coroutine(self) -> None:
        """
        C{handle_message} may be a coroutine function; it is awaited.
        """
        pending: Deferred[None] = Deferred()

        async def handle() -> None:
            await pending

        tester = SMTPTester(Waiting(handle))
        transaction(tester, SAMPLE)
        self.assertEqual(tester.replies(), [])
        pending.callback(None)
        self.assertEqual(tester.replies(), [OK])

    def test_failure(self) -> None:
        """
        A failed L{Deferred} refuses the message with 451.
        """
        pending: Deferred[None] = Deferred()
        tester = SMTPTester(Waiting(lambda: pending))
        transaction(tester, SAMPLE)
        pending.errback(RuntimeError("no"))
        self.assertEqual(tester.replies(), [LOCAL_ERROR])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_deferredInAsyncioTask(self) -> None:
        """
        Run as an asyncio task (as under the asyncio reactor), C{handle_DATA}
        waits for a L{Deferred} through an asyncio future.
        """
        pending: Deferred[None] = Deferred()
        handler = Waiting(lambda: pending)
        session = Session()
        session.peer = ("192.0.2.1", 2525)
        envelope = Envelope()
        envelope.mail_from = "a@example.com"
        envelope.rcpt_tos = ["b@example.com"]
        envelope.content = envelope.original_content = SAMPLE

        async def main() -> str:
            asyncio.get_running_loop().call_soon(pending.callback, None)
            return await handler.handle_DATA(None, session, envelope)

        self.assertEqual(asyncio.run(main()), "250 OK")
        self.assertEqual(handler.messages[0]["X-Peer"], "('192.0.2.1', 2525)")

    def test_loop(self) -> None:
        """
        The C{loop} argument of aiosmtpd is kept as C{loop}.
        """
        loop = object()
        self.assertIs(Waiting(lambda: None, loop=loop).loop, loop)

    def test_defaultLoop(self) -> None:
        """
        Without a C{loop} argument, C{loop} is what C{session.loop} is: the
        asyncio loop under the asyncio reactor, else the reactor.
        """
        expected = getattr(reactor, "_asyncioEventloop", None) or reactor
        self.assertIs(Waiting(lambda: None).loop, expected)
        tester = SMTPTester(Sink(), reactor=reactor, timeout=None)
        self.assertIs(tester.server.loop, expected)


class Smtpd(ProcessMessage):
    """
    A L{ProcessMessage} that records its calls and returns C{result}.
    """

    def __init__(self, result: Any = None) -> None:
        self.result = result
        self.calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def process_message(self, *args: Any, **kwargs: Any) -> Any:
        self.calls.append((args, kwargs))
        return self.result


class ProcessMessageTests(SynchronousTestCase):
    """
    Tests for L{ProcessMessage}, the stdlib C{smtpd} adapter.
    """

    def test_arguments(self) -> None:
        """
        C{process_message} gets the peer, sender, recipients and the data
        as C{smtpd} gave it: LF line endings, no final newline, and the
        options as keyword arguments; C{None} gives C{250 OK}.
        """
        handler = Smtpd()
        replies = transaction(
            SMTPTester(handler),
            SAMPLE,
            mail="MAIL FROM:<anne@example.com> BODY=8BITMIME",
            rcpts=("b@example.com", "c@example.com"),
        )
        self.assertEqual(replies[-1], OK)
        self.assertEqual(
            handler.calls,
            [
                (
                    (
                        ("127.0.0.1", 42424),
                        "anne@example.com",
                        ["b@example.com", "c@example.com"],
                        b"From: Anne <anne@example.com>\nSubject: A test\n\n"
                        b"Hi Bart.\n.leading dot\n.\nBye.",
                    ),
                    {"mail_options": ["BODY=8BITMIME"], "rcpt_options": []},
                )
            ],
        )

    def test_bareLineEndings(self) -> None:
        """
        A bare CR or LF (when allowed) stays as it is, as in C{smtpd}.
        """
        handler = Smtpd()
        transaction(SMTPTester(handler, bare_newline="allow"), b"a\nb\rc\r\n\r\nd\r\n")
        self.assertEqual(handler.calls[0][0][3], b"a\nb\rc\n\nd")

    def test_decodeData(self) -> None:
        """
        With C{decode_data}, the data is a C{str} and, as in C{smtpd}, no
        keyword arguments are passed.
        """
        handler = Smtpd()
        transaction(SMTPTester(handler, decode_data=True), SAMPLE)
        [(args, kwargs)] = handler.calls
        self.assertEqual(
            args[3],
            "From: Anne <anne@example.com>\nSubject: A test\n\n"
            "Hi Bart.\n.leading dot\n.\nBye.",
        )
        self.assertEqual(kwargs, {})

    def test_nullSenderAndEmptyMessage(self) -> None:
        """
        The null reverse-path is C{"<>"} and an empty message is C{b""}.
        """
        handler = Smtpd()
        tester = SMTPTester(handler)
        tester.command("EHLO client.example")
        tester.command("MAIL FROM:<>")
        tester.command("RCPT TO:<b@example.com>")
        tester.command("DATA")
        self.assertEqual(tester.command("."), OK)
        self.assertEqual(handler.calls[0][0][1:], ("<>", ["b@example.com"], b""))

    def test_stringReply(self) -> None:
        """
        A string returned is the reply.
        """
        replies = transaction(SMTPTester(Smtpd("550 No such user here")), SAMPLE)
        self.assertEqual(replies[-1], Reply(550, "No such user here"))

    def test_deferredReply(self) -> None:
        """
        A L{Deferred} returned is waited for; its reply is sent.
        """
        pending: Deferred[str] = Deferred()
        tester = SMTPTester(Smtpd(pending))
        transaction(tester, SAMPLE)
        self.assertEqual(tester.replies(), [])
        pending.callback("452 Try later")
        self.assertEqual(tester.replies(), [Reply(452, "Try later")])

    def test_coroutineReturningNone(self) -> None:
        """
        A coroutine returning C{None} gives C{250 OK}.
        """

        class Handler(ProcessMessage):
            async def process_message(self, *args: Any, **kwargs: Any) -> None:
                await succeed(None)

        self.assertEqual(transaction(SMTPTester(Handler()), SAMPLE)[-1], OK)


class MailboxCliTests(SynchronousTestCase):
    """
    Tests for L{Mailbox.from_cli} and the making of the Maildir.
    """

    def test_fromCli(self) -> None:
        """
        C{from_cli} takes the directory, and creates the Maildir.
        """
        path = self.mktemp()
        handler = Mailbox.from_cli(FakeParser(), path)
        self.assertEqual(handler.mail_dir, path)
        self.assertEqual(sorted(os.listdir(path)), ["cur", "new", "tmp"])

    def test_fromCliErrors(self) -> None:
        """
        C{from_cli} requires exactly one argument.
        """
        for args in ((), ("a", "b")):
            parser = FakeParser()
            self.assertRaises(ParserError, Mailbox.from_cli, parser, *args)
            self.assertEqual(
                parser.errors,
                ["Mailbox takes exactly one argument: the Maildir directory"],
            )

    def test_completesExistingDirectory(self) -> None:
        """
        An existing directory gets its missing C{tmp}, C{new} and C{cur}.
        """
        path = self.mktemp()
        os.makedirs(os.path.join(path, "cur"))
        Mailbox(path)
        self.assertEqual(sorted(os.listdir(path)), ["cur", "new", "tmp"])


def stored(message: bytes, rcpts: str = "bart@example.com") -> bytes:
    """
    What L{Mailbox} stores for C{message}, sent by C{anne@example.com} from
    the tester's default peer.
    """
    head, sep, body = message.partition(b"\r\n\r\n")
    return (
        head
        + b"\r\nX-Peer: ('127.0.0.1', 42424)\r\nX-MailFrom: anne@example.com\r\n"
        + b"X-RcptTo: "
        + rcpts.encode()
        + sep
        + body
    )


class MailboxTests(TestCase):
    """
    Integration tests for L{Mailbox}: the real reactor's thread pool (files
    are written in threads) and real files, but no sockets.
    """

    timeout = 15

    def setUp(self) -> None:
        self.path = self.mktemp()
        self.handler = Mailbox(self.path, reactor=reactor)
        self.tester = SMTPTester(self.handler, reactor=reactor, timeout=None)

    async def deliver(self, message: bytes, **kw: Any) -> Reply:
        """
        Send C{message} and return the reply to its end.
        """
        replies = transaction(self.tester, message, **kw)
        rcpts = kw.get("rcpts", ("bart@example.com",))
        self.assertEqual(len(replies), 3 + len(rcpts))
        [reply] = await waitForReplies(self.tester, 1)
        return reply

    async def test_storesByteExact(self) -> None:
        """
        The message is in C{new/} as received, with C{X-Peer},
        C{X-MailFrom} and C{X-RcptTo} at the end of its header section;
        C{tmp/} is empty and C{mailbox.Maildir} reads it back.
        """
        self.assertEqual(await self.deliver(SAMPLE), OK)
        self.assertEqual(os.listdir(os.path.join(self.path, "tmp")), [])
        self.assertEqual(os.listdir(os.path.join(self.path, "cur")), [])
        [name] = os.listdir(os.path.join(self.path, "new"))
        self.assertRegex(name, r"^\d+\.M\d+P\d+Q\d+\.[^/:]+$")
        with open(os.path.join(self.path, "new", name), "rb") as f:
            self.assertEqual(f.read(), stored(SAMPLE))
        box = mailbox.Maildir(self.path, create=False)
        self.assertEqual(box.keys(), [name])
        self.assertEqual(box.get_bytes(name), stored(SAMPLE))
        self.assertEqual(box[name]["X-RcptTo"], "bart@example.com")

    async def test_relativePathAfterChdir(self) -> None:
        """
        A Maildir given as a relative path is still the one written to after
        the process changes directory (as C{twistd --rundir} does once the
        handler is made).
        """
        base = os.path.abspath(self.mktemp())
        os.makedirs(os.path.join(base, "elsewhere"))
        self.addCleanup(os.chdir, os.getcwd())
        os.chdir(base)
        self.handler = Mailbox("box", reactor=reactor)
        self.tester = SMTPTester(self.handler, reactor=reactor, timeout=None)
        os.chdir("elsewhere")
        self.assertEqual(await self.deliver(SAMPLE), OK)
        self.assertEqual(len(os.listdir(os.path.join(base, "box", "new"))), 1)
        self.assertFalse(os.path.exists(os.path.join(base, "elsewhere", "box")))

    async def test_subclassPrepareMessage(self) -> None:
        """
        A subclass that adds a header in C{prepare_message} and counts in
        C{handle_message}, as aiosmtpd's documentation shows, has both
        called once; the stored message has the header.
        """
        calls = []

        class Tagging(Mailbox):
            def prepare_message(self, session, envelope):
                message = super().prepare_message(session, envelope)
                message["X-Tag"] = "tagged"
                return message

            def handle_message(self, message):
                calls.append(message["X-Tag"])
                return super().handle_message(message)

        self.handler = Tagging(self.path, reactor=reactor)
        self.tester = SMTPTester(self.handler, reactor=reactor, timeout=None)
        self.assertEqual(await self.deliver(SAMPLE), OK)
        self.assertEqual(calls, ["tagged"])
        box = mailbox.Maildir(self.path, create=False)
        [key] = box.keys()
        self.assertEqual(box[key]["X-Tag"], "tagged")
        self.assertEqual(box[key]["X-MailFrom"], "anne@example.com")

    async def test_severalMessages(self) -> None:
        """
        Each message gets its own file; the 8-bit bytes and every recipient
        are kept.
        """
        eight = b"Subject: caf\xc3\xa9\r\n\r\n\xff\xfe\r\n"
        self.assertEqual(await self.deliver(SAMPLE), OK)
        reply = await self.deliver(
            eight,
            mail="MAIL FROM:<anne@example.com> BODY=8BITMIME",
            rcpts=("b@example.com", "c@example.com"),
        )
        self.assertEqual(reply, OK)
        box = mailbox.Maildir(self.path, create=False)
        self.assertEqual(
            sorted(box.get_bytes(key) for key in box.keys()),
            sorted([stored(SAMPLE), stored(eight, "b@example.com, c@example.com")]),
        )

    async def test_decodeData(self) -> None:
        """
        With C{decode_data}, the bytes received are stored all the same.
        """
        self.tester = SMTPTester(
            self.handler, reactor=reactor, timeout=None, decode_data=True
        )
        self.assertEqual(await self.deliver(SAMPLE), OK)
        box = mailbox.Maildir(self.path, create=False)
        self.assertEqual([box.get_bytes(key) for key in box.keys()], [stored(SAMPLE)])

    async def test_writeFailure(self) -> None:
        """
        When the message cannot be written, the client gets 451 and nothing
        is left in the Maildir.
        """
        tmp = os.path.join(self.path, "tmp")
        shutil.rmtree(tmp)
        with open(tmp, "wb"):
            pass
        self.assertEqual(await self.deliver(SAMPLE), LOCAL_ERROR)
        self.assertEqual(os.listdir(os.path.join(self.path, "new")), [])
        self.assertEqual(len(self.flushLoggedErrors(NotADirectoryError)), 1)
        # The connection goes on.
        self.assertEqual(self.tester.command("RSET"), OK)

    async def test_reset(self) -> None:
        """
        C{reset} deletes the stored messages.
        """
        await self.deliver(SAMPLE)
        self.handler.reset()
        self.assertEqual(os.listdir(os.path.join(self.path, "new")), [])

    async def test_handleMessage(self) -> None:
        """
        C{handle_message} stores an C{email} message and fires with its key.
        """
        message = email.message.Message()
        message["Subject"] = "stored"
        message.set_payload("body\n")
        key = await self.handler.handle_message(message)
        box = mailbox.Maildir(self.path, create=False)
        self.assertEqual(box.get_bytes(key), b"Subject: stored\n\nbody\n")


class Upstream:
    """
    The handler of the upstream server: records what it receives.

    @ivar received: One dict per message.
    @ivar refuse: Replies to RCPT, by recipient.
    @ivar dataReply: The reply to the end of the data (C{None}: accept).
    """

    def __init__(self, dataReply: Any = None, refuse: dict[str, str] | None = None):
        self.received: list[dict[str, Any]] = []
        self.refuse = refuse or {}
        self.dataReply = dataReply

    def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        return self.refuse.get(address)

    def handle_DATA(self, server, session, envelope):
        self.received.append(
            {
                "helo": session.host_name,
                "mail_from": envelope.mail_from,
                "mail_options": envelope.mail_options,
                "rcpt_tos": envelope.rcpt_tos,
                "data": envelope.original_content,
            }
        )
        return self.dataReply


class NoEhlo(Upstream):
    """
    An upstream that refuses EHLO.
    """

    def handle_EHLO(self, server, session, envelope, hostname, responses):
        return "502 5.5.1 EHLO not supported"


class Hangup(Upstream):
    """
    An upstream that closes the connection instead of replying to the data.
    """

    def handle_DATA(self, server, session, envelope):
        super().handle_DATA(server, session, envelope)
        server.transport.loseConnection()
        return Deferred()


class Silent(Protocol):
    """
    A server that never says anything.
    """

    def connectionMade(self) -> None:
        self.factory.made.append(self)
        self.lost: Deferred[None] = Deferred()

    def connectionLost(self, reason: Any = None) -> None:
        self.lost.callback(None)


class ProxyRelayTests(TestCase):
    """
    Integration tests for L{Proxy}: real TCP on 127.0.0.1 to a second
    twisted_smtpd server that records what it receives.
    """

    timeout = 20

    def upstream(self, handler: Upstream, **options: Any) -> int:
        """
        Listen on 127.0.0.1 with C{handler}; return the port. The cleanup
        waits until every connection to it is closed.
        """
        lost: list[Deferred[None]] = []

        class Tracked(SMTP):
            def connectionMade(self) -> None:
                self.lost: Deferred[None] = Deferred()
                lost.append(self.lost)
                super().connectionMade()

            def connectionLost(self, reason: Any = None) -> None:
                super().connectionLost(reason)
                self.lost.callback(None)

        factory = SMTPFactory(
            handler, protocol=Tracked, hostname="upstream.example", **options
        )
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")
        self.addCleanup(lambda: gatherResults(lost))
        self.addCleanup(port.stopListening)
        return port.getHost().port

    def proxy(self, port: int, **options: Any) -> SMTPTester:
        """
        A client connected in memory to a server whose handler is a L{Proxy}
        to 127.0.0.1:C{port}, relaying for C{example.com}.
        """
        handler = Proxy(
            "127.0.0.1",
            port,
            reactor=reactor,
            relay_domains=["example.com"],
            timeout=5,
        )
        return SMTPTester(
            handler,
            reactor=reactor,
            timeout=None,
            hostname="proxy.example",
            peer=("192.0.2.7", 4321),
            **options,
        )

    async def relay(self, tester: SMTPTester, message: bytes, **kw: Any) -> Reply:
        """
        Send C{message} through the proxy; return the reply to its end.
        """
        replies = transaction(tester, message, **kw)
        self.assertEqual(
            [r.code for r in replies[1:]],
            [250] * (1 + len(kw.get("rcpts", ("bart@example.com",)))) + [354],
        )
        [reply] = await waitForReplies(tester, 1)
        return reply

    async def test_byteExact(self) -> None:
        """
        The message arrives byte for byte, dot lines and 8-bit bytes
        included, with C{X-Peer} added at the end of the header section;
        BODY passes on, SIZE is the exact size, and the proxy greets with
        its own name.
        """
        upstream = Upstream()
        tester = self.proxy(self.upstream(upstream))
        message = SAMPLE + b"\xc3\xa9t\xc3\xa9 \xff\r\n..two dots\r\n"
        reply = await self.relay(
            tester, message, mail="MAIL FROM:<anne@example.com> BODY=8BITMIME"
        )
        self.assertEqual(reply, OK)
        expected = message.replace(
            b"A test\r\n\r\n", b"A test\r\nX-Peer: 192.0.2.7\r\n\r\n"
        )
        self.assertEqual(
            upstream.received,
            [
                {
                    "helo": "proxy.example",
                    "mail_from": "anne@example.com",
                    "mail_options": ["BODY=8BITMIME", f"SIZE={len(expected)}"],
                    "rcpt_tos": ["bart@example.com"],
                    "data": expected,
                }
            ],
        )

    async def test_leadingDotAndNoHeaderEnd(self) -> None:
        """
        A first line starting with a dot is stuffed too; a message without
        an empty line gets C{X-Peer} at its end.
        """
        upstream = Upstream()
        tester = self.proxy(self.upstream(upstream))
        message = b".first\r\n..second\r\n"
        self.assertEqual(await self.relay(tester, message), OK)
        self.assertEqual(
            upstream.received[0]["data"], message + b"X-Peer: 192.0.2.7\r\n"
        )

    async def test_nullSenderAndRecipients(self) -> None:
        """
        The null reverse-path and every recipient pass on.
        """
        upstream = Upstream()
        tester = self.proxy(self.upstream(upstream))
        reply = await self.relay(
            tester,
            SAMPLE,
            mail="MAIL FROM:<>",
            rcpts=("a@example.com", "b@EXAMPLE.com"),
        )
        self.assertEqual(reply, OK)
        self.assertEqual(upstream.received[0]["mail_from"], "<>")
        self.assertEqual(
            upstream.received[0]["rcpt_tos"], ["a@example.com", "b@EXAMPLE.com"]
        )

    async def test_decodeData(self) -> None:
        """
        A proxy server with C{decode_data} relays the bytes received.
        """
        upstream = Upstream()
        tester = self.proxy(self.upstream(upstream), decode_data=True)
        self.assertEqual(await self.relay(tester, SAMPLE), OK)
        self.assertEqual(
            upstream.received[0]["data"],
            SAMPLE.replace(b"test\r\n\r\n", b"test\r\nX-Peer: 192.0.2.7\r\n\r\n"),
        )

    async def test_smtputf8(self) -> None:
        """
        SMTPUTF8 and a UTF-8 address pass on to an upstream that offers it.
        """
        upstream = Upstream()
        tester = self.proxy(
            self.upstream(upstream, enable_SMTPUTF8=True), enable_SMTPUTF8=True
        )
        reply = await self.relay(
            tester, SAMPLE, mail="MAIL FROM:<j\u00f6rg@example.com> SMTPUTF8"
        )
        self.assertEqual(reply, OK)
        self.assertEqual(upstream.received[0]["mail_from"], "j\u00f6rg@example.com")
        self.assertEqual(upstream.received[0]["mail_options"][0], "SMTPUTF8")

    async def test_smtputf8Unsupported(self) -> None:
        """
        An SMTPUTF8 message is refused with 553 5.6.7 when the upstream does
        not offer SMTPUTF8; nothing is relayed.
        """
        upstream = Upstream()
        tester = self.proxy(self.upstream(upstream), enable_SMTPUTF8=True)
        reply = await self.relay(
            tester, SAMPLE, mail="MAIL FROM:<j\u00f6rg@example.com> SMTPUTF8"
        )
        self.assertEqual(reply, Reply(553, "5.6.7 Upstream does not support SMTPUTF8"))
        self.assertEqual(upstream.received, [])

    async def test_heloFallback(self) -> None:
        """
        When the upstream refuses EHLO, HELO is used, and no MAIL parameter
        is sent.
        """
        upstream = NoEhlo()
        tester = self.proxy(self.upstream(upstream))
        reply = await self.relay(
            tester, SAMPLE, mail="MAIL FROM:<anne@example.com> BODY=8BITMIME"
        )
        self.assertEqual(reply, OK)
        self.assertEqual(upstream.received[0]["mail_options"], [])
        self.assertEqual(upstream.received[0]["helo"], "proxy.example")

    async def test_dataRefused(self) -> None:
        """
        The upstream's refusal of the message is the client's reply.
        """
        tester = self.proxy(self.upstream(Upstream(dataReply="554 No thanks")))
        self.assertEqual(await self.relay(tester, SAMPLE), Reply(554, "No thanks"))

    async def test_multiLineRefusal(self) -> None:
        """
        A multi-line refusal is passed on whole.
        """
        upstream = Upstream(dataReply="554-5.7.1 Spam\r\n554 5.7.1 Go away")
        tester = self.proxy(self.upstream(upstream))
        reply = await self.relay(tester, SAMPLE)
        self.assertEqual(reply, Reply(554, "5.7.1 Spam\n5.7.1 Go away"))

    async def test_allRecipientsRefused(self) -> None:
        """
        When the upstream refuses every recipient, its refusal is the
        client's reply and no message is relayed.
        """
        upstream = Upstream(refuse={"bart@example.com": "550 5.1.1 No such user"})
        tester = self.proxy(self.upstream(upstream))
        reply = await self.relay(tester, SAMPLE)
        self.assertEqual(reply, Reply(550, "5.1.1 No such user"))
        self.assertEqual(upstream.received, [])

    async def test_temporaryRefusalPreferred(self) -> None:
        """
        When every recipient is refused, a temporary refusal is given rather
        than a permanent one, so that the client tries again.
        """
        upstream = Upstream(
            refuse={
                "a@example.com": "550 5.1.1 No such user",
                "b@example.com": "452 4.2.2 Mailbox full",
            }
        )
        tester = self.proxy(self.upstream(upstream))
        reply = await self.relay(
            tester, SAMPLE, rcpts=("a@example.com", "b@example.com")
        )
        self.assertEqual(reply, Reply(452, "4.2.2 Mailbox full"))

    async def test_someRecipientsRefused(self) -> None:
        """
        When the upstream accepts some recipients, the message is relayed to
        them and accepted; the refused ones are logged.
        """
        upstream = Upstream(refuse={"a@example.com": "550 5.1.1 No such user"})
        tester = self.proxy(self.upstream(upstream))
        with capturedLogs() as events:
            reply = await self.relay(
                tester, SAMPLE, rcpts=("a@example.com", "b@example.com")
            )
        self.assertEqual(reply, OK)
        self.assertEqual(upstream.received[0]["rcpt_tos"], ["b@example.com"])
        refusals = [e for e in events if "refused" in e.get("log_format", "")]
        self.assertEqual(
            [e["refused"] for e in refusals],
            [[("a@example.com", "550 5.1.1 No such user")]],
        )

    async def test_upstreamDown(self) -> None:
        """
        When the upstream cannot be reached, the client gets 451 4.4.1.
        """
        port = reactor.listenTCP(0, Factory(), interface="127.0.0.1")
        number = port.getHost().port
        await port.stopListening()
        tester = self.proxy(number)
        self.assertEqual(await self.relay(tester, SAMPLE), UNAVAILABLE)
        # The transaction is over; a new one can start.
        self.assertEqual(tester.command("MAIL FROM:<a@example.com>"), OK)

    async def test_upstreamHangsUp(self) -> None:
        """
        When the upstream closes the connection before its reply to the
        data, the client gets 451 4.4.1, never 250.
        """
        upstream = Hangup()
        tester = self.proxy(self.upstream(upstream))
        self.assertEqual(await self.relay(tester, SAMPLE), UNAVAILABLE)
        self.assertEqual(len(upstream.received), 1)

    async def test_upstreamSilent(self) -> None:
        """
        When the upstream says nothing, the proxy gives up after its timeout
        with 451 4.4.1.
        """
        factory = Factory.forProtocol(Silent)
        factory.made = []
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")
        self.addCleanup(lambda: gatherResults([p.lost for p in factory.made]))
        self.addCleanup(port.stopListening)
        handler = Proxy(
            "127.0.0.1",
            port.getHost().port,
            reactor=reactor,
            relay_domains=["example.com"],
            timeout=0.2,
        )
        tester = SMTPTester(handler, reactor=reactor, timeout=None)
        started = time.monotonic()
        self.assertEqual(await self.relay(tester, SAMPLE), UNAVAILABLE)
        self.assertLess(time.monotonic() - started, 5)

    async def test_bareLineFeedBeforeDot(self) -> None:
        """
        With bare line feeds allowed, a dot after a bare LF is doubled, so
        that a lenient upstream cannot see an early end of data; a strict
        upstream keeps the extra dot.
        """
        upstream = Upstream()
        tester = self.proxy(
            self.upstream(upstream, bare_newline="allow"), bare_newline="allow"
        )
        message = b"Subject: x\r\n\r\na\n.\r\nb\r\n"
        self.assertEqual(await self.relay(tester, message), OK)
        self.assertEqual(
            upstream.received[0]["data"],
            b"Subject: x\r\nX-Peer: 192.0.2.7\r\n\r\na\n..\r\nb\r\n",
        )


class ProxyRecipientTests(SynchronousTestCase):
    """
    Tests for the relay protection of L{Proxy} (no connection is made).
    """

    def rcpt(self, handler: Proxy, address: str) -> tuple[Reply, Reply]:
        """
        Send RCPT with C{address}, then DATA; return both replies.
        """
        tester = SMTPTester(handler)
        tester.command("EHLO client.example")
        tester.command("MAIL FROM:<a@example.org>")
        return tester.command(f"RCPT TO:<{address}>"), tester.command("DATA")

    def test_relayDenied(self) -> None:
        """
        A recipient outside C{relay_domains} is refused with 550 5.7.1 and
        not added.
        """
        handler = Proxy("127.0.0.1", 25, relay_domains=["example.com"])
        self.assertEqual(
            self.rcpt(handler, "x@other.example"),
            (
                Reply(550, "5.7.1 Relaying denied"),
                Reply(503, "Error: need RCPT command"),
            ),
        )

    def test_subdomainDenied(self) -> None:
        """
        C{relay_domains} does not cover subdomains.
        """
        handler = Proxy("127.0.0.1", 25, relay_domains=["example.com"])
        self.assertEqual(
            self.rcpt(handler, "x@sub.example.com")[0],
            Reply(550, "5.7.1 Relaying denied"),
        )

    def test_relayDomainAccepted(self) -> None:
        """
        A recipient in C{relay_domains} is accepted, whatever the case.
        """
        handler = Proxy("127.0.0.1", 25, relay_domains=["Example.COM."])
        self.assertEqual(self.rcpt(handler, "x@EXAMPLE.com")[0], OK)

    def test_nothingConfigured(self) -> None:
        """
        Without C{relay_domains} or C{allow_relay}, every recipient is
        refused.
        """
        for address in ("x@example.com", "Postmaster", "x@[192.0.2.1]"):
            self.assertEqual(
                self.rcpt(Proxy("127.0.0.1", 25), address)[0],
                Reply(550, "5.7.1 Relaying denied"),
            )

    def test_allowRelay(self) -> None:
        """
        With C{allow_relay}, any recipient is accepted.
        """
        handler = Proxy("127.0.0.1", 25, allow_relay=True)
        self.assertEqual(self.rcpt(handler, "x@anywhere.example")[0], OK)

    def test_postmaster(self) -> None:
        """
        The domain-less C{Postmaster} is accepted when relaying for some
        domain (RFC 5321 section 4.5.1).
        """
        handler = Proxy("127.0.0.1", 25, relay_domains=["example.com"])
        self.assertEqual(self.rcpt(handler, "postmaster")[0], OK)

    def test_relayDomainsString(self) -> None:
        """
        A single string for C{relay_domains} is refused rather than taken
        as a set of one-letter domains.
        """
        self.assertRaises(TypeError, Proxy, "127.0.0.1", 25, relay_domains="a.example")

    def test_fromCli(self) -> None:
        """
        C{from_cli} takes the host, the port and the domains to relay for.
        """
        handler = Proxy.from_cli(
            FakeParser(), "mx.example", "2525", "example.com", "example.net"
        )
        self.assertEqual((handler._hostname, handler._port), ("mx.example", 2525))
        self.assertEqual(self.rcpt(handler, "x@example.net")[0], OK)
        self.assertEqual(
            self.rcpt(handler, "x@example.org")[0], Reply(550, "5.7.1 Relaying denied")
        )

    def test_fromCliErrors(self) -> None:
        """
        C{from_cli} requires a host, a valid port and at least one domain.
        """
        for args, error in [
            (("mx.example", "25"), "Proxy takes: HOST PORT DOMAIN [DOMAIN ...]"),
            (
                ("mx.example", "x", "example.com"),
                "Proxy takes: HOST PORT DOMAIN [DOMAIN ...] (bad port 'x')",
            ),
            (
                ("mx.example", "70000", "example.com"),
                "Proxy takes: HOST PORT DOMAIN [DOMAIN ...] (bad port '70000')",
            ),
        ]:
            parser = FakeParser()
            self.assertRaises(ParserError, Proxy.from_cli, parser, *args)
            self.assertEqual(parser.errors, [error])
