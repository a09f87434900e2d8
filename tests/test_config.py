"""
Tests for L{twisted_smtpd._config}: the options, checked once when the
factory is made, and the default host name.
"""

from __future__ import annotations

import socket

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from tests._protocolsupport import HOST, Collector, PingSMTP, connect
from twisted_smtpd import SMTP, SMTPFactory, _config
from twisted_smtpd.testing import Reply, SMTPTester


class OptionValidationTests(SynchronousTestCase):
    """
    Options are checked when the factory is made.
    """

    def test_dataSizeLimitType(self) -> None:
        """
        A non-int C{data_size_limit} raises L{TypeError}.
        """
        self.assertRaises(TypeError, SMTPFactory, Collector(), data_size_limit="x")
        self.assertRaises(TypeError, SMTPFactory, Collector(), data_size_limit=1.5)
        self.assertRaises(TypeError, SMTPFactory, Collector(), data_size_limit=True)

    def test_dataSizeLimitNegative(self) -> None:
        """
        A negative C{data_size_limit} raises L{ValueError}.
        """
        self.assertRaises(ValueError, SMTPFactory, Collector(), data_size_limit=-1)

    def test_unknownOption(self) -> None:
        """
        An unknown option raises L{TypeError}, for the factory and the
        protocol alike.
        """
        self.assertRaises(TypeError, SMTPFactory, Collector(), bogus=1)
        self.assertRaises(TypeError, SMTP, Collector(), bogus=1)

    def test_callLimitValue(self) -> None:
        """
        A C{command_call_limit} dict with a non-int value raises
        L{TypeError}.
        """
        self.assertRaises(
            TypeError, SMTPFactory, Collector(), command_call_limit={"MAIL": "x"}
        )
        self.assertRaises(TypeError, SMTPFactory, Collector(), command_call_limit="5")

    def test_bareNewline(self) -> None:
        """
        An unknown C{bare_newline} policy raises L{ValueError}.
        """
        self.assertRaises(ValueError, SMTPFactory, Collector(), bare_newline="bogus")

    def test_handlerNone(self) -> None:
        """
        A C{None} handler raises L{TypeError}.
        """
        self.assertRaises(TypeError, SMTPFactory, None)

    def test_protocolNotSMTP(self) -> None:
        """
        A C{protocol} that is not an L{SMTP} subclass raises L{TypeError}.
        """
        self.assertRaises(TypeError, SMTPFactory, Collector(), protocol=object)
        self.assertRaises(TypeError, SMTPFactory, Collector(), protocol="SMTP")

    def test_booleans(self) -> None:
        """
        C{enable_SMTPUTF8} and C{decode_data} must be booleans.
        """
        self.assertRaises(TypeError, SMTPFactory, Collector(), enable_SMTPUTF8=1)
        self.assertRaises(TypeError, SMTPFactory, Collector(), decode_data="yes")

    def test_hostname(self) -> None:
        """
        A hostname with a space, a control character or non-ASCII letters
        raises L{ValueError} naming the way to an A-label; a plain domain
        and an address literal are fine.
        """
        for bad in ("bad host", "mx.exämple.com", "a\tb", "", "a\r\nb"):
            e = self.assertRaises(ValueError, SMTPFactory, Collector(), hostname=bad)
            self.assertIn("hostname", str(e))
        e = self.assertRaises(
            ValueError, SMTPFactory, Collector(), hostname="mx.exämple.com"
        )
        self.assertIn('encode("idna")', str(e))
        for good in ("mx.example.com", "[192.0.2.1]", "xn--exmple-cua.com"):
            tester = SMTPTester(Collector(), hostname=good)
            self.assertEqual(tester.server.hostname, good)
        self.assertRaises(TypeError, SMTPFactory, Collector(), hostname=b"mx")

    def test_timeout(self) -> None:
        """
        A timeout must be a positive number.
        """
        self.assertRaises(TypeError, SMTPFactory, Collector(), timeout="10")
        self.assertRaises(ValueError, SMTPFactory, Collector(), timeout=0)

    def test_valid(self) -> None:
        """
        Valid options make a factory whose protocols see them.
        """
        factory = SMTPFactory(
            Collector(),
            reactor=Clock(),
            protocol=PingSMTP,
            hostname=HOST,
            data_size_limit=1000,
            enable_SMTPUTF8=True,
            command_call_limit={"MAIL": 3, "*": 10},
            bare_newline="allow",
        )
        server, transport = connect(factory)
        self.assertIsInstance(server, PingSMTP)
        self.assertEqual(server.hostname, HOST)
        self.assertEqual(server.data_size_limit, 1000)
        self.assertTrue(server.enable_SMTPUTF8)


class DefaultHostnameTests(SynchronousTestCase):
    """
    The host name used when none is given.
    """

    def test_resolvedOncePerProcess(self) -> None:
        """
        The FQDN is looked up once, not once per factory or connection.
        """
        calls = []

        def getfqdn(name: str = "") -> str:
            calls.append(name)
            return "fqdn.example"

        self.patch(_config, "_fqdn", None)
        self.patch(socket, "getfqdn", getfqdn)
        factory = SMTPFactory(Collector(), reactor=Clock())
        first, firstTransport = connect(factory)
        second, secondTransport = connect(factory)
        other = SMTPTester(Collector())
        self.assertEqual(len(calls), 1)
        self.assertTrue(firstTransport.value().startswith(b"220 fqdn.example "))
        self.assertTrue(secondTransport.value().startswith(b"220 fqdn.example "))
        self.assertEqual(other.greeting.text.split()[0], "fqdn.example")
        self.assertEqual(other.command("HELO c.example"), Reply(250, "fqdn.example"))
        self.assertEqual(len(calls), 1)

    def test_hostnameOption(self) -> None:
        """
        With C{hostname} given, no lookup happens at all.
        """
        calls = []
        self.patch(_config, "_fqdn", None)
        self.patch(socket, "getfqdn", lambda name="": calls.append(name) or "x")
        tester = SMTPTester(Collector(), hostname="given.example")
        self.assertEqual(calls, [])
        self.assertTrue(tester.greeting.text.startswith("given.example "))
