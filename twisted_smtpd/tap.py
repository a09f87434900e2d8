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

import math
import os
import re
import sys
from pathlib import Path
from typing import Any

from twisted.cred.checkers import FilePasswordDB
from twisted.python import reflect, usage

from twisted_smtpd import LMTP, SMTP, SMTPFactory, tlsOptionsFromFiles
from twisted_smtpd._config import BARE_NEWLINE_POLICIES, DATA_SIZE_DEFAULT
from twisted_smtpd._daemon import (
    StartupError,
    _checkPort,
    _CommandLineService,
    _endpointError,
    _giveCreatedDirectories,
    _missingMaildirDirectories,
)
from twisted_smtpd.service import (
    DEFAULT_ENDPOINTS,
    SMTPService,
    _endpointArguments,
    endpointDescription,
    endpointType,
)

__all__ = [
    "BUILTIN_HANDLERS",
    "HandlerArgumentParser",
    "Options",
    "StartupError",
    "handlerClass",
    "makeHandler",
    "makeService",
]

#: The built-in handlers by their short names, in L{twisted_smtpd.handlers}.
BUILTIN_HANDLERS = {
    "debugging": "Debugging",
    "sink": "Sink",
    "mailbox": "Mailbox",
    "proxy": "Proxy",
}


#: Endpoint types whose connections are plaintext until STARTTLS (or
#: C{--implicit-tls}); other types (C{ssl}, or a plugin's) may bring TLS.
_PLAINTEXT_ENDPOINTS = frozenset(["tcp", "tcp6", "unix", "systemd"])

#: Endpoint types whose first argument (or C{port=}) is a TCP port number.
_PORT_ENDPOINTS = frozenset(["tcp", "tcp6", "ssl"])

# The first line of a PEM private key: PRIVATE KEY, RSA PRIVATE KEY,
# EC PRIVATE KEY, ENCRYPTED PRIVATE KEY...
_PRIVATE_KEY = re.compile(rb"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----")


def _number(option: str, kind: type, minimum: float, positive: bool = False) -> Any:
    """
    Make a coercer for C{optParameters} that names C{option} in its error
    (Twisted's own message for a failed coercion does not).

    @param positive: Refuse C{minimum} itself (which should then be 0).
    """

    what = "a whole number" if kind is int else "a number"
    bound = "greater than" if positive else "of at least"

    def coerce(value: str) -> Any:
        try:
            number = kind(value)
        except ValueError:
            number = None
        if (
            number is None
            or not math.isfinite(number)
            or number < minimum
            or (positive and number == minimum)
        ):
            raise usage.UsageError(
                f"--{option} must be {what} {bound} {minimum}, not {value!r}"
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
    @ivar tlsContext: The TLS options made from C{--tls-cert}, C{--tls-key}
        and C{--tls-chain}, or C{None}.
    @ivar checker: The L{FilePasswordDB} reading C{--auth-file}, or
        C{None}.
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
        " for those domains. Hashed password files and the other library"
        " options need a .tac file (see the README)."
    )

    optFlags = [
        [
            "lmtp",
            None,
            "Speak LMTP (RFC 2033) instead of SMTP: clients greet with LHLO and"
            " get one reply per recipient after the message.",
        ],
        ["smtputf8", None, "Offer SMTPUTF8 (RFC 6531): UTF-8 addresses and headers."],
        [
            "decode-data",
            None,
            "Give handlers the message as str (ASCII, or UTF-8 with SMTPUTF8)"
            " and do not offer 8BITMIME.",
        ],
        [
            "require-starttls",
            None,
            "Refuse every command but EHLO (LHLO), NOOP, STARTTLS and QUIT with"
            " 530 until the client has started TLS. Needs --tls-cert.",
        ],
        [
            "implicit-tls",
            None,
            "Start TLS as soon as a client connects (RFC 8314, port 465) on the"
            " plain listeners (tcp, unix...), after the PROXY header if any;"
            " ssl: endpoints have TLS anyway. Needs --tls-cert.",
        ],
        [
            "auth-required",
            None,
            "Refuse MAIL, RCPT, DATA, VRFY and HELP with 530 until the client"
            " has authenticated.",
        ],
        [
            "auth-allow-plaintext",
            None,
            "Offer AUTH without TLS too, which lets passwords travel in clear."
            " [default: AUTH only over TLS]",
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
        [
            "max-connections",
            None,
            None,
            "The most clients served at once; one more gets 421 and is"
            " disconnected. [default: no limit]",
            _number("max-connections", int, 1),
        ],
        [
            "tls-cert",
            None,
            None,
            "A PEM file with the server's certificate (and its private key and"
            " intermediate certificates, unless given apart): offers STARTTLS.",
        ],
        [
            "tls-key",
            None,
            None,
            "A PEM file with the private key of --tls-cert, if not in that file.",
        ],
        [
            "tls-chain",
            None,
            None,
            "A PEM file with the intermediate certificates to send after"
            " --tls-cert, if not in that file.",
        ],
        [
            "auth-file",
            None,
            None,
            "Offer AUTH PLAIN, LOGIN and CRAM-MD5, checking the passwords in this"
            " file of user:password lines (plaintext; keep it mode 600), read by"
            " twisted.cred's FilePasswordDB when the server starts and again"
            " when it changes. For hashed passwords, give FilePasswordDB(path,"
            " hash=...) as portal= in a .tac file (see the README); CRAM-MD5"
            " then cannot be offered.",
        ],
        [
            "proxy-protocol",
            None,
            None,
            "Read a PROXY protocol header (v1 or v2) at the start of every"
            " connection, giving the real client's address; a connection"
            " without one within this many seconds is dropped. Only for"
            " listeners that nothing but the proxy can reach. [default: off]",
            _number("proxy-protocol", float, 0, positive=True),
        ],
    ]

    compData = usage.Completions(
        optActions={
            "handler": usage.CompleteList(list(BUILTIN_HANDLERS)),
            "bare-newline": usage.CompleteList(list(BARE_NEWLINE_POLICIES)),
            "tls-cert": usage.CompleteFiles("*.pem"),
            "tls-key": usage.CompleteFiles("*.pem"),
            "tls-chain": usage.CompleteFiles("*.pem"),
            "auth-file": usage.CompleteFiles(),
        },
    )

    def __init__(self, *, reactor: Any = None) -> None:
        """
        @param reactor: The reactor to listen with and to run the server's
            timers on; the global one by default, as under C{twistd}.
        """
        super().__init__()
        self.reactor = reactor
        self.tlsContext: Any = None
        self.checker: FilePasswordDB | None = None
        self.createdDirectories: list[str] = []
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

    @_helpText
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

    @_helpText
    def opt_port(self, description: str) -> None:
        """
        The same as --listen.
        """
        self["listen"].append(description)
        self._listenOptions.append("--port")

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
        self._checkEndpoints()
        self.tlsContext = self._tlsOptions()
        self.checker = self._passwordFile()
        cls = handlerClass(self["handler"])
        self._checkAuth(cls)
        missing = _missingMaildirDirectories(cls, self["handlerArguments"])
        try:
            handler = makeHandler(self["handler"], self["handlerArguments"])
        except usage.UsageError as e:
            raise usage.UsageError(f"{e}{self._misplacedOptionsHint()}") from None
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

    def _checkEndpoints(self) -> None:
        """
        Refuse endpoint descriptions that Twisted cannot parse or that
        cannot work (a port number out of range, a Unix socket in a missing
        directory or given twice), and C{haproxy:} endpoints with
        C{--proxy-protocol}.
        """
        from twisted.internet.endpoints import serverFromString

        options = self._listenOptions
        if len(options) != len(self["listen"]):
            options = ["--listen"] * len(self["listen"])
        sockets: dict[str, str] = {}
        for option, description in zip(options, self["listen"], strict=True):
            given = f"{option} {description!r}"
            try:
                serverFromString(self.reactor, endpointDescription(description))
            except Exception as e:
                raise usage.UsageError(_endpointError(given, description, e))
            kind, positional, keywords = _endpointArguments(description)
            if kind in _PORT_ENDPOINTS:
                _checkPort(given, keywords.get("port", (positional or [None])[0]))
            elif kind == "unix":
                path = keywords.get("address", (positional or [""])[0])
                self._checkUnixSocket(given, path, sockets)
            if self["proxy-protocol"] and description.startswith("haproxy:"):
                raise usage.UsageError(
                    f"--proxy-protocol cannot be used with {given}: a haproxy:"
                    " endpoint reads the PROXY header itself"
                )

    def _checkUnixSocket(self, given: str, path: str, sockets: dict[str, str]) -> None:
        """
        Refuse a Unix socket whose directory does not exist (Twisted would
        fail to make its lock file there) or that another C{--listen}
        already gave (the second could not take the lock).

        @param given: The option and description, for the message.
        @param path: The path of the socket.
        @param sockets: The sockets given so far, by absolute path; updated.
        """
        if path.startswith("\0"):
            return  # Linux's abstract namespace: no file.
        parent = getattr(self, "parent", None)
        twistd = parent if isinstance(parent, dict) else {}
        if twistd.get("chroot"):
            return  # The path is inside the chroot: nothing to check here.
        # twistd changes to --rundir before it listens.
        where = os.path.abspath(os.path.join(twistd.get("rundir") or ".", path))
        if where in sockets:
            raise usage.UsageError(f"{given} is the same socket as {sockets[where]}")
        sockets[where] = given
        directory = os.path.dirname(where)
        if not os.path.isdir(directory):
            raise usage.UsageError(
                f"{given}: the directory {directory!r} of the socket does not exist"
            )

    def _tlsOptions(self) -> Any:
        """
        Make the TLS options of C{--tls-cert}, C{--tls-key} and
        C{--tls-chain}, and check the options that need them.

        @return: The options, or C{None} without C{--tls-cert}.
        """
        cert, key, chain = self["tls-cert"], self["tls-key"], self["tls-chain"]
        if cert is None:
            for option in ("tls-key", "tls-chain", "require-starttls", "implicit-tls"):
                if self[option]:
                    raise usage.UsageError(f"--{option} needs --tls-cert")
            return None
        if self["require-starttls"] and self["implicit-tls"]:
            raise usage.UsageError(
                "--require-starttls cannot be used with --implicit-tls,"
                " whose clients have TLS from the start and never send STARTTLS"
            )
        certPEM = _readFile("tls-cert", cert)
        if key is None and not _PRIVATE_KEY.search(certPEM):
            raise usage.UsageError(
                f"--tls-cert {cert!r} holds no private key"
                " (-----BEGIN PRIVATE KEY-----): give the file of its key with"
                " --tls-key"
            )
        if key is not None and not _PRIVATE_KEY.search(_readFile("tls-key", key)):
            raise usage.UsageError(
                f"--tls-key {key!r} holds no PEM private key"
                " (-----BEGIN PRIVATE KEY-----)"
            )
        try:
            options = tlsOptionsFromFiles(cert, key)
        except Exception as e:
            given = f"--tls-cert {cert!r}"
            given += " (no --tls-key)" if key is None else f" with --tls-key {key!r}"
            raise usage.UsageError(f"{given}: {e}")
        if chain is None:
            return options
        if b"-----BEGIN CERTIFICATE-----" not in _readFile("tls-chain", chain):
            raise usage.UsageError(
                f"--tls-chain {chain!r} holds no PEM certificate"
                " (-----BEGIN CERTIFICATE-----)"
            )
        try:
            return tlsOptionsFromFiles(cert, key, chain)
        except Exception as e:
            raise usage.UsageError(f"--tls-chain {chain!r}: {e}")

    def _passwordFile(self) -> FilePasswordDB | None:
        """
        Check the password file of C{--auth-file} and make its checker.

        The checker reads the file now, while C{twistd} still runs as the
        user who started it (the file may be readable by root only), and
        again whenever the file's modification time changes.

        @return: The checker, or C{None} without C{--auth-file}.
        """
        path = self["auth-file"]
        if path is None:
            return None
        users = 0
        # The same reading as FilePasswordDB's: user and password are the
        # first two fields of a line split on ":", trailing blanks dropped.
        for number, line in enumerate(_readFile("auth-file", path).splitlines(), 1):
            fields = line.rstrip().split(b":")
            if len(fields) < 2:
                continue
            if not fields[1]:
                raise usage.UsageError(
                    f"--auth-file {path!r}: line {number} has an empty password"
                )
            users += 1
        if not users:
            raise usage.UsageError(f"--auth-file {path!r} has no user:password line")
        # An absolute path: twistd may change directory (--rundir).
        checker = FilePasswordDB(os.path.abspath(path), cache=True)
        try:
            checker.getUser(b"")
        except KeyError:
            pass
        return checker

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
        if any(endpointType(d) not in _PLAINTEXT_ENDPOINTS for d in self["listen"]):
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
        return {
            "protocol": LMTP if self["lmtp"] else SMTP,
            "hostname": self["hostname"],
            "ident": self["ident"],
            "data_size_limit": self["size"],
            "enable_SMTPUTF8": bool(self["smtputf8"]),
            "decode_data": bool(self["decode-data"]),
            "timeout": self["timeout"] or None,
            "command_call_limit": callLimit,
            "bare_newline": self["bare-newline"],
            "max_connections": self["max-connections"],
            "tls_context": self.tlsContext,
            "require_starttls": bool(self["require-starttls"]),
            "implicit_tls": bool(self["implicit-tls"]),
            "portal": self.checker,
            "auth_required": bool(self["auth-required"]),
            "auth_require_tls": not self["auth-allow-plaintext"],
            "proxy_protocol_timeout": self["proxy-protocol"],
        }


def _readFile(option: str, path: str) -> bytes:
    """
    Read the file given to C{--option}.

    @raise usage.UsageError: If it cannot be read.
    """
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise usage.UsageError(
            f"--{option} {path!r}: cannot read it: {e.strerror or e}"
        )


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

    Running as root with C{twistd --uid/--gid}, the directories created
    while parsing (a new Maildir) are given to that user and group, which
    the server runs as once it listens.

    @param options: Parsed L{Options}.
    @return: The service for C{twistd} to start.
    @raise StartupError: If the directories cannot be given.
    """
    _giveCreatedDirectories(options)
    return _CommandLineService(
        options["factory"], options["listen"], reactor=options.reactor
    )
