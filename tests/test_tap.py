"""
Tests for L{twisted_smtpd.tap}: the options of C{twistd smtpd} and the
service made from them, with an in-memory reactor.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import hmac
import io
import json
import os
import pwd
import signal
import socket
import sys
from pathlib import Path
from typing import Any

import trustme
from twisted.application.service import Application, IServiceMaker
from twisted.cred.checkers import FilePasswordDB
from twisted.cred.credentials import UsernamePassword
from twisted.cred.error import UnauthorizedLogin
from twisted.internet.address import IPv4Address
from twisted.internet.endpoints import serverFromString
from twisted.internet.error import CannotListenError
from twisted.internet.ssl import Certificate, CertificateOptions
from twisted.internet.testing import (
    MemoryReactorClock,
    RaisingMemoryReactor,
    StringTransport,
)
from twisted.logger import ILogObserver, LogLevel, capturedLogs, formatEvent
from twisted.plugin import getPlugins
from twisted.python import usage
from twisted.python.usage import UsageError
from twisted.scripts.twistd import ServerOptions
from twisted.trial.unittest import TestCase

from twisted_smtpd import (
    LMTP,
    SMTP,
    SMTPFactory,
    _cli,
    _endpoints,
    tlsOptionsFromFiles,
)
from twisted_smtpd._daemon import _listenFailure, _switchedUser
from twisted_smtpd.handlers import Debugging, Inbox, Mailbox, Proxy, Sink
from twisted_smtpd.log import (
    LogFileObserver,
    jsonLine,
    jsonToStdout,
    textToStdout,
)
from twisted_smtpd.service import SMTPService
from twisted_smtpd.tap import (
    HandlerArgumentParser,
    Options,
    StartupError,
    makeService,
)
from twisted_smtpd.testing import SMTPTester


class PlainHandler:
    """
    A handler class without C{from_cli}, named by its dotted path in tests.
    """


class CliHandler:
    """
    A handler class whose C{from_cli} keeps what it was given, or refuses
    the argument C{"bad"} through the parser.
    """

    def __init__(self, parser, arguments) -> None:
        self.parser = parser
        self.arguments = arguments

    @classmethod
    def from_cli(cls, parser, *args):
        if "bad" in args:
            parser.error("CliHandler does not like 'bad'")
        return cls(parser, args)


class BrokenHandler:
    """
    A handler class whose constructor refuses to work.
    """

    def __init__(self) -> None:
        raise ValueError("no configuration found")


class OwnAuthHandler:
    """
    A handler class that brings its own AUTH mechanism.
    """

    def auth_TOKEN(self, server, args):
        return None


class OwnMailbox(Mailbox):
    """
    A subclass of L{Mailbox} that keeps its C{from_cli}.
    """


NOT_A_CLASS = 42


class FailingPortReactor(MemoryReactorClock):
    """
    An in-memory reactor on which port 2526 is taken.
    """

    def listenTCP(self, port, factory, backlog=50, interface=""):
        if port == 2526:
            raise CannotListenError(
                interface, port, OSError(errno.EADDRINUSE, "Address already in use")
            )
        return super().listenTCP(port, factory, backlog, interface)


class TLSRecordingTransport(StringTransport):
    """
    A transport that records the TLS options C{startTLS} is called with.
    """

    def __init__(self) -> None:
        super().__init__()
        self.tlsStarted: list[object] = []

    def startTLS(self, contextFactory: object) -> None:
        self.tlsStarted.append(contextFactory)


class Files:
    """
    The files a test gives to the TLS and AUTH options, in a new directory:
    a certificate for C{localhost} issued by an intermediate CA, with its
    key, chain and root CA apart (C{cert}, C{key}, C{chain}, C{ca}) and all
    together (C{combined}: key, certificate, chain); the key of another
    certificate (C{otherKey}); and a password file (C{passwords}) with the
    users C{alice} (password C{secret}) and C{bob} (C{hunter2}).
    """

    def __init__(self, test: TestCase) -> None:
        self.directory = Path(test.mktemp()).absolute()
        self.directory.mkdir(parents=True)
        root = trustme.CA()
        intermediate = root.create_child_ca()
        leaf = intermediate.issue_cert("localhost", "127.0.0.1")
        self.ca = self.write("ca.pem", root.cert_pem.bytes())
        self.cert = self.write("cert.pem", leaf.cert_chain_pems[0].bytes())
        self.chain = self.write("chain.pem", leaf.cert_chain_pems[1].bytes())
        self.key = self.write("key.pem", leaf.private_key_pem.bytes())
        self.combined = self.write(
            "combined.pem", leaf.private_key_and_cert_chain_pem.bytes()
        )
        other = root.issue_cert("other.example")
        self.otherKey = self.write("other-key.pem", other.private_key_pem.bytes())
        self.intermediate = leaf.cert_chain_pems[1].bytes()
        self.passwords = self.write(
            "passwords", b"alice:secret\n# a comment\n\nbob:hunter2  \n"
        )

    def write(self, name: str, content: bytes) -> str:
        """
        Write a file of the directory and return its path.
        """
        path = self.directory / name
        path.write_bytes(content)
        return str(path)


class OptionsTests(TestCase):
    """
    Tests for L{Options}.
    """

    def parse(self, *arguments: str) -> Options:
        """
        Parse C{arguments} with a fresh L{Options} on an in-memory reactor.
        """
        options = Options(reactor=MemoryReactorClock())
        options.parseOptions(list(arguments))
        return options

    def assertUsageError(self, arguments: list[str], message: str) -> None:
        """
        Parsing C{arguments} fails with a L{UsageError} whose message
        contains C{message}.
        """
        error = self.assertRaises(UsageError, self.parse, *arguments)
        self.assertIn(message, str(error))

    def test_defaults(self) -> None:
        """
        Without options the server listens on 127.0.0.1 port 8025 with the
        debugging handler and the factory's defaults.
        """
        options = self.parse("--hostname", "mx.example")
        self.assertEqual(options["listen"], ["tcp:8025:interface=127.0.0.1"])
        self.assertEqual(options["handler"], "debugging")
        self.assertEqual(options["handlerArguments"], [])
        self.assertEqual(
            options.factoryOptions(),
            {
                "protocol": SMTP,
                "hostname": "mx.example",
                "ident": None,
                "data_size_limit": 33554432,
                "enable_SMTPUTF8": False,
                "enhanced_status_codes": False,
                "decode_data": False,
                "dsn": True,
                "requiretls": False,
                "chunking": True,
                "timeout": 300,
                "command_call_limit": None,
                "bare_newline": "reject",
                "max_recipients": 1000,
                "hard_error_limit": 20,
                "junk_command_limit": 100,
                "max_connections": None,
                "max_connections_per_client": 50,
                "connection_limit_exceptions": ["127.0.0.0/8", "::1"],
                "high_water_mark": None,
                "shutdown_timeout": 30.0,
                "tls_context": None,
                "require_starttls": False,
                "implicit_tls": False,
                "tls_handshake_timeout": 60,
                "portal": None,
                "auth_required": False,
                "auth_require_tls": True,
                "proxy_protocol_timeout": None,
                "proxy_protocol_trusted": (),
                "received_header": False,
            },
        )

    def test_factory(self) -> None:
        """
        Parsing makes the L{SMTPFactory}, on the reactor given, whose servers
        have the options given.
        """
        options = self.parse(
            "--hostname",
            "mx.example",
            "--ident",
            "Test SMTP",
            "--size",
            "1000",
            "--timeout",
            "2.5",
            "--smtputf8",
        )
        factory = options["factory"]
        self.assertIsInstance(factory, SMTPFactory)
        server = factory.buildProtocol(None)
        self.assertEqual(server.hostname, "mx.example")
        self.assertEqual(server.data_size_limit, 1000)
        self.assertTrue(server.enable_SMTPUTF8)
        self.assertIs(server.loop, options.reactor)

    def test_everyOption(self) -> None:
        """
        Every option is turned into the matching factory option.
        """
        files = Files(self)
        options = self.parse(
            "--hostname=mx.example",
            "--ident=Test SMTP",
            "--size=0",
            "--timeout=0",
            "--smtputf8",
            "--enhanced-status-codes",
            "--decode-data",
            "--no-dsn",
            "--requiretls",
            "--no-chunking",
            "--command-call-limit=7",
            "--command-call-limit=mail=3",
            "--bare-newline=allow",
            "--max-recipients=500",
            "--hard-error-limit=0",
            "--junk-command-limit=7",
            "--handler=sink",
            "--lmtp",
            "--max-connections=10",
            "--max-connections-per-client=0",
            "--connection-limit-exceptions=10.0.0.0/8, 2001:db8::/32",
            "--high-water-mark=500",
            "--shutdown-timeout=2.5",
            "--proxy-protocol=3",
            "--proxy-protocol-trusted=192.0.2.1, 10.0.0.0/8",
            "--received-header",
            f"--tls-cert={files.cert}",
            f"--tls-key={files.key}",
            f"--tls-chain={files.chain}",
            "--require-starttls",
            "--tls-handshake-timeout=7.5",
            f"--auth-file={files.passwords}",
            "--auth-required",
            "--auth-allow-plaintext",
        )
        tls = options.tlsContext
        self.assertIsInstance(tls, CertificateOptions)
        self.assertIsInstance(options.checker, FilePasswordDB)
        self.assertEqual(
            options.factoryOptions(),
            {
                "protocol": LMTP,
                "hostname": "mx.example",
                "ident": "Test SMTP",
                "data_size_limit": 0,
                "enable_SMTPUTF8": True,
                "enhanced_status_codes": True,
                "decode_data": True,
                "dsn": False,
                "requiretls": True,
                "chunking": False,
                "timeout": None,
                "command_call_limit": {"*": 7, "MAIL": 3},
                "bare_newline": "allow",
                "max_recipients": 500,
                "hard_error_limit": 0,
                "junk_command_limit": 7,
                "max_connections": 10,
                "max_connections_per_client": 0,
                "connection_limit_exceptions": ["10.0.0.0/8", "2001:db8::/32"],
                "high_water_mark": 500,
                "shutdown_timeout": 2.5,
                "tls_context": tls,
                "require_starttls": True,
                "implicit_tls": False,
                "tls_handshake_timeout": 7.5,
                "portal": options.checker,
                "auth_required": True,
                "auth_require_tls": False,
                "proxy_protocol_timeout": 3.0,
                "proxy_protocol_trusted": ["192.0.2.1", "10.0.0.0/8"],
                "received_header": True,
            },
        )
        self.assertEqual(
            [str(w["message"]) for w in self.flushWarnings()],
            [
                "auth_required without auth_require_tls lets passwords travel"
                " in plaintext"
            ],
        )
        factory = options["factory"]
        self.assertIs(factory.protocol, LMTP)
        self.assertEqual(factory.maxConnections, 10)
        self.assertEqual(factory.maxConnectionsPerClient, 0)
        self.assertEqual(factory.highWaterMark, 500)
        server = factory.buildProtocol(None)
        self.assertIsInstance(server, LMTP)
        self.assertIsNone(server.data_size_limit)
        self.assertIs(server.tls_context, tls)
        self.assertTrue(server.require_starttls)

    def test_listenRepeatable(self) -> None:
        """
        C{--listen}, C{--port}, C{-l} and C{-p} all add an endpoint, in the
        order given, replacing the default.
        """
        options = self.parse(
            "--hostname=mx",
            "--listen",
            "tcp:2525:interface=127.0.0.1",
            "--port",
            "tcp6:2526",
            "-l",
            "unix:/tmp/smtpd.sock",
            "-p",
            "2527",
        )
        self.assertEqual(
            options["listen"],
            [
                "tcp:2525:interface=127.0.0.1",
                "tcp6:2526",
                "unix:/tmp/smtpd.sock",
                "2527",
            ],
        )

    def test_badEndpoint(self) -> None:
        """
        An endpoint description Twisted cannot parse is a usage error
        naming C{--listen}.
        """
        self.assertUsageError(
            ["--hostname=mx", "--listen", "nosuchtype:25"],
            "--listen 'nosuchtype:25' is not a valid endpoint",
        )
        self.assertUsageError(
            ["--hostname=mx", "-p", "tcp:port=x"],
            "--port 'tcp:port=x' is not a valid endpoint",
        )

    def assertUsageMessage(self, arguments: list[str], message: str) -> None:
        """
        Parsing C{arguments} fails with a L{UsageError} whose message is
        exactly C{message}.
        """
        error = self.assertRaises(UsageError, self.parse, *arguments)
        self.assertEqual(str(error), message)

    def test_portOutOfRange(self) -> None:
        """
        A TCP port number out of the range 0 to 65535, which the system
        would only refuse when listening, is a usage error naming the
        option as given.
        """
        for option, description, port in [
            ("--port", "tcp:99999", "99999"),
            ("--port", "70000", "70000"),
            ("-l", "tcp:port=65536:interface=127.0.0.1", "65536"),
            ("--listen", "tcp6:-1", "-1"),
            ("-p", "haproxy:tcp:100000", "100000"),
        ]:
            name = "--port" if option in ("--port", "-p") else "--listen"
            self.assertUsageMessage(
                ["--hostname=mx", option, description],
                f"{name} {description!r}: the port must be a number from 0 to"
                f" 65535, not {port}",
            )

    def test_portInRange(self) -> None:
        """
        Ports 0 (any free port) and 65535 are accepted.
        """
        options = self.parse("--hostname=mx", "-p", "0", "-l", "tcp:65535")
        self.assertEqual(options["listen"], ["0", "tcp:65535"])

    def test_unixSocketDirectoryMissing(self) -> None:
        """
        A Unix socket in a directory that does not exist, where Twisted
        could not make its lock file, is a usage error.
        """
        missing = os.path.abspath(self.mktemp())
        description = f"unix:{missing}/dir/s.sock:mode=600"
        self.assertUsageMessage(
            ["--hostname=mx", "--port", description],
            f"--port {description!r}: the directory {missing + '/dir'!r} of the"
            " socket does not exist",
        )

    def test_unixSocketTwice(self) -> None:
        """
        The same Unix socket given twice (even written differently), whose
        second listener could not take the lock, is a usage error naming
        both.
        """
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        self.patch(os, "getcwd", lambda: directory)
        self.assertUsageMessage(
            [
                "--hostname=mx",
                "-l",
                "unix:s.sock",
                "-p",
                f"unix:address={directory}/s.sock:lockfile=1",
            ],
            f"--port 'unix:address={directory}/s.sock:lockfile=1' is the same"
            " socket as --listen 'unix:s.sock'",
        )
        options = self.parse(
            "--hostname=mx", "-l", "unix:s.sock", "-l", f"unix:{directory}/t.sock"
        )
        self.assertEqual(len(options["listen"]), 2)

    def test_unixSocketUnderTwistd(self) -> None:
        """
        Under C{twistd}, a relative socket path is checked in C{--rundir},
        where C{twistd} listens, and not at all with C{--chroot}.
        """
        rundir = os.path.abspath(self.mktemp())
        os.makedirs(os.path.join(rundir, "run"))
        config = ServerOptions()
        config.parseOptions(
            ["-n", "--pidfile=", "--rundir", rundir, "smtpd", "--hostname=mx"]
            + ["--handler=sink", "--listen", "unix:run/s.sock"]
        )
        self.assertEqual(config.subOptions["listen"], ["unix:run/s.sock"])
        self.patch(sys, "argv", ["twistd", "-n"])
        self.patch(sys, "stdout", io.StringIO())
        error = self.assertRaises(
            SystemExit,
            ServerOptions().parseOptions,
            ["-n", "--pidfile=", "--rundir", rundir, "smtpd", "--hostname=mx"]
            + ["--handler=sink", "--listen", "unix:nothere/s.sock"],
        )
        self.assertEqual(error.code, 1)
        self.assertIn(
            f"the directory {rundir + '/nothere'!r} of the socket does not exist",
            sys.stdout.getvalue(),
        )
        config = ServerOptions()
        config.parseOptions(
            ["-n", "--pidfile=", "--chroot", rundir, "smtpd", "--hostname=mx"]
            + ["--handler=sink", "--listen", "unix:/nothere/s.sock"]
        )
        self.assertEqual(config.subOptions["listen"], ["unix:/nothere/s.sock"])

    def test_systemdWithoutSockets(self) -> None:
        """
        A C{systemd:} endpoint when systemd passed no socket says so,
        instead of Twisted's "list index out of range".
        """
        from twisted.internet.endpoints import _SystemdParser
        from twisted.python.systemd import ListenFDs

        self.patch(_SystemdParser, "_sddaemon", ListenFDs([], ()))
        self.assertUsageMessage(
            ["--hostname=mx", "--listen", "systemd:domain=INET:index=0"],
            "--listen 'systemd:domain=INET:index=0': systemd passed no socket to"
            " this process (no LISTEN_FDS): start it from a systemd socket unit,"
            " or listen on tcp:PORT",
        )

    def test_systemdNoSuchSocket(self) -> None:
        """
        A C{systemd:} endpoint whose index or name systemd did not pass says
        how many sockets it passed, or that there is none of that name.
        """
        from twisted.internet.endpoints import _SystemdParser
        from twisted.python.systemd import ListenFDs

        self.patch(_SystemdParser, "_sddaemon", ListenFDs([3], ("smtp",)))
        self.assertUsageMessage(
            ["--hostname=mx", "--listen", "systemd:domain=INET:index=1"],
            "--listen 'systemd:domain=INET:index=1': systemd passed 1 socket(s),"
            " numbered from 0, so there is no index 1",
        )
        self.assertUsageMessage(
            ["--hostname=mx", "--listen", "systemd:domain=INET:name=lmtp"],
            "--listen 'systemd:domain=INET:name=lmtp': systemd passed no socket"
            " named 'lmtp'",
        )
        options = self.parse("--hostname=mx", "--listen", "systemd:domain=INET:index=0")
        self.assertEqual(options["listen"], ["systemd:domain=INET:index=0"])

    def test_size(self) -> None:
        """
        C{--size} takes a whole number of octets, 0 meaning no limit.
        """
        self.assertEqual(
            self.parse("--hostname=mx", "--size=1").factoryOptions()["data_size_limit"],
            1,
        )
        for value in ["-1", "x", "1.5", ""]:
            self.assertUsageError(
                ["--hostname=mx", "--size", value],
                f"--size must be a whole number of at least 0, not {value!r}",
            )

    def test_timeout(self) -> None:
        """
        C{--timeout} takes seconds, fractions allowed, 0 meaning none; a
        negative or non-finite value is refused.
        """
        self.assertEqual(
            self.parse("--hostname=mx", "--timeout=0.5").factoryOptions()["timeout"],
            0.5,
        )
        for value in ["-1", "soon", "nan", "inf"]:
            self.assertUsageError(
                ["--hostname=mx", "--timeout", value],
                f"--timeout must be a number of at least 0, not {value!r}",
            )

    def test_bareNewline(self) -> None:
        """
        C{--bare-newline} is C{reject} or C{allow}, nothing else.
        """
        for value in ["reject", "allow"]:
            options = self.parse("--hostname=mx", "--bare-newline", value)
            self.assertEqual(options.factoryOptions()["bare_newline"], value)
        self.assertUsageError(
            ["--hostname=mx", "--bare-newline", "Allow"],
            "--bare-newline must be one of reject, allow, not 'Allow'",
        )

    def test_commandCallLimit(self) -> None:
        """
        C{--command-call-limit N} limits every command; C{VERB=N} one verb,
        case-insensitively; the last value for a verb wins.
        """
        options = self.parse("--hostname=mx", "--command-call-limit", "5")
        self.assertEqual(options.factoryOptions()["command_call_limit"], 5)
        options = self.parse(
            "--hostname=mx",
            "--command-call-limit",
            "Mail=3",
            "--command-call-limit",
            "RCPT=10",
            "--command-call-limit",
            "rcpt=11",
            "--command-call-limit",
            "*=30",
        )
        self.assertEqual(
            options.factoryOptions()["command_call_limit"],
            {"MAIL": 3, "RCPT": 11, "*": 30},
        )

    def test_commandCallLimitBad(self) -> None:
        """
        A C{--command-call-limit} that is not C{N} or C{VERB=N} with N at
        least 1 is a usage error naming the option.
        """
        for value in ["0", "x", "MAIL=", "=5", "MAIL=-1", "MA IL=3", "MAIL=1.5"]:
            self.assertUsageError(
                ["--hostname=mx", "--command-call-limit", value],
                "--command-call-limit",
            )

    def test_hostnameRefused(self) -> None:
        """
        A host name the factory refuses is a usage error.
        """
        self.assertUsageError(
            ["--hostname", "mx\r\nexample"], "hostname must not contain CR, LF or NUL"
        )

    def test_flagsOff(self) -> None:
        """
        Without C{--smtputf8} and C{--decode-data}, SMTPUTF8 is not offered
        and the content stays C{bytes}.
        """
        options = self.parse("--hostname=mx")
        self.assertIs(options.factoryOptions()["enable_SMTPUTF8"], False)
        self.assertIs(options.factoryOptions()["decode_data"], False)


class _ParseMixin:
    """
    Parsing helpers for the option tests.
    """

    def parse(self, *arguments: str) -> Options:
        """
        Parse C{arguments}, with C{--hostname=mx}, with a fresh L{Options}
        on an in-memory reactor.
        """
        options = Options(reactor=MemoryReactorClock())
        options.parseOptions(["--hostname=mx", *arguments])
        return options

    def assertUsageError(self, arguments: list[str], message: str) -> None:
        """
        Parsing C{arguments} fails with a L{UsageError} whose message is
        C{message}.
        """
        error = self.assertRaises(UsageError, self.parse, *arguments)
        self.assertEqual(str(error), message)

    def ehlo(self, options: Options, **extra) -> list[str]:
        """
        The EHLO reply lines of a server made with the factory options of
        C{options}.
        """
        tester = SMTPTester(Sink(), **{**options.factoryOptions(), **extra})
        reply = tester.command("EHLO client.example")
        self.assertEqual(reply.code, 250)
        return reply.text.split("\n")


class ProtocolOptionTests(_ParseMixin, TestCase):
    """
    Tests for C{--lmtp}, C{--max-connections}, the limits and
    C{--proxy-protocol}.
    """

    def test_lmtp(self) -> None:
        """
        C{--lmtp} serves LMTP: the server refuses EHLO and answers LHLO.
        """
        options = self.parse("--lmtp")
        self.assertIs(options.factoryOptions()["protocol"], LMTP)
        self.assertIs(options["factory"].protocol, LMTP)
        tester = SMTPTester(Sink(), **options.factoryOptions())
        self.assertEqual(tester.command("EHLO client.example").code, 500)
        self.assertEqual(
            tester.command("LHLO client.example").text.split("\n")[0], "mx"
        )
        self.assertIs(self.parse().factoryOptions()["protocol"], SMTP)

    def test_maxConnections(self) -> None:
        """
        C{--max-connections N} is the factory's C{max_connections}; there is
        no limit by default.
        """
        options = self.parse("--max-connections", "1")
        self.assertEqual(options["factory"].maxConnections, 1)
        self.assertIsNone(self.parse().factoryOptions()["max_connections"])

    def test_maxConnectionsRefusesOneMore(self) -> None:
        """
        With C{--max-connections 2}, a third client at once gets 421 and is
        disconnected.
        """
        factory = self.parse("--max-connections", "2")["factory"]
        transports = []
        for _ in range(3):
            transport = StringTransport()
            factory.buildProtocol(None).makeConnection(transport)
            transports.append(transport)
        self.assertTrue(transports[0].value().startswith(b"220 mx "))
        self.assertTrue(transports[1].value().startswith(b"220 mx "))
        self.assertEqual(
            transports[2].value(),
            b"421 4.3.2 Too many connections, try again later\r\n",
        )
        self.assertTrue(transports[2].disconnecting)

    def test_maxConnectionsBad(self) -> None:
        """
        C{--max-connections} takes a whole number of at least 1.
        """
        for value in ["0", "-1", "x", "1.5", ""]:
            self.assertUsageError(
                ["--max-connections", value],
                f"--max-connections must be a whole number of at least 1,"
                f" not {value!r}",
            )

    def test_limits(self) -> None:
        """
        C{--max-recipients}, C{--hard-error-limit} and
        C{--junk-command-limit} are the factory's options of the same names,
        with the library's defaults; C{0} turns each off.
        """
        self.assertEqual(
            self.limits(self.parse()),
            {"max_recipients": 1000, "hard_error_limit": 20, "junk_command_limit": 100},
        )
        options = self.parse(
            "--max-recipients=200", "--hard-error-limit=3", "--junk-command-limit=0"
        )
        self.assertEqual(
            self.limits(options),
            {"max_recipients": 200, "hard_error_limit": 3, "junk_command_limit": 0},
        )
        tester = SMTPTester(Sink(), **options.factoryOptions())
        for _ in range(2):
            self.assertEqual(tester.command("DATA").code, 503)
        tester.send(b"DATA\r\n")
        self.assertEqual([reply.code for reply in tester.replies()], [503, 421])
        self.assertTrue(tester.closed)

    def limits(self, options: Options) -> dict[str, Any]:
        """
        The limit options of the factory options of C{options}.
        """
        names = ["max_recipients", "hard_error_limit", "junk_command_limit"]
        return {name: options.factoryOptions()[name] for name in names}

    def test_limitsBad(self) -> None:
        """
        The limits take whole numbers of at least 0, and C{--max-recipients}
        no number from 1 to 99.
        """
        for option in ["max-recipients", "hard-error-limit", "junk-command-limit"]:
            for value in ["-1", "x", "1.5", ""]:
                self.assertUsageError(
                    [f"--{option}", value],
                    f"--{option} must be a whole number of at least 0, not {value!r}",
                )
        self.assertUsageError(
            ["--max-recipients=99"],
            "max_recipients must be 0 (no limit) or at least 100 (RFC 5321"
            " section 4.5.3.1.8 requires room for 100 recipients), not 99",
        )

    def test_proxyProtocol(self) -> None:
        """
        C{--proxy-protocol SECONDS} makes the server wait for a PROXY header
        before its greeting, and drop the client after that many seconds
        without one.
        """
        options = self.parse("--proxy-protocol", "2.5")
        self.assertEqual(options.factoryOptions()["proxy_protocol_timeout"], 2.5)
        tester = SMTPTester(Sink(), **options.factoryOptions())
        self.assertEqual(tester.replies(), [])
        tester.clock.advance(2.4)
        self.assertFalse(tester.closed)
        tester.clock.advance(0.1)
        self.assertTrue(tester.closed)
        self.assertEqual(tester.replies(), [])
        tester = SMTPTester(Sink(), **options.factoryOptions())
        tester.send(b"PROXY TCP4 192.0.2.7 192.0.2.1 40000 25\r\n")
        [greeting] = tester.replies()
        self.assertEqual(greeting.code, 220)
        self.assertEqual(tester.server.session.peer, ("192.0.2.7", 40000))

    def test_proxyProtocolBad(self) -> None:
        """
        C{--proxy-protocol} takes a positive, finite number of seconds.
        """
        for value in ["0", "-1", "soon", "nan", "inf"]:
            self.assertUsageError(
                ["--proxy-protocol", value],
                f"--proxy-protocol must be a number greater than 0, not {value!r}",
            )

    def test_proxyProtocolTrustedBad(self) -> None:
        """
        C{--proxy-protocol-trusted} takes IP addresses and networks, and
        needs C{--proxy-protocol}.
        """
        self.assertUsageError(
            ["--proxy-protocol=5", "--proxy-protocol-trusted", "10.0.0.0/8,proxy"],
            "--proxy-protocol-trusted must be IP addresses or networks separated"
            " by commas, not '10.0.0.0/8,proxy'",
        )
        self.assertUsageError(
            ["--proxy-protocol-trusted", "10.0.0.0/8"],
            "proxy_protocol_trusted needs a proxy_protocol_timeout",
        )

    def test_proxyProtocolHaproxyEndpoint(self) -> None:
        """
        C{--proxy-protocol} cannot be combined with a C{haproxy:} endpoint,
        which would read the header first.
        """
        self.assertUsageError(
            ["--proxy-protocol=5", "-l", "tcp:2525", "-l", "haproxy:tcp:2526"],
            "--proxy-protocol cannot be used with --listen 'haproxy:tcp:2526':"
            " a haproxy: endpoint reads the PROXY header itself",
        )
        self.parse("-l", "haproxy:tcp:2526")


class ConnectionLimitOptionTests(_ParseMixin, TestCase):
    """
    Tests for C{--max-connections-per-client},
    C{--connection-limit-exceptions} and C{--high-water-mark}.
    """

    def connect(self, factory: SMTPFactory, host: str) -> StringTransport:
        """
        Connect a client from C{host} to a server of C{factory}.
        """
        transport = StringTransport(peerAddress=IPv4Address("TCP", host, 40000))
        factory.buildProtocol(None).makeConnection(transport)
        return transport

    def test_maxConnectionsPerClient(self) -> None:
        """
        With C{--max-connections-per-client 2}, a third client from one
        address gets 421 4.7.0 and is disconnected; the default is 50.
        """
        factory = self.parse("--max-connections-per-client", "2")["factory"]
        transports = [self.connect(factory, "192.0.2.7") for _ in range(3)]
        self.assertTrue(transports[1].value().startswith(b"220 mx "))
        self.assertEqual(
            transports[2].value(),
            b"421 4.7.0 mx Error: too many connections from 192.0.2.7\r\n",
        )
        self.assertTrue(transports[2].disconnecting)
        self.assertEqual(self.parse()["factory"].maxConnectionsPerClient, 50)

    def test_maxConnectionsPerClientBad(self) -> None:
        """
        C{--max-connections-per-client} takes a whole number of at least 0.
        """
        for value in ["-1", "x", "1.5", ""]:
            self.assertUsageError(
                ["--max-connections-per-client", value],
                "--max-connections-per-client must be a whole number of at"
                f" least 0, not {value!r}",
            )

    def test_connectionLimitExceptions(self) -> None:
        """
        C{--connection-limit-exceptions} replaces the default list (loopback),
        separated by commas; an empty value exempts nobody.
        """
        factory = self.parse(
            "--max-connections-per-client=1",
            "--connection-limit-exceptions=192.0.2.0/24,198.51.100.7",
        )["factory"]
        for _ in range(2):
            self.assertTrue(
                self.connect(factory, "192.0.2.7").value().startswith(b"220 ")
            )
        self.connect(factory, "127.0.0.1")
        self.assertTrue(
            self.connect(factory, "127.0.0.1").value().startswith(b"421 4.7.0 ")
        )
        options = self.parse("--connection-limit-exceptions=")
        self.assertEqual(options.factoryOptions()["connection_limit_exceptions"], [])
        self.assertEqual(options["factory"].connectionLimitExceptions, ())

    def test_connectionLimitExceptionsBad(self) -> None:
        """
        Something that is not an address or network is a usage error.
        """
        self.assertUsageError(
            ["--connection-limit-exceptions", "10.0.0.0/8,localhost"],
            "--connection-limit-exceptions must be IP addresses or networks"
            " separated by commas, not '10.0.0.0/8,localhost'",
        )

    def test_highWaterMark(self) -> None:
        """
        With C{--high-water-mark 2}, a third client makes the session idle
        longest close with 421 4.7.0; by default the mark is worked out when
        the server starts, and 0 means never.
        """
        factory = self.parse("--high-water-mark", "2")["factory"]
        first, second = (self.connect(factory, f"192.0.2.{n}") for n in (1, 2))
        third = self.connect(factory, "192.0.2.3")
        self.assertTrue(
            first.value().endswith(
                b"\r\n421 4.7.0 mx Too many connections, try again later\r\n"
            )
        )
        self.assertTrue(first.disconnecting)
        self.assertFalse(second.disconnecting or third.disconnecting)
        self.assertIsNone(self.parse().factoryOptions()["high_water_mark"])
        self.assertIsNone(self.parse("--high-water-mark=0")["factory"].highWaterMark)

    def test_highWaterMarkBad(self) -> None:
        """
        C{--high-water-mark} takes a whole number of at least 0.
        """
        for value in ["-1", "x", ""]:
            self.assertUsageError(
                ["--high-water-mark", value],
                "--high-water-mark must be a whole number of at least 0,"
                f" not {value!r}",
            )


class TLSOptionTests(_ParseMixin, TestCase):
    """
    Tests for C{--tls-cert}, C{--tls-key}, C{--tls-chain},
    C{--require-starttls}, C{--implicit-tls} and C{--tls-handshake-timeout}.
    """

    def setUp(self) -> None:
        self.files = Files(self)

    def test_certAndKey(self) -> None:
        """
        C{--tls-cert} and C{--tls-key} make the TLS options of the server,
        which then offers STARTTLS.
        """
        files = self.files
        options = self.parse("--tls-cert", files.cert, "--tls-key", files.key)
        tls = options.tlsContext
        self.assertIsInstance(tls, CertificateOptions)
        self.assertEqual(
            Certificate(tls.certificate).dumpPEM(), Path(files.cert).read_bytes()
        )
        self.assertEqual(tls.extraCertChain, [])
        self.assertIs(options.factoryOptions()["tls_context"], tls)
        self.assertIs(options["factory"].buildProtocol(None).tls_context, tls)
        self.assertIn("STARTTLS", self.ehlo(options))
        self.assertNotIn("STARTTLS", self.ehlo(self.parse()))

    def test_chain(self) -> None:
        """
        C{--tls-chain} adds the intermediate certificates sent after the
        server's.
        """
        files = self.files
        options = self.parse(
            "--tls-cert", files.cert, "--tls-key", files.key, "--tls-chain", files.chain
        )
        self.assertEqual(
            [Certificate(c).dumpPEM() for c in options.tlsContext.extraCertChain],
            [files.intermediate],
        )

    def test_chainBuiltOnce(self) -> None:
        """
        With C{--tls-chain}, the TLS options are built once, from all three
        files.
        """
        calls = []

        def counting(*arguments):
            calls.append(arguments)
            return tlsOptionsFromFiles(*arguments)

        self.patch(_cli, "tlsOptionsFromFiles", counting)
        files = self.files
        options = self.parse(
            "--tls-cert", files.cert, "--tls-key", files.key, "--tls-chain", files.chain
        )
        self.assertEqual(calls, [(files.cert, files.key, files.chain)])
        self.assertIsInstance(options.tlsContext, CertificateOptions)

    def test_combinedFile(self) -> None:
        """
        One file holding the key, the certificate and the chain is enough.
        """
        options = self.parse("--tls-cert", self.files.combined)
        tls = options.tlsContext
        self.assertEqual(
            Certificate(tls.certificate).dumpPEM(), Path(self.files.cert).read_bytes()
        )
        self.assertEqual(
            [Certificate(c).dumpPEM() for c in tls.extraCertChain],
            [self.files.intermediate],
        )

    def test_unreadableFile(self) -> None:
        """
        A file that cannot be read is a usage error naming its option.
        """
        files = self.files
        missing = str(files.directory / "missing.pem")
        directory = str(files.directory)
        self.assertUsageError(
            ["--tls-cert", missing, "--tls-key", files.key],
            f"--tls-cert {missing!r}: cannot read it: No such file or directory",
        )
        self.assertUsageError(
            ["--tls-cert", files.cert, "--tls-key", directory],
            f"--tls-key {directory!r}: cannot read it: Is a directory",
        )
        self.assertUsageError(
            ["--tls-cert", files.cert, "--tls-key", files.key, "--tls-chain", missing],
            f"--tls-chain {missing!r}: cannot read it: No such file or directory",
        )

    def test_noKey(self) -> None:
        """
        A certificate file without the key, and no C{--tls-key}, is a usage
        error that says so and points to C{--tls-key}.
        """
        error = self.assertRaises(UsageError, self.parse, "--tls-cert", self.files.cert)
        self.assertEqual(
            str(error),
            f"--tls-cert {self.files.cert!r} holds no private key"
            " (-----BEGIN PRIVATE KEY-----): give the file of its key with"
            " --tls-key",
        )

    def test_keyFileWithoutKey(self) -> None:
        """
        A C{--tls-key} file that holds no private key (here the certificate
        again) is a usage error naming it.
        """
        files = self.files
        error = self.assertRaises(
            UsageError, self.parse, "--tls-cert", files.cert, "--tls-key", files.cert
        )
        self.assertEqual(
            str(error),
            f"--tls-key {files.cert!r} holds no PEM private key"
            " (-----BEGIN PRIVATE KEY-----)",
        )

    def test_keyForms(self) -> None:
        """
        Without C{--tls-key}, the key is found in the certificate file in
        its PKCS#8 form (C{BEGIN PRIVATE KEY}) as in the traditional one
        (C{BEGIN EC PRIVATE KEY}).
        """
        from cryptography.hazmat.primitives import serialization

        files = self.files
        key = serialization.load_pem_private_key(
            Path(files.key).read_bytes(), password=None
        )
        cert = Path(files.cert).read_bytes()
        for form, begin in [
            (serialization.PrivateFormat.PKCS8, b"-----BEGIN PRIVATE KEY-----"),
            (
                serialization.PrivateFormat.TraditionalOpenSSL,
                b"-----BEGIN EC PRIVATE KEY-----",
            ),
        ]:
            pem = key.private_bytes(
                serialization.Encoding.PEM, form, serialization.NoEncryption()
            )
            self.assertTrue(pem.startswith(begin), pem)
            both = files.write("both.pem", cert + pem)
            options = self.parse("--tls-cert", both)
            self.assertIsInstance(options.tlsContext, CertificateOptions)

    def test_wrongKey(self) -> None:
        """
        A key that does not belong to the certificate is a usage error.
        """
        files = self.files
        self.assertUsageError(
            ["--tls-cert", files.cert, "--tls-key", files.otherKey],
            f"--tls-cert {files.cert!r} with --tls-key {files.otherKey!r}: no usable"
            " certificate and private key: Certificate public and private keys do"
            " not match.",
        )

    def test_wrongKeyWithChain(self) -> None:
        """
        With C{--tls-chain} too, a key that does not belong to the
        certificate is still blamed on C{--tls-cert} and C{--tls-key}, not
        on the chain.
        """
        files = self.files
        self.assertUsageError(
            ["--tls-cert", files.cert, "--tls-key", files.otherKey]
            + ["--tls-chain", files.chain],
            f"--tls-cert {files.cert!r} with --tls-key {files.otherKey!r}: no usable"
            " certificate and private key: Certificate public and private keys do"
            " not match.",
        )

    def test_notPEM(self) -> None:
        """
        A certificate file that is not PEM is a usage error.
        """
        files = self.files
        garbage = files.write("garbage.pem", b"not a certificate\n")
        error = self.assertRaises(
            UsageError, self.parse, "--tls-cert", garbage, "--tls-key", files.key
        )
        self.assertTrue(
            str(error).startswith(
                f"--tls-cert {garbage!r} with --tls-key {files.key!r}: no usable"
                " certificate and private key: "
            ),
            str(error),
        )

    def test_badChain(self) -> None:
        """
        A chain file without a certificate, or with a broken one, is a usage
        error naming C{--tls-chain}.
        """
        files = self.files
        empty = files.write("empty.pem", b"nothing here\n")
        self.assertUsageError(
            ["--tls-cert", files.cert, "--tls-key", files.key, "--tls-chain", empty],
            f"--tls-chain {empty!r} holds no PEM certificate"
            " (-----BEGIN CERTIFICATE-----)",
        )
        broken = files.write(
            "broken.pem",
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        error = self.assertRaises(
            UsageError,
            self.parse,
            *["--tls-cert", files.cert, "--tls-key", files.key, "--tls-chain", broken],
        )
        self.assertTrue(str(error).startswith(f"--tls-chain {broken!r}: "), str(error))

    def test_needCert(self) -> None:
        """
        The options that use the certificate need C{--tls-cert}.
        """
        for option in [
            ["--tls-key", self.files.key],
            ["--tls-chain", self.files.chain],
            ["--require-starttls"],
            ["--implicit-tls"],
            ["--requiretls"],
        ]:
            self.assertUsageError(option, f"{option[0]} needs --tls-cert")

    def test_requireStartTLS(self) -> None:
        """
        C{--require-starttls} refuses mail commands until TLS is on.
        """
        options = self.parse("--tls-cert", self.files.combined, "--require-starttls")
        self.assertIs(options.factoryOptions()["require_starttls"], True)
        tester = SMTPTester(Sink(), **options.factoryOptions())
        tester.command("EHLO client.example")
        self.assertEqual(
            tester.command("MAIL FROM:<a@example.com>"),
            (530, "Must issue a STARTTLS command first"),
        )

    def test_noDSN(self) -> None:
        """
        C{--no-dsn} turns DSN off: EHLO does not list it.
        """
        options = self.parse("--no-dsn")
        self.assertIs(options.factoryOptions()["dsn"], False)
        tester = SMTPTester(Sink(), **options.factoryOptions())
        self.assertNotIn("DSN", tester.command("EHLO client.example").lines)
        tester = SMTPTester(Sink(), **self.parse().factoryOptions())
        self.assertIn("DSN", tester.command("EHLO client.example").lines)

    def test_requireTLS(self) -> None:
        """
        C{--requiretls} turns REQUIRETLS on; outside TLS it is refused.
        """
        options = self.parse("--tls-cert", self.files.combined, "--requiretls")
        self.assertIs(options.factoryOptions()["requiretls"], True)
        tester = SMTPTester(Sink(), **options.factoryOptions())
        tester.command("EHLO client.example")
        self.assertEqual(
            tester.command("MAIL FROM:<a@example.com> REQUIRETLS"),
            (530, "5.7.10 REQUIRETLS needs a TLS session"),
        )

    def test_implicitTLS(self) -> None:
        """
        C{--implicit-tls} starts TLS on plain listeners as soon as a client
        connects.
        """
        options = self.parse("--tls-cert", self.files.combined, "--implicit-tls")
        self.assertIs(options.factoryOptions()["implicit_tls"], True)
        transport = TLSRecordingTransport()
        options["factory"].buildProtocol(None).makeConnection(transport)
        self.assertEqual(transport.tlsStarted, [options.tlsContext])
        self.assertIs(self.parse().factoryOptions()["implicit_tls"], False)

    def test_tlsHandshakeTimeout(self) -> None:
        """
        C{--tls-handshake-timeout SECONDS} is the factory's
        C{tls_handshake_timeout}: a handshake that takes longer drops the
        connection. The default is 60 seconds.
        """
        options = self.parse(
            "--tls-cert",
            self.files.combined,
            "--implicit-tls",
            "--tls-handshake-timeout",
            "2.5",
        )
        self.assertEqual(options.factoryOptions()["tls_handshake_timeout"], 2.5)
        transport = TLSRecordingTransport()
        options["factory"].buildProtocol(None).makeConnection(transport)
        options.reactor.advance(2.4)
        self.assertFalse(transport.disconnected)
        options.reactor.advance(0.1)
        self.assertTrue(transport.disconnected)
        self.assertEqual(self.parse().factoryOptions()["tls_handshake_timeout"], 60)

    def test_tlsHandshakeTimeoutBad(self) -> None:
        """
        C{--tls-handshake-timeout} takes a positive, finite number of
        seconds.
        """
        for value in ["0", "-1", "soon", "nan", "inf"]:
            self.assertUsageError(
                ["--tls-handshake-timeout", value],
                "--tls-handshake-timeout must be a number greater than 0,"
                f" not {value!r}",
            )

    def test_requireStartTLSAndImplicit(self) -> None:
        """
        C{--require-starttls} and C{--implicit-tls} contradict each other.
        """
        self.assertUsageError(
            ["--tls-cert", self.files.combined, "--require-starttls", "--implicit-tls"],
            "--require-starttls cannot be used with --implicit-tls, whose clients"
            " have TLS from the start and never send STARTTLS",
        )


class AuthOptionTests(_ParseMixin, TestCase):
    """
    Tests for C{--auth-file}, C{--auth-required} and
    C{--auth-allow-plaintext}.
    """

    def setUp(self) -> None:
        self.files = Files(self)

    def login(self, options: Options, user: bytes, password: bytes):
        """
        Check C{user} and C{password} with the checker of C{--auth-file}.
        """
        return options.checker.requestAvatarId(UsernamePassword(user, password))

    def test_authFile(self) -> None:
        """
        C{--auth-file} checks the user names and plaintext passwords of the
        file with twisted.cred's L{FilePasswordDB}.
        """
        options = self.parse(
            "--auth-file", self.files.passwords, "--tls-cert", self.files.combined
        )
        checker = options.checker
        self.assertIsInstance(checker, FilePasswordDB)
        self.assertIsNone(checker.hash)
        self.assertIs(options.factoryOptions()["portal"], checker)
        self.assertEqual(
            self.successResultOf(self.login(options, b"alice", b"secret")), b"alice"
        )
        self.assertEqual(
            self.successResultOf(self.login(options, b"bob", b"hunter2")), b"bob"
        )
        for user, password in [
            (b"alice", b"hunter2"),
            (b"Alice", b"secret"),
            (b"carol", b"secret"),
            (b"# a comment", b""),
        ]:
            self.failureResultOf(self.login(options, user, password), UnauthorizedLogin)

    def test_authFileAbsolute(self) -> None:
        """
        A relative C{--auth-file} path is made absolute, so that the file is
        found again after C{twistd} changes directory.
        """
        relative = self.mktemp()
        Path(relative).write_bytes(b"alice:secret\n")
        self.assertFalse(os.path.isabs(relative))
        options = self.parse("--auth-file", relative, "--auth-allow-plaintext")
        self.assertEqual(options.checker.filename, os.path.abspath(relative))

    def test_authOnTheWire(self) -> None:
        """
        With C{--auth-file} the server offers PLAIN, LOGIN and CRAM-MD5 (the
        passwords are in plaintext) and accepts the users of the file.
        """
        options = self.parse(
            "--auth-file", self.files.passwords, "--auth-allow-plaintext"
        )
        self.assertIn("AUTH CRAM-MD5 LOGIN PLAIN", self.ehlo(options))
        tester = SMTPTester(Sink(), **options.factoryOptions())
        tester.command("EHLO client.example")
        bad = base64.b64encode(b"\0alice\0wrong").decode()
        self.assertEqual(
            tester.command(f"AUTH PLAIN {bad}"),
            (535, "5.7.8 Authentication credentials invalid"),
        )
        good = base64.b64encode(b"\0alice\0secret").decode()
        self.assertEqual(
            tester.command(f"AUTH PLAIN {good}"),
            (235, "2.7.0 Authentication successful"),
        )
        self.assertEqual(tester.server.session.auth_data.avatarId, b"alice")

    def test_cramMD5(self) -> None:
        """
        CRAM-MD5 works against the plaintext password file.
        """
        options = self.parse(
            "--auth-file", self.files.passwords, "--auth-allow-plaintext"
        )
        tester = SMTPTester(Sink(), **options.factoryOptions())
        tester.command("EHLO client.example")
        challenge = tester.command("AUTH CRAM-MD5")
        self.assertEqual(challenge.code, 334)
        digest = hmac.new(
            b"hunter2", base64.b64decode(challenge.text), hashlib.md5
        ).hexdigest()
        response = base64.b64encode(b"bob " + digest.encode()).decode()
        self.assertEqual(
            tester.command(response), (235, "2.7.0 Authentication successful")
        )

    def test_readAtStartAndOnChange(self) -> None:
        """
        The password file is read when the options are parsed (before
        C{twistd} switches to C{--uid}), and again once it changes.
        """
        path = self.files.passwords
        options = self.parse("--auth-file", path, "--auth-allow-plaintext")
        before = os.stat(path)
        Path(path).write_bytes(b"alice:changed\n")
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
        self.successResultOf(self.login(options, b"alice", b"secret"))
        self.failureResultOf(
            self.login(options, b"alice", b"changed"), UnauthorizedLogin
        )
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns + 10**9))
        self.successResultOf(self.login(options, b"alice", b"changed"))
        self.failureResultOf(
            self.login(options, b"alice", b"secret"), UnauthorizedLogin
        )

    def test_authFileBad(self) -> None:
        """
        A password file that cannot be read, has no user, or has a user
        without a password is a usage error.
        """
        files = self.files
        missing = str(files.directory / "missing")
        self.assertUsageError(
            ["--auth-file", missing, "--auth-allow-plaintext"],
            f"--auth-file {missing!r}: cannot read it: No such file or directory",
        )
        empty = files.write("empty", b"# nobody\n\n")
        self.assertUsageError(
            ["--auth-file", empty, "--auth-allow-plaintext"],
            f"--auth-file {empty!r} has no user:password line",
        )
        noPassword = files.write("nopassword", b"alice:secret\nbob:\n")
        self.assertUsageError(
            ["--auth-file", noPassword, "--auth-allow-plaintext"],
            f"--auth-file {noPassword!r}: line 2 has an empty password",
        )

    def test_needTLS(self) -> None:
        """
        Since AUTH is only offered over TLS, C{--auth-file} on plaintext
        listeners needs C{--tls-cert} or C{--auth-allow-plaintext}; an
        C{ssl:} listener brings TLS itself.
        """
        passwords = self.files.passwords
        message = (
            "--auth-file needs TLS, since AUTH is only offered over TLS: give"
            " --tls-cert (or listen on ssl:), or --auth-allow-plaintext"
        )
        self.assertUsageError(["--auth-file", passwords], message)
        self.assertUsageError(
            ["--auth-file", passwords, "-l", "unix:/tmp/s", "-l", "2525"], message
        )
        self.assertUsageError(
            ["--auth-file", passwords, "--auth-required"],
            message.replace("--auth-file", "--auth-required", 1),
        )
        options = self.parse(
            "--auth-file", passwords, "--tls-cert", self.files.combined
        )
        self.assertIs(options.factoryOptions()["auth_require_tls"], True)
        self.assertNotIn("AUTH CRAM-MD5 LOGIN PLAIN", self.ehlo(options))
        self.parse(
            "--auth-file",
            passwords,
            "-l",
            "tcp:2525",
            "-l",
            f"ssl:2465:privateKey={self.files.key}:certKey={self.files.cert}",
        )

    def test_authRequired(self) -> None:
        """
        C{--auth-required} refuses mail commands until the client has
        authenticated.
        """
        options = self.parse(
            "--auth-file", self.files.passwords, "--tls-cert", self.files.combined,
            "--auth-required",
        )  # fmt: skip
        self.assertIs(options.factoryOptions()["auth_required"], True)
        tester = SMTPTester(Sink(), **options.factoryOptions())
        tester.command("EHLO client.example")
        self.assertEqual(
            tester.command("MAIL FROM:<a@example.com>"),
            (530, "5.7.0 Authentication required"),
        )

    def test_authAllowPlaintext(self) -> None:
        """
        C{--auth-allow-plaintext} offers AUTH without TLS; with
        C{--auth-required}, the factory warns that passwords travel in clear.
        """
        options = self.parse(
            "--auth-file", self.files.passwords, "--auth-allow-plaintext"
        )
        self.assertIs(options.factoryOptions()["auth_require_tls"], False)
        self.assertEqual(self.flushWarnings(), [])
        self.parse(
            "--auth-file", self.files.passwords, "--auth-allow-plaintext",
            "--auth-required",
        )  # fmt: skip
        [warning] = self.flushWarnings()
        self.assertEqual(warning["category"], UserWarning)

    def test_needCredentials(self) -> None:
        """
        C{--auth-required} and C{--auth-allow-plaintext} need
        C{--auth-file}, unless the handler brings its own AUTH mechanisms.
        """
        for option in ["--auth-required", "--auth-allow-plaintext"]:
            self.assertUsageError(
                [option, "--tls-cert", self.files.combined],
                f"{option} needs --auth-file (or a handler with its own AUTH"
                " mechanisms)",
            )
        options = self.parse(
            "--handler", "tests.test_tap.OwnAuthHandler",
            "--tls-cert", self.files.combined, "--auth-required",
        )  # fmt: skip
        self.assertIsNone(options.checker)
        self.assertIs(options.factoryOptions()["auth_required"], True)
        self.assertUsageError(
            ["--handler", "tests.test_tap.OwnAuthHandler", "--auth-required"],
            "--auth-required needs TLS, since AUTH is only offered over TLS: give"
            " --tls-cert (or listen on ssl:), or --auth-allow-plaintext",
        )

    def test_noSideEffectOnError(self) -> None:
        """
        A bad combination is refused before the handler is made (the
        mailbox handler would create its directory).
        """
        directory = self.mktemp()
        self.assertUsageError(
            ["--auth-required", "--handler", "mailbox", directory],
            "--auth-required needs --auth-file (or a handler with its own AUTH"
            " mechanisms)",
        )
        self.assertFalse(os.path.exists(directory))


class TwistdUsageErrorTests(TestCase):
    """
    Tests for the way L{Options.parseOptions} reports usage errors under
    C{twistd}.
    """

    def setUp(self) -> None:
        self.output = io.StringIO()
        self.patch(sys, "stdout", self.output)
        self.patch(sys, "argv", ["/usr/bin/twistd", "-n", "--pidfile=", "smtpd"])

    def test_underTwistd(self) -> None:
        """
        Under C{twistd}, a usage error prints twistd's usage text (showing
        the options of C{smtpd}) and C{twistd -n: MESSAGE}, as twistd 26.10
        does, and exits with status 1 whatever the Twisted version.
        """
        config = ServerOptions()
        error = self.assertRaises(
            SystemExit,
            config.parseOptions,
            ["-n", "--pidfile=", "smtpd", "--max-connections", "0"],
        )
        self.assertEqual(error.code, 1)
        self.assertIsInstance(config.subOptions, Options)
        output = self.output.getvalue()
        self.assertEqual(
            output,
            f"{config}\n/usr/bin/twistd -n: --max-connections must be a whole"
            " number of at least 1, not '0'\n",
        )
        self.assertTrue(output.startswith("Usage: twistd [options]\n"), output)
        self.assertIn("--max-connections=", output)

    def test_otherParent(self) -> None:
        """
        Under another command than C{twistd} (such as C{twist}), the usage
        error is raised for that command to report.
        """

        class Outer(usage.Options):
            subCommands = [["smtpd", None, Options, "SMTP"]]

        self.assertRaises(
            UsageError, Outer().parseOptions, ["smtpd", "--max-connections", "0"]
        )
        self.assertEqual(self.output.getvalue(), "")


class HandlerOptionTests(TestCase):
    """
    Tests for C{--handler} and the handler's arguments.
    """

    def handler(self, *arguments: str):
        """
        Parse C{arguments} and return the handler of the factory made.
        """
        options = Options(reactor=MemoryReactorClock())
        options.parseOptions(["--hostname=mx", *arguments])
        return options["factory"].handler

    def assertUsageError(self, arguments: list[str], message: str) -> None:
        """
        Parsing C{arguments} fails with a L{UsageError} whose message
        contains C{message}.
        """
        error = self.assertRaises(UsageError, self.handler, *arguments)
        self.assertIn(message, str(error))

    def test_debuggingDefault(self) -> None:
        """
        The default handler is L{Debugging} on the process's real standard
        output, which C{twistd} does not redirect into the log.
        """
        self.patch(sys, "stdout", io.StringIO())
        handler = self.handler()
        self.assertIsInstance(handler, Debugging)
        self.assertIs(handler.stream, sys.__stdout__)

    def test_debuggingStreams(self) -> None:
        """
        C{debugging stdout} and C{debugging stderr} choose the real stream.
        """
        self.patch(sys, "stdout", io.StringIO())
        self.patch(sys, "stderr", io.StringIO())
        self.assertIs(self.handler("-c", "debugging", "stdout").stream, sys.__stdout__)
        self.assertIs(self.handler("-c", "debugging", "stderr").stream, sys.__stderr__)

    def test_debuggingBadArgument(self) -> None:
        """
        The debugging handler refuses other arguments with its own message.
        """
        self.assertUsageError(
            ["--handler", "debugging", "stdlog"],
            "Debugging takes one optional argument: stdout or stderr",
        )

    def test_sink(self) -> None:
        """
        C{sink}, in any case, is L{Sink}, which takes no argument.
        """
        self.assertIsInstance(self.handler("--handler", "sink"), Sink)
        self.assertIsInstance(self.handler("--handler", "SINK"), Sink)
        self.assertUsageError(
            ["--handler", "sink", "x"], "Sink handler does not accept arguments"
        )

    def test_inbox(self) -> None:
        """
        C{inbox} is an L{Inbox}, which takes no argument: the messages are
        kept for a web inbox (C{--web}) or for a program that reads them.
        """
        self.assertIsInstance(self.handler("--handler", "inbox"), Inbox)
        self.assertUsageError(
            ["--handler", "inbox", "x"], "Inbox handler does not accept arguments"
        )

    def test_mailbox(self) -> None:
        """
        C{mailbox DIRECTORY} is a L{Mailbox} storing into that directory;
        the directory is required.
        """
        directory = self.mktemp()
        handler = self.handler("--handler", "mailbox", directory)
        self.assertIsInstance(handler, Mailbox)
        self.assertEqual(handler.mail_dir, directory)
        self.assertUsageError(
            ["--handler", "mailbox"],
            "Mailbox takes exactly one argument: the Maildir directory",
        )

    def test_proxy(self) -> None:
        """
        C{proxy HOST PORT DOMAIN...} is a L{Proxy}.
        """
        handler = self.handler("-c", "proxy", "127.0.0.1", "2525", "example.com")
        self.assertIsInstance(handler, Proxy)
        self.assertUsageError(["-c", "proxy", "127.0.0.1"], "Proxy takes")

    def test_dottedPath(self) -> None:
        """
        A dotted path names a handler class, made without arguments when it
        has no C{from_cli}.
        """
        handler = self.handler("--handler", "tests.test_tap.PlainHandler")
        self.assertIsInstance(handler, PlainHandler)

    def test_noFromCliNoArguments(self) -> None:
        """
        A class without C{from_cli} takes no arguments.
        """
        self.assertUsageError(
            ["--handler", "tests.test_tap.PlainHandler", "a", "b"],
            "--handler tests.test_tap.PlainHandler takes no arguments, not 'a b'",
        )

    def test_fromCli(self) -> None:
        """
        The positional arguments go to C{from_cli}, in order, with a parser
        whose C{error} is a usage error.
        """
        handler = self.handler("-c", "tests.test_tap.CliHandler", "one", "two words")
        self.assertIsInstance(handler, CliHandler)
        self.assertEqual(handler.arguments, ("one", "two words"))
        self.assertIsInstance(handler.parser, HandlerArgumentParser)
        handler = self.handler("-c", "tests.test_tap.CliHandler")
        self.assertEqual(handler.arguments, ())

    def test_fromCliError(self) -> None:
        """
        C{parser.error(message)} in C{from_cli} is a usage error with that
        message.
        """
        error = self.assertRaises(
            UsageError, self.handler, "-c", "tests.test_tap.CliHandler", "bad"
        )
        self.assertEqual(str(error), "CliHandler does not like 'bad'")

    def test_parserError(self) -> None:
        """
        L{HandlerArgumentParser.error} raises L{UsageError} with the message.
        """
        error = self.assertRaises(UsageError, HandlerArgumentParser().error, "no good")
        self.assertEqual(str(error), "no good")

    def test_unknownName(self) -> None:
        """
        A name that is neither built in nor dotted is a usage error listing
        the built-in handlers.
        """
        self.assertUsageError(
            ["--handler", "debug"],
            "--handler must be one of debugging, sink, mailbox, proxy, amqp, inbox or"
            " a dotted path package.module.ClassName, not 'debug'",
        )

    def test_cannotImport(self) -> None:
        """
        A dotted path that cannot be imported is a usage error naming it.
        """
        self.assertUsageError(
            ["--handler", "no_such_package.Handler"],
            "--handler no_such_package.Handler: cannot import it",
        )
        self.assertUsageError(
            ["--handler", "tests.test_tap.NoSuchClass"],
            "--handler tests.test_tap.NoSuchClass: cannot import it",
        )

    def test_notAClass(self) -> None:
        """
        A dotted path to something that cannot be called is refused.
        """
        self.assertUsageError(
            ["--handler", "tests.test_tap.NOT_A_CLASS"],
            "--handler tests.test_tap.NOT_A_CLASS: not a class",
        )

    def test_constructorFails(self) -> None:
        """
        A handler whose constructor raises L{ValueError} is a usage error
        with its message.
        """
        self.assertUsageError(
            ["--handler", "tests.test_tap.BrokenHandler"],
            "--handler tests.test_tap.BrokenHandler: no configuration found",
        )

    def test_argumentsAfterOptions(self) -> None:
        """
        Handler arguments come after the options; anything after the first
        argument is an argument too.
        """
        handler = self.handler("-c", "tests.test_tap.CliHandler", "one", "--size", "5")
        self.assertEqual(handler.arguments, ("one", "--size", "5"))

    def test_optionsAfterArguments(self) -> None:
        """
        When a handler refuses its arguments and one of them is an option of
        smtpd (long, or short such as C{-p}), the error says that options
        go before the handler's arguments.
        """
        directory = self.mktemp()
        for arguments, message, option in [
            (
                ["--handler", "mailbox", directory, "--hostname", "x"],
                "Mailbox takes exactly one argument: the Maildir directory",
                "--hostname",
            ),
            (
                ["-c", "sink", "x", "-p", "2525"],
                "Sink handler does not accept arguments",
                "-p",
            ),
            (
                ["-c", "tests.test_tap.PlainHandler", "a", "--lmtp"],
                "--handler tests.test_tap.PlainHandler takes no arguments,"
                " not 'a --lmtp'",
                "--lmtp",
            ),
            (
                ["-c", "tests.test_tap.CliHandler", "bad", "--size=5"],
                "CliHandler does not like 'bad'",
                "--size=5",
            ),
        ]:
            error = self.assertRaises(UsageError, self.handler, *arguments)
            self.assertEqual(
                str(error),
                f"{message} ({option!r} is taken as an argument of the handler:"
                " give the options of smtpd before the handler's arguments)",
            )
        self.assertFalse(os.path.exists(directory))

    def test_noHintWithoutOptions(self) -> None:
        """
        A refused argument that is not an option (a negative number, a lone
        C{-}) gets the handler's message alone.
        """
        for argument in ["y", "-5", "-", "-x"]:
            error = self.assertRaises(
                UsageError, self.handler, "-c", "sink", "x", argument
            )
            self.assertEqual(str(error), "Sink handler does not accept arguments")


class MakeServiceTests(TestCase):
    """
    Tests for L{makeService}.
    """

    def test_listens(self) -> None:
        """
        The service listens on each endpoint given, with the backlog of
        1024 and the factory of the options.
        """
        reactor = MemoryReactorClock()
        options = Options(reactor=reactor)
        options.parseOptions(
            [
                "--hostname=mx",
                "-l",
                "tcp:2525:interface=127.0.0.1",
                "-p",
                "2526",
                "-l",
                "tcp:2527:backlog=10",
            ]
        )
        service = makeService(options)
        self.assertIsInstance(service, SMTPService)
        self.assertIs(service.factory, options["factory"])
        self.assertEqual(reactor.tcpServers, [])
        service.startService()
        self.addCleanup(service.stopService)
        factory = options["factory"]
        self.assertEqual(
            reactor.tcpServers,
            [
                (2525, factory, 1024, "127.0.0.1"),
                (2526, factory, 1024, ""),
                (2527, factory, 10, ""),
            ],
        )

    def test_endpointsMadeOnce(self) -> None:
        """
        Each description is made into an endpoint once, while the options
        are parsed, and the service listens on those very endpoints.
        """
        made = []

        def counting(reactor, description):
            made.append(description)
            return serverFromString(reactor, description)

        self.patch(_endpoints, "serverFromString", counting)
        reactor = MemoryReactorClock()
        options = Options(reactor=reactor)
        options.parseOptions(["--hostname=mx", "-l", "2525", "-l", "unix:/tmp/s"])
        self.assertEqual(made, ["tcp:2525:backlog=1024", "unix:/tmp/s:backlog=1024"])
        service = makeService(options)
        self.assertEqual(
            [child.endpoint for child in service],
            [listener.endpoint for listener in options.listeners],
        )
        service.startService()
        self.addCleanup(service.stopService)
        self.assertEqual(len(made), 2)
        self.assertEqual([port[0] for port in reactor.tcpServers], [2525])

    def test_defaultEndpoint(self) -> None:
        """
        Without C{--listen}, the service listens on 127.0.0.1 port 8025.
        """
        reactor = MemoryReactorClock()
        options = Options(reactor=reactor)
        options.parseOptions(["--hostname=mx", "--handler=sink"])
        service = makeService(options)
        service.startService()
        self.addCleanup(service.stopService)
        self.assertEqual(
            reactor.tcpServers, [(8025, options["factory"], 1024, "127.0.0.1")]
        )


class StartupErrorTests(TestCase):
    """
    Tests for the way the service of L{makeService} reports an endpoint
    that cannot listen: one line in the log, and L{StartupError}.
    """

    def service(self, reactor, *endpoints: str) -> SMTPService:
        """
        Make the service of C{twistd smtpd} listening on C{endpoints}.
        """
        options = Options(reactor=reactor)
        arguments = ["--hostname=mx", "--handler=sink"]
        for endpoint in endpoints:
            arguments += ["--port", endpoint]
        options.parseOptions(arguments)
        return makeService(options)

    def assertStartupError(self, start, message: str) -> None:
        """
        Calling C{start} raises L{StartupError} with C{message}, exit status
        1, and logs C{message} as one critical event without a traceback.
        """
        with capturedLogs() as events:
            error = self.assertRaises(StartupError, start)
        self.assertEqual(str(error), message)
        self.assertEqual(error.code, 1)
        self.assertIsInstance(error, SystemExit)
        self.assertIsInstance(error, Exception)
        self.assertEqual([formatEvent(event) for event in events], [message])
        self.assertEqual(events[0]["log_level"], LogLevel.critical)
        self.assertNotIn("log_failure", events[0])

    def test_addressInUse(self) -> None:
        """
        A port in use is reported when twistd starts the service as root,
        naming the endpoint as given.
        """
        failing = RaisingMemoryReactor(
            listenException=CannotListenError(
                "127.0.0.1", 2525, OSError(errno.EADDRINUSE, "Address already in use")
            )
        )
        service = self.service(failing, "tcp:2525:interface=127.0.0.1")
        self.assertStartupError(
            service.privilegedStartService,
            "smtpd: Address already in use: cannot listen on"
            " tcp:2525:interface=127.0.0.1",
        )

    def test_logNamespace(self) -> None:
        """
        The event is logged in the namespace C{twisted_smtpd.tap}, the
        module C{twistd smtpd} runs, as the documentation shows it.
        """
        failing = RaisingMemoryReactor(
            listenException=CannotListenError("127.0.0.1", 25, OSError("in use"))
        )
        service = self.service(failing, "tcp:25")
        with capturedLogs() as events:
            self.assertRaises(StartupError, service.startService)
        self.assertEqual(
            [event["log_namespace"] for event in events], ["twisted_smtpd.tap"]
        )

    def test_startService(self) -> None:
        """
        The same error is reported by C{startService} when
        C{privilegedStartService} was not called.
        """
        failing = RaisingMemoryReactor(
            listenException=CannotListenError(
                "192.0.2.1", 25, OSError(errno.EADDRNOTAVAIL, "Cannot assign")
            )
        )
        service = self.service(failing, "tcp:25:interface=192.0.2.1")
        self.assertStartupError(
            service.startService,
            "smtpd: Cannot assign: cannot listen on tcp:25:interface=192.0.2.1",
        )

    def test_secondEndpoint(self) -> None:
        """
        The endpoint named is the one that failed, after the others listen.
        """
        reactor = FailingPortReactor()
        service = self.service(reactor, "2525", "tcp:2526:interface=127.0.0.1")
        self.assertStartupError(
            service.privilegedStartService,
            "smtpd: Address already in use: cannot listen on"
            " tcp:2526:interface=127.0.0.1",
        )
        self.assertEqual([port[0] for port in reactor.tcpServers], [2525])

    def test_listensOnce(self) -> None:
        """
        C{startService} after C{privilegedStartService} (as twistd does,
        giving up root in between) does not listen again.
        """
        reactor = MemoryReactorClock()
        service = self.service(reactor, "2525", "2526")
        service.privilegedStartService()
        service.startService()
        self.addCleanup(service.stopService)
        self.assertEqual([port[0] for port in reactor.tcpServers], [2525, 2526])
        self.assertTrue(service.running)

    def test_reasons(self) -> None:
        """
        The reason given is the system's message for a socket error, or says
        which lock file another process holds for a Unix socket.
        """
        for error, reason in [
            (
                CannotListenError(
                    "999.1.1.1", 0, socket.gaierror(-2, "Name or service not known")
                ),
                "Name or service not known",
            ),
            (
                CannotListenError(None, b"/run/smtpd.sock", "Cannot acquire lock"),
                "another process holds its lock file /run/smtpd.sock.lock",
            ),
            (
                FileNotFoundError(errno.ENOENT, "No such file or directory"),
                "No such file or directory",
            ),
            (
                OverflowError("bind(): port must be 0-65535."),
                "bind(): port must be 0-65535.",
            ),
            (RuntimeError(), "RuntimeError"),
        ]:
            self.assertEqual(_listenFailure(error), reason)


class MaildirOwnerTests(TestCase):
    """
    Tests for the Maildir of C{--handler mailbox DIRECTORY}, created while
    the options are parsed, as root, and given by L{makeService} to the
    user that C{twistd --uid/--gid} switches to.
    """

    def setUp(self) -> None:
        self.chowned: list[tuple[str, int, int]] = []
        self.patch(os, "chown", lambda *arguments: self.chowned.append(arguments))
        self.patch(os, "geteuid", lambda: 0)
        self.directory = os.path.abspath(self.mktemp())

    def serve(self, twistdArguments: list[str], *arguments: str) -> Options:
        """
        Parse C{twistd TWISTDARGUMENTS smtpd --handler mailbox DIRECTORY}
        (or C{smtpd ARGUMENTS} if given) and make the service.

        @return: The options of C{smtpd}.
        """
        if not arguments:
            arguments = ("--handler", "mailbox", self.directory)
        config = ServerOptions()
        config.parseOptions(
            ["-n", "--pidfile=", *twistdArguments, "smtpd", "--hostname=mx"]
            + list(arguments)
        )
        makeService(config.subOptions)
        return config.subOptions

    def maildir(self, root: str) -> list[str]:
        """
        Return the directories of the Maildir at C{root}, in the order they
        are created.
        """
        return [root] + [os.path.join(root, sub) for sub in ("tmp", "new", "cur")]

    def test_newMaildir(self) -> None:
        """
        The directories of a new Maildir are given to the uid and gid of
        C{--uid} and C{--gid}, the directory first.
        """
        options = self.serve(["--uid", "1234", "--gid", "5678"])
        self.assertEqual(options.createdDirectories, self.maildir(self.directory))
        self.assertEqual(
            self.chowned, [(path, 1234, 5678) for path in self.maildir(self.directory)]
        )

    def test_newParents(self) -> None:
        """
        Parents of the Maildir created with it are given too, but not those
        that existed.
        """
        root = os.path.join(self.directory, "a", "box")
        self.serve(["--uid", "1234", "--gid", "5678"], "-c", "mailbox", root)
        expected = [self.directory, os.path.dirname(root), *self.maildir(root)]
        self.assertEqual(self.chowned, [(path, 1234, 5678) for path in expected])

    def test_existingKept(self) -> None:
        """
        Directories of the Maildir that existed keep their owner: only the
        missing ones are given.
        """
        os.makedirs(os.path.join(self.directory, "tmp"))
        self.serve(["--uid", "1234", "--gid", "5678"])
        self.assertEqual(
            self.chowned,
            [(os.path.join(self.directory, sub), 1234, 5678) for sub in ("new", "cur")],
        )
        self.chowned.clear()
        self.serve(["--uid", "1234", "--gid", "5678"])
        self.assertEqual(self.chowned, [])

    def test_userAlone(self) -> None:
        """
        C{--uid} alone, by name, gives the directories to that user and its
        group, which twistd switches to.
        """
        user = pwd.getpwuid(os.getuid())
        self.serve(["--uid", user.pw_name])
        self.assertEqual(
            self.chowned,
            [(path, user.pw_uid, user.pw_gid) for path in self.maildir(self.directory)],
        )

    def test_groupAlone(self) -> None:
        """
        C{--gid} alone gives the directories to that group only.
        """
        self.serve(["--gid", "5678"])
        self.assertEqual(
            self.chowned, [(path, -1, 5678) for path in self.maildir(self.directory)]
        )

    def test_mailboxSubclass(self) -> None:
        """
        A subclass of L{Mailbox} named by its dotted path, with the
        C{from_cli} of L{Mailbox}, gets its new Maildir given too.
        """
        self.serve(["--uid", "1234"], "-c", "tests.test_tap.OwnMailbox", self.directory)
        self.assertEqual(
            [path for path, _, _ in self.chowned], self.maildir(self.directory)
        )

    def test_notGiven(self) -> None:
        """
        Nothing is given without C{--uid} or C{--gid}, when not running as
        root (twistd cannot switch), outside C{twistd}, or for another
        handler.
        """
        self.serve([])
        self.assertEqual(self.chowned, [])
        self.patch(os, "geteuid", lambda: 1000)
        self.serve(["--uid", "1234"], "-c", "mailbox", self.mktemp())
        self.assertEqual(self.chowned, [])
        self.patch(os, "geteuid", lambda: 0)
        options = Options(reactor=MemoryReactorClock())
        options.parseOptions(["--hostname=mx", "-c", "mailbox", self.mktemp()])
        self.assertEqual(len(options.createdDirectories), 4)
        makeService(options)
        self.assertEqual(self.chowned, [])
        options = self.serve(["--uid", "1234"], "-c", "sink")
        self.assertEqual(options.createdDirectories, [])
        self.assertEqual(self.chowned, [])

    def test_cannotGive(self) -> None:
        """
        A directory that cannot be given is reported in one line, and
        twistd exits with status 1.
        """

        def refuse(path, uid, gid):
            raise PermissionError(errno.EPERM, "Operation not permitted")

        self.patch(os, "chown", refuse)
        with capturedLogs() as events:
            error = self.assertRaises(
                StartupError, self.serve, ["--uid", "1234", "--gid", "5678"]
            )
        message = (
            f"smtpd: cannot give the new directory {self.directory} to uid/gid"
            " 1234/5678: Operation not permitted"
        )
        self.assertEqual(str(error), message)
        self.assertEqual(error.code, 1)
        self.assertEqual([formatEvent(event) for event in events], [message])

    def test_switchedUser(self) -> None:
        """
        The user and group are read as twistd reads them, whether twistd
        kept them as given (numbers or names) or converted them.
        """
        user = pwd.getpwuid(os.getuid())
        for settings, expected in [
            ({"uid": 1234, "gid": 5678}, (1234, 5678)),
            ({"uid": "1234", "gid": "5678"}, (1234, 5678)),
            ({"uid": user.pw_name, "gid": None}, (user.pw_uid, user.pw_gid)),
            ({"uid": None, "gid": 5678}, (-1, 5678)),
            ({"uid": None, "gid": None}, None),
            ({"uid": "no-such-user-here", "gid": None}, None),
            ({}, None),
            (None, None),
        ]:
            self.assertEqual(_switchedUser(settings), expected, settings)


class MaildirCheckTests(TestCase):
    """
    Tests for the warning logged when the server, once started (as the user
    of C{twistd --uid}), cannot write to its Maildir.
    """

    def start(self, *arguments: str) -> list[str]:
        """
        Start the service of C{smtpd ARGUMENTS} on an in-memory reactor.

        @return: The messages logged while starting.
        """
        options = Options(reactor=MemoryReactorClock())
        options.parseOptions(["--hostname=mx", *arguments])
        service = makeService(options)
        with capturedLogs() as events:
            service.startService()
        self.addCleanup(service.stopService)
        return [
            formatEvent(event)
            for event in events
            if event["log_level"] >= LogLevel.warn
        ]

    def test_notWritable(self) -> None:
        """
        Each of C{tmp} and C{new} that this process cannot write to is named
        in a warning.
        """
        directory = os.path.abspath(self.mktemp())
        tmp, new = os.path.join(directory, "tmp"), os.path.join(directory, "new")
        both = os.W_OK | os.X_OK
        refused: list[str] = []
        checked: list[tuple[str, int]] = []

        def access(path, mode, *, effective_ids=False):
            checked.append((path, mode))
            return path not in refused

        self.patch(os, "access", access)
        for denied in ([tmp, new], [new]):
            refused[:] = denied
            checked.clear()
            self.assertEqual(
                self.start("-c", "mailbox", directory),
                [
                    f"smtpd: this process (uid {os.geteuid()}) cannot write to the"
                    f" Maildir directory {path}: every message will be refused"
                    " with 451"
                    for path in refused
                ],
            )
            self.assertEqual(checked, [(tmp, both), (new, both)])

    def test_writable(self) -> None:
        """
        No warning for a Maildir this process can write to, nor for other
        handlers.
        """
        self.assertEqual(self.start("-c", "mailbox", self.mktemp()), [])
        self.assertEqual(self.start("-c", "sink"), [])

    def test_relativeAfterChdir(self) -> None:
        """
        A relative Maildir is checked where the handler writes, not relative
        to the directory C{twistd --rundir} changed to before starting.
        """
        base = os.path.abspath(self.mktemp())
        os.makedirs(os.path.join(base, "run"))
        self.addCleanup(os.chdir, os.getcwd())
        os.chdir(base)
        options = Options(reactor=MemoryReactorClock())
        options.parseOptions(["--hostname=mx", "-c", "mailbox", "box"])
        service = makeService(options)
        os.chdir("run")
        with capturedLogs() as events:
            service.startService()
        self.addCleanup(service.stopService)
        self.assertEqual(
            [formatEvent(e) for e in events if e["log_level"] >= LogLevel.warn], []
        )


class PluginTests(TestCase):
    """
    Tests for the C{twistd} plugin in C{twisted/plugins}.
    """

    def test_found(self) -> None:
        """
        Twisted's plugin system finds the C{smtpd} service maker, whose
        options and service come from L{twisted_smtpd.tap}.
        """
        makers = [m for m in getPlugins(IServiceMaker) if m.tapname == "smtpd"]
        self.assertEqual(len(makers), 1)
        [maker] = makers
        self.assertIs(maker.options, Options)
        self.assertEqual(maker.description, "An SMTP/LMTP receiving server")
        self.assertIs(maker.makeService, makeService)


class LoggingOptionTests(TestCase):
    """
    Tests for C{--log-level}, C{--log-format} and the log observer that
    C{twistd smtpd} gives C{twistd}.
    """

    def parseUnder(self, *twistd: str, smtpd: tuple[str, ...] = ()) -> Options:
        """
        Parse C{twistd TWISTD... smtpd --hostname=mx SMTPD...} as twistd does,
        on an in-memory reactor.
        """
        reactor = MemoryReactorClock()
        config = ServerOptions()
        self.patch(Options, "__init__", _optionsOn(reactor))
        config.parseOptions([*twistd, "smtpd", "--hostname=mx", *smtpd])
        return config.subOptions

    def test_defaults(self) -> None:
        """
        The log level is info and the format twistd's text by default.
        """
        options = Options(reactor=MemoryReactorClock())
        options.parseOptions(["--hostname=mx"])
        self.assertEqual(
            (options["log-level"], options["log-format"]), ("info", "text")
        )

    def test_badValues(self) -> None:
        """
        An unknown level or format is a usage error naming the option.
        """
        for arguments, message in [
            (
                ["--log-level", "loud"],
                "--log-level must be one of debug, info,"
                " warn, error, critical, not 'loud'",
            ),
            (
                ["--log-format", "xml"],
                "--log-format must be one of text, json, not 'xml'",
            ),
        ]:
            options = Options(reactor=MemoryReactorClock())
            error = self.assertRaises(
                UsageError, options.parseOptions, ["--hostname=mx", *arguments]
            )
            self.assertEqual(str(error), message)

    def test_notWithLoggerOrSyslog(self) -> None:
        """
        C{--log-level} and C{--log-format} cannot change twistd's C{--logger}
        or C{--syslog}: a usage error says so.
        """
        self.patch(sys, "stdout", io.StringIO())
        for twistd, smtpd, message in [
            (
                ["--logger", "twisted_smtpd.log.textToStdout"],
                ["--log-level", "warn"],
                "--log-level cannot be used with twistd's --logger",
            ),
            (
                ["--syslog"],
                ["--log-format", "json"],
                "--log-format cannot be used with twistd's --syslog",
            ),
        ]:
            error = self.assertRaises(
                SystemExit, self.parseUnder, "-n", *twistd, smtpd=tuple(smtpd)
            )
            self.assertEqual(error.code, 1)
            self.assertIn(message, sys.stdout.getvalue())

    def test_observerOnApplication(self) -> None:
        """
        Under twistd, the service gives the application a L{LogFileObserver}
        as its L{ILogObserver} component, which twistd then logs through,
        writing to C{--logfile} with the level and format asked for.
        """
        self.addCleanup(signal.signal, signal.SIGUSR1, signal.getsignal(signal.SIGUSR1))
        path = self.mktemp()
        options = self.parseUnder(
            "-n",
            "--logfile",
            path,
            smtpd=("--log-level", "warn", "--log-format", "json"),
        )
        service = makeService(options)
        application = Application("smtpd")
        service.setServiceParent(application)
        observer = application.getComponent(ILogObserver)
        self.assertIsInstance(observer, LogFileObserver)
        self.assertIs(observer, service.logObserver)
        self.assertEqual(observer.minimumLevel, LogLevel.warn)
        observer({"log_format": "dropped", "log_level": LogLevel.info})
        observer({"log_format": "kept {n}", "n": 1, "log_level": LogLevel.error})
        observer._file.close()
        [line] = Path(path).read_text().splitlines()
        self.assertEqual(json.loads(line)["text"], "kept 1")

    def test_stdout(self) -> None:
        """
        With C{-n} and no C{--logfile}, the observer writes to standard
        output, as twistd would.
        """
        out = io.StringIO()
        self.patch(sys, "stdout", out)
        options = self.parseUnder("-n")
        self.assertIs(makeService(options).logObserver._file, out)

    def test_twistdDecides(self) -> None:
        """
        With twistd's C{--logger} or C{--syslog}, or without twistd, the
        service gives no observer: twistd (or the program) logs its own way.
        """
        self.patch(sys, "stdout", io.StringIO())
        for twistd in (["--logger", "twisted_smtpd.log.textToStdout"], ["--syslog"]):
            self.assertIsNone(makeService(self.parseUnder("-n", *twistd)).logObserver)
        options = Options(reactor=MemoryReactorClock())
        options.parseOptions(["--hostname=mx"])
        self.assertIsNone(makeService(options).logObserver)

    def test_loggerFactories(self) -> None:
        """
        The factories for twistd's C{--logger} make observers of standard
        output, in twistd's text and in JSON lines.
        """
        out = io.StringIO()
        self.patch(sys, "stdout", out)
        for factory, formatter in [(textToStdout, None), (jsonToStdout, jsonLine)]:
            observer = factory()
            self.assertIsInstance(observer, LogFileObserver)
            self.assertIs(observer._file, out)
            if formatter is not None:
                self.assertIs(observer._format, formatter)


def _optionsOn(reactor: MemoryReactorClock) -> Any:
    """
    An C{__init__} for L{Options} that twistd calls without arguments and
    that uses C{reactor}.
    """
    original = Options.__init__

    def __init__(self: Options, *, reactor: Any = reactor) -> None:
        original(self, reactor=reactor)

    return __init__
