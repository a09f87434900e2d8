"""
Compatibility with aiosmtpd 1.4.6: handlers written as aiosmtpd's
documentation shows (C{handlers.rst}, C{concepts.rst}, C{migrating.rst}),
and aiosmtpd's own built-in handlers, run unchanged on L{twisted_smtpd}.

Every test here runs a server over real TCP on 127.0.0.1 with the real
reactor, and drives it with C{smtplib} in a thread. The module runs under
the default reactor and under Twisted's asyncio reactor
(C{trial --reactor=asyncio}); L{AsyncioHookTests} needs the latter, where
coroutine hooks run as asyncio tasks, and is skipped under any other.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import mailbox
import smtplib
import threading
import warnings
from email.message import EmailMessage
from typing import Any

from aiosmtpd.handlers import AsyncMessage, Debugging, Mailbox, Message, Sink
from aiosmtpd.smtp import MISSING as AIOSMTPD_MISSING
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import AuthResult as AioAuthResult
from aiosmtpd.smtp import Envelope, Session
from twisted.internet.threads import deferToThread
from twisted.trial.unittest import SkipTest, TestCase

from tests._support import (
    HOSTNAME,
    isAsyncioReactor,
    listen,
    rawConnect,
    readReplies,
    readToEnd,
    smtpClient,
)
from twisted_smtpd import MISSING

MESSAGE = b"From: anne@example.com\r\nSubject: A test\r\n\r\nHi Bart, this is Anne.\r\n"

# Handlers in the style of aiosmtpd's documentation.


class ExampleHandler:
    """
    The relaying policy handler of aiosmtpd's README, printing to a stream
    instead of stdout.
    """

    def __init__(self) -> None:
        self.out = io.StringIO()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if not address.endswith("@example.com"):
            return "550 not relaying to that domain"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        print("Message from %s" % envelope.mail_from, file=self.out)  # noqa: UP031
        print("Message for %s" % envelope.rcpt_tos, file=self.out)  # noqa: UP031
        print("Message data:\n", file=self.out)
        for ln in envelope.content.decode("utf8", errors="replace").splitlines():
            print(f"> {ln}".strip(), file=self.out)
        print(file=self.out)
        print("End of message", file=self.out)
        return "250 Message accepted for delivery"


class TypedHandler:
    """
    A handler with every command hook, annotated with aiosmtpd's own
    classes, that adds attributes of its own to the session and the
    envelope for inter-hook coordination (as C{concepts.rst} allows).
    """

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.resets = 0

    async def handle_HELO(
        self, server: SMTPServer, session: Session, envelope: Envelope, hostname: str
    ) -> str:
        session.host_name = hostname
        return f"250 {server.hostname}"

    async def handle_EHLO(
        self,
        server: SMTPServer,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname
        planned = [r for r in responses if r != "250-8BITMIME"]
        return planned[:-1] + ["250-X-TYPED"] + planned[-1:]

    async def handle_NOOP(
        self, server: SMTPServer, session: Session, envelope: Envelope, arg: str
    ) -> str:
        await server.push("250-NOOP seen")
        return f"250 {arg}"

    async def handle_VRFY(
        self, server: SMTPServer, session: Session, envelope: Envelope, address: str
    ) -> str:
        if address == "bart@example.com":
            return "250 Bart Person <bart@example.com>"
        return "550 No such user here"

    async def handle_MAIL(
        self,
        server: SMTPServer,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        if address.startswith("spammer@"):
            return "553 5.7.1 Sender address rejected"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        session.transactions = getattr(session, "transactions", 0) + 1
        return "250 Sender OK"

    async def handle_RCPT(
        self,
        server: SMTPServer,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        envelope.note = "checked by handle_RCPT"
        return "250 Recipient OK"

    async def handle_DATA(
        self, server: SMTPServer, session: Session, envelope: Envelope
    ) -> str:
        self.received.append(
            {
                "peer": session.peer,
                "host_name": session.host_name,
                "extended_smtp": session.extended_smtp,
                "mail_from": envelope.mail_from,
                "mail_options": envelope.mail_options,
                "rcpt_tos": envelope.rcpt_tos,
                "content": envelope.content,
                "original_content": envelope.original_content,
                "note": envelope.note,
                "transactions": session.transactions,
                "server attributes": (
                    server.event_handler is self,
                    server.session is session,
                    server.envelope is envelope,
                ),
            }
        )
        return "250 Message accepted for delivery"

    async def handle_RSET(
        self, server: SMTPServer, session: Session, envelope: Envelope
    ) -> str:
        self.resets += 1
        return "250 Reset done"

    async def handle_QUIT(
        self, server: SMTPServer, session: Session, envelope: Envelope
    ) -> str:
        return "221 Goodbye"


class OldStyleEhloHandler:
    """
    The deprecated 4-argument C{handle_EHLO}, which pushes extra lines
    itself and returns the last one.
    """

    async def handle_EHLO(self, server, session, envelope, hostname):
        session.host_name = hostname
        await server.push("250-X-OLD-STYLE")
        return "250 HELP"


class CustomHandler:
    """
    The handler of C{migrating.rst}, which replaces an C{smtpd}
    C{process_message}.
    """

    def __init__(self) -> None:
        self.processed: list[tuple[Any, ...]] = []

    async def handle_DATA(self, server, session, envelope):
        peer = session.peer
        mail_from = envelope.mail_from
        rcpt_tos = envelope.rcpt_tos
        data = envelope.content  # type: bytes
        # Process message data...
        error_occurred = b"X-Fail: yes" in data
        if error_occurred:
            return "500 Could not process your message"
        self.processed.append((peer, mail_from, rcpt_tos, data))
        return "250 OK"


class AsyncExceptionHandler:
    """
    A handler whose DATA hook fails, with a coroutine C{handle_exception}.
    """

    def __init__(self) -> None:
        self.errors: list[BaseException] = []

    async def handle_DATA(self, server, session, envelope):
        raise ValueError("storage is full")

    async def handle_exception(self, error):
        self.errors.append(error)
        return "542 Internal server error"


class SyncExceptionHandler:
    """
    A handler whose RCPT hook fails, with a plain C{handle_exception} (the
    form C{handlers.rst} documents).
    """

    def __init__(self) -> None:
        self.errors: list[BaseException] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        raise KeyError(address)

    def handle_exception(self, error):
        self.errors.append(error)
        return "542 Internal server error"


class PickyRecipientHandler:
    """
    An aiosmtpd-style handler whose C{handle_RCPT} raises for one
    recipient, with C{handle_exception}'s reply; it keeps the messages.
    """

    def __init__(self) -> None:
        self.errors: list[BaseException] = []
        self.messages: list[tuple[str, list[str], bytes]] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address == "broken@example.com":
            raise LookupError(address)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(
            (envelope.mail_from, list(envelope.rcpt_tos), envelope.content)
        )
        return "250 Message accepted for delivery"

    async def handle_exception(self, error):
        self.errors.append(error)
        return "451 4.3.0 Directory unavailable, try later"


class SilentExceptionHandler:
    """
    A C{handle_exception} that returns C{None}: C{handlers.rst} promises a
    451 then.
    """

    async def handle_DATA(self, server, session, envelope):
        raise RuntimeError("oops")

    async def handle_exception(self, error):
        return None


class Collecting(Message):
    """
    aiosmtpd's L{Message} handler, subclassed as its documentation asks.
    """

    def __init__(self, message_class=None):
        super().__init__(message_class)
        self.messages = []

    def handle_message(self, message):
        self.messages.append(message)


class SinkSubclass(Sink):
    """
    aiosmtpd's L{Sink} with a RCPT hook added.
    """

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("nobody@"):
            return "550 No such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"


async def inThread(f, *args: Any) -> Any:
    """
    Run the blocking C{f(*args)} in a thread and wait for its result.
    """
    return await deferToThread(f, *args)


class HandlerHookTests(TestCase):
    """
    aiosmtpd-style handlers on a server over real TCP on 127.0.0.1, with
    C{smtplib} in a thread.
    """

    timeout = 30

    async def test_readmeExample(self) -> None:
        """
        The README's relaying policy: a recipient outside example.com gets
        the hook's 550, the message goes to the others, and DATA gets the
        hook's reply.
        """
        handler = ExampleHandler()
        listening = listen(self, handler)

        def client() -> Any:
            with smtpClient(listening.port) as c:
                c.ehlo()
                return (
                    c.mail("anne@example.com"),
                    c.rcpt("bart@example.com"),
                    c.rcpt("eve@elsewhere.org"),
                    c.data(MESSAGE),
                )

        self.assertEqual(
            await inThread(client),
            (
                (250, b"OK"),
                (250, b"OK"),
                (550, b"not relaying to that domain"),
                (250, b"Message accepted for delivery"),
            ),
        )
        self.assertEqual(
            handler.out.getvalue(),
            "Message from anne@example.com\n"
            "Message for ['bart@example.com']\n"
            "Message data:\n"
            "\n"
            "> From: anne@example.com\n"
            "> Subject: A test\n"
            ">\n"
            "> Hi Bart, this is Anne.\n"
            "\n"
            "End of message\n",
        )

    async def test_transaction(self) -> None:
        """
        Annotated coroutine hooks give their replies to MAIL, RCPT, DATA,
        RSET and QUIT, and DATA sees what the other hooks stored, including
        attributes they added, and aiosmtpd's server attributes.
        """
        handler = TypedHandler()
        listening = listen(self, handler)

        def client() -> Any:
            c = smtpClient(listening.port)
            try:
                c.ehlo()
                replies = (
                    c.mail("anne@example.com", ["BODY=8BITMIME"]),
                    c.rcpt("bart@example.com"),
                    c.rcpt("cate@example.com"),
                    c.data(MESSAGE),
                    c.rset(),
                    c.quit(),
                )
                return replies, c.sock
            finally:
                c.close()

        replies, sock = await inThread(client)
        self.assertEqual(
            replies,
            (
                (250, b"Sender OK"),
                (250, b"Recipient OK"),
                (250, b"Recipient OK"),
                (250, b"Message accepted for delivery"),
                (250, b"Reset done"),
                (221, b"Goodbye"),
            ),
        )
        self.assertEqual(handler.resets, 1)
        [received] = handler.received
        self.assertEqual(received["peer"][0], "127.0.0.1")
        del received["peer"]
        self.assertEqual(
            received,
            {
                "host_name": "client.example",
                "extended_smtp": True,
                "mail_from": "anne@example.com",
                "mail_options": ["BODY=8BITMIME"],
                "rcpt_tos": ["bart@example.com", "cate@example.com"],
                "content": MESSAGE,
                "original_content": MESSAGE,
                "note": "checked by handle_RCPT",
                "transactions": 1,
                "server attributes": (True, True, True),
            },
        )

    async def test_heloHook(self) -> None:
        """
        C{handle_HELO} answers HELO and its C{session.host_name} lets the
        transaction go on.
        """
        handler = TypedHandler()
        listening = listen(self, handler)

        def client() -> Any:
            with smtpClient(listening.port) as c:
                return c.helo(), c.sendmail("anne@example.com", ["b@example.com"], b"x")

        self.assertEqual(await inThread(client), ((250, HOSTNAME.encode()), {}))
        [received] = handler.received
        self.assertEqual(
            (received["host_name"], received["extended_smtp"]),
            ("client.example", False),
        )

    async def test_ehloHookResponses(self) -> None:
        """
        The 5-argument C{handle_EHLO} gets the planned lines and its list
        replaces them.
        """
        listening = listen(self, TypedHandler())

        def client() -> Any:
            with smtpClient(listening.port) as c:
                return c.ehlo()

        self.assertEqual(
            await inThread(client),
            (
                250,
                f"{HOSTNAME}\nSIZE 33554432\nDSN\nCHUNKING\nBINARYMIME\nPIPELINING"
                "\nX-TYPED\nHELP".encode(),
            ),
        )

    async def test_ehloHookOldStyle(self) -> None:
        """
        The deprecated 4-argument C{handle_EHLO} follows the server's lines
        with what it pushes and returns.
        """
        listening = listen(self, OldStyleEhloHandler())

        def client() -> Any:
            with smtpClient(listening.port) as c:
                return c.ehlo(), c.sendmail("a@example.com", ["b@example.com"], b"x")

        self.assertEqual(
            await inThread(client),
            (
                (
                    250,
                    f"{HOSTNAME}\nSIZE 33554432\n8BITMIME\n".encode()
                    + b"DSN\nCHUNKING\nBINARYMIME\nPIPELINING\n"
                    + b"X-OLD-STYLE\nHELP",
                ),
                {},
            ),
        )

    async def test_mailHookRefuses(self) -> None:
        """
        A C{handle_MAIL} refusal reaches the client and leaves no sender
        behind: the next MAIL is not a nested one.
        """
        handler = TypedHandler()
        listening = listen(self, handler)

        def client() -> Any:
            with smtpClient(listening.port) as c:
                c.ehlo()
                return c.mail("spammer@example.com"), c.mail("anne@example.com")

        self.assertEqual(
            await inThread(client),
            ((553, b"5.7.1 Sender address rejected"), (250, b"Sender OK")),
        )

    async def test_noopHookPushes(self) -> None:
        """
        C{await server.push(...)} inside a hook sends a line before the
        hook's own reply.
        """
        listening = listen(self, TypedHandler())

        def client() -> Any:
            with smtpClient(listening.port) as c:
                return c.docmd("NOOP", "ping"), c.noop()

        self.assertEqual(
            await inThread(client),
            ((250, b"NOOP seen\nping"), (250, b"NOOP seen\nNone")),
        )

    async def test_vrfyHook(self) -> None:
        """
        C{handle_VRFY} gets the address and answers for it.
        """
        listening = listen(self, TypedHandler())

        def client() -> Any:
            with smtpClient(listening.port) as c:
                return c.vrfy("bart@example.com"), c.vrfy("<zed@example.com>")

        self.assertEqual(
            await inThread(client),
            (
                (250, b"Bart Person <bart@example.com>"),
                (550, b"No such user here"),
            ),
        )

    async def test_migratedHandler(self) -> None:
        """
        The handler of aiosmtpd's migration guide receives the peer, the
        envelope and the bytes, and its 500 reaches the client.
        """
        handler = CustomHandler()
        listening = listen(self, handler)
        bad = b"X-Fail: yes\r\n\r\nbody\r\n"

        def client() -> Any:
            with smtpClient(listening.port) as c:
                good = c.sendmail("anne@example.com", ["bart@example.com"], MESSAGE)
                try:
                    c.sendmail("anne@example.com", ["bart@example.com"], bad)
                except smtplib.SMTPDataError as e:
                    return good, (e.smtp_code, e.smtp_error), c.sock.getsockname()
                return good, None, None

        good, error, address = await inThread(client)
        self.assertEqual(good, {})
        self.assertEqual(error, (500, b"Could not process your message"))
        self.assertEqual(
            handler.processed,
            [(tuple(address), "anne@example.com", ["bart@example.com"], MESSAGE)],
        )


class TokenHandler:
    """
    An AUTH mechanism written as aiosmtpd's documentation shows: it uses
    aiosmtpd's own C{MISSING} and C{AuthResult}, returning C{MISSING} for a
    refused login, as aiosmtpd allows.
    """

    def __init__(self) -> None:
        self.tokens: list[Any] = []

    async def auth_TOKEN(self, server, args):
        token = await server.challenge_auth("Token?")
        self.tokens.append(token)
        if token is AIOSMTPD_MISSING:
            # The client cancelled and already got its 501.
            return AioAuthResult(success=False, handled=True)
        if token != b"open sesame":
            return AIOSMTPD_MISSING
        return AioAuthResult(success=True, auth_data="token-user")


class HandOverHandler(TokenHandler):
    """
    A C{handle_AUTH} that hands every attempt on to the mechanism with
    aiosmtpd's C{MISSING}.
    """

    async def handle_AUTH(self, server, session, envelope, args):
        return AIOSMTPD_MISSING


class AuthSentinelTests(TestCase):
    """
    aiosmtpd's C{MISSING} means what it means in aiosmtpd, in both
    directions, on a server over real TCP on 127.0.0.1 with a raw client.
    """

    timeout = 30

    def converse(self, port: int, lines: list[bytes]) -> list[bytes]:
        """
        Send each line and read its one reply; return the replies.
        """
        with rawConnect(port) as sock:
            readReplies(sock, 1)
            replies = []
            for line in lines:
                sock.sendall(line + b"\r\n")
                replies.append(readReplies(sock, 1))
            return replies

    def listenFor(self, handler: Any) -> Any:
        with warnings.catch_warnings():
            # AUTH in plaintext: loopback only.
            warnings.simplefilter("ignore", UserWarning)
            return listen(self, handler, auth_require_tls=False, auth_required=True)

    async def test_sameObject(self) -> None:
        """
        With aiosmtpd installed, L{twisted_smtpd.MISSING} is its C{MISSING}.
        """
        self.assertIs(MISSING, AIOSMTPD_MISSING)

    async def test_missingRefuses(self) -> None:
        """
        A mechanism returning aiosmtpd's C{MISSING} refuses the login: 535,
        and MAIL still needs authentication.
        """
        handler = TokenHandler()
        listening = self.listenFor(handler)
        replies = await deferToThread(
            self.converse,
            listening.port,
            [b"EHLO c.example", b"AUTH TOKEN", b64(b"guess"),
             b"MAIL FROM:<a@example.com>"],
        )  # fmt: skip
        self.assertEqual(
            replies[1:],
            [
                b"334 " + b64(b"Token?") + b"\r\n",
                b"535 5.7.8 Authentication credentials invalid\r\n",
                b"530 5.7.0 Authentication required\r\n",
            ],
        )
        self.assertIsNot(listening.servers[0].session.authenticated, True)

    async def test_cancelGivesMissing(self) -> None:
        """
        C{challenge_auth} gives aiosmtpd's C{MISSING} when the client
        cancels, so the handler's check works and the client gets exactly
        one reply.
        """
        handler = TokenHandler()
        listening = self.listenFor(handler)
        replies = await deferToThread(
            self.converse,
            listening.port,
            [b"EHLO c.example", b"AUTH TOKEN", b"*", b"NOOP"],
        )
        self.assertEqual(replies[2:], [b"501 5.7.0 Auth aborted\r\n", b"250 OK\r\n"])
        self.assertEqual(handler.tokens, [AIOSMTPD_MISSING])

    async def test_handOver(self) -> None:
        """
        C{handle_AUTH} returning aiosmtpd's C{MISSING} hands the attempt on
        to the mechanism, which logs the client in.
        """
        handler = HandOverHandler()
        listening = self.listenFor(handler)
        replies = await deferToThread(
            self.converse,
            listening.port,
            [b"EHLO c.example", b"AUTH TOKEN", b64(b"open sesame"),
             b"MAIL FROM:<a@example.com>"],
        )  # fmt: skip
        self.assertEqual(
            replies[2:],
            [b"235 2.7.0 Authentication successful\r\n", b"250 OK\r\n"],
        )
        self.assertEqual(listening.servers[0].session.auth_data, "token-user")


def b64(data: bytes) -> bytes:
    return base64.b64encode(data)


class ExceptionHookTests(TestCase):
    """
    C{handle_exception} in aiosmtpd's forms, on a server over real TCP on
    127.0.0.1, with C{smtplib} in a thread.
    """

    timeout = 30

    async def test_asyncHandleException(self) -> None:
        """
        A coroutine C{handle_exception} gets the error of a failing
        C{handle_DATA} and its reply goes to the client; the connection and
        the transaction state stay usable.
        """
        handler = AsyncExceptionHandler()
        listening = listen(self, handler)

        def client() -> Any:
            with smtpClient(listening.port) as c:
                try:
                    c.sendmail("anne@example.com", ["bart@example.com"], MESSAGE)
                except smtplib.SMTPDataError as e:
                    error = (e.smtp_code, e.smtp_error)
                else:
                    error = None
                return error, c.noop(), c.mail("anne@example.com")

        self.assertEqual(
            await inThread(client),
            ((542, b"Internal server error"), (250, b"OK"), (250, b"OK")),
        )
        self.assertEqual(
            [(type(e), str(e)) for e in handler.errors],
            [(ValueError, "storage is full")],
        )
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)

    async def test_syncHandleException(self) -> None:
        """
        A plain C{handle_exception}, as C{handlers.rst} documents it, answers
        for a failing C{handle_RCPT}.
        """
        handler = SyncExceptionHandler()
        listening = listen(self, handler)

        def client() -> Any:
            with smtpClient(listening.port) as c:
                try:
                    c.sendmail("anne@example.com", ["bart@example.com"], MESSAGE)
                except smtplib.SMTPRecipientsRefused as e:
                    return e.recipients
                return None

        self.assertEqual(
            await inThread(client),
            {"bart@example.com": (542, b"Internal server error")},
        )
        self.assertEqual(
            [(type(e), e.args) for e in handler.errors],
            [(KeyError, ("bart@example.com",))],
        )
        self.assertEqual(len(self.flushLoggedErrors(KeyError)), 1)

    async def test_handleExceptionReturnsNone(self) -> None:
        """
        When C{handle_exception} returns C{None}, the client gets a 451, as
        C{handlers.rst} says.
        """
        listening = listen(self, SilentExceptionHandler())

        def client() -> Any:
            with smtpClient(listening.port) as c:
                try:
                    c.sendmail("anne@example.com", ["bart@example.com"], MESSAGE)
                except smtplib.SMTPDataError as e:
                    return e.smtp_code, e.smtp_error
                return None

        self.assertEqual(
            await inThread(client),
            (451, b"Requested action aborted: local error in processing"),
        )
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    async def test_rcptExceptionKeepsTransaction(self) -> None:
        """
        As with aiosmtpd, a C{handle_RCPT} that raises answers that RCPT
        with C{handle_exception}'s reply, and the message goes to the other
        recipients: C{smtplib} reports the one refused.
        """
        handler = PickyRecipientHandler()
        listening = listen(self, handler)
        recipients = ["bart@example.com", "broken@example.com", "cleo@example.com"]

        def client() -> Any:
            with smtpClient(listening.port) as c:
                return c.sendmail("anne@example.com", recipients, MESSAGE)

        self.assertEqual(
            await inThread(client),
            {"broken@example.com": (451, b"4.3.0 Directory unavailable, try later")},
        )
        self.assertEqual(
            handler.messages,
            [("anne@example.com", ["bart@example.com", "cleo@example.com"], MESSAGE)],
        )
        self.assertEqual([type(e) for e in handler.errors], [LookupError])
        self.assertEqual(len(self.flushLoggedErrors(LookupError)), 1)


class BuiltinHandlerTests(TestCase):
    """
    aiosmtpd's own handlers (C{aiosmtpd.handlers}) on a server over real
    TCP on 127.0.0.1, with C{smtplib} in a thread.
    """

    timeout = 30

    async def test_sink(self) -> None:
        """
        L{Sink} accepts every command of a transaction with the default
        replies.
        """
        listening = listen(self, Sink())

        def client() -> Any:
            with smtpClient(listening.port) as c:
                c.ehlo()
                return (
                    c.mail("anne@example.com"),
                    c.rcpt("bart@example.com"),
                    c.data(MESSAGE),
                )

        self.assertEqual(
            await inThread(client), ((250, b"OK"), (250, b"OK"), (250, b"OK"))
        )

    async def test_sinkSubclass(self) -> None:
        """
        A L{Sink} subclass with its own RCPT hook refuses what it refuses.
        """
        listening = listen(self, SinkSubclass())

        def client() -> Any:
            with smtpClient(listening.port) as c:
                return c.sendmail(
                    "anne@example.com", ["bart@example.com", "nobody@example.com"], b"x"
                )

        self.assertEqual(
            await inThread(client), {"nobody@example.com": (550, b"No such user")}
        )

    async def test_debugging(self) -> None:
        """
        L{Debugging} prints the message to its stream exactly as in aiosmtpd:
        the MAIL options, the headers, C{X-Peer} with the peer tuple, the
        body.
        """
        stream = io.StringIO()
        listening = listen(self, Debugging(stream))

        def client() -> Any:
            with smtpClient(listening.port) as c:
                return c.sendmail("anne@example.com", ["bart@example.com"], MESSAGE), (
                    c.sock.getsockname()
                )

        refused, address = await inThread(client)
        self.assertEqual(refused, {})
        self.assertEqual(
            stream.getvalue(),
            "---------- MESSAGE FOLLOWS ----------\n"
            f"mail options: ['SIZE={len(MESSAGE)}']\n"
            "\n"
            "From: anne@example.com\n"
            "Subject: A test\n"
            f"X-Peer: {tuple(address)!r}\n"
            "\n"
            "Hi Bart, this is Anne.\n"
            "------------ END MESSAGE ------------\n",
        )

    async def test_messageSubclass(self) -> None:
        """
        A L{Message} subclass gets a parsed message with aiosmtpd's
        C{X-Peer}, C{X-MailFrom} and C{X-RcptTo} headers.
        """
        handler = Collecting()
        listening = listen(self, handler)

        def client() -> Any:
            with smtpClient(listening.port) as c:
                return c.sendmail(
                    "anne@example.com",
                    ["bart@example.com", "cate@example.com"],
                    MESSAGE,
                ), c.sock.getsockname()

        refused, address = await inThread(client)
        self.assertEqual(refused, {})
        [message] = handler.messages
        self.assertEqual(
            message.items(),
            [
                ("From", "anne@example.com"),
                ("Subject", "A test"),
                ("X-Peer", str(tuple(address))),
                ("X-MailFrom", "anne@example.com"),
                ("X-RcptTo", "bart@example.com, cate@example.com"),
            ],
        )
        self.assertEqual(message.get_payload(), "Hi Bart, this is Anne.\r\n")

    async def test_messageSubclassDecodeData(self) -> None:
        """
        With C{decode_data=True}, a L{Message} subclass built with
        L{EmailMessage} parses the C{str} content.
        """
        handler = Collecting(EmailMessage)
        listening = listen(self, handler, decode_data=True)

        def client() -> Any:
            with smtpClient(listening.port) as c:
                return c.sendmail("anne@example.com", ["bart@example.com"], MESSAGE)

        self.assertEqual(await inThread(client), {})
        [message] = handler.messages
        self.assertIsInstance(message, EmailMessage)
        self.assertEqual(
            (message["Subject"], message["X-MailFrom"], message.get_payload()),
            ("A test", "anne@example.com", "Hi Bart, this is Anne.\r\n"),
        )

    async def test_mailbox(self) -> None:
        """
        L{Mailbox} stores each message in its Maildir, as in aiosmtpd's
        documentation.
        """
        path = self.mktemp()
        listening = listen(self, Mailbox(path))
        messages = [
            (
                f"From: {name} Person <{name.lower()}@example.com>\r\n"
                "Subject: A test\r\n"
                f"Message-ID: <{tag}>\r\n"
                "\r\n"
                f"Hi, this is {name}.\r\n"
            ).encode()
            for name, tag in [("Anne", "ant"), ("Cate", "bee"), ("Elle", "cat")]
        ]

        def client() -> Any:
            with smtpClient(listening.port) as c:
                return [
                    c.sendmail("x@example.com", ["y@example.com"], m) for m in messages
                ]

        self.assertEqual(await inThread(client), [{}, {}, {}])
        stored = sorted(mailbox.Maildir(path), key=lambda m: m["Message-ID"])
        self.assertEqual(
            [(m["Message-ID"], m["From"], m["X-MailFrom"]) for m in stored],
            [
                ("<ant>", "Anne Person <anne@example.com>", "x@example.com"),
                ("<bee>", "Cate Person <cate@example.com>", "x@example.com"),
                ("<cat>", "Elle Person <elle@example.com>", "x@example.com"),
            ],
        )


class AsyncioHandler:
    """
    A handler whose hooks use asyncio: sleeps, timers on C{session.loop},
    the running loop and task, and a thread pool executor.
    """

    def __init__(self) -> None:
        self.seen: list[tuple[Any, ...]] = []

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        await asyncio.sleep(0.01)
        self.seen.append(
            ("MAIL", asyncio.get_running_loop(), asyncio.current_task(), session.loop)
        )
        envelope.mail_from = address
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        await asyncio.wait_for(asyncio.sleep(0.01), timeout=5)
        self.seen.append(
            ("RCPT", asyncio.get_running_loop(), asyncio.current_task(), session.loop)
        )
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        loop = asyncio.get_running_loop()
        content = envelope.content

        def digest():
            return hashlib.sha256(content).hexdigest(), threading.get_ident()

        (hexdigest, worker), fired = await asyncio.gather(
            loop.run_in_executor(None, digest), self._timer(session.loop)
        )
        self.seen.append(
            ("DATA", loop, asyncio.current_task(), worker, threading.get_ident(), fired)
        )
        return f"250 Stored as {hexdigest[:16]}"

    async def _timer(self, loop):
        future = loop.create_future()
        loop.call_later(0.01, future.set_result, "timer fired")
        return await future


class FailingAfterAwait:
    """
    Hooks that fail after awaiting asyncio, with an asyncio
    C{handle_exception}.
    """

    def __init__(self) -> None:
        self.errors: list[BaseException] = []

    async def handle_DATA(self, server, session, envelope):
        await asyncio.sleep(0.01)
        raise OSError("disk gone")

    async def handle_exception(self, error):
        await asyncio.sleep(0.01)
        self.errors.append(error)
        return "451 4.3.0 Try again later"


class AsyncCollecting(AsyncMessage):
    """
    aiosmtpd's L{AsyncMessage} handler, subclassed as its documentation
    asks, awaiting asyncio in C{handle_message}.
    """

    def __init__(self, message_class=None, *, loop=None):
        super().__init__(message_class, loop=loop)
        self.messages = []
        self.loops = []

    async def handle_message(self, message):
        await asyncio.sleep(0.01)
        self.loops.append(asyncio.get_running_loop())
        self.messages.append(message)


class AsyncioHookTests(TestCase):
    """
    Under Twisted's asyncio reactor, coroutine hooks run as asyncio tasks on
    the reactor's loop, so asyncio libraries work in them; on a server over
    real TCP on 127.0.0.1, with C{smtplib} or a raw socket in a thread.
    """

    timeout = 30

    def setUp(self) -> None:
        if not isAsyncioReactor():
            raise SkipTest(
                "needs Twisted's asyncio reactor (trial --reactor=asyncio):"
                " coroutine hooks are asyncio tasks only there"
            )

    async def test_asyncioInHooks(self) -> None:
        """
        Hooks can C{asyncio.sleep}, C{wait_for} and C{gather}, find the
        running loop (the reactor's, also C{session.loop}) and their task,
        and wait on C{loop.run_in_executor} and on C{session.loop} timers.
        """
        handler = AsyncioHandler()
        listening = listen(self, handler)
        stored = hashlib.sha256(MESSAGE).hexdigest()[:16].encode()
        reactorThread = threading.get_ident()

        def client() -> Any:
            with smtpClient(listening.port) as c:
                c.ehlo()
                return (
                    c.mail("anne@example.com"),
                    c.rcpt("bart@example.com"),
                    c.data(MESSAGE),
                )

        self.assertEqual(
            await inThread(client),
            (
                (250, b"OK"),
                (250, b"OK"),
                (
                    250,
                    b"Stored as " + stored,
                ),
            ),
        )
        # Here, after an await, this test runs on the reactor's loop too.
        testLoop = asyncio.get_running_loop()
        mail, rcpt, data = handler.seen
        for verb, loop, task, sessionLoop in (mail, rcpt):
            self.assertIs(loop, testLoop, verb)
            self.assertIs(sessionLoop, testLoop, verb)
            self.assertIsInstance(task, asyncio.Task, verb)
        verb, loop, task, worker, hookThread, fired = data
        self.assertIs(loop, testLoop)
        self.assertIsInstance(task, asyncio.Task)
        self.assertEqual(hookThread, reactorThread)
        self.assertNotEqual(worker, reactorThread)
        self.assertEqual(fired, "timer fired")

    async def test_pipelinedAsyncioHooks(self) -> None:
        """
        Pipelined commands whose hooks await asyncio are answered in order.
        """
        handler = AsyncioHandler()
        listening = listen(self, handler)

        def client() -> Any:
            with rawConnect(listening.port) as sock:
                readReplies(sock, 1)
                sock.sendall(
                    b"HELO client.example\r\nMAIL FROM:<a@example.com>\r\n"
                    b"RCPT TO:<b@example.com>\r\nRCPT TO:<c@example.com>\r\nDATA\r\n"
                )
                first = readReplies(sock, 5)
                sock.sendall(b"x\r\n.\r\nNOOP\r\nQUIT\r\n")
                return first, readToEnd(sock)

        first, rest = await inThread(client)
        self.assertEqual(
            first,
            f"250 {HOSTNAME}\r\n250 OK\r\n250 OK\r\n250 OK\r\n".encode()
            + b"354 End data with <CR><LF>.<CR><LF>\r\n",
        )
        stored = hashlib.sha256(b"x\r\n").hexdigest()[:16].encode()
        self.assertEqual(
            rest, b"250 Stored as " + stored + b"\r\n250 OK\r\n221 Bye\r\n"
        )
        self.assertEqual(
            [entry[0] for entry in handler.seen], ["MAIL", "RCPT", "RCPT", "DATA"]
        )

    async def test_exceptionAfterAwait(self) -> None:
        """
        A hook failing after awaiting asyncio reaches an asyncio
        C{handle_exception}, whose reply goes to the client.
        """
        handler = FailingAfterAwait()
        listening = listen(self, handler)

        def client() -> Any:
            with smtpClient(listening.port) as c:
                try:
                    c.sendmail("anne@example.com", ["bart@example.com"], MESSAGE)
                except smtplib.SMTPDataError as e:
                    return (e.smtp_code, e.smtp_error), c.noop()
                return None

        self.assertEqual(
            await inThread(client), ((451, b"4.3.0 Try again later"), (250, b"OK"))
        )
        self.assertEqual([str(e) for e in handler.errors], ["disk gone"])
        self.assertEqual(len(self.flushLoggedErrors(OSError)), 1)

    async def test_asyncMessageSubclass(self) -> None:
        """
        An L{AsyncMessage} subclass, made on the reactor's loop, gets the
        parsed message in its coroutine C{handle_message}.
        """
        handler = AsyncCollecting()
        listening = listen(self, handler)

        def client() -> Any:
            with smtpClient(listening.port) as c:
                return c.sendmail("anne@example.com", ["bart@example.com"], MESSAGE)

        self.assertEqual(await inThread(client), {})
        [message] = handler.messages
        self.assertEqual(
            (message["Subject"], message["X-MailFrom"], message["X-RcptTo"]),
            ("A test", "anne@example.com", "bart@example.com"),
        )
        self.assertEqual(handler.loops, [asyncio.get_running_loop()])
        self.assertIs(handler.loop, asyncio.get_running_loop())
