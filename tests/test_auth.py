# -*- test-case-name: tests.test_auth -*-
"""
Tests for SMTP AUTH (RFC 4954): the built-in PLAIN, LOGIN and CRAM-MD5
mechanisms, authenticators, handler mechanisms, the twisted.cred bridge,
the failure limit, and that credentials never reach the logs.

The unit tests drive the server in memory (over plaintext with
C{auth_require_tls=False}, or over a pretend TLS); the integration tests
authenticate real clients over real TLS on 127.0.0.1: C{smtplib}, Twisted's
own ESMTP client and C{swaks}.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import smtplib
import warnings
from io import BytesIO
from pathlib import Path
from typing import Any

from twisted.cred.checkers import (
    FilePasswordDB,
    InMemoryUsernamePasswordDatabaseDontUse,
)
from twisted.cred.portal import IRealm, Portal
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone
from twisted.internet.ssl import Certificate, optionsForClientTLS
from twisted.internet.task import Clock
from twisted.internet.threads import deferToThread
from twisted.mail.smtp import ESMTPSenderFactory
from twisted.python.failure import Failure
from twisted.trial.unittest import SkipTest, SynchronousTestCase, TestCase
from zope.interface import implementer

from tests.test_tls import (
    CLIENT_TIMEOUT,
    HOSTNAME,
    Recorder,
    captureEvents,
    certificates,
    commandLineTool,
    ehloKeywords,
    eventText,
    implicitTester,
    listenOn,
    runTool,
    startTLS,
    tlsTester,
)
from twisted_smtpd import (
    MISSING,
    AuthResult,
    IAuthenticatedUser,
    LoginPassword,
    SMTPFactory,
    auth_mechanism,
)
from twisted_smtpd.testing import Reply, SMTPTester

USER = b"user"
PASSWORD = b"s3cret-Pa55word"
PLAIN_BLOB = base64.b64encode(b"\0" + USER + b"\0" + PASSWORD).decode()
LOGIN_USER = base64.b64encode(USER).decode()
LOGIN_PASSWORD = base64.b64encode(PASSWORD).decode()

AUTH_OK = (235, "2.7.0 Authentication successful")
AUTH_INVALID = (535, "5.7.8 Authentication credentials invalid")
AUTH_ABORTED = (501, "5.7.0 Auth aborted")
BAD_BASE64 = (501, "5.5.2 Can't decode base64")
CANNOT_SPLIT = (501, "5.5.2 Can't split auth value")
UNRECOGNIZED = (504, "5.5.4 Unrecognized authentication type")
ENCRYPTION_REQUIRED = (
    538,
    "5.7.11 Encryption required for requested authentication mechanism",
)
AUTH_REQUIRED = (530, "5.7.0 Authentication required")
TOO_MANY_FAILURES = (421, "4.7.0 Too many failed authentication attempts")
USERNAME_CHALLENGE = (334, "VXNlciBOYW1lAA==")
PASSWORD_CHALLENGE = (334, "UGFzc3dvcmQA")


def b64(data: bytes) -> str:
    """
    Base64 as sent on the wire.
    """
    return base64.b64encode(data).decode()


def plainBlob(login: bytes, password: bytes, authzid: bytes = b"") -> str:
    """
    The base64 AUTH PLAIN response (RFC 4616).
    """
    return b64(authzid + b"\0" + login + b"\0" + password)


class Authenticator:
    """
    An authenticator knowing one user, recording what it was given.

    @ivar calls: C{(mechanism, auth_data)} for each call.
    """

    def __init__(self, users: dict[bytes, bytes] | None = None) -> None:
        self.users = {USER: PASSWORD} if users is None else users
        self.calls: list[tuple[str, Any]] = []

    def __call__(self, server, session, envelope, mechanism, auth_data):
        self.calls.append((mechanism, auth_data))
        ok = self.users.get(auth_data.login) == auth_data.password
        return AuthResult(success=ok, handled=False, auth_data=auth_data)


def plainTester(handler: Any = None, **options: Any) -> SMTPTester:
    """
    A server in memory that allows AUTH over plaintext, greeted with EHLO.
    """
    options.setdefault("auth_require_tls", False)
    options.setdefault("hostname", HOSTNAME)
    tester = SMTPTester(Recorder() if handler is None else handler, **options)
    reply = tester.command("EHLO client.example")
    if reply.code != 250:
        raise AssertionError(f"EHLO got {reply!r}")
    return tester


def authLine(reply: Reply) -> list[str] | None:
    """
    The mechanisms of the AUTH line of an EHLO reply, or C{None} without one.
    """
    for line in ehloKeywords(reply):
        words = line.split()
        if words and words[0].upper() == "AUTH":
            return words[1:]
    return None


def writePasswords(testCase: SynchronousTestCase | TestCase, content: bytes) -> str:
    """
    Write a password file for L{FilePasswordDB}.
    """
    path = Path(testCase.mktemp())
    path.write_bytes(content)
    return str(path)


def sha256Hash(username: bytes, password: bytes, stored: bytes) -> bytes:
    """
    The C{hash} of a L{FilePasswordDB} storing SHA-256 hex digests.
    """
    return hashlib.sha256(password).hexdigest().encode()


def cramResponse(challenge: str, login: bytes, password: bytes) -> str:
    """
    The base64 CRAM-MD5 response (RFC 2195) to a base64 challenge.
    """
    decoded = base64.b64decode(challenge)
    digest = hmac.new(password, decoded, hashlib.md5).hexdigest().encode()
    return b64(login + b" " + digest)


# Unit tests.


class AuthAdvertisingTests(SynchronousTestCase):
    """
    When AUTH is offered in the EHLO reply, and with which mechanisms.
    """

    def test_noCredentialSource(self) -> None:
        """
        Without authenticator, portal, callback or handler mechanism, AUTH
        is not offered, even where plaintext AUTH would be allowed.
        """
        tester = SMTPTester(Recorder(), auth_require_tls=False)
        self.assertIsNone(authLine(tester.command("EHLO client.example")))

    def test_notInPlaintext(self) -> None:
        """
        With C{auth_require_tls} (the default) AUTH is not offered in
        plaintext, and AUTH gets 538 without reaching the authenticator.
        """
        authenticator = Authenticator()
        tester = SMTPTester(Recorder(), authenticator=authenticator)
        self.assertIsNone(authLine(tester.command("EHLO client.example")))
        self.assertEqual(
            tester.command(f"AUTH PLAIN {PLAIN_BLOB}"), ENCRYPTION_REQUIRED
        )
        self.assertEqual(authenticator.calls, [])
        self.assertIsNot(tester.server.session.authenticated, True)

    def test_afterSTARTTLS(self) -> None:
        """
        After STARTTLS, AUTH is offered with PLAIN and LOGIN, and works.
        """
        tester = tlsTester(
            self,
            Recorder(),
            tls_context=certificates(self).serverOptions(),
            authenticator=Authenticator(),
        )
        startTLS(self, tester)
        self.assertEqual(
            sorted(authLine(tester.command("EHLO client.example"))),
            ["LOGIN", "PLAIN"],
        )
        self.assertEqual(tester.command(f"AUTH PLAIN {PLAIN_BLOB}"), AUTH_OK)

    def test_implicitTLS(self) -> None:
        """
        Over implicit TLS, AUTH is offered and works with
        C{auth_require_tls=True}.
        """
        tester = implicitTester(self, Recorder(), authenticator=Authenticator())
        self.assertEqual(
            sorted(authLine(tester.command("EHLO client.example"))),
            ["LOGIN", "PLAIN"],
        )
        self.assertEqual(tester.command(f"AUTH PLAIN {PLAIN_BLOB}"), AUTH_OK)

    def test_plaintextAllowed(self) -> None:
        """
        With C{auth_require_tls=False} AUTH is offered in plaintext.
        """
        tester = SMTPTester(
            Recorder(), authenticator=Authenticator(), auth_require_tls=False
        )
        self.assertEqual(
            sorted(authLine(tester.command("EHLO client.example"))),
            ["LOGIN", "PLAIN"],
        )

    def test_handlerMechanismOnly(self) -> None:
        """
        A handler's C{auth_<NAME>} method is a credential source of its own:
        only its mechanism is offered.
        """

        class Handler(Recorder):
            async def auth_NULL(self, server, args):
                return AuthResult(success=True)

        tester = SMTPTester(Handler(), auth_require_tls=False)
        self.assertEqual(authLine(tester.command("EHLO client.example")), ["NULL"])

    def test_handleAUTHOnly(self) -> None:
        """
        A handler with C{handle_AUTH} makes AUTH offered.
        """

        class Handler(Recorder):
            def handle_AUTH(self, server, session, envelope, args):
                return "235 2.7.0 OK"

        tester = SMTPTester(Handler(), auth_require_tls=False)
        self.assertIsNotNone(authLine(tester.command("EHLO client.example")))

    def test_excluded(self) -> None:
        """
        C{auth_exclude_mechanism} removes a mechanism from EHLO and AUTH.
        """
        tester = plainTester(
            authenticator=Authenticator(), auth_exclude_mechanism=["LOGIN"]
        )
        self.assertEqual(authLine(tester.command("EHLO client.example")), ["PLAIN"])
        self.assertEqual(tester.command("AUTH LOGIN"), UNRECOGNIZED)
        self.assertEqual(tester.command(f"AUTH PLAIN {PLAIN_BLOB}"), AUTH_OK)


class AuthPlainTests(SynchronousTestCase):
    """
    AUTH PLAIN (RFC 4616) with an authenticator, in memory.
    """

    def setUp(self) -> None:
        self.authenticator = Authenticator()
        self.tester = plainTester(authenticator=self.authenticator)

    def test_initialResponse(self) -> None:
        """
        PLAIN with an initial response authenticates; the session keeps a
        L{LoginPassword} that unpacks as C{(login, password)}.
        """
        self.assertEqual(self.tester.command(f"AUTH PLAIN {PLAIN_BLOB}"), AUTH_OK)
        session = self.tester.server.session
        self.assertIs(session.authenticated, True)
        self.assertIsInstance(session.auth_data, LoginPassword)
        login, password = session.auth_data
        self.assertEqual((login, password), (USER, PASSWORD))
        [(mechanism, data)] = self.authenticator.calls
        self.assertEqual((mechanism, tuple(data)), ("PLAIN", (USER, PASSWORD)))
        self.assertIsNone(data.authzid)

    def test_loginPasswordHidesPassword(self) -> None:
        """
        The C{repr} and C{str} of L{LoginPassword} show the login and not
        the password.
        """
        data = LoginPassword(USER, PASSWORD)
        for text in (repr(data), str(data)):
            self.assertIn("user", text)
            self.assertNotIn(PASSWORD.decode(), text)

    def test_emptyChallenge(self) -> None:
        """
        PLAIN without an initial response gets an empty 334 challenge, then
        authenticates with the response.
        """
        self.assertEqual(self.tester.command("AUTH PLAIN"), (334, ""))
        self.assertEqual(self.tester.command(PLAIN_BLOB), AUTH_OK)
        self.assertIs(self.tester.server.session.authenticated, True)

    def test_emptyInitialResponse(self) -> None:
        """
        C{=} is an empty initial response (RFC 4954 section 4): no challenge
        is sent, and an empty PLAIN message cannot be split.
        """
        self.assertEqual(self.tester.command("AUTH PLAIN ="), CANNOT_SPLIT)
        self.assertEqual(self.authenticator.calls, [])
        self.assertIsNot(self.tester.server.session.authenticated, True)

    def test_caseInsensitive(self) -> None:
        """
        Mechanism names are case-insensitive.
        """
        self.assertEqual(self.tester.command(f"auth plain {PLAIN_BLOB}"), AUTH_OK)

    def test_mixedCase(self) -> None:
        """
        Mixed-case mechanism names work too, with a challenge.
        """
        self.assertEqual(self.tester.command("AUTH pLaIn"), (334, ""))
        self.assertEqual(self.tester.command(PLAIN_BLOB), AUTH_OK)

    def test_wrongPassword(self) -> None:
        """
        Wrong credentials get 535 and leave the session unauthenticated.
        """
        reply = self.tester.command(f"AUTH PLAIN {plainBlob(USER, b'nope')}")
        self.assertEqual(reply, AUTH_INVALID)
        self.assertIsNot(self.tester.server.session.authenticated, True)
        self.assertFalse(self.tester.closed)

    def test_unknownUser(self) -> None:
        """
        An unknown user gets 535.
        """
        reply = self.tester.command(f"AUTH PLAIN {plainBlob(b'nobody', PASSWORD)}")
        self.assertEqual(reply, AUTH_INVALID)

    def test_cancel(self) -> None:
        """
        C{*} in answer to the challenge cancels with 501.
        """
        self.assertEqual(self.tester.command("AUTH PLAIN"), (334, ""))
        self.assertEqual(self.tester.command("*"), AUTH_ABORTED)
        self.assertEqual(self.authenticator.calls, [])
        self.assertIsNot(self.tester.server.session.authenticated, True)
        self.assertEqual(self.tester.command("NOOP"), (250, "OK"))

    def test_badBase64Initial(self) -> None:
        """
        An initial response that is not base64 gets 501.
        """
        self.assertEqual(self.tester.command("AUTH PLAIN not*base64"), BAD_BASE64)
        self.assertEqual(self.authenticator.calls, [])

    def test_badBase64Response(self) -> None:
        """
        A challenge response that is not base64 gets 501.
        """
        self.assertEqual(self.tester.command("AUTH PLAIN"), (334, ""))
        self.assertEqual(self.tester.command("@@@"), BAD_BASE64)
        self.assertEqual(self.authenticator.calls, [])
        self.assertEqual(self.tester.command("NOOP"), (250, "OK"))

    def test_cannotSplit(self) -> None:
        """
        A PLAIN message without exactly two NULs gets 501.
        """
        for blob in [b"user\0pass", b"a\0b\0c\0d", b"nonul"]:
            tester = plainTester(authenticator=self.authenticator)
            self.assertEqual(
                tester.command(f"AUTH PLAIN {b64(blob)}"), CANNOT_SPLIT, blob
            )
        self.assertEqual(self.authenticator.calls, [])

    def test_authzidDifferent(self) -> None:
        """
        An authorization identity other than the login gets 535 when the
        authenticator does not accept authzids.
        """
        blob = plainBlob(USER, PASSWORD, authzid=b"admin")
        self.assertEqual(self.tester.command(f"AUTH PLAIN {blob}"), AUTH_INVALID)
        self.assertIsNot(self.tester.server.session.authenticated, True)

    def test_authzidSame(self) -> None:
        """
        An authorization identity equal to the login is accepted.
        """
        blob = plainBlob(USER, PASSWORD, authzid=USER)
        self.assertEqual(self.tester.command(f"AUTH PLAIN {blob}"), AUTH_OK)

    def test_authzidAccepted(self) -> None:
        """
        An authenticator with C{accepts_authzid = True} gets the authzid in
        C{auth_data.authzid} and decides.
        """
        authenticator = Authenticator()
        authenticator.accepts_authzid = True
        tester = plainTester(authenticator=authenticator)
        blob = plainBlob(USER, PASSWORD, authzid=b"admin")
        self.assertEqual(tester.command(f"AUTH PLAIN {blob}"), AUTH_OK)
        [(mechanism, data)] = authenticator.calls
        self.assertEqual(
            (data.login, data.password, data.authzid), (USER, PASSWORD, b"admin")
        )


class AuthLoginTests(SynchronousTestCase):
    """
    AUTH LOGIN with an authenticator, in memory.
    """

    def setUp(self) -> None:
        self.authenticator = Authenticator()
        self.tester = plainTester(authenticator=self.authenticator)

    def test_challenges(self) -> None:
        """
        LOGIN asks for the user name, then the password, with aiosmtpd's
        challenges, and authenticates.
        """
        self.assertEqual(self.tester.command("AUTH LOGIN"), USERNAME_CHALLENGE)
        self.assertEqual(self.tester.command(LOGIN_USER), PASSWORD_CHALLENGE)
        self.assertEqual(self.tester.command(LOGIN_PASSWORD), AUTH_OK)
        session = self.tester.server.session
        self.assertIs(session.authenticated, True)
        self.assertEqual(tuple(session.auth_data), (USER, PASSWORD))
        self.assertEqual(self.authenticator.calls[0][0], "LOGIN")

    def test_initialResponse(self) -> None:
        """
        LOGIN with the user name as initial response asks for the password
        only.
        """
        self.assertEqual(
            self.tester.command(f"AUTH LOGIN {LOGIN_USER}"), PASSWORD_CHALLENGE
        )
        self.assertEqual(self.tester.command(LOGIN_PASSWORD), AUTH_OK)

    def test_lowerCase(self) -> None:
        """
        C{auth login} works.
        """
        self.assertEqual(self.tester.command("auth login"), USERNAME_CHALLENGE)

    def test_wrongPassword(self) -> None:
        """
        A wrong password gets 535.
        """
        self.tester.command("AUTH LOGIN")
        self.tester.command(LOGIN_USER)
        self.assertEqual(self.tester.command(b64(b"wrong")), AUTH_INVALID)
        self.assertIsNot(self.tester.server.session.authenticated, True)

    def test_cancelUser(self) -> None:
        """
        C{*} instead of the user name cancels with 501.
        """
        self.tester.command("AUTH LOGIN")
        self.assertEqual(self.tester.command("*"), AUTH_ABORTED)
        self.assertEqual(self.tester.replies(), [])
        self.assertEqual(self.authenticator.calls, [])

    def test_cancelPassword(self) -> None:
        """
        C{*} instead of the password cancels with 501.
        """
        self.tester.command(f"AUTH LOGIN {LOGIN_USER}")
        self.assertEqual(self.tester.command("*"), AUTH_ABORTED)
        self.assertEqual(self.tester.replies(), [])
        self.assertEqual(self.authenticator.calls, [])

    def test_bareLfInAnswer(self) -> None:
        """
        A bare LF does not end an answer either: the line up to the CRLF
        gets one C{500}, which ends the exchange, and the next line is a
        command again.
        """
        self.tester.command("AUTH LOGIN")
        self.tester.send(LOGIN_USER.encode() + b"\nNOOP\r\nNOOP\r\n")
        self.assertEqual(
            self.tester.replies(),
            [(500, "5.5.2 Error: bare LF received"), (250, "OK")],
        )
        self.assertEqual(self.authenticator.calls, [])

    def test_badBase64(self) -> None:
        """
        A user name that is not base64 gets 501.
        """
        self.assertEqual(self.tester.command("AUTH LOGIN %%%"), BAD_BASE64)
        self.tester.command("AUTH LOGIN")
        self.assertEqual(self.tester.command("%%%"), BAD_BASE64)
        self.assertEqual(self.authenticator.calls, [])


class AuthCommandTests(SynchronousTestCase):
    """
    When AUTH is allowed, and its errors, in memory.
    """

    def test_overlongAnswer(self) -> None:
        """
        An answer to a challenge longer than a line may be gets RFC 4954's
        C{500 5.5.6}, which ends the exchange: the next line is a command
        again, and the authenticator is never called.
        """
        authenticator = Authenticator()
        tester = plainTester(authenticator=authenticator)
        self.assertEqual(tester.command("AUTH PLAIN"), (334, ""))
        tester.send(b"A" * 5000 + b"\r\nNOOP\r\n")
        self.assertEqual(
            tester.replies(),
            [(500, "5.5.6 Authentication exchange line is too long"), (250, "OK")],
        )
        self.assertEqual(authenticator.calls, [])
        self.assertIsNot(tester.server.session.authenticated, True)

    def test_twice(self) -> None:
        """
        A second AUTH after success gets 503.
        """
        tester = plainTester(authenticator=Authenticator())
        tester.command(f"AUTH PLAIN {PLAIN_BLOB}")
        self.assertEqual(
            tester.command(f"AUTH PLAIN {PLAIN_BLOB}"), (503, "Already authenticated")
        )

    def test_duringTransaction(self) -> None:
        """
        AUTH after MAIL gets 503 and the transaction goes on.
        """
        authenticator = Authenticator()
        tester = plainTester(authenticator=authenticator)
        tester.command("MAIL FROM:<a@example.com>")
        self.assertEqual(tester.command(f"AUTH PLAIN {PLAIN_BLOB}").code, 503)
        self.assertEqual(authenticator.calls, [])
        self.assertEqual(tester.server.envelope.mail_from, "a@example.com")
        self.assertEqual(tester.command("RCPT TO:<b@example.com>"), (250, "OK"))

    def test_beforeEHLO(self) -> None:
        """
        AUTH before EHLO gets 503.
        """
        authenticator = Authenticator()
        tester = SMTPTester(
            Recorder(), authenticator=authenticator, auth_require_tls=False
        )
        self.assertEqual(tester.command(f"AUTH PLAIN {PLAIN_BLOB}").code, 503)
        self.assertEqual(authenticator.calls, [])

    def test_unknownMechanism(self) -> None:
        """
        An unknown mechanism gets 504.
        """
        tester = plainTester(authenticator=Authenticator())
        self.assertEqual(tester.command("AUTH SCRAM-SHA-1"), UNRECOGNIZED)
        self.assertEqual(tester.command("AUTH CRAM-MD5"), UNRECOGNIZED)

    def test_noArgument(self) -> None:
        """
        AUTH without a mechanism gets 501.
        """
        tester = plainTester(authenticator=Authenticator())
        self.assertEqual(tester.command("AUTH").code, 501)

    def test_staysAuthenticated(self) -> None:
        """
        Authentication survives RSET and a whole transaction.
        """
        tester = plainTester(authenticator=Authenticator())
        tester.command(f"AUTH PLAIN {PLAIN_BLOB}")
        self.assertEqual(tester.command("RSET"), (250, "OK"))
        replies = tester.sendmail(
            "a@example.com", ["b@example.com"], b"Hi\r\n", helo=None
        )
        self.assertEqual([r.code for r in replies], [250, 250, 354, 250])
        self.assertIs(tester.server.session.authenticated, True)


class AuthRequiredTests(SynchronousTestCase):
    """
    C{auth_required=True}, over a pretend TLS, in memory.
    """

    def setUp(self) -> None:
        self.handler = Recorder()
        self.tester = tlsTester(
            self,
            self.handler,
            tls_context=certificates(self).serverOptions(),
            authenticator=Authenticator(),
            auth_required=True,
        )
        startTLS(self, self.tester)
        self.tester.command("EHLO client.example")

    def test_refused(self) -> None:
        """
        MAIL, RCPT, DATA, VRFY and HELP get 530 until AUTH succeeds.
        """
        for line in [
            "MAIL FROM:<a@example.com>",
            "RCPT TO:<b@example.com>",
            "DATA",
            "VRFY postmaster",
            "HELP",
        ]:
            self.assertEqual(self.tester.command(line), AUTH_REQUIRED, line)
        self.assertEqual(self.handler.calls, [])

    def test_beforeGreeting(self) -> None:
        """
        Before HELO/EHLO, MAIL, RCPT and DATA get aiosmtpd's C{503 Error:
        send HELO first}, as without C{auth_required}; VRFY and HELP still
        get 530.
        """
        tester = tlsTester(
            self,
            Recorder(),
            tls_context=certificates(self).serverOptions(),
            authenticator=Authenticator(),
            auth_required=True,
        )
        startTLS(self, tester)
        for line in ["MAIL FROM:<a@example.com>", "RCPT TO:<b@example.com>", "DATA"]:
            self.assertEqual(tester.command(line), (503, "Error: send HELO first"))
        self.assertEqual(tester.command("VRFY postmaster"), AUTH_REQUIRED)
        self.assertEqual(tester.command("HELP"), AUTH_REQUIRED)

    def test_allowed(self) -> None:
        """
        NOOP, RSET, EHLO and QUIT are answered normally.
        """
        self.assertEqual(self.tester.command("NOOP"), (250, "OK"))
        self.assertEqual(self.tester.command("RSET"), (250, "OK"))
        self.assertEqual(self.tester.command("EHLO client.example").code, 250)
        self.assertEqual(self.tester.command("QUIT"), (221, "Bye"))

    def test_afterAuth(self) -> None:
        """
        Once authenticated, a transaction goes through.
        """
        self.assertEqual(self.tester.command(f"AUTH PLAIN {PLAIN_BLOB}"), AUTH_OK)
        replies = self.tester.sendmail(
            "a@example.com", ["b@example.com"], b"Hi\r\n", helo=None
        )
        self.assertEqual([r.code for r in replies], [250, 250, 354, 250])
        [(session, envelope)] = self.handler.messages
        self.assertIs(session.authenticated, True)

    def test_failedAuth(self) -> None:
        """
        After a failed AUTH, MAIL still gets 530.
        """
        self.tester.command(f"AUTH PLAIN {plainBlob(USER, b'nope')}")
        self.assertEqual(
            self.tester.command("MAIL FROM:<a@example.com>"), AUTH_REQUIRED
        )


class AuthenticatorResultTests(SynchronousTestCase):
    """
    What the server does with what an authenticator returns, in memory.
    """

    def test_failureHandledStillAnswered(self) -> None:
        """
        C{AuthResult(success=False)} (C{handled} left at its default) still
        gets a 535 reply.
        """
        tester = plainTester(authenticator=lambda *a: AuthResult(success=False))
        tester.send(f"AUTH PLAIN {PLAIN_BLOB}\r\n")
        self.assertEqual(tester.replies(), [AUTH_INVALID])

    def test_failureMessage(self) -> None:
        """
        A failure's C{message} is the reply.
        """
        tester = plainTester(
            authenticator=lambda *a: AuthResult(
                success=False, message="535 5.7.8 Go away"
            )
        )
        tester.send(f"AUTH PLAIN {PLAIN_BLOB}\r\n")
        self.assertEqual(tester.replies(), [(535, "5.7.8 Go away")])

    def test_successMessage(self) -> None:
        """
        A success's C{message} is the reply, and C{auth_data} is kept.
        """
        tester = plainTester(
            authenticator=lambda *a: AuthResult(
                success=True, message="235 2.7.0 Welcome", auth_data="the-user"
            )
        )
        self.assertEqual(
            tester.command(f"AUTH PLAIN {PLAIN_BLOB}"), (235, "2.7.0 Welcome")
        )
        self.assertIs(tester.server.session.authenticated, True)
        self.assertEqual(tester.server.session.auth_data, "the-user")

    def test_deferred(self) -> None:
        """
        A L{Deferred} result is waited for; commands pipelined meanwhile are
        answered after the AUTH reply.
        """
        pending: Deferred = Deferred()
        tester = plainTester(authenticator=lambda *a: pending)
        tester.send(f"AUTH PLAIN {PLAIN_BLOB}\r\nNOOP\r\n")
        self.assertEqual(tester.replies(), [])
        pending.callback(AuthResult(success=True))
        self.assertEqual(tester.replies(), [AUTH_OK, (250, "OK")])
        self.assertIs(tester.server.session.authenticated, True)

    def test_deferredFailure(self) -> None:
        """
        A L{Deferred} firing with a failed result gets 535.
        """
        pending: Deferred = Deferred()
        tester = plainTester(authenticator=lambda *a: pending)
        tester.send(f"AUTH PLAIN {PLAIN_BLOB}\r\n")
        tester.clock.advance(1)
        self.assertEqual(tester.replies(), [])
        pending.callback(AuthResult(success=False, handled=False))
        self.assertEqual(tester.replies(), [AUTH_INVALID])

    def test_idleClockStopsWhileAuthenticating(self) -> None:
        """
        The idle clock stops while the authenticator works and starts again
        once it has answered.
        """
        pending: Deferred = Deferred()
        tester = plainTester(authenticator=lambda *a: pending, timeout=10)
        tester.send(f"AUTH PLAIN {PLAIN_BLOB}\r\n")
        tester.clock.advance(60)
        self.assertFalse(tester.closed)
        pending.callback(AuthResult(success=True))
        self.assertEqual(tester.replies(), [AUTH_OK])
        tester.clock.advance(10)
        self.assertEqual(
            tester.replies(), [(421, f"4.4.2 {HOSTNAME} Error: timeout exceeded")]
        )
        self.assertTrue(tester.closed)

    def test_idleClockRunsDuringChallenge(self) -> None:
        """
        While the server waits for the client's answer to a challenge, the
        client is idle: it times out as between commands.
        """
        tester = plainTester(authenticator=Authenticator(), timeout=10)
        self.assertEqual(tester.command("AUTH LOGIN"), (334, "VXNlciBOYW1lAA=="))
        tester.clock.advance(9)
        self.assertFalse(tester.closed)
        tester.clock.advance(1)
        self.assertEqual(
            tester.replies(), [(421, f"4.4.2 {HOSTNAME} Error: timeout exceeded")]
        )
        self.assertTrue(tester.closed)

    def test_idleClockStopsAfterLastAnswer(self) -> None:
        """
        Once the client answered the last LOGIN challenge, the idle clock
        stops while the authenticator works.
        """
        pending: Deferred = Deferred()
        tester = plainTester(authenticator=lambda *a: pending, timeout=10)
        tester.command("AUTH LOGIN")
        tester.command(LOGIN_USER)
        tester.send(f"{LOGIN_PASSWORD}\r\n")
        tester.clock.advance(60)
        self.assertFalse(tester.closed)
        pending.callback(AuthResult(success=True))
        self.assertEqual(tester.replies(), [AUTH_OK])

    def test_idleClockRunsForChallengeAfterWait(self) -> None:
        """
        A mechanism that waits for something before it sends a challenge
        has the idle clock stopped while it waits, and running again once
        the challenge awaits the client.
        """
        gate: Deferred = Deferred()

        class Handler(Recorder):
            async def auth_SLOW(self, server, args):
                await gate
                answer = await server.challenge_auth("Go on")
                return AuthResult(success=answer == b"yes")

        tester = plainTester(Handler(), timeout=10)
        tester.send(b"AUTH SLOW\r\n")
        tester.clock.advance(60)
        self.assertFalse(tester.closed)
        gate.callback(None)
        self.assertEqual(tester.replies(), [(334, b64(b"Go on"))])
        tester.clock.advance(10)
        self.assertEqual(
            tester.replies(), [(421, f"4.4.2 {HOSTNAME} Error: timeout exceeded")]
        )

    def test_readingPausedAfterLastAnswer(self) -> None:
        """
        While the authenticator checks the answer to the last challenge,
        the server stops reading, so pipelined lines cannot pile up.
        """
        pending: Deferred = Deferred()
        tester = plainTester(authenticator=lambda *a: pending)
        self.assertEqual(tester.command("AUTH PLAIN"), (334, ""))
        tester.send(f"{PLAIN_BLOB}\r\n")
        self.assertEqual(tester.transport.producerState, "paused")
        pending.callback(AuthResult(success=True))
        self.assertEqual(tester.replies(), [AUTH_OK])
        self.assertEqual(tester.transport.producerState, "producing")

    def test_coroutine(self) -> None:
        """
        An C{async def} authenticator answers 235 for the right password and
        535 for a wrong one (aiosmtpd answers 235 to both).
        """
        known = Authenticator()

        async def authenticator(*args):
            return known(*args)

        tester = plainTester(authenticator=authenticator)
        self.assertEqual(
            tester.command(f"AUTH PLAIN {plainBlob(USER, b'wrong')}"), AUTH_INVALID
        )
        self.assertIsNot(tester.server.session.authenticated, True)
        self.assertEqual(tester.command(f"AUTH PLAIN {PLAIN_BLOB}"), AUTH_OK)
        self.assertIs(tester.server.session.authenticated, True)

    def test_coroutineWaiting(self) -> None:
        """
        An C{async def} authenticator that waits gets its reply when done.
        """
        pending: Deferred = Deferred()

        async def authenticator(server, session, envelope, mechanism, data):
            ok = await pending
            return AuthResult(success=ok, handled=False)

        tester = plainTester(authenticator=authenticator)
        tester.send(f"AUTH PLAIN {plainBlob(USER, b'wrong')}\r\n")
        self.assertEqual(tester.replies(), [])
        pending.callback(False)
        self.assertEqual(tester.replies(), [AUTH_INVALID])


class AuthCallbackTests(SynchronousTestCase):
    """
    The deprecated C{auth_callback(mechanism, login, password)}.
    """

    def makeTester(self, answer: bool) -> tuple[SMTPTester, list, list]:
        calls: list = []

        def callback(mechanism, login, password):
            calls.append((mechanism, login, password))
            return answer

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            tester = plainTester(auth_callback=callback)
        return tester, calls, caught

    def test_deprecated(self) -> None:
        """
        Giving C{auth_callback} warns with L{DeprecationWarning}.
        """
        tester, calls, caught = self.makeTester(True)
        self.assertEqual(
            [w.category for w in caught if "auth_callback" in str(w.message)],
            [DeprecationWarning],
        )

    def test_accepts(self) -> None:
        """
        A true answer authenticates; the callback gets the mechanism, login
        and password.
        """
        tester, calls, caught = self.makeTester(True)
        self.assertEqual(tester.command(f"AUTH PLAIN {PLAIN_BLOB}"), AUTH_OK)
        self.assertEqual(calls, [("PLAIN", USER, PASSWORD)])
        self.assertIs(tester.server.session.authenticated, True)

    def test_refuses(self) -> None:
        """
        A false answer gets 535.
        """
        tester, calls, caught = self.makeTester(False)
        tester.command("AUTH LOGIN")
        tester.command(LOGIN_USER)
        self.assertEqual(tester.command(LOGIN_PASSWORD), AUTH_INVALID)
        self.assertEqual(calls, [("LOGIN", USER, PASSWORD)])


class NullHandler(Recorder):
    """
    A handler with an aiosmtpd-style mechanism: C{AUTH NULL} asks who the
    client is and accepts C{me}.
    """

    async def auth_NULL(self, server, args):
        answer = await server.challenge_auth("Who are you?")
        if answer is MISSING:
            return AuthResult(success=False)
        return AuthResult(success=answer == b"me", auth_data=answer)

    @auth_mechanism("DONT-DASH")
    async def auth_DONTDASH(self, server, args):
        return AuthResult(success=True, auth_data="dash")

    async def auth_WITH__DASH(self, server, args):
        return AuthResult(success=True, auth_data="with-dash")


class HandlerMechanismTests(SynchronousTestCase):
    """
    Mechanisms a handler adds with C{auth_<NAME>} methods, and
    C{handle_AUTH}.
    """

    def test_advertised(self) -> None:
        """
        Handler mechanisms are offered with the built-in ones.
        """
        tester = SMTPTester(
            NullHandler(), authenticator=Authenticator(), auth_require_tls=False
        )
        self.assertEqual(
            sorted(authLine(tester.command("EHLO client.example"))),
            ["DONT-DASH", "LOGIN", "NULL", "PLAIN", "WITH-DASH"],
        )

    def test_challenge(self) -> None:
        """
        C{challenge_auth} sends a base64 334 challenge and returns the
        decoded answer.
        """
        tester = plainTester(NullHandler())
        self.assertEqual(tester.command("AUTH NULL"), (334, b64(b"Who are you?")))
        self.assertEqual(tester.command(b64(b"me")), AUTH_OK)
        self.assertIs(tester.server.session.authenticated, True)
        self.assertEqual(tester.server.session.auth_data, b"me")

    def test_refused(self) -> None:
        """
        A mechanism's failure without a reply of its own gets 535.
        """
        tester = plainTester(NullHandler())
        tester.command("AUTH NULL")
        self.assertEqual(tester.command(b64(b"you")), AUTH_INVALID)

    def test_cancelOneReply(self) -> None:
        """
        A cancelled challenge gets exactly one reply, the 501.
        """
        tester = plainTester(NullHandler())
        tester.command("AUTH NULL")
        tester.send(b"*\r\n")
        self.assertEqual(tester.replies(), [AUTH_ABORTED])

    def test_decoratedName(self) -> None:
        """
        C{@auth_mechanism} names the mechanism; the attribute name is then
        not a mechanism.
        """
        tester = plainTester(NullHandler())
        self.assertEqual(tester.command("AUTH DONTDASH"), UNRECOGNIZED)
        self.assertEqual(tester.command("AUTH DONT-DASH"), AUTH_OK)
        self.assertEqual(tester.server.session.auth_data, "dash")

    def test_doubleUnderscore(self) -> None:
        """
        C{__} in the method name stands for C{-}.
        """
        tester = plainTester(NullHandler())
        self.assertEqual(tester.command("AUTH with-dash"), AUTH_OK)

    def test_excluded(self) -> None:
        """
        C{auth_exclude_mechanism} removes handler mechanisms too.
        """
        tester = plainTester(NullHandler(), auth_exclude_mechanism=["null"])
        self.assertNotIn("NULL", authLine(tester.command("EHLO client.example")))
        self.assertEqual(tester.command("AUTH NULL"), UNRECOGNIZED)

    def test_badMechanismName(self) -> None:
        """
        L{auth_mechanism} refuses names that are not SASL mechanism names.
        """
        self.assertRaises(ValueError, auth_mechanism, "NO SPACES")
        self.assertRaises(ValueError, auth_mechanism, "")

    def test_handleAUTH(self) -> None:
        """
        C{handle_AUTH} takes over: it gets the arguments, its reply is sent,
        and the authenticator is not called.
        """
        seen: list = []
        authenticator = Authenticator()

        class Handler(Recorder):
            def handle_AUTH(self, server, session, envelope, args):
                seen.append((server, session, envelope, args))
                return "235 2.7.0 Hook says yes"

        tester = plainTester(Handler(), authenticator=authenticator)
        self.assertEqual(
            tester.command(f"AUTH plain {PLAIN_BLOB}"), (235, "2.7.0 Hook says yes")
        )
        [(server, session, envelope, args)] = seen
        self.assertIs(server, tester.server)
        self.assertIs(session, tester.server.session)
        self.assertEqual(args, ["PLAIN", PLAIN_BLOB])
        self.assertEqual(authenticator.calls, [])


class AiosmtpdTypesTests(SynchronousTestCase):
    """
    Handlers importing C{AuthResult} and C{LoginPassword} from
    C{aiosmtpd.smtp} keep working.
    """

    def setUp(self) -> None:
        try:
            from aiosmtpd import smtp
        except ImportError:
            raise SkipTest("aiosmtpd is not installed")
        self.aiosmtpd = smtp

    def test_mechanismResult(self) -> None:
        """
        An C{auth_<NAME>} method returning aiosmtpd's L{AuthResult}
        authenticates, keeping its C{auth_data}.
        """
        aio = self.aiosmtpd

        class Handler(Recorder):
            async def auth_OLD(self, server, args):
                return aio.AuthResult(
                    success=True, auth_data=aio.LoginPassword(USER, PASSWORD)
                )

        tester = plainTester(Handler())
        self.assertEqual(tester.command("AUTH OLD"), AUTH_OK)
        session = tester.server.session
        self.assertIs(session.authenticated, True)
        self.assertEqual(tuple(session.auth_data), (USER, PASSWORD))

    def test_authenticatorFailure(self) -> None:
        """
        An authenticator returning aiosmtpd's failed L{AuthResult} gets 535.
        """
        aio = self.aiosmtpd
        tester = plainTester(
            authenticator=lambda *a: aio.AuthResult(success=False, handled=False)
        )
        self.assertEqual(tester.command(f"AUTH PLAIN {PLAIN_BLOB}"), AUTH_INVALID)

    def test_authenticatorSuccess(self) -> None:
        """
        An authenticator returning aiosmtpd's successful L{AuthResult}
        authenticates.
        """
        aio = self.aiosmtpd
        tester = plainTester(
            authenticator=lambda *a: aio.AuthResult(success=True, auth_data="x")
        )
        self.assertEqual(tester.command(f"AUTH PLAIN {PLAIN_BLOB}"), AUTH_OK)
        self.assertEqual(tester.server.session.auth_data, "x")


@implementer(IAuthenticatedUser)
class Avatar:
    """
    An avatar with a mailbox name.
    """

    def __init__(self, avatarId: bytes) -> None:
        self.avatarId = avatarId


@implementer(IRealm)
class LogoutRealm:
    """
    A realm recording avatar requests and logouts.
    """

    def __init__(self) -> None:
        self.requests: list = []
        self.logouts: list = []

    def requestAvatar(self, avatarId, mind, *interfaces):
        self.requests.append((avatarId, interfaces))
        avatar = Avatar(avatarId)
        return IAuthenticatedUser, avatar, lambda: self.logouts.append(avatarId)


class AsyncioClock(Clock):
    """
    A L{Clock} that looks like Twisted's asyncio reactor to the server: its
    coroutines then run as tasks of a real asyncio loop, which the test
    turns by hand.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._asyncioEventloop = loop


class AsyncioLoopTests(SynchronousTestCase):
    """
    AUTH when coroutines run as asyncio tasks (under Twisted's asyncio
    reactor), in memory: challenges must work there too.
    """

    def setUp(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.addCleanup(self.loop.close)

    def tester(self, handler: Any = None, **options: Any) -> SMTPTester:
        return plainTester(handler, reactor=AsyncioClock(self.loop), **options)

    def exchange(self, tester: SMTPTester, line: str) -> list[Reply]:
        """
        Send a line, let the asyncio tasks run, and return the replies.
        """
        tester.send(line + "\r\n")
        for _ in range(10):
            self.loop.run_until_complete(asyncio.sleep(0))
        return tester.replies()

    def test_login(self) -> None:
        """
        AUTH LOGIN's two challenges work.
        """
        tester = self.tester(authenticator=Authenticator())
        self.assertEqual(self.exchange(tester, "AUTH LOGIN"), [USERNAME_CHALLENGE])
        self.assertEqual(self.exchange(tester, LOGIN_USER), [PASSWORD_CHALLENGE])
        self.assertEqual(self.exchange(tester, LOGIN_PASSWORD), [AUTH_OK])

    def test_plainChallenge(self) -> None:
        """
        AUTH PLAIN without an initial response works.
        """
        tester = self.tester(authenticator=Authenticator())
        self.assertEqual(self.exchange(tester, "AUTH PLAIN"), [(334, "")])
        self.assertEqual(self.exchange(tester, PLAIN_BLOB), [AUTH_OK])

    def test_plainInitialResponse(self) -> None:
        """
        AUTH PLAIN with an initial response and an C{async def}
        authenticator: 235 for the right password, 535 for a wrong one.
        """
        known = Authenticator()

        async def authenticator(*args):
            await asyncio.sleep(0)
            return known(*args)

        tester = self.tester(authenticator=authenticator)
        wrong = plainBlob(USER, b"wrong")
        self.assertEqual(self.exchange(tester, f"AUTH PLAIN {wrong}"), [AUTH_INVALID])
        self.assertEqual(self.exchange(tester, f"AUTH PLAIN {PLAIN_BLOB}"), [AUTH_OK])

    def test_cramMD5(self) -> None:
        """
        CRAM-MD5 works.
        """
        db = FilePasswordDB(writePasswords(self, USER + b":" + PASSWORD + b"\n"))
        tester = self.tester(portal=db)
        replies = self.exchange(tester, "AUTH CRAM-MD5")
        self.assertEqual([r.code for r in replies], [334], replies)
        challenge = replies[0]
        response = cramResponse(challenge.text, USER, PASSWORD)
        self.assertEqual(self.exchange(tester, response), [AUTH_OK])

    def test_handlerMechanism(self) -> None:
        """
        An aiosmtpd-style C{auth_<NAME>} awaiting C{challenge_auth} works.
        """
        tester = self.tester(NullHandler())
        self.assertEqual(
            self.exchange(tester, "AUTH NULL"), [(334, b64(b"Who are you?"))]
        )
        self.assertEqual(self.exchange(tester, b64(b"me")), [AUTH_OK])


class CredPortalTests(SynchronousTestCase):
    """
    The twisted.cred bridge: C{portal=} a checker or a L{Portal}, in memory.
    """

    def plaintextDB(self) -> FilePasswordDB:
        return FilePasswordDB(writePasswords(self, USER + b":" + PASSWORD + b"\n"))

    def hashedDB(self) -> FilePasswordDB:
        digest = hashlib.sha256(PASSWORD).hexdigest().encode()
        path = writePasswords(self, USER + b":" + digest + b"\n")
        return FilePasswordDB(path, hash=sha256Hash)

    def test_plain(self) -> None:
        """
        PLAIN against a password file authenticates; C{auth_data} is an
        L{IAuthenticatedUser} with the avatar ID.
        """
        tester = plainTester(portal=self.plaintextDB())
        self.assertEqual(tester.command(f"AUTH PLAIN {PLAIN_BLOB}"), AUTH_OK)
        data = tester.server.session.auth_data
        self.assertTrue(IAuthenticatedUser.providedBy(data))
        self.assertEqual(data.avatarId, USER)
        self.assertIs(tester.server.session.authenticated, True)

    def test_plainWrong(self) -> None:
        """
        A wrong password gets 535.
        """
        tester = plainTester(portal=self.plaintextDB())
        reply = tester.command(f"AUTH PLAIN {plainBlob(USER, b'nope')}")
        self.assertEqual(reply, AUTH_INVALID)
        self.assertIsNot(tester.server.session.authenticated, True)

    def test_login(self) -> None:
        """
        LOGIN against a password file authenticates.
        """
        tester = plainTester(portal=self.plaintextDB())
        tester.command("AUTH LOGIN")
        tester.command(LOGIN_USER)
        self.assertEqual(tester.command(LOGIN_PASSWORD), AUTH_OK)
        self.assertEqual(tester.server.session.auth_data.avatarId, USER)

    def test_cramOffered(self) -> None:
        """
        A plaintext password file (C{hash=None}) makes CRAM-MD5 offered.
        """
        db = FilePasswordDB(
            writePasswords(self, USER + b":" + PASSWORD + b"\n"), hash=None
        )
        tester = plainTester(portal=db)
        self.assertEqual(
            sorted(authLine(tester.command("EHLO client.example"))),
            ["CRAM-MD5", "LOGIN", "PLAIN"],
        )

    def test_cram(self) -> None:
        """
        CRAM-MD5 sends a challenge and accepts the HMAC-MD5 of it keyed with
        the password.
        """
        tester = plainTester(portal=self.plaintextDB())
        challenge = tester.command("AUTH CRAM-MD5")
        self.assertEqual(challenge.code, 334)
        decoded = base64.b64decode(challenge.text, validate=True)
        self.assertTrue(decoded.startswith(b"<") and decoded.endswith(b">"), decoded)
        self.assertEqual(
            tester.command(cramResponse(challenge.text, USER, PASSWORD)), AUTH_OK
        )
        self.assertEqual(tester.server.session.auth_data.avatarId, USER)

    def test_cramFreshChallenge(self) -> None:
        """
        Every CRAM-MD5 exchange gets a new challenge.
        """
        first = plainTester(portal=self.plaintextDB()).command("AUTH CRAM-MD5")
        second = plainTester(portal=self.plaintextDB()).command("AUTH CRAM-MD5")
        self.assertNotEqual(first.text, second.text)

    def test_cramWrong(self) -> None:
        """
        A CRAM-MD5 digest made with the wrong password gets 535.
        """
        tester = plainTester(portal=self.plaintextDB())
        challenge = tester.command("AUTH CRAM-MD5")
        self.assertEqual(
            tester.command(cramResponse(challenge.text, USER, b"nope")), AUTH_INVALID
        )

    def test_cramMalformed(self) -> None:
        """
        A CRAM-MD5 response that is not C{user SP digest} gets 501.
        """
        tester = plainTester(portal=self.plaintextDB())
        tester.command("AUTH CRAM-MD5")
        self.assertEqual(tester.command(b64(b"onlyoneword")).code, 501)
        self.assertIsNot(tester.server.session.authenticated, True)
        tester.command("AUTH CRAM-MD5")
        self.assertEqual(tester.command("%%%"), BAD_BASE64)

    def test_hashedNoCram(self) -> None:
        """
        With a hashing password file CRAM-MD5 is neither offered nor
        accepted, while PLAIN works.
        """
        tester = plainTester(portal=self.hashedDB())
        self.assertEqual(
            sorted(authLine(tester.command("EHLO client.example"))), ["LOGIN", "PLAIN"]
        )
        self.assertEqual(tester.command("AUTH CRAM-MD5"), UNRECOGNIZED)
        self.assertEqual(tester.command(f"AUTH PLAIN {PLAIN_BLOB}"), AUTH_OK)

    def test_noCramWithAuthenticator(self) -> None:
        """
        An authenticator (which never sees a secret) gets no CRAM-MD5.
        """
        tester = plainTester(authenticator=Authenticator())
        self.assertNotIn("CRAM-MD5", authLine(tester.command("EHLO client.example")))

    def test_realmLogout(self) -> None:
        """
        A L{Portal}'s realm gives the avatar; its logout is called when the
        connection ends, not before.
        """
        realm = LogoutRealm()
        checker = InMemoryUsernamePasswordDatabaseDontUse(**{USER.decode(): PASSWORD})
        tester = plainTester(portal=Portal(realm, [checker]))
        self.assertEqual(tester.command(f"AUTH PLAIN {PLAIN_BLOB}"), AUTH_OK)
        self.assertEqual(realm.requests, [(USER, (IAuthenticatedUser,))])
        self.assertIsInstance(tester.server.session.auth_data, Avatar)
        tester.command("NOOP")
        self.assertEqual(realm.logouts, [])
        self.assertEqual(tester.command("QUIT"), (221, "Bye"))
        tester.server.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(realm.logouts, [USER])

    def test_noLogoutWithoutLogin(self) -> None:
        """
        A failed login leaves nothing to log out.
        """
        realm = LogoutRealm()
        checker = InMemoryUsernamePasswordDatabaseDontUse(**{USER.decode(): PASSWORD})
        tester = plainTester(portal=Portal(realm, [checker]))
        tester.command(f"AUTH PLAIN {plainBlob(USER, b'nope')}")
        tester.server.connectionLost(Failure(ConnectionDone()))
        self.assertEqual((realm.requests, realm.logouts), ([], []))

    def test_portalAndAuthenticator(self) -> None:
        """
        C{portal} and C{authenticator} together are refused.
        """
        self.assertRaises(
            ValueError,
            SMTPFactory,
            Recorder(),
            portal=self.plaintextDB(),
            authenticator=Authenticator(),
        )

    def test_notAPortal(self) -> None:
        """
        Something that is neither a portal nor a checker is refused.
        """
        self.assertRaises(
            (TypeError, ValueError), SMTPFactory, Recorder(), portal=object()
        )


class SentinelTests(SynchronousTestCase):
    """
    L{MISSING} without aiosmtpd installed.
    """

    def test_ownWithoutAiosmtpd(self) -> None:
        """
        When aiosmtpd cannot be found, C{MISSING} is an object of our own
        that shows as C{MISSING}.
        """
        from twisted_smtpd import _auth

        self.patch(_auth.importlib.util, "find_spec", lambda name: None)
        missing = _auth._sharedMissing()
        self.assertIsInstance(missing, _auth._Missing)
        self.assertEqual(repr(missing), "MISSING")


class MailAuthParameterTests(SynchronousTestCase):
    """
    The C{AUTH=} parameter of MAIL (RFC 4954 section 5).
    """

    def mailOptions(self, tester: SMTPTester) -> list[str]:
        return tester.server.envelope.mail_options

    def test_authenticated(self) -> None:
        """
        After AUTH, C{AUTH=<mailbox>} is accepted and kept as sent (xtext,
        not upper-cased) in C{mail_options}, after the other parameters'
        upper-cased forms.
        """
        tester = plainTester(authenticator=Authenticator())
        self.assertEqual(tester.command(f"AUTH PLAIN {PLAIN_BLOB}"), AUTH_OK)
        self.assertEqual(
            tester.command("MAIL FROM:<a@example.com> body=8bitmime AUTH=Al+2Bx@c.d"),
            (250, "OK"),
        )
        self.assertEqual(self.mailOptions(tester), ["BODY=8BITMIME", "AUTH=Al+2Bx@c.d"])

    def test_nullAuthenticated(self) -> None:
        """
        C{AUTH=<>} (the submitter is not known) is accepted.
        """
        tester = plainTester(authenticator=Authenticator())
        tester.command(f"AUTH PLAIN {PLAIN_BLOB}")
        self.assertEqual(
            tester.command("MAIL FROM:<a@example.com> AUTH=<>"), (250, "OK")
        )
        self.assertEqual(self.mailOptions(tester), ["AUTH=<>"])

    def test_notAuthenticated(self) -> None:
        """
        From a client that has not authenticated, the parameter is accepted
        but counts as C{AUTH=<>}, as RFC 4954 requires of a server that
        does not trust it.
        """
        tester = plainTester(authenticator=Authenticator())
        self.assertEqual(
            tester.command("MAIL FROM:<a@example.com> AUTH=boss@example.com"),
            (250, "OK"),
        )
        self.assertEqual(self.mailOptions(tester), ["AUTH=<>"])

    def test_malformed(self) -> None:
        """
        A value that is not xtext, or no value, gets 501 and no transaction
        starts.
        """
        tester = plainTester(authenticator=Authenticator())
        for parameter in ("AUTH=a+2bc", "AUTH=a+", "AUTH"):
            self.assertEqual(
                tester.command(f"MAIL FROM:<a@example.com> {parameter}"),
                (501, "5.5.4 Error: malformed AUTH parameter"),
            )
        self.assertIsNone(tester.server.envelope.mail_from)

    def test_notOfferedBeforeTLS(self) -> None:
        """
        With AUTH offered only over TLS, C{AUTH=} before TLS is an unknown
        parameter too, as the EHLO reply did not offer AUTH.
        """
        tester = SMTPTester(
            Recorder(),
            hostname=HOSTNAME,
            tls_context=certificates(self).serverOptions(),
            authenticator=Authenticator(),
        )
        self.assertNotIn(
            "AUTH", " ".join(ehloKeywords(tester.command("EHLO c.example")))
        )
        self.assertEqual(
            tester.command("MAIL FROM:<a@example.com> AUTH=<>"),
            (555, "MAIL FROM parameters not recognized or not implemented"),
        )

    def test_notOffered(self) -> None:
        """
        Without AUTH offered, C{AUTH=} is an unknown parameter: 555.
        """
        tester = plainTester()
        self.assertEqual(
            tester.command("MAIL FROM:<a@example.com> AUTH=<>"),
            (555, "MAIL FROM parameters not recognized or not implemented"),
        )

    def test_longerMailLine(self) -> None:
        """
        With AUTH offered, a MAIL line may be 500 octets longer for the
        parameter (RFC 4954 section 3); beyond that it is too long. (With
        the default C{line_length_limit}, no line exceeds 1000 octets.)
        Without DSN, whose ENVID adds room of its own.
        """
        tester = plainTester(
            authenticator=Authenticator(), line_length_limit=2000, dsn=False
        )
        tester.command(f"AUTH PLAIN {PLAIN_BLOB}")
        prefix = "MAIL FROM:<a@example.com> SIZE=100 AUTH="
        # 512 for the command, 26 for SIZE and 500 for AUTH.
        value = "x" * (512 + 26 + 500 - len(prefix))
        self.assertEqual(tester.command(prefix + value), (250, "OK"))
        tester.command("RSET")
        self.assertEqual(
            tester.command(prefix + value + "x"), (500, "Command line too long")
        )


class FailureLimitTests(SynchronousTestCase):
    """
    C{auth_failure_limit}: password guessing ends the connection.
    """

    def failOnce(self, tester: SMTPTester) -> list[Reply]:
        tester.send(f"AUTH PLAIN {plainBlob(USER, b'guess')}\r\n")
        return tester.replies()

    def test_default(self) -> None:
        """
        Three failures get 535 each and the connection stays open; a
        fourth AUTH gets 421 without reaching the authenticator, and the
        connection closes.
        """
        authenticator = Authenticator()
        tester = plainTester(authenticator=authenticator)
        for _ in range(3):
            self.assertEqual(self.failOnce(tester), [AUTH_INVALID])
        self.assertFalse(tester.closed)
        self.assertEqual(tester.command(f"AUTH PLAIN {PLAIN_BLOB}"), TOO_MANY_FAILURES)
        self.assertTrue(tester.closed)
        self.assertEqual(len(authenticator.calls), 3)
        self.assertIsNot(tester.server.session.authenticated, True)

    def test_quitAfterLimit(self) -> None:
        """
        A client that used up the failures and says QUIT, as C{smtplib}
        does after trying each mechanism, gets 221.
        """
        tester = plainTester(authenticator=Authenticator())
        for _ in range(3):
            self.failOnce(tester)
        self.assertEqual(tester.command("QUIT"), (221, "Bye"))

    def test_otherCommandsAfterLimit(self) -> None:
        """
        Only AUTH is cut off: other commands go on as for any client that
        has not authenticated.
        """
        tester = plainTester(authenticator=Authenticator())
        for _ in range(3):
            self.failOnce(tester)
        self.assertEqual(tester.command("MAIL FROM:<a@example.com>"), (250, "OK"))
        self.assertEqual(tester.command("RSET"), (250, "OK"))
        self.assertFalse(tester.closed)

    def test_limitOption(self) -> None:
        """
        With C{auth_failure_limit=1}, the AUTH after the first failure ends
        the connection.
        """
        tester = plainTester(authenticator=Authenticator(), auth_failure_limit=1)
        self.assertEqual(self.failOnce(tester), [AUTH_INVALID])
        self.assertEqual(tester.command("AUTH LOGIN"), TOO_MANY_FAILURES)
        self.assertTrue(tester.closed)

    def test_onlyRejectionsCount(self) -> None:
        """
        Only rejected credentials count towards the limit: a wrong password
        (535), an answer the mechanism refuses as malformed (its own 501)
        and a cancelled challenge (501) leave the right password its 235
        with the default limit, each exchange ending with exactly one
        reply.
        """
        authenticator = Authenticator()
        tester = plainTester(authenticator=authenticator)
        self.assertEqual(self.failOnce(tester), [AUTH_INVALID])
        tester.send(b"AUTH PLAIN %%%\r\n")
        self.assertEqual(tester.replies(), [BAD_BASE64])
        tester.send(b"AUTH PLAIN\r\n")
        self.assertEqual(tester.replies(), [(334, "")])
        tester.send(b"*\r\n")
        self.assertEqual(tester.replies(), [AUTH_ABORTED])
        tester.send(f"AUTH LOGIN {LOGIN_USER}\r\n")
        self.assertEqual(tester.replies(), [PASSWORD_CHALLENGE])
        tester.send(b"*\r\n")
        self.assertEqual(tester.replies(), [AUTH_ABORTED])
        tester.send(b"AUTH PLAIN\r\n")
        tester.send(b"!!!!\r\n")
        self.assertEqual(tester.replies(), [(334, ""), BAD_BASE64])
        self.assertEqual(tester.command(f"AUTH PLAIN {PLAIN_BLOB}"), AUTH_OK)
        self.assertEqual(len(authenticator.calls), 2)

    def test_handlerMechanismCancelled(self) -> None:
        """
        An aiosmtpd-style mechanism hook whose challenge is cancelled, and
        one that refuses a malformed answer with its own 501, do not count
        either: four such exchanges, then a success.
        """

        class Handler:
            async def auth_ECHO(self, server, args):
                answer = await server.challenge_auth("Say it")
                if answer is MISSING:
                    # What aiosmtpd's own mechanisms return when cancelled.
                    return AuthResult(success=False)
                if answer != b"right":
                    await server.push("501 5.5.2 Malformed answer")
                    return AuthResult(success=False, handled=True)
                return AuthResult(success=True, auth_data=answer)

        tester = plainTester(Handler())
        wrong = b64(b"wrong").encode()
        for answer in (b"*", wrong, b"*", wrong):
            tester.send(b"AUTH ECHO\r\n" + answer + b"\r\n")
            [challenge, reply] = tester.replies()
            self.assertEqual(challenge.code, 334)
            self.assertEqual(reply.code, 501)
        tester.send(b"AUTH ECHO\r\n" + b64(b"right").encode() + b"\r\n")
        self.assertEqual(tester.replies()[1], AUTH_OK)
        self.assertEqual(tester.server.session.auth_data, b"right")

    def test_nothingAfterClose(self) -> None:
        """
        Commands pipelined after the AUTH that ends the connection are not
        run.
        """
        authenticator = Authenticator()
        tester = plainTester(authenticator=authenticator, auth_failure_limit=1)
        tester.send(
            f"AUTH PLAIN {plainBlob(USER, b'guess')}\r\nAUTH PLAIN {PLAIN_BLOB}\r\n"
            "NOOP\r\n"
        )
        self.assertEqual(tester.replies(), [AUTH_INVALID, TOO_MANY_FAILURES])
        self.assertEqual(len(authenticator.calls), 1)
        self.assertIsNot(tester.server.session.authenticated, True)


class CredentialLoggingTests(SynchronousTestCase):
    """
    No credential reaches the log events, in memory.
    """

    SECRETS = [
        PASSWORD.decode(),
        LOGIN_PASSWORD,
        PLAIN_BLOB,
        plainBlob(USER, b"Wr0ng-Pa55word"),
        "Wr0ng-Pa55word",
        b64(b"Wr0ng-Pa55word"),
    ]

    def assertNoSecrets(self, events: list[dict]) -> None:
        self.assertTrue(events, "no log event was captured")
        for event in events:
            text = eventText(event)
            for secret in self.SECRETS:
                self.assertNotIn(secret, text, f"credential in log event {event!r}")

    def test_authenticator(self) -> None:
        """
        PLAIN and LOGIN, right and wrong, bad base64 and the failure limit
        log no credential.
        """
        events = captureEvents(self)
        tester = plainTester(authenticator=Authenticator())
        tester.command(f"AUTH PLAIN {plainBlob(USER, b'Wr0ng-Pa55word')}")
        tester.command("AUTH LOGIN")
        tester.command(LOGIN_USER)
        tester.command(b64(b"Wr0ng-Pa55word"))
        tester.command(f"AUTH PLAIN {PLAIN_BLOB}")
        tester = plainTester(authenticator=Authenticator())
        tester.command("AUTH LOGIN")
        tester.command(LOGIN_USER)
        tester.command(LOGIN_PASSWORD)
        tester = plainTester(authenticator=Authenticator())
        tester.command("AUTH PLAIN")
        tester.command(PLAIN_BLOB + "!")
        # The bad base64 does not count: three rejections, then the 421.
        for _ in range(4):
            tester.send(f"AUTH PLAIN {plainBlob(USER, b'Wr0ng-Pa55word')}\r\n")
        self.assertTrue(tester.closed)
        self.assertNoSecrets(events)

    def test_failingAuthenticator(self) -> None:
        """
        An authenticator that raises gets an error reply, and the logged
        failure carries no credential.
        """
        events = captureEvents(self)

        def authenticator(server, session, envelope, mechanism, data):
            raise RuntimeError("the user database is down")

        tester = plainTester(authenticator=authenticator)
        tester.send(f"AUTH PLAIN {PLAIN_BLOB}\r\n")
        [reply] = tester.replies()
        self.assertEqual(reply.code // 100, 4)
        self.assertNotIn("Traceback", reply.text)
        self.assertIsNot(tester.server.session.authenticated, True)
        self.flushLoggedErrors(RuntimeError)
        self.assertNoSecrets(events)

    def test_portal(self) -> None:
        """
        Logging in through a portal logs no credential.
        """
        events = captureEvents(self)
        db = FilePasswordDB(writePasswords(self, USER + b":" + PASSWORD + b"\n"))
        tester = plainTester(portal=db)
        tester.command(f"AUTH PLAIN {plainBlob(USER, b'Wr0ng-Pa55word')}")
        tester.command(f"AUTH PLAIN {PLAIN_BLOB}")
        self.assertIs(tester.server.session.authenticated, True)
        self.assertNoSecrets(events)


# Integration tests.


class RealAuthTests(TestCase):
    """
    AUTH over real TLS: integration tests on 127.0.0.1 (real TCP, port 0,
    trustme certificates) with C{smtplib} in a thread, Twisted's ESMTP
    client and C{swaks}.
    """

    timeout = 60

    def setUp(self) -> None:
        self.certs = certificates(self)
        self.handler = Recorder()

    async def listen(self, description: str | None = None, **options: Any):
        options.setdefault("tls_context", self.certs.serverOptions())
        if "portal" not in options and "auth_callback" not in options:
            options.setdefault("authenticator", Authenticator())
        if description is None:
            return await listenOn(self, self.handler, **options)
        return await listenOn(self, self.handler, description, **options)

    def smtplibSession(self, port: int, password: bytes, tls: bool = True) -> Any:
        """
        Log in with C{smtplib} after STARTTLS and send a message; return
        the login reply, or the exception.
        """
        context = self.certs.clientContext()
        with smtplib.SMTP(
            "127.0.0.1", port, local_hostname="client.example", timeout=CLIENT_TIMEOUT
        ) as smtp:
            if tls:
                smtp.starttls(context=context)
            try:
                result = smtp.login(USER.decode(), password.decode())
            except smtplib.SMTPException as e:
                return e
            smtp.sendmail("a@example.com", ["b@example.com"], b"Hi\r\n")
            return result

    async def test_smtplibLogin(self) -> None:
        """
        C{smtplib} logs in after STARTTLS and sends; the handler sees the
        authenticated session.
        """
        server = await self.listen()
        result = await deferToThread(self.smtplibSession, server.port, PASSWORD)
        self.assertEqual(result, (235, b"2.7.0 Authentication successful"))
        [(session, envelope)] = self.handler.messages
        self.assertIs(session.authenticated, True)
        self.assertEqual(session.auth_data.login, USER)

    async def test_smtplibWrongPassword(self) -> None:
        """
        A wrong password gets 535 over the wire.
        """
        server = await self.listen()
        result = await deferToThread(self.smtplibSession, server.port, b"nope")
        self.assertIsInstance(result, smtplib.SMTPAuthenticationError)
        self.assertEqual(result.smtp_code, 535)
        self.assertEqual(self.handler.messages, [])

    async def test_smtplibPlaintextRefused(self) -> None:
        """
        Without TLS, C{smtplib} finds no AUTH to use.
        """
        server = await self.listen()
        result = await deferToThread(
            self.smtplibSession, server.port, PASSWORD, tls=False
        )
        self.assertIsInstance(result, smtplib.SMTPNotSupportedError)

    async def test_smtplibCramMD5(self) -> None:
        """
        C{smtplib} prefers CRAM-MD5, offered by a plaintext password file,
        and logs in with it.
        """
        db = FilePasswordDB(writePasswords(self, USER + b":" + PASSWORD + b"\n"))
        server = await self.listen(portal=db)
        result = await deferToThread(self.smtplibSession, server.port, PASSWORD)
        self.assertEqual(result, (235, b"2.7.0 Authentication successful"))
        [(session, envelope)] = self.handler.messages
        self.assertEqual(session.auth_data.avatarId, USER)

    async def test_smtplibWrongPasswordEveryMechanism(self) -> None:
        """
        With three mechanisms offered, C{smtplib} tries each with a wrong
        password: it gets C{SMTPAuthenticationError} for the last 535, and
        its QUIT gets 221, not a 421 for too many failures.
        """
        db = FilePasswordDB(writePasswords(self, USER + b":" + PASSWORD + b"\n"))
        server = await self.listen(portal=db)
        context = self.certs.clientContext()

        def client() -> tuple[Any, Any]:
            smtp = smtplib.SMTP(
                "127.0.0.1",
                server.port,
                local_hostname="client.example",
                timeout=CLIENT_TIMEOUT,
            )
            try:
                smtp.starttls(context=context)
                smtp.ehlo()
                mechanisms = smtp.esmtp_features["auth"]
                try:
                    smtp.login(USER.decode(), "nope")
                except smtplib.SMTPException as e:
                    error = e
                return (mechanisms, error), smtp.quit()
            finally:
                smtp.close()

        (mechanisms, error), quit = await deferToThread(client)
        self.assertEqual(sorted(mechanisms.split()), ["CRAM-MD5", "LOGIN", "PLAIN"])
        self.assertIsInstance(error, smtplib.SMTPAuthenticationError)
        self.assertEqual(error.smtp_code, 535)
        self.assertEqual(quit, (221, b"Bye"))

    async def test_implicitTLS(self) -> None:
        """
        Over implicit TLS AUTH is offered with C{auth_require_tls=True} and
        C{smtplib.SMTP_SSL} logs in.
        """
        certs = self.certs
        server = await self.listen(
            f"ssl:0:interface=127.0.0.1:privateKey={certs.keyFile}:certKey={certs.certFile}"
        )
        context = certs.clientContext()

        def client() -> tuple:
            with smtplib.SMTP_SSL(
                "127.0.0.1", server.port, context=context, timeout=CLIENT_TIMEOUT
            ) as smtp:
                smtp.ehlo()
                mechanisms = smtp.esmtp_features.get("auth", "")
                result = smtp.login(USER.decode(), PASSWORD.decode())
                smtp.sendmail("a@example.com", ["b@example.com"], b"Hi\r\n")
                return mechanisms, result

        mechanisms, result = await deferToThread(client)
        self.assertEqual(sorted(mechanisms.split()), ["LOGIN", "PLAIN"])
        self.assertEqual(result, (235, b"2.7.0 Authentication successful"))
        [(session, envelope)] = self.handler.messages
        self.assertIs(session.authenticated, True)

    async def twistedClient(self, port: int) -> Any:
        """
        Send a message with Twisted's ESMTP client, requiring TLS and AUTH
        (the client turns the LF line ends of its file into CRLF).
        """
        done: Deferred = Deferred()
        lost: Deferred = Deferred()
        factory = ESMTPSenderFactory(
            USER,
            PASSWORD,
            "a@example.com",
            "b@example.com",
            BytesIO(b"Subject: twisted\n\nHi\n"),
            done,
            retries=0,
            contextFactory=optionsForClientTLS(
                "localhost",
                trustRoot=Certificate.loadPEM(self.certs.ca.cert_pem.bytes()),
            ),
            requireTransportSecurity=True,
        )
        original = factory.clientConnectionLost

        def connectionLost(connector, reason):
            try:
                return original(connector, reason)
            finally:
                lost.callback(None)

        factory.clientConnectionLost = connectionLost
        reactor.connectTCP("127.0.0.1", port, factory, timeout=CLIENT_TIMEOUT)
        try:
            return await done
        finally:
            await lost

    async def test_twistedClient(self) -> None:
        """
        Twisted's ESMTP client upgrades to TLS, logs in (with LOGIN, its
        choice among PLAIN and LOGIN) and sends.
        """
        server = await self.listen()
        sent, results = await self.twistedClient(server.port)
        self.assertEqual(sent, 1)
        [(session, envelope)] = self.handler.messages
        self.assertEqual(envelope.content, b"Subject: twisted\r\n\r\nHi\r\n")
        self.assertIs(session.authenticated, True)
        self.assertEqual(session.auth_data.login, USER)
        self.assertIsNotNone(session.ssl)

    async def test_twistedClientCramMD5(self) -> None:
        """
        Twisted's ESMTP client logs in with CRAM-MD5 against a plaintext
        password file.
        """
        db = FilePasswordDB(writePasswords(self, USER + b":" + PASSWORD + b"\n"))
        server = await self.listen(portal=db)
        sent, results = await self.twistedClient(server.port)
        self.assertEqual(sent, 1)
        [(session, envelope)] = self.handler.messages
        self.assertEqual(session.auth_data.avatarId, USER)

    async def swaks(self, port: int, mechanism: str, password: bytes) -> Any:
        """
        Run C{swaks} with STARTTLS (verifying the certificate) and AUTH.
        """
        swaks = commandLineTool("swaks")
        return await runTool(
            [
                swaks,
                "--server", "127.0.0.1",
                "--port", str(port),
                "--tls",
                "--tls-verify",
                "--tls-ca-path", self.certs.caFile,
                "--tls-sni", "localhost",
                "--auth", mechanism,
                "--auth-user", USER.decode(),
                "--auth-password", password.decode(),
                "--helo", "client.example",
                "--from", "a@example.com",
                "--to", "x@example.com",
                "--timeout", "15s",
            ]
        )  # fmt: skip

    async def test_swaksPlain(self) -> None:
        """
        C{swaks --tls --auth PLAIN} exits 0 and the handler gets the
        message from the authenticated session.
        """
        server = await self.listen()
        result = await self.swaks(server.port, "PLAIN", PASSWORD)
        output = (result.stdout + result.stderr).decode("utf-8", "replace")
        self.assertEqual(result.returncode, 0, output)
        [(session, envelope)] = self.handler.messages
        self.assertEqual(envelope.rcpt_tos, ["x@example.com"])
        self.assertIs(session.authenticated, True)
        self.assertEqual(session.auth_data.login, USER)
        self.assertIsNotNone(session.ssl)

    async def test_swaksLogin(self) -> None:
        """
        C{swaks --auth LOGIN} works with aiosmtpd's LOGIN challenges.
        """
        server = await self.listen()
        result = await self.swaks(server.port, "LOGIN", PASSWORD)
        output = (result.stdout + result.stderr).decode("utf-8", "replace")
        self.assertEqual(result.returncode, 0, output)
        self.assertEqual(len(self.handler.messages), 1)

    async def test_swaksWrongPassword(self) -> None:
        """
        C{swaks} with a wrong password fails on the 535 and sends nothing.
        """
        server = await self.listen()
        result = await self.swaks(server.port, "PLAIN", b"nope")
        output = (result.stdout + result.stderr).decode("utf-8", "replace")
        self.assertNotEqual(result.returncode, 0, output)
        self.assertIn("535 5.7.8 Authentication credentials invalid", output)
        self.assertEqual(self.handler.messages, [])

    async def test_noCredentialsLogged(self) -> None:
        """
        Over the wire too (Twisted's own TLS and connection events
        included), no credential reaches the log events.
        """
        events = captureEvents(self)
        server = await self.listen()
        await deferToThread(self.smtplibSession, server.port, b"Wr0ng-Pa55word")
        await deferToThread(self.smtplibSession, server.port, PASSWORD)
        self.assertEqual(len(self.handler.messages), 1)
        self.assertTrue(events)
        for event in events:
            text = eventText(event)
            for secret in CredentialLoggingTests.SECRETS:
                self.assertNotIn(secret, text)
