"""
Integration tests with C{curl} as the SMTP client: plain submission, dot
stuffing, bare line feeds, VRFY, STARTTLS with certificate checks, and
AUTH PLAIN and LOGIN, over real TCP on 127.0.0.1.
"""

from __future__ import annotations

from typing import Any

from twisted.trial.unittest import TestCase

from tests.test_auth import PASSWORD, USER, Authenticator
from tests.test_tls import (
    Recorder,
    certificates,
    commandLineTool,
    listenOn,
    runTool,
)

MESSAGE = (
    b"From: a@example.com\r\n"
    b"To: b@example.com\r\n"
    b"Subject: from curl\r\n"
    b"\r\n"
    b"first line\r\n"
    b".a line that starts with a dot\r\n"
    b".\r\n"
    b"..\r\n"
    b"last line\r\n"
)


def assertSucceeded(testCase: TestCase, result: Any) -> None:
    """
    Assert that curl exited with 0, showing its output otherwise.
    """
    output = (result.stdout + result.stderr).decode("utf-8", "replace")
    testCase.assertEqual(result.returncode, 0, output)


class CurlTests(TestCase):
    """
    C{curl smtp://...} against a server on 127.0.0.1, port 0.
    """

    timeout = 60

    def setUp(self) -> None:
        self.curl = commandLineTool("curl")
        self.handler = Recorder()

    async def curlRun(self, port: int, *arguments: str, stdin: bytes = b"") -> Any:
        """
        Run C{curl} against C{localhost} (pinned to 127.0.0.1) at C{port}.

        @return: The C{subprocess.CompletedProcess}.
        """
        return await runTool(
            [
                self.curl,
                "--silent",
                "--show-error",
                "--max-time", "15",
                "--resolve", f"localhost:{port}:127.0.0.1",
                *arguments,
            ],
            stdin,
        )  # fmt: skip

    async def test_send(self) -> None:
        """
        A message sent with C{curl --upload-file} to two recipients reaches
        C{handle_DATA} byte for byte, dot stuffing undone, with the
        envelope curl gave and the domain of the URL as the EHLO name.
        """
        server = await listenOn(self, self.handler)
        result = await self.curlRun(
            server.port,
            f"smtp://localhost:{server.port}/client.example",
            "--mail-from", "a@example.com",
            "--mail-rcpt", "b@example.com",
            "--mail-rcpt", "c@example.com",
            "--upload-file", "-",
            stdin=MESSAGE,
        )  # fmt: skip
        assertSucceeded(self, result)
        [(session, envelope)] = self.handler.messages
        self.assertEqual(session.host_name, "client.example")
        self.assertTrue(session.extended_smtp)
        self.assertEqual(envelope.mail_from, "a@example.com")
        self.assertEqual(envelope.rcpt_tos, ["b@example.com", "c@example.com"])
        self.assertEqual(envelope.content, MESSAGE)
        self.assertEqual(
            self.handler.calls,
            [("MAIL", "a@example.com"), ("RCPT", "b@example.com"),
             ("RCPT", "c@example.com")],
        )  # fmt: skip

    async def test_crlf(self) -> None:
        """
        With C{--crlf}, curl turns the line feeds of a file into CRLF, and
        the message is accepted as those CRLF lines.
        """
        server = await listenOn(self, self.handler)
        result = await self.curlRun(
            server.port,
            f"smtp://localhost:{server.port}/client.example",
            "--mail-from", "a@example.com",
            "--mail-rcpt", "b@example.com",
            "--crlf",
            "--upload-file", "-",
            stdin=b"Subject: lf\n\none\ntwo\n",
        )  # fmt: skip
        assertSucceeded(self, result)
        [(session, envelope)] = self.handler.messages
        self.assertEqual(envelope.content, b"Subject: lf\r\n\r\none\r\ntwo\r\n")

    async def test_bareLineFeeds(self) -> None:
        """
        Without C{--crlf}, a file with bare line feeds is refused with 550,
        which curl reports as a failure (curl 7.88 calls any refusal of the
        data a "weird server reply"): the message is neither silently
        rewritten nor silently lost.
        """
        server = await listenOn(self, self.handler)
        result = await self.curlRun(
            server.port,
            "--verbose",
            f"smtp://localhost:{server.port}/client.example",
            "--mail-from", "a@example.com",
            "--mail-rcpt", "b@example.com",
            "--upload-file", "-",
            stdin=b"Subject: lf\n\none\ntwo\n",
        )  # fmt: skip
        self.assertNotEqual(result.returncode, 0)
        self.assertIn(
            b"< 550 5.6.0 Error: bare CR or LF in message;"
            b" lines must end with CRLF\r\n",
            result.stderr,
        )
        self.assertEqual(self.handler.messages, [])

    async def test_vrfy(self) -> None:
        """
        C{curl --mail-rcpt} without a message sends VRFY and prints the
        reply.
        """
        server = await listenOn(self, self.handler)
        result = await self.curlRun(
            server.port,
            f"smtp://localhost:{server.port}/client.example",
            "--mail-rcpt", "bob@example.com",
        )  # fmt: skip
        assertSucceeded(self, result)
        self.assertIn(
            b"252 Cannot VRFY user, but will accept message and attempt delivery",
            result.stdout,
        )
        self.assertEqual(self.handler.messages, [])


class CurlTLSTests(TestCase):
    """
    C{curl --ssl-reqd}: STARTTLS with the certificate checked against a
    trustme CA, then AUTH.
    """

    timeout = 60

    def setUp(self) -> None:
        self.curl = commandLineTool("curl")
        self.certs = certificates(self)
        self.handler = Recorder()
        self.authenticator = Authenticator()

    async def listen(self) -> Any:
        return await listenOn(
            self,
            self.handler,
            tls_context=self.certs.serverOptions(),
            authenticator=self.authenticator,
            auth_required=True,
        )

    async def send(self, port: int, *arguments: str) -> Any:
        """
        Send L{MESSAGE} with STARTTLS required and checked.
        """
        return await runTool(
            [
                self.curl,
                "--silent",
                "--show-error",
                "--max-time", "15",
                "--resolve", f"localhost:{port}:127.0.0.1",
                "--ssl-reqd",
                "--cacert", self.certs.caFile,
                f"smtp://localhost:{port}/client.example",
                "--mail-from", "a@example.com",
                "--mail-rcpt", "b@example.com",
                "--upload-file", "-",
                *arguments,
            ],
            MESSAGE,
        )  # fmt: skip

    async def test_authPlain(self) -> None:
        """
        C{--login-options AUTH=PLAIN} logs in over TLS and the message
        arrives in an authenticated, encrypted session.
        """
        server = await self.listen()
        result = await self.send(
            server.port,
            "--user", f"{USER.decode()}:{PASSWORD.decode()}",
            "--login-options", "AUTH=PLAIN",
        )  # fmt: skip
        assertSucceeded(self, result)
        [(session, envelope)] = self.handler.messages
        self.assertIs(session.authenticated, True)
        self.assertIsNotNone(session.ssl)
        self.assertEqual(envelope.content, MESSAGE)
        self.assertEqual([m for m, _ in self.authenticator.calls], ["PLAIN"])

    async def test_authLogin(self) -> None:
        """
        C{--login-options AUTH=LOGIN} logs in with aiosmtpd's LOGIN
        challenges.
        """
        server = await self.listen()
        result = await self.send(
            server.port,
            "--user", f"{USER.decode()}:{PASSWORD.decode()}",
            "--login-options", "AUTH=LOGIN",
        )  # fmt: skip
        assertSucceeded(self, result)
        self.assertEqual(len(self.handler.messages), 1)
        self.assertEqual([m for m, _ in self.authenticator.calls], ["LOGIN"])

    async def test_wrongPassword(self) -> None:
        """
        A wrong password makes curl fail on the 535; nothing is delivered.
        """
        server = await self.listen()
        result = await self.send(server.port, "--user", f"{USER.decode()}:nope")
        self.assertNotEqual(result.returncode, 0)
        self.assertEqual(self.handler.messages, [])
        self.assertEqual(len(self.authenticator.calls), 1)

    async def test_noAuth(self) -> None:
        """
        Without credentials, MAIL is refused with 530 because the server
        requires AUTH, and curl fails.
        """
        server = await self.listen()
        result = await self.send(server.port)
        self.assertNotEqual(result.returncode, 0)
        self.assertIn(b"530", result.stderr)
        self.assertEqual(self.handler.messages, [])
