# -*- test-case-name: tests.test_tap -*-
"""
The C{twistd smtpd} command: options and service.

    twistd -n smtpd --listen tcp:8025:interface=127.0.0.1 --handler sink

Every bad value is reported as a L{usage.UsageError} naming the option, so
that C{twistd} prints it with the usage text and exits, without a traceback.
"""

from __future__ import annotations

import math
import sys
from typing import Any

from twisted.python import reflect, usage

from twisted_smtpd._config import BARE_NEWLINE_POLICIES, DATA_SIZE_DEFAULT
from twisted_smtpd._factory import SMTPFactory
from twisted_smtpd.service import DEFAULT_ENDPOINTS, SMTPService, endpointDescription

#: The built-in handlers by their short names, in L{twisted_smtpd.handlers}.
BUILTIN_HANDLERS = {
    "debugging": "Debugging",
    "sink": "Sink",
    "mailbox": "Mailbox",
    "proxy": "Proxy",
}


def _number(option: str, kind: type, minimum: float) -> Any:
    """
    Make a coercer for C{optParameters} that names C{option} in its error
    (Twisted's own message for a failed coercion does not).
    """

    what = "a whole number" if kind is int else "a number"

    def coerce(value: str) -> Any:
        try:
            number = kind(value)
        except ValueError:
            number = None
        if number is None or not math.isfinite(number) or number < minimum:
            raise usage.UsageError(
                f"--{option} must be {what} of at least {minimum}, not {value!r}"
            )
        return number

    coerce.coerceDoc = ""  # type: ignore[attr-defined]
    return coerce


def _choice(option: str, choices: tuple[str, ...]) -> Any:
    """
    Make a coercer for C{optParameters} that accepts one of C{choices}.
    """

    def coerce(value: str) -> str:
        if value not in choices:
            raise usage.UsageError(
                f"--{option} must be one of {', '.join(choices)}, not {value!r}"
            )
        return value

    coerce.coerceDoc = ""  # type: ignore[attr-defined]
    return coerce


def _helpText(method: Any) -> Any:
    """
    Fold the docstring of an C{opt_} method into one line, so that C{--help}
    wraps it without the indentation of the source.
    """
    method.__doc__ = " ".join(method.__doc__.split())
    return method


class HandlerArgumentParser:
    """
    What a handler's C{from_cli(parser, *args)} gets as C{parser}: aiosmtpd
    passes an C{argparse} parser, whose C{error} method is the one handlers
    call.
    """

    def error(self, message: str) -> None:
        """
        Refuse the handler's arguments.

        @raise usage.UsageError: Always, with C{message}.
        """
        raise usage.UsageError(message)


class Options(usage.Options):
    """
    The options of C{twistd smtpd}.

    After parsing, C{self["factory"]} is the L{SMTPFactory} serving the
    handler, made with the keyword arguments L{factoryOptions} returns, and
    C{self["listen"]} the endpoint descriptions.

    @ivar reactor: The reactor the service will use.
    """

    synopsis = "[options] [handler arguments]"
    longdesc = (
        "Receive mail over SMTP and give each message to a handler written for"
        " twisted_smtpd or aiosmtpd. The handler is a built-in one or a class"
        " given by its dotted path; the arguments after the options go to its"
        " from_cli() class method. Built-in handlers: debugging [stdout|stderr]"
        " prints each message; sink discards it; mailbox DIRECTORY stores it in"
        " a Maildir; proxy HOST PORT DOMAIN... relays it for those domains."
    )

    optFlags = [
        ["smtputf8", None, "Offer SMTPUTF8 (RFC 6531): UTF-8 addresses and headers."],
        [
            "decode-data",
            None,
            "Give handlers the message as str (ASCII, or UTF-8 with SMTPUTF8)"
            " and do not offer 8BITMIME.",
        ],
    ]

    optParameters = [
        [
            "handler",
            "c",
            "debugging",
            "The handler: debugging, sink, mailbox, proxy, or"
            " package.module.ClassName.",
        ],
        [
            "hostname",
            None,
            None,
            "The server's name in its greeting and EHLO reply"
            " [default: this machine's FQDN].",
        ],
        [
            "ident",
            None,
            None,
            "The software name in the 220 greeting [default: twisted_smtpd VERSION].",
        ],
        [
            "size",
            None,
            DATA_SIZE_DEFAULT,
            "The largest message accepted, in octets; 0 for no limit.",
            _number("size", int, 0),
        ],
        [
            "timeout",
            None,
            300,
            "Seconds a client may stay idle before 421 and disconnection;"
            " 0 for no timeout.",
            _number("timeout", float, 0),
        ],
        [
            "bare-newline",
            None,
            "reject",
            "What to do with a CR or LF not part of a CRLF in a message:"
            " reject (550) or allow.",
            _choice("bare-newline", BARE_NEWLINE_POLICIES),
        ],
    ]

    compData = usage.Completions(
        optActions={
            "handler": usage.CompleteList(list(BUILTIN_HANDLERS)),
            "bare-newline": usage.CompleteList(list(BARE_NEWLINE_POLICIES)),
        },
    )

    def __init__(self, *, reactor: Any = None) -> None:
        """
        @param reactor: The reactor to listen with and to run the server's
            timers on; the global one by default, as under C{twistd}.
        """
        super().__init__()
        self.reactor = reactor
        self["listen"] = []
        self["command-call-limit"] = {}
        self["handlerArguments"] = []

    @_helpText
    def opt_listen(self, description: str) -> None:
        """
        An endpoint to listen on, e.g. tcp:8025:interface=127.0.0.1,
        tcp6:25, unix:/run/smtpd.sock, ssl:465:privateKey=KEY:certKey=CERT, or
        a bare port number (all interfaces). Repeat it to listen on several.
        [default: tcp:8025:interface=127.0.0.1]
        """
        self["listen"].append(description)

    opt_l = opt_listen

    @_helpText
    def opt_port(self, description: str) -> None:
        """
        The same as --listen.
        """
        self.opt_listen(description)

    opt_p = opt_port

    @_helpText
    def opt_command_call_limit(self, value: str) -> None:
        """
        How many times a command may be sent per connection before 421:
        N for every command, or VERB=N for one (repeatable; with VERB=N
        alone, other commands get 20). [default: no limit]
        """
        verb, sep, number = value.rpartition("=")
        if not sep:
            verb = "*"
        elif verb != "*" and not (verb.isascii() and verb.isalpha()):
            raise usage.UsageError(
                f"--command-call-limit must be N or VERB=N, not {value!r}"
            )
        if not (number.isascii() and number.isdigit() and int(number) >= 1):
            raise usage.UsageError(
                f"--command-call-limit needs a whole number of at least 1,"
                f" not {value!r}"
            )
        self["command-call-limit"][verb.upper()] = int(number)

    def parseArgs(self, *arguments: str) -> None:
        """
        Keep the positional arguments for the handler's C{from_cli}.
        """
        self["handlerArguments"] = list(arguments)

    def postOptions(self) -> None:
        """
        Check the endpoints, make the handler and check the server options,
        so that every mistake is a usage error before anything starts.

        @raise usage.UsageError: For any bad value.
        """
        from twisted.internet.endpoints import serverFromString

        if self.reactor is None:
            from twisted.internet import reactor

            self.reactor = reactor
        if not self["listen"]:
            self["listen"] = list(DEFAULT_ENDPOINTS)
        for description in self["listen"]:
            try:
                serverFromString(self.reactor, endpointDescription(description))
            except Exception as e:
                raise usage.UsageError(
                    f"--listen {description!r} is not a valid endpoint: {e}"
                )
        handler = makeHandler(self["handler"], self["handlerArguments"])
        try:
            self["factory"] = SMTPFactory(
                handler, reactor=self.reactor, **self.factoryOptions()
            )
        except (TypeError, ValueError) as e:
            raise usage.UsageError(str(e))

    def factoryOptions(self) -> dict[str, Any]:
        """
        Return the options given, as keyword arguments of L{SMTPFactory}.
        """
        limits = dict(self["command-call-limit"])
        callLimit: int | dict[str, int] | None = limits or None
        if list(limits) == ["*"]:
            callLimit = limits["*"]
        return {
            "hostname": self["hostname"],
            "ident": self["ident"],
            "data_size_limit": self["size"],
            "enable_SMTPUTF8": bool(self["smtputf8"]),
            "decode_data": bool(self["decode-data"]),
            "timeout": self["timeout"] or None,
            "command_call_limit": callLimit,
            "bare_newline": self["bare-newline"],
        }


def handlerClass(name: str) -> Any:
    """
    Find a handler class by its short name or dotted path.

    @param name: C{"debugging"}, C{"sink"}, C{"mailbox"}, or a dotted path
        such as C{"mypackage.handlers.Archive"}.
    @return: The class (or other callable that makes a handler).
    @raise usage.UsageError: If there is no such class.
    """
    builtin = BUILTIN_HANDLERS.get(name.lower())
    if builtin is not None:
        from twisted_smtpd import handlers

        return getattr(handlers, builtin)
    if "." not in name:
        raise usage.UsageError(
            f"--handler must be one of {', '.join(BUILTIN_HANDLERS)}"
            f" or a dotted path package.module.ClassName, not {name!r}"
        )
    try:
        found = reflect.namedAny(name)
    except Exception as e:
        raise usage.UsageError(
            f"--handler {name}: cannot import it ({type(e).__name__}: {e});"
            " is its directory on PYTHONPATH?"
        )
    if not callable(found):
        raise usage.UsageError(f"--handler {name}: not a class")
    return found


def makeHandler(name: str, arguments: list[str]) -> Any:
    """
    Make the handler named by C{--handler}, as aiosmtpd's command line does:
    with C{cls.from_cli(parser, *arguments)} when the class has it, else with
    C{cls()} and no arguments allowed.

    The built-in debugging handler writes to the process's real standard
    output (or error), so that its output stays readable under
    C{twistd -n}, which sends C{sys.stdout} to the log.

    @param name: The value of C{--handler}.
    @param arguments: The positional arguments of the command line.
    @return: The handler.
    @raise usage.UsageError: If the class refuses the arguments or cannot be
        made.
    """
    cls = handlerClass(name)
    if name.lower() == "debugging":
        return _debuggingHandler(cls, arguments)
    fromCli = getattr(cls, "from_cli", None)
    if fromCli is None and arguments:
        raise usage.UsageError(
            f"--handler {name} takes no arguments, not {' '.join(arguments)!r}"
        )
    try:
        if fromCli is None:
            return cls()
        return fromCli(HandlerArgumentParser(), *arguments)
    except usage.UsageError:
        raise
    except (TypeError, ValueError, OSError) as e:
        raise usage.UsageError(f"--handler {name}: {e}")


def _debuggingHandler(cls: Any, arguments: list[str]) -> Any:
    """
    Make the built-in debugging handler on the process's real C{stdout} (the
    default) or C{stderr}, after its C{from_cli} checked the arguments.
    """
    cls.from_cli(HandlerArgumentParser(), *arguments)
    return cls(sys.__stderr__ if arguments == ["stderr"] else sys.__stdout__)


def makeService(options: Options) -> SMTPService:
    """
    Make the service of C{twistd smtpd}: the handler of C{options} served on
    each C{--listen} endpoint.

    @param options: Parsed L{Options}.
    @return: The service for C{twistd} to start.
    """
    return SMTPService(options["factory"], options["listen"], reactor=options.reactor)
