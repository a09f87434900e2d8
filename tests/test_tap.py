"""
Tests for L{twisted_smtpd.tap}: the options of C{twistd smtpd} and the
service made from them, with an in-memory reactor.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import os
import sys
from pathlib import Path

import trustme
from twisted.application.service import IServiceMaker
from twisted.cred.checkers import FilePasswordDB
from twisted.cred.credentials import UsernamePassword
from twisted.cred.error import UnauthorizedLogin
from twisted.internet.ssl import Certificate, CertificateOptions
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.plugin import getPlugins
from twisted.python import usage
from twisted.python.usage import UsageError
from twisted.scripts.twistd import ServerOptions
from twisted.trial.unittest import TestCase

from twisted_smtpd import LMTP, SMTP, SMTPFactory
from twisted_smtpd.handlers import Debugging, Mailbox, Proxy, Sink
from twisted_smtpd.service import SMTPService
from twisted_smtpd.tap import HandlerArgumentParser, Options, makeService
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


NOT_A_CLASS = 42


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
                "decode_data": False,
                "timeout": 300,
                "command_call_limit": None,
                "bare_newline": "reject",
                "max_connections": None,
                "tls_context": None,
                "require_starttls": False,
                "implicit_tls": False,
                "portal": None,
                "auth_required": False,
                "auth_require_tls": True,
                "proxy_protocol_timeout": None,
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
            "--decode-data",
            "--command-call-limit=7",
            "--command-call-limit=mail=3",
            "--bare-newline=allow",
            "--handler=sink",
            "--lmtp",
            "--max-connections=10",
            "--proxy-protocol=3",
            f"--tls-cert={files.cert}",
            f"--tls-key={files.key}",
            f"--tls-chain={files.chain}",
            "--require-starttls",
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
                "decode_data": True,
                "timeout": None,
                "command_call_limit": {"*": 7, "MAIL": 3},
                "bare_newline": "allow",
                "max_connections": 10,
                "tls_context": tls,
                "require_starttls": True,
                "implicit_tls": False,
                "portal": options.checker,
                "auth_required": True,
                "auth_require_tls": False,
                "proxy_protocol_timeout": 3.0,
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
        self.assertUsageError(["--hostname=mx", "-p", "tcp:port=x"], "--listen")

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
    Tests for C{--lmtp}, C{--max-connections} and C{--proxy-protocol}.
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


class TLSOptionTests(_ParseMixin, TestCase):
    """
    Tests for C{--tls-cert}, C{--tls-key}, C{--tls-chain},
    C{--require-starttls} and C{--implicit-tls}.
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
        error.
        """
        error = self.assertRaises(UsageError, self.parse, "--tls-cert", self.files.cert)
        self.assertTrue(
            str(error).startswith(
                f"--tls-cert {self.files.cert!r} (no --tls-key): no usable"
                " certificate and private key: "
            ),
            str(error),
        )

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
            "--handler must be one of debugging, sink, mailbox, proxy or a dotted"
            " path package.module.ClassName, not 'debug'",
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
