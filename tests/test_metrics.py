# -*- test-case-name: tests.test_metrics -*-
"""
Tests for L{twisted_smtpd._metrics} and L{twisted_smtpd.metrics}: what the
metered server counts, on the wire and in the registry, and the C{/metrics}
page of a real server.
"""

from __future__ import annotations

import smtplib
import urllib.request
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock, deferLater
from twisted.internet.testing import MemoryReactorClock
from twisted.internet.threads import deferToThread
from twisted.python.usage import UsageError
from twisted.trial.unittest import SynchronousTestCase, TestCase
from twisted.web.server import Site

from tests._protocolsupport import Collector, connect
from tests._support import CLIENT_TIMEOUT, HOSTNAME, ReactorWatchdog
from tests.test_tls import FakeSSLTransport
from twisted_smtpd import LMTP, SMTP, SMTPFactory
from twisted_smtpd._auth import AuthResult
from twisted_smtpd._connhooks import SHED

try:
    import prometheus_client
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:
    prometheus_client = None

if prometheus_client is not None:
    from twisted_smtpd import _metrics
    from twisted_smtpd import metrics as publicMetrics
    from twisted_smtpd._metrics import (
        Metrics,
        meteredProtocol,
        metricsEndpoint,
        observePublish,
    )
    from twisted_smtpd.service import makeService
    from twisted_smtpd.tap import Options
    from twisted_smtpd.tap import makeService as tapService

SKIP = None if prometheus_client is not None else "prometheus_client is not installed"


def sample(metrics: Any, name: str, **labels: str) -> float | None:
    """
    The value of one sample in the registry of C{metrics}, or C{None}.
    """
    return metrics.registry.get_sample_value(name, labels)


class Refusing(Collector):
    """
    A collector that refuses recipients at C{refused.example}.
    """

    async def handle_RCPT(self, server, session, envelope, address, options):
        if address.endswith("@refused.example"):
            return "550 5.1.1 No such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"


def wrongPassword(server, session, envelope, mechanism, data):
    """
    An authenticator that refuses every password.
    """
    return AuthResult(success=False, handled=False)


class MeteredTests(SynchronousTestCase):
    """
    A metered server over a L{StringTransport}, with a L{Clock}.
    """

    skip = SKIP

    def serve(self, handler: Any = None, protocol: type = SMTP, **options: Any):
        """
        Connect a metered server; return it, its transport and its metrics.
        """
        self.metrics = Metrics()
        factory = SMTPFactory(
            handler if handler is not None else Collector(),
            reactor=Clock(),
            hostname=HOSTNAME,
            **options,
        )
        factory.protocol = meteredProtocol(protocol, self.metrics)
        server, transport = connect(factory)
        return server, transport

    def assertCount(
        self, expected: float, name: str, msg: str | None = None, **labels: str
    ) -> None:
        """
        Assert that sample C{name} with C{labels} of the server's metrics
        is C{expected}.
        """
        self.assertEqual(sample(self.metrics, name, **labels), expected, msg)

    def send(self, server: Any, transport: Any, data: bytes) -> bytes:
        """
        Feed C{data} to C{server}; return what it wrote meanwhile.
        """
        transport.clear()
        server.dataReceived(data)
        return transport.value()

    def test_subclass(self) -> None:
        """
        The metered class is a subclass of the server class given.
        """
        cls = meteredProtocol(LMTP, Metrics())
        self.assertTrue(issubclass(cls, LMTP))
        self.assertEqual(cls.__name__, "MeteredLMTP")

    def test_connections(self) -> None:
        """
        A connection counts as open until it is lost, and in the total.
        """
        server, transport = self.serve()
        self.assertCount(1, "smtpd_connections_total")
        self.assertCount(1, "smtpd_connections_open")
        server.connectionLost(None)
        self.assertCount(0, "smtpd_connections_open")
        self.assertCount(1, "smtpd_connections_total")

    def test_pipelinedTransaction(self) -> None:
        """
        Pipelined commands are counted each by its verb and its final
        reply; EHLO's many lines count once, DATA by the reply to the end
        of the data, not by its 354; the message is counted with its
        size, and every byte received is.
        """
        server, transport = self.serve()
        data = (
            b"EHLO client.example\r\nMAIL FROM:<a@example.com>\r\n"
            b"RCPT TO:<b@example.com>\r\nDATA\r\n"
        )
        body = b"Subject: hi\r\n\r\nhello\r\n.\r\n"
        out = self.send(server, transport, data)
        self.assertTrue(out.endswith(b"354 End data with <CR><LF>.<CR><LF>\r\n"))
        out = self.send(server, transport, body)
        self.assertEqual(out, b"250 OK\r\n")
        for verb in ("EHLO", "MAIL", "RCPT", "DATA"):
            self.assertCount(
                1, "smtpd_commands_total", verb=verb, reply_class="2xx", msg=verb
            )
        self.assertCount(1, "smtpd_messages_total", outcome="accepted", code="250")
        self.assertEqual(
            sample(self.metrics, "smtpd_message_bytes_total"),
            len(b"Subject: hi\r\n\r\nhello\r\n"),
        )
        self.assertEqual(
            sample(self.metrics, "smtpd_received_bytes_total"), len(data + body)
        )

    def test_unknownVerbs(self) -> None:
        """
        A verb the server does not implement and a line that is no command
        count as C{unknown}: no label comes from the client.
        """
        server, transport = self.serve()
        out = self.send(server, transport, b"XYZZY\r\n<html>\r\nNOOP\r\n")
        self.assertEqual(
            out,
            b'500 Error: command "XYZZY" not recognized\r\n'
            b"500 Error: bad syntax\r\n250 OK\r\n",
        )
        self.assertCount(2, "smtpd_commands_total", verb="unknown", reply_class="5xx")
        self.assertCount(1, "smtpd_commands_total", verb="NOOP", reply_class="2xx")
        self.assertIsNone(
            sample(
                self.metrics, "smtpd_commands_total", verb="XYZZY", reply_class="5xx"
            )
        )

    def test_refusedRecipientAndAbort(self) -> None:
        """
        A refused RCPT counts as 5xx; a transaction cut short by RSET
        counts as aborted.
        """
        server, transport = self.serve(Refusing())
        out = self.send(
            server,
            transport,
            b"HELO c\r\nMAIL FROM:<a@example.com>\r\n"
            b"RCPT TO:<x@refused.example>\r\nRSET\r\n",
        )
        self.assertTrue(out.endswith(b"550 5.1.1 No such user\r\n250 OK\r\n"))
        self.assertCount(1, "smtpd_commands_total", verb="RCPT", reply_class="5xx")
        self.assertCount(1, "smtpd_messages_total", outcome="aborted", code="")

    def test_refusedMessage(self) -> None:
        """
        A message refused at the end of its data counts by its code.
        """
        server, transport = self.serve(Collector("554 5.6.0 Rejected"))
        out = self.send(
            server,
            transport,
            b"HELO c\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\n"
            b"DATA\r\nhi\r\n.\r\n",
        )
        self.assertTrue(out.endswith(b"554 5.6.0 Rejected\r\n"))
        self.assertCount(1, "smtpd_messages_total", outcome="refused", code="554")
        self.assertCount(1, "smtpd_commands_total", verb="DATA", reply_class="5xx")

    def test_lmtpCodes(self) -> None:
        """
        LMTP's reply to the end of the data, the same for every recipient,
        counts the message once by its code.
        """
        server, transport = self.serve(Collector(), protocol=LMTP)
        self.send(
            server,
            transport,
            b"LHLO c\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\n"
            b"RCPT TO:<c@example.com>\r\nDATA\r\nhi\r\n.\r\n",
        )
        self.assertCount(1, "smtpd_messages_total", outcome="accepted", code="250")
        self.assertCount(1, "smtpd_commands_total", verb="LHLO", reply_class="2xx")

    def test_lmtpPerRecipient(self) -> None:
        """
        LMTP replies of their own to each recipient count one per
        recipient, by code.
        """
        server, transport = self.serve(
            Collector(["250 OK", "550 5.2.2 Mailbox full"]), protocol=LMTP
        )
        out = self.send(
            server,
            transport,
            b"LHLO c\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\n"
            b"RCPT TO:<c@example.com>\r\nDATA\r\nhi\r\n.\r\n",
        )
        self.assertTrue(
            out.endswith(b"250 2.0.0 OK\r\n550 5.2.2 Mailbox full\r\n"), out
        )
        for outcome, code in [("accepted", "250"), ("refused", "550")]:
            self.assertCount(1, "smtpd_messages_total", outcome=outcome, code=code)

    def test_authFailure(self) -> None:
        """
        An AUTH refused with 535 counts as a failure, and as a 5xx AUTH
        command; its 334 challenge is not a final reply.
        """
        server, transport = self.serve(
            authenticator=wrongPassword, auth_require_tls=False
        )
        out = self.send(
            server, transport, b"EHLO c\r\nAUTH LOGIN\r\n" + b"dXNlcg==\r\n"
        )
        self.assertTrue(out.endswith(b"334 UGFzc3dvcmQA\r\n"), out)
        out = self.send(server, transport, b"cGFzcw==\r\n")
        self.assertEqual(out[:4], b"535 ")
        self.assertCount(1, "smtpd_auth_total", result="failure")
        self.assertIsNone(sample(self.metrics, "smtpd_auth_total", result="success"))
        self.assertCount(1, "smtpd_commands_total", verb="AUTH", reply_class="5xx")

    def test_closingReplyIsNoCommand(self) -> None:
        """
        The 421 of a session shed counts it as shed, not as a command.
        """
        server, transport = self.serve()
        self.send(server, transport, b"HELO c\r\n")
        transport.clear()
        server.disconnect("421 4.7.0 Too many connections", SHED)
        self.assertEqual(transport.value()[:4], b"421 ")
        self.assertCount(1, "smtpd_sessions_shed_total")
        self.assertIsNone(
            sample(
                self.metrics, "smtpd_commands_total", verb="unknown", reply_class="4xx"
            )
        )

    def test_hookDuration(self) -> None:
        """
        Each hook the handler has is timed, by its name; a hook it lacks
        is not.
        """
        server, transport = self.serve(Refusing())
        self.send(
            server,
            transport,
            b"HELO c\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\n"
            b"DATA\r\nhi\r\n.\r\n",
        )
        for hook in ("RCPT", "DATA"):
            self.assertCount(
                1, "smtpd_hook_duration_seconds_count", hook=hook, msg=hook
            )
        self.assertIsNone(
            sample(self.metrics, "smtpd_hook_duration_seconds_count", hook="MAIL")
        )

    def test_handshakes(self) -> None:
        """
        On an implicit-TLS listener, a completed handshake counts as
        C{ok}, a connection lost during one as C{failed}.
        """
        self.serve()
        factory = SMTPFactory(Collector(), reactor=Clock(), hostname=HOSTNAME)
        factory.protocol = meteredProtocol(SMTP, self.metrics)
        done = factory.buildProtocol(None)
        done.makeConnection(FakeSSLTransport())
        done.handshakeCompleted()
        lost = factory.buildProtocol(None)
        lost.makeConnection(FakeSSLTransport())
        self.assertIsNone(
            sample(self.metrics, "smtpd_tls_handshakes_total", result="failed")
        )
        lost.connectionLost(None)
        self.assertCount(1, "smtpd_tls_handshakes_total", result="ok")
        self.assertCount(1, "smtpd_tls_handshakes_total", result="failed")

    def test_metricsEndpoint(self) -> None:
        """
        A bare port listens on loopback; a description is kept.
        """
        self.assertEqual(metricsEndpoint("9101"), "tcp:9101:interface=127.0.0.1")
        self.assertEqual(metricsEndpoint("tcp:9101"), "tcp:9101")

    def test_observePublishOff(self) -> None:
        """
        L{observePublish} does nothing when no server serves metrics.
        """
        metrics = Metrics()
        publicMetrics.observePublish(0.5, False)
        self.assertEqual(sample(metrics, "smtpd_publish_failures_total"), 0)
        self.assertEqual(sample(metrics, "smtpd_publish_duration_seconds_count"), 0)
        self.assertIs(publicMetrics.observePublish, observePublish)


class MetricsServiceTests(TestCase):
    """
    Integration tests: a real server and its C{/metrics} page over real
    TCP on 127.0.0.1, C{smtplib} and C{urllib} in threads.
    """

    skip = SKIP

    def setUp(self) -> None:
        watchdog = ReactorWatchdog()
        watchdog.start()
        self.addCleanup(watchdog.stop)

    async def serve(self) -> tuple[int, int]:
        """
        Start a server with metrics; return its SMTP and HTTP ports.
        """
        service = makeService(
            Refusing(),
            ["tcp:0:interface=127.0.0.1"],
            metrics="tcp:0:interface=127.0.0.1",
            hostname=HOSTNAME,
            authenticator=wrongPassword,
            auth_require_tls=False,
        )
        service.startService()
        self.addCleanup(service.stopService)
        (smtpPort,) = await service.whenListening()
        (listener,) = [c for c in service if getattr(c, "servesMetrics", False)]
        httpPort = await listener.whenListening()
        return smtpPort.getHost().port, httpPort.getHost().port

    async def scrape(self, port: int) -> dict[tuple[str, tuple], float]:
        """
        Get C{/metrics}; return its samples by name and labels.
        """

        def get() -> tuple[str, str]:
            url = f"http://127.0.0.1:{port}/metrics"
            with urllib.request.urlopen(url, timeout=CLIENT_TIMEOUT) as response:
                return response.headers["Content-Type"], response.read().decode()

        contentType, text = await deferToThread(get)
        self.assertTrue(contentType.startswith("text/plain"), contentType)
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }

    def test_scrape(self) -> Deferred[None]:
        """
        After a delivered message, a refused recipient, an unknown command
        and a failed AUTH, C{/metrics} says so, exactly.
        """

        def client(port: int) -> None:
            with smtplib.SMTP(
                "127.0.0.1", port, local_hostname="c", timeout=CLIENT_TIMEOUT
            ) as smtp:
                smtp.ehlo()
                self.assertEqual(smtp.docmd("XYZZY")[0], 500)
                with self.assertRaises(smtplib.SMTPAuthenticationError):
                    smtp.login("user", "wrong")
                refused = smtp.sendmail(
                    "a@example.com", ["b@example.com", "x@refused.example"], b"hi\r\n"
                )
                self.assertEqual(list(refused), ["x@refused.example"])

        async def run() -> None:
            smtpPort, httpPort = await self.serve()
            await deferToThread(client, smtpPort)
            for _ in range(100):
                samples = await self.scrape(httpPort)
                if samples[("smtpd_connections_open", ())] == 0:
                    break
                await deferLater(self._reactor(), 0.01, lambda: None)
            expected = {
                ("smtpd_connections_open", ()): 0,
                ("smtpd_connections_total", ()): 1,
                ("smtpd_messages_total", (("code", "250"), ("outcome", "accepted"))): 1,
                ("smtpd_message_bytes_total", ()): 4,
                # smtplib tries PLAIN, then LOGIN.
                ("smtpd_auth_total", (("result", "failure"),)): 2,
            }
            for verb, cls, count in [
                ("EHLO", "2xx", 1),
                ("unknown", "5xx", 1),
                ("AUTH", "5xx", 2),
                ("MAIL", "2xx", 1),
                ("RCPT", "2xx", 1),
                ("RCPT", "5xx", 1),
                ("DATA", "2xx", 1),
                ("QUIT", "2xx", 1),
            ]:
                expected[
                    ("smtpd_commands_total", (("reply_class", cls), ("verb", verb)))
                ] = count
            self.maxDiff = None
            self.assertEqual({k: samples.get(k) for k in expected}, expected)
            commands = {k for k in samples if k[0] == "smtpd_commands_total"}
            self.assertEqual(
                commands,
                {k for k in expected if k[0] == "smtpd_commands_total"},
            )

        return Deferred.fromCoroutine(run())

    def _reactor(self) -> Any:
        from twisted.internet import reactor

        return reactor

    def test_publish(self) -> Deferred[None]:
        """
        L{observePublish} feeds the metrics of a running server.
        """

        async def run() -> None:
            smtpPort, httpPort = await self.serve()
            observePublish(0.02, True)
            observePublish(0.5, False)
            samples = await self.scrape(httpPort)
            self.assertEqual(samples[("smtpd_publish_duration_seconds_count", ())], 2)
            self.assertEqual(samples[("smtpd_publish_failures_total", ())], 1)
            self.assertEqual(
                samples[("smtpd_publish_duration_seconds_bucket", (("le", "0.025"),))],
                1,
            )

        return Deferred.fromCoroutine(run())

    def test_handoff(self) -> Deferred[None]:
        """
        L{observeHandoff} sets the hand-off gauge of a running server, and
        a server that starts serving later starts from the last state.
        """
        # No state yet, whatever tests before this one reported.
        self.patch(_metrics, "_handoff", [])

        async def run() -> None:
            smtpPort, httpPort = await self.serve()
            samples = await self.scrape(httpPort)
            self.assertEqual(samples[("smtpd_handoff_available", ())], 0)
            publicMetrics.observeHandoff(True)
            samples = await self.scrape(httpPort)
            self.assertEqual(samples[("smtpd_handoff_available", ())], 1)
            publicMetrics.observeHandoff(False)
            samples = await self.scrape(httpPort)
            self.assertEqual(samples[("smtpd_handoff_available", ())], 0)
            publicMetrics.observeHandoff(True)
            self.assertEqual(sample(Metrics(), "smtpd_handoff_available"), 1)

        return Deferred.fromCoroutine(run())


class MetricsOptionTests(SynchronousTestCase):
    """
    C{twistd smtpd --metrics ENDPOINT}, on an in-memory reactor.
    """

    skip = SKIP

    def parse(self, *arguments: str) -> Any:
        """
        Parse C{arguments} (with C{--hostname}) on a L{MemoryReactorClock}.
        """
        options = Options(reactor=MemoryReactorClock())
        options.parseOptions(["--hostname=mx", "-l", "tcp:2525", *arguments])
        return options

    def test_default(self) -> None:
        """
        Without C{--metrics}, the server class is the one chosen and
        nothing else listens.
        """
        options = self.parse()
        service = tapService(options)
        self.assertIs(service.factory.protocol, SMTP)
        service.startService()
        self.addCleanup(service.stopService)
        self.assertEqual([s[0] for s in options.reactor.tcpServers], [2525])

    def test_metrics(self) -> None:
        """
        C{--metrics PORT} serves the metrics on loopback, beside the SMTP
        listeners, and meters the server class chosen (LMTP here).
        """
        options = self.parse("--lmtp", "--metrics", "9101")
        service = tapService(options)
        self.assertTrue(issubclass(service.factory.protocol, LMTP))
        self.assertEqual(service.factory.protocol.__name__, "MeteredLMTP")
        service.startService()
        self.addCleanup(service.stopService)
        servers = options.reactor.tcpServers
        self.assertEqual(
            [(s[0], s[3]) for s in servers], [(2525, ""), (9101, "127.0.0.1")]
        )
        self.assertIs(servers[0][1], service.factory)
        self.assertIsInstance(servers[1][1], Site)

    def test_bad(self) -> None:
        """
        A description that cannot be read is a usage error.
        """
        error = self.assertRaises(UsageError, self.parse, "--metrics", "bogus:9101")
        self.assertEqual(str(error), "--metrics: Unknown endpoint type: 'bogus'")
