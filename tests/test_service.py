"""
Tests for L{twisted_smtpd.service}: endpoint descriptions, L{SMTPService}
and L{makeService}, in memory and over real loopback TCP.
"""

from __future__ import annotations

import json
import mailbox
import os
import pwd
import re
import shutil
import signal
import smtplib
import socket
import ssl
import sys
import tempfile
import time

from twisted.application.internet import StreamServerEndpointService
from twisted.application.service import MultiService
from twisted.internet import reactor
from twisted.internet.defer import Deferred, succeed
from twisted.internet.endpoints import TCP4ServerEndpoint, serverFromString
from twisted.internet.error import (
    CannotListenError,
    ProcessExitedAlready,
    ProcessTerminated,
)
from twisted.internet.protocol import Factory, ProcessProtocol, Protocol
from twisted.internet.testing import MemoryReactorClock, RaisingMemoryReactor
from twisted.internet.threads import deferToThread
from twisted.internet.utils import getProcessOutputAndValue
from twisted.python.failure import Failure
from twisted.trial.unittest import SkipTest, TestCase

import twisted_smtpd
from tests.test_tap import Files
from tests.test_tls import commandLineTool, runTool
from twisted_smtpd import SMTPFactory, _endpoints
from twisted_smtpd._endpoints import Description, Listener
from twisted_smtpd._endpoints import endpointArguments as _endpointArguments
from twisted_smtpd._filelimit import highWaterMark, softFileLimit
from twisted_smtpd._shedding import AcceptGuard
from twisted_smtpd.service import (
    DEFAULT_BACKLOG,
    DEFAULT_ENDPOINTS,
    SMTPService,
    endpointDescription,
    endpointType,
    makeService,
)


class RecordingHandler:
    """
    A handler that keeps what each DATA hook saw.
    """

    def __init__(self) -> None:
        self.messages: list[tuple[object, str, list[str], bytes]] = []

    def handle_DATA(self, server, session, envelope):
        self.messages.append(
            (
                session.peer,
                envelope.mail_from,
                list(envelope.rcpt_tos),
                envelope.content,
            )
        )
        return "250 2.0.0 Stored"


class EndpointDescriptionTests(TestCase):
    """
    Tests for L{endpointDescription}.
    """

    def test_barePort(self) -> None:
        """
        A bare port number means TCP on every interface, with the backlog.
        """
        self.assertEqual(endpointDescription("8025"), "tcp:8025:backlog=1024")

    def test_tcpGetsBacklog(self) -> None:
        """
        A C{tcp} description without a backlog gets L{DEFAULT_BACKLOG}.
        """
        self.assertEqual(DEFAULT_BACKLOG, 1024)
        self.assertEqual(
            endpointDescription("tcp:8025:interface=127.0.0.1"),
            "tcp:8025:interface=127.0.0.1:backlog=1024",
        )

    def test_otherStreamTypesGetBacklog(self) -> None:
        """
        C{tcp6}, C{ssl}, C{unix} and C{haproxy}-wrapped descriptions get the
        backlog too.
        """
        for description in [
            "tcp6:25",
            "ssl:465:privateKey=key.pem",
            "unix:/run/smtpd.sock",
            "haproxy:tcp:25",
        ]:
            self.assertEqual(
                endpointDescription(description), description + ":backlog=1024"
            )

    def test_backlogKept(self) -> None:
        """
        A description that gives its own backlog is left alone.
        """
        for description in ["tcp:25:backlog=5", "tcp:backlog=7:port=25"]:
            self.assertEqual(endpointDescription(description), description)

    def test_escapedColons(self) -> None:
        """
        Escaped colons (an IPv6 interface) do not hide the type, and the
        result still parses to the interface given.
        """
        description = endpointDescription(r"tcp6:25:interface=\:\:1")
        self.assertEqual(description, r"tcp6:25:interface=\:\:1:backlog=1024")
        memory = MemoryReactorClock()
        endpoint = serverFromString(memory, description)
        endpoint.listen(SMTPFactory(RecordingHandler(), hostname="mx.example"))
        self.assertEqual(memory.tcpServers[0][2:], (1024, "::1"))

    def test_otherTypesUnchanged(self) -> None:
        """
        Endpoint types that take no backlog, and anything that is not a
        bare ASCII port number, pass through unchanged.
        """
        for description in [
            "systemd:domain=INET:index=0",
            "\u0668\u0660\u0662\u0665",
            "",
        ]:
            self.assertEqual(endpointDescription(description), description)


class EndpointTypeTests(TestCase):
    """
    Tests for L{endpointType}.
    """

    def test_types(self) -> None:
        """
        The type is the first field of the description, or the second
        behind C{haproxy:}; a bare port number is C{tcp}.
        """
        for description, kind in [
            ("2525", "tcp"),
            ("tcp:25:interface=127.0.0.1", "tcp"),
            ("tcp6:25", "tcp6"),
            ("unix:/run/smtpd.sock", "unix"),
            ("ssl:465:privateKey=key.pem:certKey=cert.pem", "ssl"),
            ("haproxy:tcp:25", "tcp"),
            ("haproxy:ssl:465:privateKey=key.pem", "ssl"),
            ("systemd:domain=INET:index=0", "systemd"),
            (r"unix:/tmp/a\:b.sock", "unix"),
            ("haproxy", "haproxy"),
        ]:
            self.assertEqual(endpointType(description), kind, description)


class EndpointArgumentsTests(TestCase):
    """
    Tests for L{_endpointArguments}.
    """

    def test_arguments(self) -> None:
        """
        A description splits into its type (looking through C{haproxy:}),
        its positional arguments and its keyword arguments, with the
        backslash escapes removed.
        """
        for description, expected in [
            ("2525", ("tcp", ["2525"], {})),
            (
                "tcp:25:interface=127.0.0.1:backlog=5",
                ("tcp", ["25"], {"interface": "127.0.0.1", "backlog": "5"}),
            ),
            ("tcp:port=25", ("tcp", [], {"port": "25"})),
            ("haproxy:tcp6:25", ("tcp6", ["25"], {})),
            (
                r"unix:/tmp/a\:b.sock:mode=600",
                ("unix", ["/tmp/a:b.sock"], {"mode": "600"}),
            ),
            (r"unix:address=/tmp/a\=b", ("unix", [], {"address": "/tmp/a=b"})),
            (
                "systemd:domain=INET:index=0",
                ("systemd", [], {"domain": "INET", "index": "0"}),
            ),
            ("tcp", ("tcp", [], {})),
        ]:
            self.assertEqual(_endpointArguments(description), expected, description)


class DescriptionTests(TestCase):
    """
    Tests for L{Description}, a description split once, and L{Listener}.
    """

    def test_proxied(self) -> None:
        """
        A description is proxied when it starts with C{haproxy:} and names
        a socket type after it.
        """
        for description, proxied in [
            ("haproxy:tcp:25", True),
            (r"haproxy:unix:/run/a\:b", True),
            ("haproxy", False),
            ("tcp:25", False),
            ("2525", False),
        ]:
            self.assertEqual(
                Description.parse(description).proxied, proxied, description
            )

    def test_given(self) -> None:
        """
        The description is kept as written, a bare port number included.
        """
        parsed = Description.parse("2525")
        self.assertEqual(parsed.given, "2525")
        self.assertEqual(parsed.fields, ("tcp", "2525"))

    def test_listener(self) -> None:
        """
        L{Listener.make} makes the endpoint of the completed description.
        """
        memory = MemoryReactorClock()
        listener = Listener.make(memory, "2525")
        self.assertEqual(listener.description, Description.parse("2525"))
        listener.endpoint.listen(SMTPFactory(RecordingHandler(), hostname="mx"))
        self.assertEqual(memory.tcpServers[0][0::2], (2525, 1024))


class SMTPServiceTests(TestCase):
    """
    Tests for L{SMTPService} and L{makeService} with an in-memory reactor.
    """

    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()
        self.factory = SMTPFactory(
            RecordingHandler(), hostname="mx.example", reactor=self.reactor
        )

    def test_defaultEndpoint(self) -> None:
        """
        Without endpoints the service listens on port 8025 of 127.0.0.1.
        """
        self.assertEqual(DEFAULT_ENDPOINTS, ("tcp:8025:interface=127.0.0.1",))
        service = SMTPService(self.factory, reactor=self.reactor)
        service.startService()
        self.addCleanup(service.stopService)
        self.assertEqual(
            self.reactor.tcpServers, [(8025, self.factory, 1024, "127.0.0.1")]
        )

    def test_oneChildPerEndpoint(self) -> None:
        """
        Each description becomes one listening child, all sharing the
        factory, and the ports are listened on when the service starts.
        """
        service = SMTPService(
            self.factory,
            ["tcp:2525:interface=127.0.0.1", "2526", "unix:/tmp/smtpd.sock"],
            reactor=self.reactor,
        )
        children = list(service)
        self.assertEqual(len(children), 3)
        for child in children:
            self.assertIsInstance(child, StreamServerEndpointService)
            self.assertIs(child.factory, self.factory)
        self.assertEqual(self.reactor.tcpServers, [])
        service.startService()
        self.addCleanup(service.stopService)
        self.assertEqual(
            self.reactor.tcpServers,
            [
                (2525, self.factory, 1024, "127.0.0.1"),
                (2526, self.factory, 1024, ""),
            ],
        )
        self.assertEqual(
            [server[:3] for server in self.reactor.unixServers],
            [("/tmp/smtpd.sock", self.factory, 1024)],
        )

    def test_descriptionParsedOnce(self) -> None:
        """
        Each description is made into an endpoint once, when the service
        is made.
        """
        made = []

        def counting(reactor, description):
            made.append(description)
            return serverFromString(reactor, description)

        self.patch(_endpoints, "serverFromString", counting)
        service = SMTPService(self.factory, ["2525", "tcp6:25"], reactor=self.reactor)
        service.startService()
        self.addCleanup(service.stopService)
        self.assertEqual(made, ["tcp:2525:backlog=1024", "tcp6:25:backlog=1024"])

    def test_endpointObjects(self) -> None:
        """
        An L{IStreamServerEndpoint} is listened on as it is.
        """
        endpoint = TCP4ServerEndpoint(self.reactor, 2600, backlog=5)
        service = SMTPService(self.factory, [endpoint], reactor=self.reactor)
        service.startService()
        self.addCleanup(service.stopService)
        self.assertEqual(self.reactor.tcpServers, [(2600, self.factory, 5, "")])

    def test_whenListening(self) -> None:
        """
        L{SMTPService.whenListening} fires with the port of each endpoint,
        in order.
        """
        service = SMTPService(
            self.factory, ["tcp:2525", "tcp:2526"], reactor=self.reactor
        )
        service.startService()
        self.addCleanup(service.stopService)
        ports = self.successResultOf(service.whenListening())
        self.assertEqual([p.getHost().port for p in ports], [2525, 2526])

    def test_whenListeningBeforeStart(self) -> None:
        """
        Asking for the ports of a service not started is an error.
        """
        service = SMTPService(self.factory, ["tcp:2525"], reactor=self.reactor)
        self.assertRaises(RuntimeError, service.whenListening)

    def test_cannotListen(self) -> None:
        """
        A port that cannot be bound makes C{startService} raise.
        """
        failing = RaisingMemoryReactor(
            listenException=CannotListenError("127.0.0.1", 2525, OSError("in use"))
        )
        service = SMTPService(self.factory, ["tcp:2525"], reactor=failing)
        self.assertRaises(CannotListenError, service.startService)

    def test_badDescription(self) -> None:
        """
        A description Twisted cannot parse is a L{ValueError}.
        """
        self.assertRaises(
            ValueError,
            SMTPService,
            self.factory,
            ["nosuchtype:25"],
            reactor=self.reactor,
        )

    def test_setServiceParent(self) -> None:
        """
        Attached to a running service, the SMTP service starts listening at
        once, and stops with its parent.
        """
        parent = MultiService()
        parent.startService()
        service = makeService(
            RecordingHandler(), ["tcp:2525"], reactor=self.reactor, hostname="mx"
        )
        service.setServiceParent(parent)
        self.assertTrue(service.running)
        self.assertEqual(len(self.reactor.tcpServers), 1)
        self.successResultOf(parent.stopService())
        self.assertFalse(service.running)

    def test_makeServiceOptions(self) -> None:
        """
        L{makeService} builds one factory with the handler and options given.
        """
        handler = RecordingHandler()
        service = makeService(
            handler,
            ["tcp:2525", "tcp:2526"],
            reactor=self.reactor,
            hostname="mx.example",
            data_size_limit=1000,
        )
        self.assertIsInstance(service, SMTPService)
        self.assertIs(service.factory.handler, handler)
        server = service.factory.buildProtocol(None)
        self.assertEqual(
            (server.hostname, server.data_size_limit), ("mx.example", 1000)
        )
        self.assertEqual({child.factory for child in service}, {service.factory})

    def test_makeServiceBadOption(self) -> None:
        """
        L{makeService} refuses unknown options and bad values like
        L{SMTPFactory}.
        """
        self.assertRaises(
            TypeError, makeService, RecordingHandler(), reactor=self.reactor, colour=1
        )
        self.assertRaises(
            ValueError,
            makeService,
            RecordingHandler(),
            reactor=self.reactor,
            hostname="mx",
            data_size_limit=-1,
        )


class ServiceIntegrationTests(TestCase):
    """
    Integration tests: L{makeService} on a real loopback TCP port, with
    C{smtplib} as the client (in a thread).
    """

    timeout = 60

    async def test_deliver(self) -> None:
        """
        A message sent with C{smtplib} reaches the handler byte for byte,
        and the client gets the handler's reply.
        """
        handler = RecordingHandler()
        service = makeService(
            handler, ["tcp:0:interface=127.0.0.1"], hostname="mx.example"
        )
        service.startService()
        self.addCleanup(service.stopService)
        [port] = await service.whenListening()
        number = port.getHost().port
        message = b"Subject: hello\r\n\r\nHello, world.\r\n.leading dot\r\n"

        def send():
            with smtplib.SMTP(
                "127.0.0.1", number, local_hostname="client.example", timeout=10
            ) as client:
                greeting = client.ehlo()
                mail = client.mail("sender@example.com")
                rcpt = client.rcpt("rcpt@example.org")
                data = client.data(message)
                return client.sock.getsockname(), greeting[0], mail, rcpt, data

        local, ehlo, mail, rcpt, data = await deferToThread(send)
        self.assertEqual(ehlo, 250)
        self.assertEqual(mail, (250, b"OK"))
        self.assertEqual(rcpt, (250, b"OK"))
        self.assertEqual(data, (250, b"2.0.0 Stored"))
        self.assertEqual(
            handler.messages,
            [(local, "sender@example.com", ["rcpt@example.org"], message)],
        )

    async def test_portsGuarded(self) -> None:
        """
        Each port the service listens on is guarded by its factory (see
        L{twisted_smtpd._shedding}), once however often the service is
        started, and the factory has its high-water mark from the file
        descriptor limit.
        """
        service = makeService(
            RecordingHandler(),
            ["tcp:0:interface=127.0.0.1", "tcp:0:interface=127.0.0.1"],
            hostname="mx",
        )
        service.privilegedStartService()
        service.startService()
        ports = await service.whenListening()
        service.watchPorts()
        for port in ports:
            self.assertIsInstance(port.doRead.__self__, AcceptGuard)
            self.assertIs(port.doRead.__self__._doRead.__self__, port)
        self.assertEqual(service.factory.highWaterMark, highWaterMark(softFileLimit()))
        await service.stopService()

    async def test_stopListening(self) -> None:
        """
        Once the service stopped, the port refuses connections.
        """
        service = makeService(
            RecordingHandler(), ["tcp:0:interface=127.0.0.1"], hostname="mx"
        )
        service.startService()
        [port] = await service.whenListening()
        number = port.getHost().port
        await service.stopService()

        def connect():
            smtplib.SMTP("127.0.0.1", number, local_hostname="c.example", timeout=5)

        with self.assertRaises(ConnectionRefusedError):
            await deferToThread(connect)


# Run twistd in a child process the same way in every kind of install (from
# a checkout, editable, or from a wheel): the twistd script may not be on
# PATH, and "python -m twisted" is the newer "twist" runner.
_TWISTD = [
    "-c",
    "import sys; sys.argv[0] = 'twistd'; from twisted.scripts.twistd import run; run()",
]


def _twistdEnvironment() -> dict[str, str]:
    """
    The environment of a child twistd: ours, with the directory holding
    this copy of twisted_smtpd (and its twisted/plugins) first on the path.
    """
    root = os.path.dirname(os.path.dirname(os.path.abspath(twisted_smtpd.__file__)))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [root] + [p for p in [env.get("PYTHONPATH")] if p]
    )
    env["PYTHONUNBUFFERED"] = "1"
    return env


class _Twistd(ProcessProtocol):
    """
    A child twistd whose output (stdout and stderr together) can be waited
    on.
    """

    def __init__(self) -> None:
        self.output = b""
        self.ended: Deferred[Exception] = Deferred()
        self._waiting: list[tuple[re.Pattern[bytes], Deferred[re.Match[bytes]]]] = []

    def outReceived(self, data: bytes) -> None:
        self.output += data
        still = []
        for pattern, waiting in self._waiting:
            match = pattern.search(self.output)
            if match is None:
                still.append((pattern, waiting))
            else:
                waiting.callback(match)
        self._waiting = still

    errReceived = outReceived

    def processEnded(self, reason: Failure) -> None:
        waiting, self._waiting = self._waiting, []
        for pattern, d in waiting:
            d.errback(
                AssertionError(
                    f"twistd ended before {pattern.pattern!r}; output:\n"
                    + self.output.decode("utf-8", "replace")
                )
            )
        self.ended.callback(reason.value)

    def waitFor(self, pattern: bytes, timeout: float = 30) -> Deferred:
        """
        Fire with the match of C{pattern} in the output, once it shows.
        """
        compiled = re.compile(pattern)
        match = compiled.search(self.output)
        if match is not None:
            return succeed(match)
        d: Deferred[re.Match[bytes]] = Deferred()
        self._waiting.append((compiled, d))
        return d.addTimeout(timeout, reactor)


class TwistdIntegrationTests(TestCase):
    """
    Slow integration tests: C{twistd smtpd} run as a child process (found
    through the plugin, as a user runs it), listening on loopback TCP, with
    C{smtplib} as the client.
    """

    timeout = 90

    def scratchDirectory(self) -> str:
        """
        Make a new directory for a child twistd to run in.
        """
        directory = self.mktemp()
        os.makedirs(directory)
        return directory

    def spawnTwistd(self, *arguments: str, twistd: list[str] = _TWISTD) -> _Twistd:
        """
        Start C{twistd -n --pidfile= ARGUMENTS...} in a scratch directory,
        and make sure it is gone at the end of the test.

        @param twistd: The arguments of C{python} that run C{twistd}.
        """
        process = _Twistd()
        transport = reactor.spawnProcess(
            process,
            sys.executable,
            [sys.executable, *twistd, "-n", "--pidfile=", *arguments],
            env=_twistdEnvironment(),
            path=self.scratchDirectory(),
        )

        async def stop() -> None:
            if not process.ended.called:
                try:
                    transport.signalProcess("KILL")
                except ProcessExitedAlready:
                    pass
                await process.ended

        self.addCleanup(lambda: Deferred.fromCoroutine(stop()))
        return process

    async def stopTwistd(self, process: _Twistd) -> None:
        """
        Stop a child twistd with SIGTERM, as a service manager does, and
        check that it shut down cleanly (twistd ends by the same signal once
        it has stopped).
        """
        process.transport.signalProcess("TERM")
        reason = await process.ended.addTimeout(30, reactor)
        self.assertIsInstance(reason, ProcessTerminated)
        self.assertEqual(reason.signal, signal.SIGTERM)
        self.assertIn(b"Server Shut Down.", process.output)
        self.assertNotIn(b"Traceback", process.output)

    async def runTwistd(self, *arguments: str) -> tuple[int, str]:
        """
        Run C{twistd ARGUMENTS...} to its end.

        @return: Its exit status and its output (stdout and stderr).
        """
        out, err, code = await getProcessOutputAndValue(
            sys.executable,
            [*_TWISTD, *arguments],
            env=_twistdEnvironment(),
            path=self.scratchDirectory(),
        ).addTimeout(60, reactor)
        return code, (out + err).decode("utf-8", "replace")

    async def test_debuggingOutput(self) -> None:
        """
        By default every message is printed to the real standard output, as
        plain lines (not log events), and SIGTERM stops the server cleanly.
        """
        process = self.spawnTwistd("smtpd", "--port", "tcp:0:interface=127.0.0.1")
        match = await process.waitFor(rb"SMTPFactory starting on (\d+)")
        number = int(match.group(1))

        def send():
            with smtplib.SMTP(
                "127.0.0.1", number, local_hostname="client.example", timeout=10
            ) as client:
                client.ehlo()
                client.mail("sender@example.com")
                client.rcpt("rcpt@example.org")
                reply = client.data(b"Subject: hi\r\n\r\nHello.\r\n.dot\r\n")
                return client.sock.getsockname(), reply

        local, reply = await deferToThread(send)
        self.assertEqual(reply, (250, b"OK"))
        await process.waitFor(rb"------------ END MESSAGE ------------\n")
        self.assertIn(
            "\n".join(
                [
                    "---------- MESSAGE FOLLOWS ----------",
                    "Subject: hi",
                    f"X-Peer: {local!r}",
                    "",
                    "Hello.",
                    ".dot",
                    "------------ END MESSAGE ------------",
                    "",
                ]
            ),
            process.output.decode("utf-8"),
        )
        await self.stopTwistd(process)

    async def test_options(self) -> None:
        """
        The handler and server options given to C{twistd smtpd} reach the
        server: the sink handler, the host name and ident of the greeting,
        and the size limit.
        """
        process = self.spawnTwistd(
            "smtpd",
            "--listen",
            "tcp:0:interface=127.0.0.1",
            "--handler",
            "sink",
            "--hostname",
            "mx.example",
            "--ident",
            "Test SMTP",
            "--size",
            "100",
        )
        match = await process.waitFor(rb"SMTPFactory starting on (\d+)")
        number = int(match.group(1))

        def send():
            with smtplib.SMTP() as client:
                client.local_hostname = "client.example"
                greeting = client.connect("127.0.0.1", number)
                ehlo = client.ehlo()
                client.mail("sender@example.com")
                client.rcpt("rcpt@example.org")
                small = client.data(b"Subject: small\r\n\r\nHi.\r\n")
                client.mail("sender@example.com")
                client.rcpt("rcpt@example.org")
                big = client.data(b"x" * 200 + b"\r\n")
                return greeting, ehlo, small, big

        greeting, ehlo, small, big = await deferToThread(send)
        self.assertEqual(greeting, (220, b"mx.example Test SMTP"))
        self.assertEqual(ehlo[0], 250)
        self.assertIn(b"SIZE 100", ehlo[1].split(b"\n"))
        self.assertEqual(small, (250, b"OK"))
        self.assertEqual(big, (552, b"Error: Too much mail data"))
        self.assertNotIn(b"MESSAGE FOLLOWS", process.output)
        await self.stopTwistd(process)

    async def test_pluginListed(self) -> None:
        """
        C{twistd --help} lists the C{smtpd} command.
        """
        code, output = await self.runTwistd("--help")
        self.assertEqual(code, 0)
        self.assertRegex(output, r"\n +smtpd +An SMTP/LMTP receiving server\n")

    async def test_help(self) -> None:
        """
        C{twistd smtpd --help} lists every option.
        """
        code, output = await self.runTwistd("smtpd", "--help")
        self.assertEqual(code, 0)
        for option in [
            "-l, --listen=",
            "-p, --port=",
            "-c, --handler=",
            "--hostname=",
            "--ident=",
            "--size=",
            "--smtputf8",
            "--decode-data",
            "--timeout=",
            "--command-call-limit=",
            "--bare-newline=",
            "--lmtp",
            "--max-connections=",
            "--max-connections-per-client=",
            "--connection-limit-exceptions=",
            "--high-water-mark=",
            "--tls-cert=",
            "--tls-key=",
            "--tls-chain=",
            "--require-starttls",
            "--implicit-tls",
            "--auth-file=",
            "--auth-required",
            "--auth-allow-plaintext",
            "--proxy-protocol=",
        ]:
            self.assertIn(option, output)

    async def test_badOptions(self) -> None:
        """
        A bad option value makes C{twistd smtpd} exit with status 1 and a
        usage message naming the option, without a traceback and without
        listening.
        """
        for arguments, message in [
            (["--size", "-5"], "--size must be a whole number of at least 0"),
            (["--listen", "nosuchtype:25"], "--listen 'nosuchtype:25'"),
            (["--handler", "nosuchhandler"], "--handler must be one of"),
            (["--handler", "sink", "extra"], "Sink handler does not accept"),
            (["--colour"], "option --colour not recognized"),
            (["--port", "tcp:99999"], "--port 'tcp:99999': the port must be"),
            (
                ["--port", "unix:/nonexistent/dir/s.sock"],
                "--port 'unix:/nonexistent/dir/s.sock': the directory"
                " '/nonexistent/dir' of the socket does not exist",
            ),
        ]:
            code, output = await self.runTwistd("-n", "--pidfile=", "smtpd", *arguments)
            self.assertEqual(code, 1, output)
            self.assertIn(f"\ntwistd -n: {message}", output)
            self.assertIn("Usage: twistd", output)
            self.assertNotIn("Traceback", output)
            self.assertNotIn("starting on", output)

    def takenPort(self) -> int:
        """
        Listen on a loopback port for the length of the test, for a child
        twistd to find it taken.

        @return: The port number.
        """
        port = reactor.listenTCP(
            0, Factory.forProtocol(Protocol), interface="127.0.0.1"
        )
        self.addCleanup(port.stopListening)
        return port.getHost().port

    async def test_portInUse(self) -> None:
        """
        A port already in use makes C{twistd -n smtpd} log one line naming
        it and exit with status 1, without a traceback.
        """
        port = self.takenPort()
        code, output = await self.runTwistd(
            "-n", "--pidfile=", "smtpd", "--handler", "sink", "--hostname", "mx",
            "--port", f"tcp:{port}:interface=127.0.0.1",
        )  # fmt: skip
        self.assertEqual(code, 1, output)
        line = (
            f"smtpd: Address already in use: cannot listen on"
            f" tcp:{port}:interface=127.0.0.1"
        )
        self.assertTrue(output.rstrip("\n").endswith(f"#critical] {line}"), output)
        self.assertEqual(output.count("cannot listen"), 1, output)
        self.assertNotIn("Traceback", output)

    async def test_portInUseDaemon(self) -> None:
        """
        Daemonizing, C{twistd smtpd} reports a port already in use from the
        process that started it, which exits with status 1; the log file
        has the line, without a traceback.
        """
        port = self.takenPort()
        log = os.path.abspath(self.mktemp())
        endpoint = f"tcp:{port}:interface=127.0.0.1:backlog=128"
        code, output = await self.runTwistd(
            "--pidfile=", f"--logfile={log}", "smtpd", "--handler", "sink",
            "--hostname", "mx", "--port", endpoint,
        )  # fmt: skip
        self.assertEqual(code, 1, output)
        # twistd shows 100 bytes of it: the reason comes first.
        self.assertIn(
            "An error has occurred: b'twisted_smtpd.tap.StartupError: smtpd:"
            " Address already in use: cannot listen on tcp:",
            output,
        )
        with open(log, encoding="utf-8") as logged:
            text = logged.read()
        self.assertIn(
            f"#critical] smtpd: Address already in use: cannot listen on {endpoint}\n",
            text,
        )
        self.assertNotIn("Traceback", text)

    async def test_mailboxAsAnotherUser(self) -> None:
        """
        Run as root with C{--uid nobody}, C{twistd smtpd} gives the Maildir
        it creates to C{nobody}, which stores the messages once twistd has
        switched to it.
        """
        if os.geteuid() != 0:
            raise SkipTest("needs root, to switch to another user")
        try:
            nobody = pwd.getpwnam("nobody")
        except KeyError:
            raise SkipTest("needs a user named nobody")
        parent = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, parent)
        os.chmod(parent, 0o755)
        maildir = os.path.join(parent, "box")
        process = self.spawnTwistd(
            "--uid", "nobody", "smtpd", "--port", "tcp:0:interface=127.0.0.1",
            "--hostname", "mx.example", "--handler", "mailbox", maildir,
        )  # fmt: skip
        match = await process.waitFor(rb"SMTPFactory starting on (\d+)")
        await process.waitFor(rb"set uid/gid %d/%d" % (nobody.pw_uid, nobody.pw_gid))

        def send():
            with smtplib.SMTP("127.0.0.1", int(match.group(1)), timeout=10) as client:
                client.ehlo("client.example")
                client.mail("a@example.com")
                client.rcpt("b@example.com")
                return client.data(b"Subject: as nobody\r\n\r\nHello.\r\n")

        self.assertEqual(await deferToThread(send), (250, b"OK"))
        [message] = self.maildirMessages(maildir)
        self.assertEqual(message["Subject"], "as nobody")
        [name] = os.listdir(os.path.join(maildir, "new"))
        subs = [os.path.join(maildir, sub) for sub in ("tmp", "new", "cur")]
        for path in [maildir, *subs, os.path.join(maildir, "new", name)]:
            owner = os.stat(path)
            self.assertEqual(
                (owner.st_uid, owner.st_gid), (nobody.pw_uid, nobody.pw_gid), path
            )
        self.assertEqual(os.stat(parent).st_uid, 0)
        await self.stopTwistd(process)

    async def swaks(self, port: int, *arguments: str):
        """
        Run C{swaks} against 127.0.0.1 C{port} (skipped without it, except
        on CI), sending from C{a@example.com} to C{b@example.com}.

        @return: Its exit status and its output (stdout and stderr).
        """
        result = await runTool(
            [
                commandLineTool("swaks"),
                "--server", "127.0.0.1",
                "--port", str(port),
                "--helo", "client.example",
                "--from", "a@example.com",
                "--to", "b@example.com",
                "--timeout", "15s",
                *arguments,
            ]
        )  # fmt: skip
        return result.returncode, (result.stdout + result.stderr).decode(
            "utf-8", "replace"
        )

    def maildir(self) -> str:
        """
        Return the absolute path of a new Maildir for the mailbox handler
        (created by the handler).
        """
        return os.path.abspath(self.mktemp())

    def maildirMessages(self, path: str) -> list[mailbox.MaildirMessage]:
        """
        Read the messages delivered into the C{new/} folder of a Maildir,
        ordered by their C{Subject}.
        """
        box = mailbox.Maildir(path, create=False)
        self.assertEqual(len(os.listdir(os.path.join(path, "new"))), len(box))
        return sorted(box, key=lambda message: message["Subject"])

    async def test_mailboxSwaks(self) -> None:
        """
        With C{--handler mailbox DIRECTORY}, a message sent with C{swaks}
        lands in C{DIRECTORY/new}, readable with C{mailbox.Maildir}.
        """
        maildir = self.maildir()
        process = self.spawnTwistd(
            "smtpd", "--port", "tcp:0:interface=127.0.0.1", "--hostname", "mx.example",
            "--handler", "mailbox", maildir,
        )  # fmt: skip
        match = await process.waitFor(rb"SMTPFactory starting on (\d+)")
        code, output = await self.swaks(
            int(match.group(1)),
            "--header", "Subject: swaks to a Maildir",
            "--body", "Hello from swaks.",
        )  # fmt: skip
        self.assertEqual(code, 0, output)
        self.assertIn("<-  250 OK", output)
        [message] = self.maildirMessages(maildir)
        self.assertEqual(message["Subject"], "swaks to a Maildir")
        self.assertEqual(message["X-MailFrom"], "a@example.com")
        self.assertEqual(message["X-RcptTo"], "b@example.com")
        self.assertTrue(message.get_payload().startswith("Hello from swaks.\n"))
        [name] = os.listdir(os.path.join(maildir, "new"))
        with open(os.path.join(maildir, "new", name), "rb") as stored:
            header, body = stored.read().split(b"\r\n\r\n", 1)
        self.assertTrue(body.startswith(b"Hello from swaks.\r\n"), body)
        self.assertTrue(
            header.endswith(
                b"\r\nX-MailFrom: a@example.com\r\nX-RcptTo: b@example.com"
            ),
            header,
        )
        await self.stopTwistd(process)

    async def test_tlsAndAuth(self) -> None:
        """
        With C{--tls-cert}, C{--tls-key}, C{--require-starttls},
        C{--auth-file} and C{--auth-required}, a client must start TLS
        (verified against the CA) and log in before sending: C{smtplib}
        logs in with CRAM-MD5 (the password file is plaintext), C{swaks
        --tls --auth PLAIN} with PLAIN, and a wrong password is refused.
        """
        files = Files(self)
        maildir = self.maildir()
        process = self.spawnTwistd(
            "smtpd",
            "--port", "tcp:0:interface=127.0.0.1",
            "--hostname", "mx.example",
            "--tls-cert", files.cert,
            "--tls-key", files.key,
            "--tls-chain", files.chain,
            "--require-starttls",
            "--auth-file", files.passwords,
            "--auth-required",
            "--handler", "mailbox",
            maildir,
        )  # fmt: skip
        match = await process.waitFor(rb"SMTPFactory starting on (\d+)")
        number = int(match.group(1))

        def send():
            context = ssl.create_default_context(cafile=files.ca)
            with smtplib.SMTP(
                "127.0.0.1", number, local_hostname="client.example", timeout=10
            ) as client:
                client.ehlo()
                plain = dict(client.esmtp_features)
                beforeTLS = client.mail("a@example.com")
                client.starttls(context=context)
                client.ehlo()
                secure = dict(client.esmtp_features)
                beforeAuth = client.mail("a@example.com")
                login = client.login("alice", "secret")
                refused = client.sendmail(
                    "a@example.com",
                    ["b@example.com"],
                    b"Subject: smtplib over TLS\r\n\r\nHello.\r\n",
                )
                return plain, beforeTLS, secure, beforeAuth, login, refused

        plain, beforeTLS, secure, beforeAuth, login, refused = await deferToThread(send)
        self.assertIn("starttls", plain)
        self.assertNotIn("auth", plain)
        self.assertEqual(beforeTLS, (530, b"Must issue a STARTTLS command first"))
        self.assertNotIn("starttls", secure)
        self.assertEqual(secure["auth"].split(), ["CRAM-MD5", "LOGIN", "PLAIN"])
        self.assertEqual(beforeAuth, (530, b"5.7.0 Authentication required"))
        self.assertEqual(login, (235, b"2.7.0 Authentication successful"))
        self.assertEqual(refused, {})

        swaksTLS = [
            "--tls",
            "--tls-verify",
            "--tls-ca-path", files.ca,
            "--tls-sni", "localhost",
            "--auth", "PLAIN",
            "--auth-user", "bob",
            "--header", "Subject: swaks over TLS",
        ]  # fmt: skip
        code, output = await self.swaks(number, *swaksTLS, "--auth-password", "hunter2")
        self.assertEqual(code, 0, output)
        self.assertIn("<~  235 2.7.0 Authentication successful", output)
        code, output = await self.swaks(number, *swaksTLS, "--auth-password", "nope")
        self.assertNotEqual(code, 0, output)
        self.assertIn("<~* 535 5.7.8 Authentication credentials invalid", output)

        first, second = self.maildirMessages(maildir)
        self.assertEqual(first["Subject"], "smtplib over TLS")
        self.assertEqual(second["Subject"], "swaks over TLS")
        self.assertEqual(second["X-RcptTo"], "b@example.com")
        await self.stopTwistd(process)

    async def test_lmtpUnixSocket(self) -> None:
        """
        With C{--lmtp --port unix:PATH}, C{smtplib.LMTP} delivers over the
        Unix socket with LHLO and gets one reply per recipient after the
        message.
        """
        # A short directory: a Unix socket path has at most 107 bytes.
        directory = tempfile.mkdtemp(prefix="smtpd-lmtp-")
        self.addCleanup(shutil.rmtree, directory)
        path = os.path.join(directory, "lmtp.sock")
        maildir = self.maildir()
        process = self.spawnTwistd(
            "smtpd", "--lmtp", "--port", f"unix:{path}", "--hostname", "mx.example",
            "--handler", "mailbox", maildir,
        )  # fmt: skip
        await process.waitFor(rb"SMTPFactory starting on '" + re.escape(path.encode()))

        def connect():
            # Twisted logs "starting on" before it binds and listens on a
            # Unix socket: try again until the socket takes connections.
            deadline = time.monotonic() + 10
            while True:
                try:
                    return smtplib.LMTP(path, local_hostname="mta.example", timeout=10)
                except (FileNotFoundError, ConnectionRefusedError):
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)

        def send():
            with connect() as client:
                lhlo = client.ehlo()
                client.mail("a@example.com")
                client.rcpt("b@example.com")
                client.rcpt("c@example.com")
                first = client.data(b"Subject: over LMTP\r\n\r\nHello.\r\n")
                second = client.getreply()
                return lhlo, first, second

        lhlo, first, second = await deferToThread(send)
        self.assertEqual(lhlo[0], 250)
        self.assertEqual(lhlo[1].split(b"\n")[0], b"mx.example")
        self.assertEqual(first, (250, b"2.0.0 OK"))
        self.assertEqual(second, (250, b"2.0.0 OK"))
        [message] = self.maildirMessages(maildir)
        self.assertEqual(message["Subject"], "over LMTP")
        self.assertEqual(message["X-RcptTo"], "b@example.com, c@example.com")
        await self.stopTwistd(process)

    async def test_newOptionsBad(self) -> None:
        """
        Bad TLS and AUTH options make C{twistd smtpd} exit with status 1 and
        a usage message naming the option.
        """
        missing = os.path.abspath(self.mktemp())
        for arguments, message in [
            (["--tls-cert", missing], f"--tls-cert {missing!r}: cannot read it"),
            (["--auth-required"], "--auth-required needs --auth-file"),
            (["--proxy-protocol", "0"], "--proxy-protocol must be a number greater"),
        ]:
            code, output = await self.runTwistd("-n", "--pidfile=", "smtpd", *arguments)
            self.assertEqual(code, 1, output)
            self.assertIn(f"\ntwistd -n: {message}", output)
            self.assertNotIn("Traceback", output)


class TwistdLogTests(TestCase):
    """
    Slow integration tests of the log of C{twistd smtpd}: a child twistd
    logging to a file (C{--logfile}), C{smtplib} on loopback TCP.
    """

    timeout = 90
    scratchDirectory = TwistdIntegrationTests.scratchDirectory
    spawnTwistd = TwistdIntegrationTests.spawnTwistd

    def startLogging(
        self, *smtpd: str, twistd: list[str] = _TWISTD
    ) -> tuple[int, str, _Twistd]:
        """
        Start C{twistd --logfile LOG smtpd --handler sink SMTPD...} on a
        free port.

        @param twistd: The arguments of C{python} that run C{twistd}.
        @return: The port, the path of the log file, and the process.
        """
        log = os.path.abspath(self.mktemp())
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        number = probe.getsockname()[1]
        probe.close()
        process = self.spawnTwistd(
            "--logfile",
            log,
            "smtpd",
            "--handler",
            "sink",
            "--hostname",
            "mx.example",
            "--listen",
            f"tcp:{number}:interface=127.0.0.1",
            *smtpd,
            twistd=twistd,
        )
        return number, log, process

    async def serveAndLog(self, *smtpd: str) -> list[str]:
        """
        Run C{twistd --logfile LOG smtpd --handler sink SMTPD...} on a free
        port, send two messages in one session, stop it with SIGTERM, and
        return the lines of its log file.
        """
        number, log, process = self.startLogging(*smtpd)

        def send():
            deadline = time.monotonic() + 30
            while True:
                try:
                    client = smtplib.SMTP(
                        "127.0.0.1", number, local_hostname="client.example", timeout=10
                    )
                    break
                except ConnectionRefusedError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
            with client:
                for _ in range(2):
                    client.sendmail("a@example.com", ["b@example.com"], b"Hi.\r\n")

        await deferToThread(send)
        process.transport.signalProcess("TERM")
        await process.ended.addTimeout(30, reactor)
        with open(log, encoding="utf-8") as f:
            return f.read().splitlines()

    async def test_text(self) -> None:
        """
        By default the log file has twistd's lines: its own start and stop,
        and one line per transaction, the last lines included at a clean
        stop.
        """
        lines = await self.serveAndLog()
        transactions = [line for line in lines if "message from" in line]
        self.assertEqual(len(transactions), 2, lines)
        self.assertRegex(
            transactions[0],
            r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4}"
            r" \[twisted_smtpd.server#info\] \('127.0.0.1', \d+\) message from"
            r" a@example.com to 1 recipient\(s\), 5 bytes: 250 in \d+\.\d{3}s$",
        )
        self.assertIn("Server Shut Down.", lines[-1])

    async def test_json(self) -> None:
        """
        With C{--log-format json} every line is a JSON object; the
        transactions' have their fields.
        """
        lines = await self.serveAndLog("--log-format", "json")
        records = [json.loads(line) for line in lines]
        transactions = [r for r in records if r.get("sender") == "a@example.com"]
        self.assertEqual(len(transactions), 2, lines)
        self.assertEqual(
            {k: transactions[0][k] for k in ("level", "namespace", "size", "result")},
            {
                "level": "info",
                "namespace": "twisted_smtpd.server",
                "size": 5,
                "result": "250",
            },
        )
        self.assertEqual(records[-1]["text"], "Server Shut Down.")

    async def test_level(self) -> None:
        """
        With C{--log-level warn} the transactions are not logged, and
        twistd's own lines at info are not either.
        """
        lines = await self.serveAndLog("--log-level", "warn")
        self.assertEqual([line for line in lines if "message from" in line], [])
        self.assertEqual([line for line in lines if "Server Shut Down" in line], [])
