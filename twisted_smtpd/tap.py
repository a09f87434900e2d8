# -*- test-case-name: tests.test_tap -*-
"""
The C{twistd smtpd} command: options and service, e.g.::

    twistd -n smtpd --listen tcp:8025:interface=127.0.0.1 --handler sink

Every bad value or combination of options is reported as a
L{usage.UsageError} naming the option, so that C{twistd} prints it with the
usage text and exits with status 1, without a traceback and before anything
listens (L{Options.parseOptions} makes sure of the status on Twisted
versions whose C{twistd} exits with 0). What can only fail when the server
starts, such as a port already in use, is logged as one line and makes
C{twistd} exit with status 1 (L{StartupError}).
"""

from __future__ import annotations

import os
import sys
from typing import Any

from twisted.cred.checkers import FilePasswordDB
from twisted.python import usage

from twisted_smtpd import LMTP, SMTP, SMTPFactory
from twisted_smtpd._cli import (
    BUILTIN_HANDLERS,
    HandlerArgumentParser,
    callLimit,
    certificateOptions,
    handlerClass,
    helpText,
    makeHandler,
    makeListeners,
    networks,
    passwordChecker,
)
from twisted_smtpd._daemon import (
    CommandLineService,
    StartupError,
    giveCreatedDirectories,
    logObserverFor,
    missingMaildirDirectories,
)
from twisted_smtpd._endpoints import Listener
from twisted_smtpd._inboxdaemon import WebInboxCommandLineService
from twisted_smtpd._inboxweb import inboxWebService
from twisted_smtpd._metrics import serveMetrics
from twisted_smtpd._tapoptions import (
    COMPLETIONS,
    FLAG_OPTIONS,
    FLAGS,
    NEGATED_FLAGS,
    PARAMETERS,
    VALUE_OPTIONS,
)
from twisted_smtpd.service import DEFAULT_ENDPOINTS, SMTPService

__all__ = [
    "BUILTIN_HANDLERS",
    "HandlerArgumentParser",
    "Options",
    "StartupError",
    "handlerClass",
    "makeHandler",
    "makeService",
]

#: Endpoint types whose connections are plaintext until STARTTLS (or
#: C{--implicit-tls}); other types (C{ssl}, or a plugin's) may bring TLS.
_PLAINTEXT_ENDPOINTS = frozenset(["tcp", "tcp6", "unix", "systemd"])


#: The handler of C{--web} without C{--handler}.
_INBOX = "twisted_smtpd.handlers.Inbox"

#: The options that need C{--tls-cert}.
_NEED_CERT = ("tls-key", "tls-chain", "require-starttls", "implicit-tls", "requiretls")


class Options(usage.Options):
    """
    The options of C{twistd smtpd}.

    After parsing, C{self["factory"]} is the L{SMTPFactory} serving the
    handler, made with the keyword arguments L{factoryOptions} returns, and
    C{self["listen"]} the endpoint descriptions.

    @ivar reactor: The reactor the service will use.
    @ivar tlsContext: The TLS options made from C{--tls-cert}, C{--tls-key}
        and C{--tls-chain}, or C{None}.
    @ivar checker: The L{FilePasswordDB} reading C{--auth-file}, or
        C{None}.
    @ivar listeners: The endpoint of each description of C{self["listen"]},
        made once, for L{makeService}.
    @ivar webService: The service of the web inbox of C{--web}, or C{None}.
    @ivar createdDirectories: The directories that making the handler
        created (those of a new Maildir, parents first), which
        L{makeService} gives to the user of C{twistd --uid}.
    """

    synopsis = "[options] [handler arguments]"
    longdesc = (
        "Receive mail over SMTP (or LMTP) and give each message to a handler"
        " written for twisted_smtpd or aiosmtpd. The handler is a built-in one"
        " or a class given by its dotted path; the arguments after the options"
        " go to its from_cli() class method. Built-in handlers: debugging"
        " [stdout|stderr] prints each message; sink discards it; mailbox"
        " DIRECTORY stores it in a Maildir; proxy HOST PORT DOMAIN... relays it"
        " for those domains; amqp URL QUEUE hands it to RabbitMQ. Hashed"
        " password files and the other library options need a .tac file (see"
        " the README)."
    )

    optFlags = FLAGS
    optParameters = PARAMETERS
    compData = COMPLETIONS

    def __init__(self, *, reactor: Any = None) -> None:
        """
        @param reactor: The reactor to listen with and to run the server's
            timers on; the global one by default, as under C{twistd}.
        """
        super().__init__()
        self.reactor = reactor
        self.tlsContext: Any = None
        self.checker: FilePasswordDB | None = None
        self.listeners: list[Listener] = []
        self.createdDirectories: list[str] = []
        self.webService: Any = None
        self["listen"] = []
        self._listenOptions: list[str] = []
        self["command-call-limit"] = {}
        self["handlerArguments"] = []

    def parseOptions(self, options: list[str] | None = None) -> None:
        """
        Parse the command line.

        Under C{twistd}, a usage error is reported here as C{twistd} 26.10
        reports it (its usage text, then C{twistd ...: MESSAGE}), and the
        process exits with status 1: older versions of C{twistd} print the
        same but exit with status 0, which a service manager takes for
        success.

        @param options: The arguments after C{smtpd}; C{sys.argv[1:]} by
            default.
        @raise usage.UsageError: For a bad option, when not under C{twistd}.
        @raise SystemExit: For a bad option, under C{twistd}.
        """
        from twisted.application.app import ServerOptions

        try:
            super().parseOptions(options)
        except usage.UsageError as error:
            parent = getattr(self, "parent", None)
            if not isinstance(parent, ServerOptions):
                raise
            print(parent)
            print(f"{' '.join(sys.argv[0:2])}: {error}")
            sys.exit(1)

    @helpText
    def opt_listen(self, description: str) -> None:
        """
        An endpoint to listen on, e.g. tcp:8025:interface=127.0.0.1,
        tcp6:25, unix:/run/smtpd.sock, ssl:465:privateKey=KEY:certKey=CERT, or
        a bare port number (all interfaces). Repeat it to listen on several.
        [default: tcp:8025:interface=127.0.0.1]
        """
        self["listen"].append(description)
        self._listenOptions.append("--listen")

    opt_l = opt_listen

    @helpText
    def opt_port(self, description: str) -> None:
        """
        The same as --listen.
        """
        self["listen"].append(description)
        self._listenOptions.append("--port")

    opt_p = opt_port

    @helpText
    def opt_command_call_limit(self, value: str) -> None:
        """
        How many times a command may be sent per connection before 421:
        N for every command, or VERB=N for one (repeatable; with VERB=N
        alone, other commands get 20). [default: no limit]
        """
        verb, limit = callLimit(value)
        self["command-call-limit"][verb] = limit

    def parseArgs(self, *arguments: str) -> None:
        """
        Keep the positional arguments for the handler's C{from_cli}.
        """
        self["handlerArguments"] = list(arguments)

    def postOptions(self) -> None:
        """
        Check the endpoints and the combination of options, read the TLS and
        password files, make the handler and check the server options, so
        that every mistake is a usage error before anything starts.

        @raise usage.UsageError: For any bad value or combination.
        """
        if self.reactor is None:
            from twisted.internet import reactor

            self.reactor = reactor
        if not self["listen"]:
            self["listen"] = list(DEFAULT_ENDPOINTS)
        self.listeners = self._listeners()
        self._checkLogging()
        self.tlsContext = self._tlsOptions()
        path = self["auth-file"]
        self.checker = None if path is None else passwordChecker(path)
        if self["handler"] is None:
            self["handler"] = _INBOX if self["web"] else "debugging"
        cls = handlerClass(self["handler"])
        self._checkAuth(cls)
        missing = missingMaildirDirectories(cls, self["handlerArguments"])
        try:
            handler = makeHandler(self["handler"], self["handlerArguments"])
        except usage.UsageError as e:
            raise usage.UsageError(f"{e}{self._misplacedOptionsHint()}") from None
        if self["web"] is not None and self["web-maildir"] is not None:
            # The inbox's Maildir is made as a Mailbox's is: the user of
            # twistd --uid gets its new directories too.
            mailbox = handlerClass("mailbox")
            missing += missingMaildirDirectories(mailbox, [self["web-maildir"]])
        if self["web"] is not None:
            handler, self.webService = _webInbox(self, handler)
        self.createdDirectories = [d for d in missing if os.path.isdir(d)]
        try:
            self["factory"] = SMTPFactory(
                handler, reactor=self.reactor, **self.factoryOptions()
            )
        except (TypeError, ValueError) as e:
            raise usage.UsageError(str(e))

    def _misplacedOptionsHint(self) -> str:
        """
        Explain, after the error of a handler given more arguments than it
        takes, that options of C{smtpd} among them are not read as options.

        @return: The hint to add to the message, or C{""}.
        """
        for argument in self["handlerArguments"]:
            if (argument.startswith("--") and len(argument) > 2) or (
                argument[:1] == "-" and argument[1:2] in self.synonyms
            ):
                return (
                    f" ({argument!r} is taken as an argument of the handler:"
                    " give the options of smtpd before the handler's arguments)"
                )
        return ""

    def _checkLogging(self) -> None:
        """
        Refuse C{--log-level} and C{--log-format} where C{twistd} logs its
        own way (C{--logger}, C{--syslog}), which they cannot change.
        """
        parent = getattr(self, "parent", None)
        twistd = parent if isinstance(parent, dict) else {}
        chosen = [
            f"--{name}"
            for name, default in (("log-level", "info"), ("log-format", "text"))
            if self[name] != default
        ]
        for other in ("logger", "syslog"):
            if chosen and twistd.get(other):
                raise usage.UsageError(
                    f"{chosen[0]} cannot be used with twistd's --{other},"
                    " which logs its own way"
                )

    def _listeners(self) -> list[Listener]:
        """
        Parse each endpoint description once and make its endpoint (see
        L{makeListeners}), naming the option of each in messages.
        """
        options = self._listenOptions
        if len(options) != len(self["listen"]):
            options = ["--listen"] * len(self["listen"])
        parent = getattr(self, "parent", None)
        return makeListeners(
            self.reactor,
            list(zip(options, self["listen"], strict=True)),
            proxyProtocol=bool(self["proxy-protocol"]),
            twistd=parent if isinstance(parent, dict) else {},
        )

    def _tlsOptions(self) -> Any:
        """
        Make the TLS options of C{--tls-cert}, C{--tls-key} and
        C{--tls-chain}, and check the options that need them.

        @return: The options, or C{None} without C{--tls-cert}.
        """
        cert = self["tls-cert"]
        if cert is None:
            for option in _NEED_CERT:
                if self[option]:
                    raise usage.UsageError(f"--{option} needs --tls-cert")
            return None
        if self["require-starttls"] and self["implicit-tls"]:
            raise usage.UsageError(
                "--require-starttls cannot be used with --implicit-tls,"
                " whose clients have TLS from the start and never send STARTTLS"
            )
        return certificateOptions(cert, self["tls-key"], self["tls-chain"])

    def _checkAuth(self, cls: Any) -> None:
        """
        Refuse AUTH options that cannot work: C{--auth-required} or
        C{--auth-allow-plaintext} with nothing to check passwords, and AUTH
        that needs TLS where no listener can have it.

        @param cls: The handler's class, which may bring its own AUTH
            mechanisms (C{auth_<NAME>} methods or C{handle_AUTH}).
        """
        ownAuth = hasattr(cls, "handle_AUTH") or any(
            name.startswith("auth_") and callable(getattr(cls, name, None))
            for name in dir(cls)
        )
        if self.checker is None and not ownAuth:
            for option in ("auth-required", "auth-allow-plaintext"):
                if self[option]:
                    raise usage.UsageError(
                        f"--{option} needs --auth-file (or a handler with its"
                        " own AUTH mechanisms)"
                    )
            return
        if self["auth-allow-plaintext"] or self.tlsContext is not None:
            return
        kinds = {listener.description.kind for listener in self.listeners}
        if kinds - _PLAINTEXT_ENDPOINTS:
            return
        option = "--auth-file" if self.checker is not None else None
        if self["auth-required"]:
            option = "--auth-required"
        if option is not None:
            raise usage.UsageError(
                f"{option} needs TLS, since AUTH is only offered over TLS:"
                " give --tls-cert (or listen on ssl:), or --auth-allow-plaintext"
            )

    def factoryOptions(self) -> dict[str, Any]:
        """
        Return the options given, as keyword arguments of L{SMTPFactory}.
        """
        limits = dict(self["command-call-limit"])
        callLimit: int | dict[str, int] | None = limits or None
        if list(limits) == ["*"]:
            callLimit = limits["*"]
        exceptions = self["connection-limit-exceptions"]
        if isinstance(exceptions, str):
            # The default, which usage.Options does not coerce.
            exceptions = networks(exceptions)
        options = {name: bool(self[flag]) for flag, name in FLAG_OPTIONS.items()}
        options.update({name: not self[flag] for flag, name in NEGATED_FLAGS.items()})
        options.update({name: self[key] for key, name in VALUE_OPTIONS.items()})
        options.update(
            protocol=LMTP if self["lmtp"] else SMTP,
            timeout=self["timeout"] or None,
            command_call_limit=callLimit,
            connection_limit_exceptions=exceptions,
            tls_context=self.tlsContext,
            portal=self.checker,
            proxy_protocol_trusted=self["proxy-protocol-trusted"] or (),
        )
        return options


def _webInbox(options: Options, handler: Any) -> tuple[Any, Any]:
    """
    Make the web inbox of C{--web}.

    @return: The handler the server gets (C{handler}, or C{handler}
        followed by the inbox), and the service of the web inbox.
    @raise usage.UsageError: For a bad C{--web} or C{--web-auth-file}.
    """
    given = options["web-names"] or ""
    names = [n.strip() for n in given.split(",") if n.strip()]
    path = options["web-auth-file"]
    checker = None if path is None else passwordChecker(path)
    try:
        return inboxWebService(
            handler,
            options["web"],
            reactor=options.reactor,
            names=names,
            checker=checker,
            maxMessages=options["web-max-messages"],
            maxBytes=options["web-max-bytes"],
            maildir=options["web-maildir"],
        )
    except OSError as e:
        maildir = options["web-maildir"]
        raise usage.UsageError(f"--web-maildir {maildir!r}: {e}") from None
    except ValueError as e:
        raise usage.UsageError(f"--web {options['web']!r}: {e}") from None


def makeService(options: Options) -> SMTPService:
    """
    Make the service of C{twistd smtpd}: the handler of C{options} served on
    each C{--listen} endpoint.

    Running as root with C{twistd --uid/--gid}, the directories created
    while parsing (a new Maildir) are given to that user and group, which
    the server runs as once it listens.

    @param options: Parsed L{Options}.
    @return: The service for C{twistd} to start.
    @raise StartupError: If the directories cannot be given.
    """
    giveCreatedDirectories(options)
    parent = getattr(options, "parent", None)
    observer = None
    if isinstance(parent, dict):
        # Under twistd: log through an observer that costs little per event.
        observer = logObserverFor(
            parent, options["log-level"], options["log-format"], options.reactor
        )
    if options.webService is not None:
        service: CommandLineService = WebInboxCommandLineService(
            options["factory"],
            options.listeners,
            reactor=options.reactor,
            logObserver=observer,
            webService=options.webService,
            webDescription=options["web"],
        )
    else:
        service = CommandLineService(
            options["factory"],
            options.listeners,
            reactor=options.reactor,
            logObserver=observer,
        )
    if options["metrics"] is not None:
        serveMetrics(service, options["metrics"], options.reactor)
    return service
