"""
Tests for L{twisted_smtpd._relay}: how the L{Proxy} handler passes DSN
parameters (RFC 3461) on, and relays REQUIRETLS messages (RFC 8689) only
over validated TLS.

Integration tests: real TCP on 127.0.0.1 to a second twisted_smtpd server
(with TLS made by C{trustme} where needed), with the global reactor.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import reactor
from twisted.internet.ssl import Certificate
from twisted.logger import capturedLogs
from twisted.trial.unittest import SynchronousTestCase, TestCase

from tests import test_handlers
from tests.test_handlers import waitForReplies
from tests.test_tls import certificates, implicitTester
from twisted_smtpd._dsn import RecipientDSN
from twisted_smtpd._relay import REQUIRETLS_REFUSED, rcptDSN
from twisted_smtpd.handlers import Proxy
from twisted_smtpd.testing import Reply, SMTPTester

OK = Reply(250, "OK")
REFUSED = Reply(550, REQUIRETLS_REFUSED[4:])


class NextHop:
    """
    The handler of the next hop: records what each message came with.
    """

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []

    def handle_DATA(self, server: Any, session: Any, envelope: Any) -> None:
        self.received.append(
            {
                "mail_parameters": dict(envelope.mail_parameters),
                "rcpt_tos": list(envelope.rcpt_tos),
                "rcpt_parameters": envelope.rcpt_parameters,
                "requiretls": envelope.requiretls,
                "tls": session.ssl is not None,
            }
        )


class RelayTestCase(TestCase):
    """
    A next hop listening on 127.0.0.1 and a L{Proxy} to it.
    """

    timeout = 20

    #: Listen on 127.0.0.1 with a handler; return the port.
    nextHop = test_handlers.ProxyRelayTests.upstream

    def proxy(self, port: int, **options: Any) -> Proxy:
        """
        A L{Proxy} to C{localhost:port}, relaying for C{example.com}.
        """
        return Proxy(
            "localhost",
            port,
            reactor=reactor,
            relay_domains=["example.com"],
            timeout=5,
            **options,
        )

    async def send(self, tester: SMTPTester, mail: str, rcpts: list[str]) -> Reply:
        """
        Send a message in lock-step, with the MAIL and RCPT commands as
        given (each accepted); return the reply to the end of the data.
        """
        self.assertEqual(tester.command("EHLO client.example").code, 250)
        self.assertEqual(tester.command(mail), OK)
        for rcpt in rcpts:
            self.assertEqual(tester.command(rcpt), OK)
        self.assertEqual(tester.command("DATA").code, 354)
        tester.send(b"Subject: hi\r\n\r\nHello\r\n.\r\n")
        [reply] = await waitForReplies(tester, 1)
        return reply


class DSNRelayTests(RelayTestCase):
    """
    DSN parameters pass on to a next hop that offers DSN.
    """

    def client(self, port: int) -> SMTPTester:
        return SMTPTester(
            self.proxy(port), reactor=reactor, timeout=None, hostname="proxy.example"
        )

    async def test_passedOn(self) -> None:
        """
        RET, ENVID, NOTIFY and ORCPT reach a DSN next hop with their
        values as the client sent them (xtext re-encoded), per recipient.
        """
        nextHop = NextHop()
        tester = self.client(self.nextHop(nextHop))
        reply = await self.send(
            tester,
            "MAIL FROM:<anne@example.com> RET=HDRS ENVID=QQ+2Bid+20x",
            [
                "RCPT TO:<bart@example.com> NOTIFY=SUCCESS,failure"
                " ORCPT=rfc822;Bart+2Bx@Example.com",
                "RCPT TO:<carl@example.com>",
                "RCPT TO:<dora@example.com> NOTIFY=never",
            ],
        )
        self.assertEqual(reply, OK)
        [received] = nextHop.received
        parameters = received["mail_parameters"]
        self.assertEqual(
            (parameters["RET"], parameters["ENVID"]), ("HDRS", "QQ+2Bid+20x")
        )
        self.assertEqual(
            received["rcpt_parameters"],
            [
                {"NOTIFY": "SUCCESS,FAILURE", "ORCPT": "rfc822;Bart+2Bx@Example.com"},
                {},
                {"NOTIFY": "NEVER"},
            ],
        )

    async def test_nextHopWithoutDSN(self) -> None:
        """
        A next hop without DSN gets the message without the parameters.
        """
        nextHop = NextHop()
        tester = self.client(self.nextHop(nextHop, dsn=False))
        reply = await self.send(
            tester,
            "MAIL FROM:<anne@example.com> RET=FULL ENVID=x",
            ["RCPT TO:<bart@example.com> NOTIFY=SUCCESS ORCPT=rfc822;b@example.com"],
        )
        self.assertEqual(reply, OK)
        [received] = nextHop.received
        self.assertNotIn("RET", received["mail_parameters"])
        self.assertNotIn("ENVID", received["mail_parameters"])
        self.assertEqual(received["rcpt_parameters"], [{}])


class RequireTLSRelayTests(RelayTestCase):
    """
    A REQUIRETLS message goes on only over validated TLS to a next hop
    that offers REQUIRETLS; otherwise C{550 5.7.30}.
    """

    def setUp(self) -> None:
        self.certificates = certificates(self)
        self.trustRoot = Certificate.loadPEM(self.certificates.ca.cert_pem.bytes())

    def client(self, port: int, **options: Any) -> SMTPTester:
        """
        A client on a TLS session of a server with REQUIRETLS whose handler
        is a L{Proxy} to C{port}.
        """
        options.setdefault("tls_trust_root", self.trustRoot)
        return implicitTester(
            self,
            self.proxy(port, **options),
            reactor=reactor,
            timeout=None,
            tls_context=self.certificates.serverOptions(),
            requiretls=True,
        )

    def tlsNextHop(self, nextHop: NextHop, **options: Any) -> int:
        return self.nextHop(
            nextHop, tls_context=self.certificates.serverOptions(), **options
        )

    async def test_relayedOverTLS(self) -> None:
        """
        To a next hop with a valid certificate that offers REQUIRETLS, the
        message goes over TLS with REQUIRETLS.
        """
        nextHop = NextHop()
        tester = self.client(self.tlsNextHop(nextHop, requiretls=True))
        reply = await self.send(
            tester,
            "MAIL FROM:<anne@example.com> REQUIRETLS",
            ["RCPT TO:<bart@example.com>"],
        )
        self.assertEqual(reply, OK)
        [received] = nextHop.received
        self.assertTrue(received["tls"])
        self.assertTrue(received["requiretls"])
        self.assertIn("REQUIRETLS", received["mail_parameters"])

    async def test_otherMailWithoutTLS(self) -> None:
        """
        A message without REQUIRETLS is relayed without TLS, as before.
        """
        nextHop = NextHop()
        tester = self.client(self.tlsNextHop(nextHop, requiretls=True))
        reply = await self.send(
            tester, "MAIL FROM:<anne@example.com>", ["RCPT TO:<bart@example.com>"]
        )
        self.assertEqual(reply, OK)
        self.assertEqual(
            [(r["tls"], r["requiretls"]) for r in nextHop.received], [(False, False)]
        )

    async def assertRefused(self, port: int, nextHop: NextHop, **options: Any) -> str:
        """
        Assert that a REQUIRETLS message to C{port} gets C{550 5.7.30} and
        does not reach the next hop; return the warning logged.
        """
        tester = self.client(port, **options)
        with capturedLogs() as events:
            reply = await self.send(
                tester,
                "MAIL FROM:<anne@example.com> REQUIRETLS",
                ["RCPT TO:<bart@example.com>"],
            )
        self.assertEqual(reply, REFUSED)
        self.assertEqual(nextHop.received, [])
        [warning] = [e for e in events if "REQUIRETLS" in e.get("log_format", "")]
        return warning["why"]

    async def test_noSTARTTLS(self) -> None:
        """
        A next hop without STARTTLS: C{550 5.7.30}.
        """
        nextHop = NextHop()
        why = await self.assertRefused(self.nextHop(nextHop), nextHop)
        self.assertEqual(why, "does not offer STARTTLS")

    async def test_noREQUIRETLS(self) -> None:
        """
        A next hop with TLS but without REQUIRETLS: C{550 5.7.30}.
        """
        nextHop = NextHop()
        why = await self.assertRefused(self.tlsNextHop(nextHop), nextHop)
        self.assertEqual(why, "does not offer REQUIRETLS")

    async def test_untrustedCertificate(self) -> None:
        """
        A next hop whose certificate does not validate: C{550 5.7.30}.
        """
        nextHop = NextHop()
        other = Certificate.loadPEM(_otherCA().cert_pem.bytes())
        port = self.tlsNextHop(nextHop, requiretls=True)
        why = await self.assertRefused(port, nextHop, tls_trust_root=other)
        self.assertTrue(why.startswith("TLS failed"), why)


def _otherCA() -> Any:
    """
    A CA that issued none of the test certificates.
    """
    import trustme

    return trustme.CA()


class RcptDSNTests(SynchronousTestCase):
    """
    L{rcptDSN}: the parameters a relayed RCPT carries.
    """

    def test_none(self) -> None:
        """
        A recipient without DSN parameters gets none.
        """
        self.assertEqual(rcptDSN(None), "")

    def test_encoded(self) -> None:
        """
        NOTIFY is joined; ORCPT's address is xtext, or utf-8-addr-xtext for
        C{utf-8} (RFC 6533), whatever the original encoding.
        """
        self.assertEqual(
            rcptDSN(RecipientDSN(("SUCCESS", "DELAY"), ("rfc822", "a+b c@x"))),
            " NOTIFY=SUCCESS,DELAY ORCPT=rfc822;a+2Bb+20c@x",
        )
        self.assertEqual(
            rcptDSN(RecipientDSN(None, ("utf-8", "J\u00f6rg+1@x"))),
            " ORCPT=utf-8;J\\x{F6}rg\\x{2B}1@x",
        )
