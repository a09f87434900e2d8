"""
Tests for L{twisted_smtpd.tap}: the options of C{twistd smtpd} and the
service made from them, with an in-memory reactor.
"""

from __future__ import annotations

import io
import sys

from twisted.application.service import IServiceMaker
from twisted.internet.testing import MemoryReactorClock
from twisted.plugin import getPlugins
from twisted.python.usage import UsageError
from twisted.trial.unittest import TestCase

from twisted_smtpd import SMTPFactory
from twisted_smtpd.handlers import Debugging, Mailbox, Proxy, Sink
from twisted_smtpd.service import SMTPService
from twisted_smtpd.tap import HandlerArgumentParser, Options, makeService


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


NOT_A_CLASS = 42


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
                "hostname": "mx.example",
                "ident": None,
                "data_size_limit": 33554432,
                "enable_SMTPUTF8": False,
                "decode_data": False,
                "timeout": 300,
                "command_call_limit": None,
                "bare_newline": "reject",
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
        )
        self.assertEqual(
            options.factoryOptions(),
            {
                "hostname": "mx.example",
                "ident": "Test SMTP",
                "data_size_limit": 0,
                "enable_SMTPUTF8": True,
                "decode_data": True,
                "timeout": None,
                "command_call_limit": {"*": 7, "MAIL": 3},
                "bare_newline": "allow",
            },
        )
        server = options["factory"].buildProtocol(None)
        self.assertIsNone(server.data_size_limit)

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
