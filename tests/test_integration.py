"""
Integration tests: real clients (C{smtplib}, Twisted's own SMTP client and
raw sockets) against L{twisted_smtpd.SMTPFactory} over real TCP on
127.0.0.1, with the real reactor.
"""

from __future__ import annotations

import io
import select
import smtplib
import socket
import threading
import time
from email.generator import BytesGenerator
from email.message import EmailMessage
from typing import Any, NamedTuple

from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.task import deferLater
from twisted.internet.threads import deferToThread
from twisted.mail.smtp import ESMTPSenderFactory, sendmail
from twisted.trial.unittest import TestCase

from tests._support import (
    HOSTNAME,
    RecordingReactor,
    listen,
    rawConnect,
    readReplies,
    readToEnd,
    smtpClient,
    trackClientLoss,
)
from twisted_smtpd import SMTP

EHLO_REPLY = (
    f"250-{HOSTNAME}\r\n"
    "250-SIZE 33554432\r\n"
    "250-8BITMIME\r\n"
    "250-DSN\r\n250-CHUNKING\r\n"
    "250-BINARYMIME\r\n"
    "250-PIPELINING\r\n"
    "250 HELP\r\n"
).encode()

DATA_GO_AHEAD = b"354 End data with <CR><LF>.<CR><LF>\r\n"


class Received(NamedTuple):
    """
    What a handler saw of one message.
    """

    mail_from: str | None
    rcpt_tos: list[str]
    mail_options: list[str]
    smtp_utf8: bool
    content: bytes | str | None
    peer: Any
    host_name: str | None


def snapshot(session: Any, envelope: Any) -> Received:
    """
    Copy what the handler is given at the end of the data.
    """
    return Received(
        envelope.mail_from,
        list(envelope.rcpt_tos),
        list(envelope.mail_options),
        envelope.smtp_utf8,
        envelope.content,
        session.peer,
        session.host_name,
    )


class Recorder:
    """
    A handler that accepts everything and keeps what it received.
    """

    def __init__(self) -> None:
        self.messages: list[Received] = []

    def handle_DATA(self, server: Any, session: Any, envelope: Any) -> None:
        self.messages.append(snapshot(session, envelope))


class RefusingRecorder(Recorder):
    """
    A L{Recorder} that refuses the recipients whose local part is
    C{nobody}, as a plain (non-coroutine) hook.
    """

    def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address.startswith("nobody@"):
            return "550 No such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"


class SmtplibTests(TestCase):
    """
    C{smtplib}, run in a thread, against a server listening on 127.0.0.1
    (real TCP, real reactor).
    """

    timeout = 30

    async def test_sendmailDotStuffing(self) -> None:
        """
        A multi-line message whose lines start with dots (one is a lone dot)
        reaches the handler byte for byte, with CRLF line endings (smtplib
        converts them and dot-stuffs; the server unstuffs), a final CRLF, and
        the envelope the client gave.
        """
        handler = Recorder()
        listening = listen(self, handler)
        message = (
            "From: alice@example.com\n"
            "Subject: dots\n"
            "\n"
            ".starts with a dot\n"
            "..starts with two dots\n"
            ".\n"
            "ends with a dot.\n"
            "..\n"
            "no final newline"
        )

        def client() -> tuple[Any, Any]:
            with smtpClient(listening.port) as c:
                refused = c.sendmail(
                    "alice@example.com",
                    ["bob@example.com", "carol@example.com"],
                    message,
                )
                return refused, c.sock.getsockname()

        refused, clientAddress = await deferToThread(client)
        self.assertEqual(refused, {})
        self.assertEqual(
            handler.messages,
            [
                Received(
                    "alice@example.com",
                    ["bob@example.com", "carol@example.com"],
                    [f"SIZE={len(message) + message.count(chr(10))}"],
                    False,
                    message.replace("\n", "\r\n").encode("ascii") + b"\r\n",
                    tuple(clientAddress),
                    "client.example",
                )
            ],
        )

    async def test_sendmailFirstLineDot(self) -> None:
        """
        A message whose very first line starts with a dot (stuffed by
        smtplib too) loses only the stuffed dot.
        """
        handler = Recorder()
        listening = listen(self, handler)
        message = b".first\r\n.\r\n..\r\nlast\r\n"

        def client() -> Any:
            with smtpClient(listening.port) as c:
                return c.sendmail("a@example.com", ["b@example.com"], message)

        self.assertEqual(await deferToThread(client), {})
        self.assertEqual([m.content for m in handler.messages], [message])

    async def test_sendmailSeveralMessagesOneConnection(self) -> None:
        """
        Three transactions on one connection each reach the handler with
        their own envelope (the envelope is fresh after each DATA).
        """
        handler = Recorder()
        listening = listen(self, handler)

        def client() -> list[Any]:
            with smtpClient(listening.port) as c:
                return [
                    c.sendmail(f"s{i}@example.com", [f"r{i}@example.com"], f"n{i}\r\n")
                    for i in range(3)
                ]

        self.assertEqual(await deferToThread(client), [{}, {}, {}])
        self.assertEqual(
            [(m.mail_from, m.rcpt_tos, m.content) for m in handler.messages],
            [
                (f"s{i}@example.com", [f"r{i}@example.com"], b"n%d\r\n" % i)
                for i in range(3)
            ],
        )

    async def test_sendMessageEightBit(self) -> None:
        """
        C{send_message} with C{BODY=8BITMIME} delivers an 8-bit body
        unchanged, and the handler sees the MAIL parameters upper-cased.
        """
        handler = Recorder()
        listening = listen(self, handler)
        msg = EmailMessage()
        msg["From"] = "alice@example.com"
        msg["To"] = "bob@example.com"
        msg["Subject"] = "8-bit"
        msg.set_content("Grüße aus Köln\n.und ein Punkt\n\xa0\n", cte="8bit")
        buffer = io.BytesIO()
        BytesGenerator(buffer).flatten(msg, linesep="\r\n")
        flat = buffer.getvalue()
        self.assertIn("Köln".encode(), flat)

        def client() -> Any:
            with smtpClient(listening.port) as c:
                return c.send_message(msg, mail_options=["BODY=8BITMIME"])

        self.assertEqual(await deferToThread(client), {})
        [received] = handler.messages
        self.assertEqual(received.content, flat)
        self.assertEqual(received.mail_options, [f"SIZE={len(flat)}", "BODY=8BITMIME"])
        self.assertEqual(received.smtp_utf8, False)

    async def test_sendMessageSMTPUTF8(self) -> None:
        """
        With C{enable_SMTPUTF8=True}, C{send_message} from and to UTF-8
        addresses (smtplib adds C{SMTPUTF8} and C{BODY=8BITMIME} itself)
        delivers the addresses and the UTF-8 headers unchanged.
        """
        handler = Recorder()
        listening = listen(self, handler, enable_SMTPUTF8=True)
        msg = EmailMessage()
        msg["From"] = "jörg@example.com"
        msg["To"] = "ζωή@bücher.example"
        msg["Subject"] = "Grüße"
        msg.set_content("Hallo ζωή\n", cte="8bit")
        buffer = io.BytesIO()
        BytesGenerator(buffer, policy=msg.policy.clone(utf8=True)).flatten(
            msg, linesep="\r\n"
        )
        flat = buffer.getvalue()

        def client() -> Any:
            with smtpClient(listening.port) as c:
                return c.send_message(msg)

        self.assertEqual(await deferToThread(client), {})
        [received] = handler.messages
        self.assertEqual(received.mail_from, "jörg@example.com")
        self.assertEqual(received.rcpt_tos, ["ζωή@bücher.example"])
        self.assertEqual(
            received.mail_options, [f"SIZE={len(flat)}", "SMTPUTF8", "BODY=8BITMIME"]
        )
        self.assertEqual(received.smtp_utf8, True)
        self.assertEqual(received.content, flat)
        self.assertIn("Subject: Grüße\r\n".encode(), flat)

    async def test_sendmailSMTPUTF8Option(self) -> None:
        """
        C{sendmail} with C{mail_options=["SMTPUTF8"]} and a UTF-8 sender is
        accepted when SMTPUTF8 is enabled; the envelope says so.
        """
        handler = Recorder()
        listening = listen(self, handler, enable_SMTPUTF8=True)
        message = "Subject: Grüße\r\n\r\nζωή\r\n".encode()

        def client() -> Any:
            with smtpClient(listening.port) as c:
                return c.sendmail(
                    "jörg@example.com",
                    ["bob@example.com"],
                    message,
                    mail_options=["SMTPUTF8"],
                )

        self.assertEqual(await deferToThread(client), {})
        [received] = handler.messages
        self.assertEqual(
            received[:5],
            (
                "jörg@example.com",
                ["bob@example.com"],
                [f"SIZE={len(message)}", "SMTPUTF8"],
                True,
                message,
            ),
        )

    async def test_recipientPartlyRefused(self) -> None:
        """
        A recipient refused by C{handle_RCPT} with C{550 No such user} shows
        up in smtplib's refusal dictionary, and the message goes to the
        others only.
        """
        handler = RefusingRecorder()
        listening = listen(self, handler)

        def client() -> Any:
            with smtpClient(listening.port) as c:
                return c.sendmail(
                    "alice@example.com",
                    ["bob@example.com", "nobody@example.com", "carol@example.com"],
                    b"Hi\r\n",
                )

        refused = await deferToThread(client)
        self.assertEqual(refused, {"nobody@example.com": (550, b"No such user")})
        self.assertEqual(
            [m.rcpt_tos for m in handler.messages],
            [["bob@example.com", "carol@example.com"]],
        )

    async def test_allRecipientsRefused(self) -> None:
        """
        When every recipient is refused, smtplib raises
        L{smtplib.SMTPRecipientsRefused} with each refusal, no DATA is
        handled, and the connection still works afterwards.
        """
        handler = RefusingRecorder()
        listening = listen(self, handler)

        def client() -> Any:
            with smtpClient(listening.port) as c:
                try:
                    c.sendmail("alice@example.com", ["nobody@example.com"], b"Hi\r\n")
                except smtplib.SMTPRecipientsRefused as e:
                    error = e.recipients
                else:
                    error = None
                return (
                    error,
                    c.noop(),
                    c.sendmail("a@example.com", ["b@example.com"], b"x"),
                )

        error, noop, refused = await deferToThread(client)
        self.assertEqual(error, {"nobody@example.com": (550, b"No such user")})
        self.assertEqual(noop, (250, b"OK"))
        self.assertEqual(refused, {})
        self.assertEqual(
            [(m.mail_from, m.rcpt_tos, m.content) for m in handler.messages],
            [("a@example.com", ["b@example.com"], b"x\r\n")],
        )

    async def test_sizeParameterOverLimit(self) -> None:
        """
        A message bigger than C{data_size_limit} is refused at MAIL when
        smtplib announces its size: L{smtplib.SMTPSenderRefused} with 552.
        """
        handler = Recorder()
        listening = listen(self, handler, data_size_limit=100)

        def client() -> Any:
            with smtpClient(listening.port) as c:
                try:
                    c.sendmail("alice@example.com", ["bob@example.com"], b"x" * 200)
                except smtplib.SMTPSenderRefused as e:
                    return e.smtp_code, e.smtp_error, e.sender
                return None

        self.assertEqual(
            await deferToThread(client),
            (
                552,
                b"Error: message size exceeds fixed maximum message size",
                "alice@example.com",
            ),
        )
        self.assertEqual(handler.messages, [])

    async def test_dataOverLimit(self) -> None:
        """
        A message bigger than C{data_size_limit}, sent without the SIZE
        parameter (after HELO), gets 552 after its end, as
        L{smtplib.SMTPDataError}; the handler never sees it and the next
        message on the same connection goes through.
        """
        handler = Recorder()
        listening = listen(self, handler, data_size_limit=100)

        def client() -> Any:
            with smtpClient(listening.port) as c:
                c.helo()
                try:
                    c.sendmail("alice@example.com", ["bob@example.com"], b"x" * 200)
                except smtplib.SMTPDataError as e:
                    error = (e.smtp_code, e.smtp_error)
                else:
                    error = None
                return error, c.sendmail("a@example.com", ["b@example.com"], b"small")

        error, refused = await deferToThread(client)
        self.assertEqual(error, (552, b"Error: Too much mail data"))
        self.assertEqual(refused, {})
        self.assertEqual(
            [(m.mail_from, m.content) for m in handler.messages],
            [("a@example.com", b"small\r\n")],
        )

    async def test_ehloFeatures(self) -> None:
        """
        EHLO lists SIZE, 8BITMIME, DSN, PIPELINING and HELP, which smtplib parses
        into its feature table.
        """
        listening = listen(self, Recorder())

        def client() -> Any:
            with smtpClient(listening.port) as c:
                return c.ehlo(), dict(c.esmtp_features)

        reply, features = await deferToThread(client)
        self.assertEqual(
            reply,
            (
                250,
                f"{HOSTNAME}\nSIZE 33554432\n8BITMIME\n".encode()
                + b"DSN\nCHUNKING\nBINARYMIME\nPIPELINING\nHELP",
            ),
        )
        self.assertEqual(
            features,
            {
                "size": "33554432",
                "8bitmime": "",
                "dsn": "",
                "chunking": "",
                "binarymime": "",
                "pipelining": "",
                "help": "",
            },
        )

    async def test_simpleCommands(self) -> None:
        """
        NOOP, RSET, VRFY, EXPN, HELP and QUIT get their replies.
        """
        listening = listen(self, Recorder())

        def client() -> Any:
            c = smtpClient(listening.port)
            try:
                return (
                    c.noop(),
                    c.rset(),
                    c.vrfy("someone@example.com"),
                    c.expn("list"),
                    c.docmd("HELP"),
                    c.docmd("HELP", "mail"),
                    c.quit(),
                )
            finally:
                c.close()

        noop, rset, vrfy, expn, help, helpMail, quit = await deferToThread(client)
        self.assertEqual(noop, (250, b"OK"))
        self.assertEqual(rset, (250, b"OK"))
        self.assertEqual(
            vrfy,
            (252, b"Cannot VRFY user, but will accept message and attempt delivery"),
        )
        self.assertEqual(expn, (502, b"EXPN not implemented"))
        self.assertEqual(helpMail, (214, b"Syntax: MAIL FROM: <address>"))
        self.assertEqual(quit, (221, b"Bye"))
        code, text = help
        self.assertEqual(code, 214)
        prefix = b"Supported commands: "
        self.assertTrue(text.startswith(prefix), text)
        verbs = text[len(prefix) :].split(b" ")
        self.assertEqual(verbs, sorted(verbs))
        self.assertTrue(
            {b"DATA", b"EHLO", b"HELO", b"HELP", b"MAIL", b"NOOP"}
            | {b"QUIT", b"RCPT", b"RSET", b"VRFY"}
            <= set(verbs),
            verbs,
        )
        self.assertNotIn(b"EXPN", verbs)

    async def test_idleTimeout(self) -> None:
        """
        A client that stays silent past C{timeout} reads a 421 and then the
        end of the connection.
        """
        listening = listen(self, Recorder(), timeout=0.5)

        def client() -> Any:
            with rawConnect(listening.port) as sock:
                greeting = readReplies(sock, 1)
                start = time.monotonic()
                rest = readToEnd(sock)
                return greeting, rest, time.monotonic() - start

        greeting, rest, waited = await deferToThread(client)
        self.assertTrue(greeting.startswith(f"220 {HOSTNAME} ".encode()), greeting)
        self.assertEqual(
            rest, f"421 4.4.2 {HOSTNAME} Error: timeout exceeded\r\n".encode()
        )
        self.assertGreaterEqual(waited, 0.4)

    async def test_idleTimeoutRestartsOnCommands(self) -> None:
        """
        Each command restarts the idle timer: commands sent more often than
        C{timeout} keep the connection open past it.
        """
        listening = listen(self, Recorder(), timeout=1.0)

        def client() -> Any:
            with rawConnect(listening.port) as sock:
                readReplies(sock, 1)
                start = time.monotonic()
                replies = []
                for _ in range(5):
                    time.sleep(0.3)
                    sock.sendall(b"NOOP\r\n")
                    replies.append(readReplies(sock, 1))
                alive = time.monotonic() - start
                return replies, alive, readToEnd(sock)

        replies, alive, rest = await deferToThread(client)
        self.assertEqual(replies, [b"250 OK\r\n"] * 5)
        self.assertGreater(alive, 1.0)
        self.assertEqual(
            rest, f"421 4.4.2 {HOSTNAME} Error: timeout exceeded\r\n".encode()
        )

    async def test_trickledLineCut(self) -> None:
        """
        A client that sends a byte every tenth of a second and never a line
        end is not kept alive by its bytes: it reads the timeout's 421 about
        C{timeout} after the line began, then the end of the connection.
        """
        listening = listen(self, Recorder(), timeout=0.5)

        def client() -> Any:
            with rawConnect(listening.port) as sock:
                readReplies(sock, 1)
                start = time.monotonic()
                sent = 0
                while time.monotonic() - start < 5:
                    if select.select([sock], [], [], 0.1)[0]:
                        break
                    sock.sendall(b"NOOP "[sent % 5 : sent % 5 + 1])
                    sent += 1
                return readToEnd(sock), time.monotonic() - start, sent

        rest, waited, sent = await deferToThread(client)
        self.assertEqual(
            rest, f"421 4.4.2 {HOSTNAME} Error: timeout exceeded\r\n".encode()
        )
        self.assertGreaterEqual(waited, 0.4)
        self.assertLess(waited, 3)
        self.assertGreater(sent, 2)

    async def test_eightBitDecodeData(self) -> None:
        """
        With C{decode_data} and SMTPUTF8 (the controller's defaults, as in
        aiosmtpd), C{smtplib.send_message} of a message with an 8-bit UTF-8
        body is accepted and decoded (smtplib sends no BODY parameter for
        it; aiosmtpd accepts it all the same).
        """
        handler = Recorder()
        listening = listen(self, handler, decode_data=True, enable_SMTPUTF8=True)
        message = EmailMessage()
        message["From"] = "anne@example.com"
        message["To"] = "bart@example.com"
        message["Subject"] = "Accents"
        message.set_content("naïve café\n", cte="8bit")

        def client() -> Any:
            with smtpClient(listening.port) as c:
                return c.send_message(message)

        self.assertEqual(await deferToThread(client), {})
        [received] = handler.messages
        self.assertIsInstance(received.content, str)
        self.assertIn("naïve café\r\n", received.content)


class TwistedClientTests(TestCase):
    """
    Twisted's own SMTP client (C{twisted.mail.smtp}) against a server
    listening on 127.0.0.1 (real TCP, real reactor).
    """

    timeout = 30

    async def test_sendmail(self) -> None:
        """
        L{twisted.mail.smtp.sendmail} reports each recipient's RCPT reply,
        and the handler gets the LF-delimited message with CRLF line endings
        and its leading dots intact.
        """
        handler = RefusingRecorder()
        listening = listen(self, handler)
        recording = RecordingReactor()
        message = b"From: alice@example.com\nSubject: via Twisted\n\n.dot\nbody\n"
        result = await sendmail(
            "127.0.0.1",
            "alice@example.com",
            ["bob@example.com", "nobody@example.com"],
            message,
            senderDomainName="client.example",
            port=listening.port,
            reactor=recording,
        )
        await gatherResults(recording.lost)
        self.assertEqual(
            result,
            (
                1,
                [
                    (b"bob@example.com", 250, b"OK"),
                    (b"nobody@example.com", 550, b"No such user"),
                ],
            ),
        )
        self.assertEqual(
            handler.messages,
            [
                Received(
                    "alice@example.com",
                    ["bob@example.com"],
                    [],
                    False,
                    message.replace(b"\n", b"\r\n"),
                    handler.messages[0].peer,
                    "client.example",
                )
            ],
        )
        self.assertEqual(handler.messages[0].peer[0], "127.0.0.1")

    async def test_esmtpSenderFactory(self) -> None:
        """
        L{ESMTPSenderFactory} without TLS or authentication delivers a
        message, and its Deferred fires with the recipients' replies.
        """
        from twisted.internet import reactor

        handler = Recorder()
        listening = listen(self, handler)
        message = b"Subject: factory\n\nline one\n..two dots\n"
        done: Deferred[Any] = Deferred()
        factory = ESMTPSenderFactory(
            None,
            None,
            "alice@example.com",
            "bob@example.com",
            io.BytesIO(message),
            done,
            retries=0,
            requireAuthentication=False,
            requireTransportSecurity=False,
        )
        factory.domain = b"client.example"
        lost = trackClientLoss(factory)
        reactor.connectTCP("127.0.0.1", listening.port, factory)
        result = await done
        await lost
        self.assertEqual(result, (1, [(b"bob@example.com", 250, b"OK")]))
        self.assertEqual(
            [
                (m.mail_from, m.rcpt_tos, m.content, m.host_name)
                for m in handler.messages
            ],
            [
                (
                    "alice@example.com",
                    ["bob@example.com"],
                    message.replace(b"\n", b"\r\n"),
                    "client.example",
                )
            ],
        )


class DelayedHooks(Recorder):
    """
    A L{Recorder} whose MAIL and RCPT hooks answer only after a delay, with
    L{Deferred}s, and note the order in which the hooks ran.
    """

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def _later(self, name: str) -> Deferred[None]:
        from twisted.internet import reactor

        self.calls.append(name)
        return deferLater(reactor, 0.05, lambda: None)

    def handle_MAIL(self, server, session, envelope, address, options):
        return self._later("MAIL " + address)

    def handle_RCPT(self, server, session, envelope, address, options):
        return self._later("RCPT " + address)


class EchoNoop:
    """
    A handler whose NOOP reply carries the NOOP's argument, so that the
    order of the replies can be checked.
    """

    def handle_NOOP(self, server: Any, session: Any, envelope: Any, arg: str) -> str:
        return f"250 {arg}"


class PauseCountingSMTP(SMTP):
    """
    A server with a small socket send buffer, so that replies the client
    does not read pile up in its transport soon, and that counts how often
    its transport asked it to stop reading because of that.
    """

    pauses = 0

    def connectionMade(self) -> None:
        self.transport.getHandle().setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        super().connectionMade()

    def pauseProducing(self) -> None:
        PauseCountingSMTP.pauses += 1
        super().pauseProducing()


class PipeliningTests(TestCase):
    """
    Raw socket clients that pipeline commands (RFC 2920), in a thread,
    against a server listening on 127.0.0.1 (real TCP, real reactor).
    """

    timeout = 60

    def pipelinedTransaction(self, port: int) -> tuple[bytes, bytes, bytes]:
        """
        Send EHLO, MAIL, RCPT and DATA in one write, then the message and
        QUIT in another; return the greeting, the replies to the first
        write and everything read after the second.
        """
        with rawConnect(port) as sock:
            greeting = readReplies(sock, 1)
            sock.sendall(
                b"EHLO client.example\r\n"
                b"MAIL FROM:<alice@example.com>\r\n"
                b"RCPT TO:<bob@example.com>\r\n"
                b"DATA\r\n"
            )
            first = readReplies(sock, 4)
            sock.sendall(b"Subject: piped\r\n\r\n..dot\r\n.\r\nQUIT\r\n")
            return greeting, first, readToEnd(sock)

    async def test_pipelinedTransaction(self) -> None:
        """
        Pipelined EHLO, MAIL, RCPT and DATA get their replies in order, and
        so do the end of the data and a QUIT sent right behind it.
        """
        handler = Recorder()
        listening = listen(self, handler)
        greeting, first, rest = await deferToThread(
            self.pipelinedTransaction, listening.port
        )
        self.assertEqual(first, EHLO_REPLY + b"250 OK\r\n250 OK\r\n" + DATA_GO_AHEAD)
        self.assertEqual(rest, b"250 OK\r\n221 Bye\r\n")
        self.assertEqual(
            [(m.mail_from, m.rcpt_tos, m.content) for m in handler.messages],
            [
                (
                    "alice@example.com",
                    ["bob@example.com"],
                    b"Subject: piped\r\n\r\n.dot\r\n",
                )
            ],
        )

    async def test_pipelinedTransactionSlowHooks(self) -> None:
        """
        With MAIL and RCPT hooks that answer later (Deferreds), pipelined
        commands still run one after the other and are answered in order.
        """
        handler = DelayedHooks()
        listening = listen(self, handler)
        greeting, first, rest = await deferToThread(
            self.pipelinedTransaction, listening.port
        )
        self.assertEqual(first, EHLO_REPLY + b"250 OK\r\n250 OK\r\n" + DATA_GO_AHEAD)
        self.assertEqual(rest, b"250 OK\r\n221 Bye\r\n")
        self.assertEqual(
            handler.calls, ["MAIL alice@example.com", "RCPT bob@example.com"]
        )
        self.assertEqual(
            [(m.mail_from, m.rcpt_tos) for m in handler.messages],
            [("alice@example.com", ["bob@example.com"])],
        )

    async def test_commandsBehindSlowData(self) -> None:
        """
        Commands pipelined behind the end of the data wait for a slow
        C{handle_DATA} and are answered after its reply, in order.
        """
        handler = SlowData(0.2)
        listening = listen(self, handler)

        def client() -> bytes:
            with rawConnect(listening.port) as sock:
                readReplies(sock, 1)
                sock.sendall(
                    b"EHLO c.example\r\nMAIL FROM:<a@example.com>\r\n"
                    b"RCPT TO:<b@example.com>\r\nDATA\r\n"
                )
                readReplies(sock, 4)
                sock.sendall(b"one\r\n.\r\nNOOP\r\nRSET\r\nQUIT\r\n")
                return readToEnd(sock)

        rest = await deferToThread(client)
        self.assertEqual(rest, b"250 Stored\r\n250 OK\r\n250 OK\r\n221 Bye\r\n")
        self.assertEqual(handler.contents, [b"one\r\n"])

    async def test_bareLfInsideCommandLine(self) -> None:
        """
        Over TCP, a bare LF inside a command line does not end it:
        C{NOOP<LF>NOOP<CRLF>}, even with the LF in a segment of its own, is
        one line with exactly one reply, and the next command is answered.
        """
        listening = listen(self, Recorder())

        def client() -> bytes:
            with rawConnect(listening.port) as sock:
                readReplies(sock, 1)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                for piece in (b"NOOP\n", b"NOOP\r", b"\nQUIT\r\n"):
                    sock.sendall(piece)
                    time.sleep(0.05)
                return readToEnd(sock)

        replies = await deferToThread(client)
        self.assertEqual(replies, b"500 5.5.2 Error: bare LF received\r\n221 Bye\r\n")

    async def test_commandSplitAcrossSegments(self) -> None:
        """
        Commands and message data that arrive in pieces, in separate TCP
        segments, are put back together.
        """
        handler = Recorder()
        listening = listen(self, handler)
        pieces = [
            b"NO",
            b"OP\r",
            b"\nEHLO client.example\r\nMAIL FROM:<a@exa",
            b"mple.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n",
            b"Subject: split\r\n\r\n..one\r",
            b"\n.",
            b"\r",
            b"\nQUIT\r\n",
        ]

        def client() -> bytes:
            with rawConnect(listening.port) as sock:
                readReplies(sock, 1)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                for piece in pieces:
                    sock.sendall(piece)
                    time.sleep(0.05)
                return readToEnd(sock)

        replies = await deferToThread(client)
        self.assertEqual(
            replies,
            b"250 OK\r\n"
            + EHLO_REPLY
            + b"250 OK\r\n250 OK\r\n"
            + DATA_GO_AHEAD
            + b"250 OK\r\n221 Bye\r\n",
        )
        self.assertEqual(
            [m.content for m in handler.messages], [b"Subject: split\r\n\r\n.one\r\n"]
        )

    async def test_noopBatch(self) -> None:
        """
        2000 NOOPs sent in one write, by a client that reads nothing for a
        while, all get C{250 OK}, and a QUIT behind them gets C{221 Bye}
        (with C{junk_command_limit} off, which would end the session).
        """
        listening = listen(self, Recorder(), junk_command_limit=0)

        def client() -> tuple[bytes, bytes]:
            with rawConnect(listening.port) as sock:
                readReplies(sock, 1)
                sock.sendall(b"NOOP\r\n" * 2000)
                time.sleep(0.3)
                replies = readReplies(sock, 2000)
                sock.sendall(b"QUIT\r\n")
                return replies, readToEnd(sock)

        replies, rest = await deferToThread(client)
        self.assertEqual(replies, b"250 OK\r\n" * 2000)
        self.assertEqual(rest, b"221 Bye\r\n")

    async def test_noopBatchBackpressure(self) -> None:
        """
        When a client pipelines 2000 commands (800 kB) and does not read the
        (800 kB of) replies for a while, the server stops reading until the
        client catches up, and no reply is lost or out of order (with
        C{junk_command_limit} off, which would end the session).
        """
        PauseCountingSMTP.pauses = 0
        listening = listen(
            self, EchoNoop(), protocol=PauseCountingSMTP, junk_command_limit=0
        )
        padding = "x" * 400
        arguments = [f"{i:04d}-{padding}" for i in range(2000)]
        batch = "".join(f"NOOP {a}\r\n" for a in arguments).encode()

        def client() -> tuple[bytes, bytes]:
            with rawConnect(listening.port, receiveBuffer=4096) as sock:
                readReplies(sock, 1)
                failures: list[BaseException] = []

                def send() -> None:
                    try:
                        sock.sendall(batch)
                    except BaseException as e:
                        failures.append(e)

                sender = threading.Thread(target=send)
                sender.start()
                time.sleep(0.5)
                replies = readReplies(sock, 2000)
                sender.join(10)
                if failures or sender.is_alive():
                    raise AssertionError(f"sending failed: {failures!r}")
                sock.sendall(b"QUIT\r\n")
                return replies, readToEnd(sock)

        replies, rest = await deferToThread(client)
        self.assertEqual(replies, "".join(f"250 {a}\r\n" for a in arguments).encode())
        self.assertEqual(rest, b"221 Bye\r\n")
        self.assertGreater(PauseCountingSMTP.pauses, 0)


class ImpatientSMTP(PauseCountingSMTP):
    """
    A server with a small send buffer that gives a closing connection half
    a second to deliver its last replies.
    """

    closeTimeout = 0.5
    lost: Deferred[None]

    def connectionLost(self, reason: Any = None) -> None:
        super().connectionLost(reason)
        ImpatientSMTP.lost.callback(None)


class ClosingTests(TestCase):
    """
    A client that never reads cannot keep a connection the server closes:
    real TCP on 127.0.0.1.
    """

    timeout = 30

    async def test_timeoutWithUnreadReplies(self) -> None:
        """
        A client that pipelines much more than it reads, then stops, times
        out; the 421 cannot be delivered, so the connection is dropped once
        C{closeTimeout} has passed (with C{junk_command_limit} off, whose
        421 would come first).
        """
        from twisted.internet import reactor

        ImpatientSMTP.lost = Deferred()
        PauseCountingSMTP.pauses = 0
        listening = listen(
            self, EchoNoop(), protocol=ImpatientSMTP, timeout=1, junk_command_limit=0
        )
        batch = b"".join(b"NOOP %04d-%s\r\n" % (i, b"x" * 400) for i in range(2000))
        stop = threading.Event()

        def client() -> str:
            with rawConnect(listening.port, receiveBuffer=4096) as sock:
                readReplies(sock, 1)
                try:
                    sock.sendall(batch)
                except OSError as e:
                    return type(e).__name__
                # Everything went out: hold the connection without reading.
                stop.wait(20)
                return "sent"

        done = deferToThread(client)
        timedOut = reactor.callLater(15, ImpatientSMTP.lost.cancel)
        try:
            await ImpatientSMTP.lost
        finally:
            if timedOut.active():
                timedOut.cancel()
            stop.set()
            await done
        # The server did stop reading: its replies were backed up.
        self.assertGreater(PauseCountingSMTP.pauses, 0)


class SlowData(Recorder):
    """
    A handler whose C{handle_DATA} answers C{250 Stored} C{delay} seconds
    later, with a L{Deferred}.

    @ivar started: Set (from the reactor thread) when the hook is called.
    @ivar finished: The C{time.monotonic()} at which the hook answered.
    """

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay
        self.started = threading.Event()
        self.finished: float | None = None
        self.contents: list[Any] = []

    def handle_DATA(self, server: Any, session: Any, envelope: Any) -> Deferred[str]:
        from twisted.internet import reactor

        self.started.set()
        return deferLater(reactor, self.delay, self._finish, envelope)

    def _finish(self, envelope: Any) -> str:
        self.finished = time.monotonic()
        self.contents.append(envelope.content)
        return "250 Stored"


class Released(Recorder):
    """
    A handler whose C{handle_DATA} leaves the first message waiting until
    the test fires L{release}, and accepts the others at once.
    """

    def __init__(self) -> None:
        super().__init__()
        self.started = threading.Event()
        self.release: Deferred[str] = Deferred()

    def handle_DATA(self, server: Any, session: Any, envelope: Any) -> Any:
        super().handle_DATA(server, session, envelope)
        if self.started.is_set():
            return None
        self.started.set()
        return self.release


class ConcurrencyTests(TestCase):
    """
    Several C{smtplib} clients at once, in threads, against a server
    listening on 127.0.0.1 (real TCP, real reactor).
    """

    timeout = 30

    async def test_slowDataDoesNotBlockOthers(self) -> None:
        """
        While one connection's C{handle_DATA} waits 0.2 s on a L{Deferred},
        another connection is served at once.
        """
        handler = SlowData(0.2)
        listening = listen(self, handler)

        def slowClient() -> Any:
            with smtpClient(listening.port) as c:
                refused = c.sendmail("slow@example.com", ["a@example.com"], b"slow")
                return refused, time.monotonic()

        def otherClient() -> Any:
            if not handler.started.wait(10):
                raise AssertionError("handle_DATA was never called")
            started = time.monotonic()
            with smtpClient(listening.port) as c:
                replies = (c.ehlo()[0], c.noop(), c.rset(), c.vrfy("x@example.com")[0])
                done = time.monotonic()
                pending = handler.finished is None
            return replies, started, done, pending

        slow = deferToThread(slowClient)
        other = deferToThread(otherClient)
        (
            (refused, slowDone),
            (replies, started, otherDone, pending),
        ) = await gatherResults([slow, other])
        self.assertEqual(refused, {})
        self.assertEqual(replies, (250, (250, b"OK"), (250, b"OK"), 252))
        self.assertTrue(pending, "the other client was served only after handle_DATA")
        self.assertLess(otherDone, slowDone)
        self.assertGreaterEqual(slowDone - started, 0.1)
        self.assertEqual(handler.contents, [b"slow\r\n"])

    async def test_pendingDataLetsOthersDeliver(self) -> None:
        """
        While one connection's C{handle_DATA} is pending, another connection
        delivers a whole message; the first gets its reply once the hook's
        L{Deferred} fires.
        """
        from twisted.internet import reactor

        handler = Released()
        listening = listen(self, handler)

        def firstClient() -> Any:
            with smtpClient(listening.port) as c:
                c.ehlo()
                c.mail("first@example.com")
                c.rcpt("a@example.com")
                return c.data(b"first")

        def secondClient() -> Any:
            if not handler.started.wait(10):
                raise AssertionError("handle_DATA was never called")
            with smtpClient(listening.port) as c:
                c.ehlo()
                c.mail("second@example.com")
                c.rcpt("b@example.com")
                # The first message is still waiting on its hook: let it go
                # only once this one has been accepted.
                reply = c.data(b"second")
                reactor.callFromThread(handler.release.callback, "250 Released")
                return reply

        first = deferToThread(firstClient)
        second = await deferToThread(secondClient)
        self.assertEqual(second, (250, b"OK"))
        self.assertEqual(await first, (250, b"Released"))
        self.assertEqual(
            [m.mail_from for m in handler.messages],
            ["first@example.com", "second@example.com"],
        )


class Trickle:
    """
    A socket that sends at most C{limit} bytes per C{send} call, as a
    socket with little room in its send buffer does, and counts the calls.
    Everything else goes to the real socket.
    """

    def __init__(self, sock: socket.socket, limit: int) -> None:
        self._sock = sock
        self._limit = limit
        self.sends = 0

    def send(self, data: bytes, *flags: int) -> int:
        self.sends += 1
        return self._sock.send(bytes(data[: self._limit]), *flags)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class TrickleSMTP(SMTP):
    """
    A server whose TCP transport's socket takes 5 bytes per C{send}.
    """

    trickle: Trickle

    def connectionMade(self) -> None:
        self.transport.socket = self.trickle = Trickle(self.transport.socket, 5)
        super().connectionMade()


class EarlyBytes:
    """
    A handler whose C{handle_NOOP} writes a line to the transport itself,
    which Twisted keeps in the transport's buffer, before it returns its
    reply.
    """

    async def handle_NOOP(
        self, server: Any, session: Any, envelope: Any, arg: str
    ) -> str:
        server.transport.write(b"250-written by the hook\r\n")
        return "250 returned by the hook"


class DirectSendTests(TestCase):
    """
    Replies go straight to the socket when the TCP transport has nothing
    buffered; what the socket does not take, and anything behind bytes
    already buffered, goes through the transport in order.
    """

    timeout = 30

    async def test_partialSends(self) -> None:
        """
        When the socket takes only part of a reply, the rest follows through
        the transport: every reply arrives whole and in order.
        """
        handler = Recorder()
        listening = listen(self, handler, protocol=TrickleSMTP)

        def client() -> tuple[bytes, bytes, bytes]:
            with rawConnect(listening.port) as sock:
                greeting = readReplies(sock, 1)
                sock.sendall(
                    b"EHLO client.example\r\nMAIL FROM:<a@example.com>\r\n"
                    b"RCPT TO:<b@example.com>\r\nDATA\r\n"
                )
                first = readReplies(sock, 4)
                sock.sendall(b"hello\r\n.\r\nNOOP\r\nQUIT\r\n")
                return greeting, first, readToEnd(sock)

        greeting, first, rest = await deferToThread(client)
        self.assertEqual(greeting, f"220 {HOSTNAME} twisted_smtpd 0.1.0\r\n".encode())
        self.assertEqual(first, EHLO_REPLY + b"250 OK\r\n250 OK\r\n" + DATA_GO_AHEAD)
        self.assertEqual(rest, b"250 OK\r\n250 OK\r\n221 Bye\r\n")
        self.assertEqual([m.content for m in handler.messages], [b"hello\r\n"])
        # The first send of each reply is ours, the rest the transport's.
        self.assertGreater(listening.servers[0].trickle.sends, 30)

    async def test_behindBufferedBytes(self) -> None:
        """
        A reply made while the transport still holds bytes written before
        it goes out after them, not straight to the socket ahead of them.
        """
        listening = listen(self, EarlyBytes())

        def client() -> bytes:
            with rawConnect(listening.port) as sock:
                readReplies(sock, 1)
                sock.sendall(b"NOOP\r\nQUIT\r\n")
                return readToEnd(sock)

        rest = await deferToThread(client)
        self.assertEqual(
            rest,
            b"250-written by the hook\r\n250 returned by the hook\r\n221 Bye\r\n",
        )


class LimitTests(TestCase):
    """
    The limits of a public MX (C{max_recipients}, C{hard_error_limit}) and
    the refusal of control characters, seen by a raw socket client.
    """

    timeout = 30

    async def converse(self, port: int, data: bytes) -> bytes:
        """
        Connect, read the greeting, send C{data} in one write, and return
        all the server sends until it closes the connection.
        """

        def client() -> bytes:
            with rawConnect(port) as sock:
                readReplies(sock, 1)
                sock.sendall(data)
                return readToEnd(sock)

        return await deferToThread(client)

    async def test_tooManyErrors(self) -> None:
        """
        A client that pipelines nothing but mistakes gets its replies up to
        the C{hard_error_limit}th, then C{421}, and the connection closes;
        what it sent after is never answered.
        """
        handler = Recorder()
        listening = listen(self, handler, hard_error_limit=3)
        rest = await self.converse(
            listening.port,
            b"EHLO bad\x1bhost\r\nEHLO client.example\r\nDATA\r\n"
            b"RCPT TO:<b@example.com>\r\nMAIL FROM:<a@example.com>\r\n"
            b"RCPT TO:<b@example.com>\r\nDATA\r\nhello\r\n.\r\n",
        )
        self.assertEqual(
            rest,
            b"501 Syntax: EHLO hostname\r\n"
            + EHLO_REPLY
            + b"503 Error: need RCPT command\r\n"
            b"503 Error: need MAIL command\r\n"
            + f"421 4.7.0 {HOSTNAME} Error: too many errors\r\n".encode(),
        )
        self.assertEqual(handler.messages, [])

    async def test_tooManyRecipients(self) -> None:
        """
        The recipients beyond C{max_recipients} get C{452}, and the message
        goes to the others.
        """
        handler = Recorder()
        listening = listen(self, handler, max_recipients=100)
        recipients = [f"r{i}@example.com".encode() for i in range(102)]
        rest = await self.converse(
            listening.port,
            b"EHLO client.example\r\nMAIL FROM:<a@example.com>\r\n"
            + b"".join(b"RCPT TO:<%s>\r\n" % r for r in recipients)
            + b"DATA\r\nhello\r\n.\r\nQUIT\r\n",
        )
        self.assertEqual(
            rest,
            EHLO_REPLY
            + b"250 OK\r\n" * 101
            + b"452 Too many recipients\r\n" * 2
            + DATA_GO_AHEAD
            + b"250 OK\r\n221 Bye\r\n",
        )
        self.assertEqual(
            [m.rcpt_tos for m in handler.messages],
            [[r.decode() for r in recipients[:100]]],
        )
