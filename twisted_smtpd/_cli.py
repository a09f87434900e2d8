# -*- test-case-name: tests.test_tap -*-
"""
What the options of C{twistd smtpd} name, checked and made once: the
endpoints of C{--listen}, the TLS options of C{--tls-cert}, C{--tls-key}
and C{--tls-chain}, the password checker of C{--auth-file}, the handler of
C{--handler}; and the coercers of the option table.

Everything that cannot work is a L{usage.UsageError} that names the option
as given, so that C{twistd} reports it before anything starts listening.
"""

from __future__ import annotations

import math
import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from twisted.cred.checkers import FilePasswordDB
from twisted.internet.ssl import CertificateOptions
from twisted.python import reflect, usage

from twisted_smtpd._clientlimit import exceptionNetworks
from twisted_smtpd._endpoints import Description, Listener
from twisted_smtpd._tls import tlsOptionsFromFiles

#: Endpoint types whose first argument (or C{port=}) is a TCP port number.
_PORT_ENDPOINTS = frozenset(["tcp", "tcp6", "ssl"])

# The first line of a PEM private key: PRIVATE KEY, RSA PRIVATE KEY,
# EC PRIVATE KEY, ENCRYPTED PRIVATE KEY...
_PRIVATE_KEY = re.compile(rb"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----")


def number(option: str, kind: type, minimum: float, positive: bool = False) -> Any:
    """
    Make a coercer for C{optParameters} that names C{option} in its error
    (Twisted's own message for a failed coercion does not).

    @param option: The option's name, without C{--}.
    @param kind: C{int} or C{float}.
    @param minimum: The smallest value accepted.
    @param positive: Refuse C{minimum} itself (which should then be 0).
    """

    what = "a whole number" if kind is int else "a number"
    bound = "greater than" if positive else "of at least"

    def coerce(value: str) -> Any:
        try:
            parsed = kind(value)
        except ValueError:
            parsed = None
        if (
            parsed is None
            or not math.isfinite(parsed)
            or parsed < minimum
            or (positive and parsed == minimum)
        ):
            raise usage.UsageError(
                f"--{option} must be {what} {bound} {minimum}, not {value!r}"
            )
        return parsed

    coerce.coerceDoc = ""  # type: ignore[attr-defined]
    return coerce


def choice(option: str, choices: tuple[str, ...]) -> Any:
    """
    Make a coercer for C{optParameters} that accepts one of C{choices}.

    @param option: The option's name, without C{--}.
    """

    def coerce(value: str) -> str:
        if value not in choices:
            raise usage.UsageError(
                f"--{option} must be one of {', '.join(choices)}, not {value!r}"
            )
        return value

    coerce.coerceDoc = ""  # type: ignore[attr-defined]
    return coerce


def networks(value: str) -> list[str]:
    """
    Read C{--connection-limit-exceptions}: IP addresses and networks
    separated by commas.

    @raise usage.UsageError: For one that is not an address or network.
    """
    items = [item.strip() for item in value.split(",") if item.strip()]
    try:
        exceptionNetworks(items)
    except ValueError:
        raise usage.UsageError(
            "--connection-limit-exceptions must be IP addresses or networks"
            f" separated by commas, not {value!r}"
        ) from None
    return items


networks.coerceDoc = ""  # type: ignore[attr-defined]


def helpText(method: Callable[..., Any]) -> Callable[..., Any]:
    """
    Fold the docstring of an C{opt_} method into one line, so that C{--help}
    wraps it without the indentation of the source.
    """
    method.__doc__ = " ".join((method.__doc__ or "").split())
    return method


def callLimit(value: str) -> tuple[str, int]:
    """
    Read a value of C{--command-call-limit}: C{N} for every command, or
    C{VERB=N} for one.

    @return: The verb in upper case (C{"*"} for every command) and the
        limit.
    @raise usage.UsageError: For another form, or a limit below 1.
    """
    verb, sep, count = value.rpartition("=")
    if not sep:
        verb = "*"
    elif verb != "*" and not (verb.isascii() and verb.isalpha()):
        raise usage.UsageError(
            f"--command-call-limit must be N or VERB=N, not {value!r}"
        )
    if not (count.isascii() and count.isdigit() and int(count) >= 1):
        raise usage.UsageError(
            f"--command-call-limit needs a whole number of at least 1, not {value!r}"
        )
    return verb.upper(), int(count)


def readFile(option: str, path: str) -> bytes:
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


def makeListeners(
    reactor: Any,
    given: Sequence[tuple[str, str]],
    *,
    proxyProtocol: bool,
    twistd: Mapping[str, Any],
) -> list[Listener]:
    """
    Parse each endpoint description once and make its endpoint, refusing
    those that Twisted cannot parse or that cannot work: a port number out
    of range, a Unix socket in a missing directory or given twice, a
    C{systemd:} socket that systemd did not pass, and C{haproxy:} endpoints
    with C{--proxy-protocol}.

    @param reactor: The reactor to listen with.
    @param given: The option (C{--listen} or C{--port}) and the
        description, for each endpoint.
    @param proxyProtocol: Whether C{--proxy-protocol} was given.
    @param twistd: The options of C{twistd} (for C{--rundir} and
        C{--chroot}), or an empty mapping.
    @return: The listeners, in the order given.
    @raise usage.UsageError: For a description that cannot work.
    """
    listeners = []
    sockets: dict[str, str] = {}
    for option, text in given:
        label = f"{option} {text!r}"
        description = Description.parse(text)
        try:
            endpoint = description.endpoint(reactor)
        except Exception as e:
            raise usage.UsageError(endpointError(label, description, e))
        kind, (positional, keywords) = description.kind, description.arguments()
        if kind in _PORT_ENDPOINTS:
            checkPort(label, keywords.get("port", (positional or [None])[0]))
        elif kind == "unix":
            path = keywords.get("address", (positional or [""])[0])
            _checkUnixSocket(label, path, sockets, twistd)
        if proxyProtocol and description.proxied:
            raise usage.UsageError(
                f"--proxy-protocol cannot be used with {label}: a haproxy:"
                " endpoint reads the PROXY header itself"
            )
        listeners.append(Listener(description, endpoint))
    return listeners


def endpointError(label: str, description: Description, error: Exception) -> str:
    """
    Explain why Twisted cannot make the endpoint of a description.

    @param label: The option and the description, to start the message.
    @param description: The description.
    @param error: What C{serverFromString} raised.
    @return: The message of the usage error.
    """
    if description.kind != "systemd" or not isinstance(error, (IndexError, KeyError)):
        return f"{label} is not a valid endpoint: {error}"
    count = _systemdSocketCount()
    if count is None:
        return f"{label}: systemd passed no such socket (see LISTEN_FDS)"
    if not count:
        return (
            f"{label}: systemd passed no socket to this process (no LISTEN_FDS):"
            " start it from a systemd socket unit, or listen on tcp:PORT"
        )
    keywords = description.arguments()[1]
    if "name" in keywords:
        return f"{label}: systemd passed no socket named {keywords['name']!r}"
    return (
        f"{label}: systemd passed {count} socket(s), numbered from 0, so there is"
        f" no index {keywords.get('index')}"
    )


def _systemdSocketCount() -> int | None:
    """
    Count the sockets that systemd passed, as Twisted's C{systemd:}
    endpoints found them when Twisted read (and removed) C{LISTEN_FDS}.

    @return: The count, or C{None} if this Twisted does not tell.
    """
    try:
        from twisted.internet.endpoints import _SystemdParser

        return len(_SystemdParser._sddaemon.inheritedDescriptors())
    except Exception:
        return None


def checkPort(label: str, port: str | None) -> None:
    """
    Refuse a TCP port number out of the range 0 to 65535, which the system
    would only refuse when the server starts.

    @param label: The option and the description, to start the message.
    @param port: The port as written (Twisted has read it as an integer).
    @raise usage.UsageError: For a port out of range.
    """
    try:
        portNumber = int(port)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return
    if not 0 <= portNumber <= 65535:
        raise usage.UsageError(
            f"{label}: the port must be a number from 0 to 65535, not {port}"
        )


def _checkUnixSocket(
    label: str, path: str, sockets: dict[str, str], twistd: Mapping[str, Any]
) -> None:
    """
    Refuse a Unix socket whose directory does not exist (Twisted would
    fail to make its lock file there) or that another C{--listen}
    already gave (the second could not take the lock).

    @param label: The option and description, for the message.
    @param path: The path of the socket.
    @param sockets: The sockets given so far, by absolute path; updated.
    @param twistd: The options of C{twistd}, or an empty mapping.
    """
    if path.startswith("\0"):
        return  # Linux's abstract namespace: no file.
    if twistd.get("chroot"):
        return  # The path is inside the chroot: nothing to check here.
    # twistd changes to --rundir before it listens.
    where = os.path.abspath(os.path.join(twistd.get("rundir") or ".", path))
    if where in sockets:
        raise usage.UsageError(f"{label} is the same socket as {sockets[where]}")
    sockets[where] = label
    directory = os.path.dirname(where)
    if not os.path.isdir(directory):
        raise usage.UsageError(
            f"{label}: the directory {directory!r} of the socket does not exist"
        )


def certificateOptions(
    cert: str, key: str | None, chain: str | None
) -> CertificateOptions:
    """
    Make the TLS options of C{--tls-cert}, C{--tls-key} and C{--tls-chain},
    once.

    The files are checked first for what C{--help} promises (a private key
    in the certificate file or in C{--tls-key}), so that the message can
    say which file lacks what.

    @param cert: The file of C{--tls-cert}.
    @param key: The file of C{--tls-key}, or C{None}.
    @param chain: The file of C{--tls-chain}, or C{None}.
    @raise usage.UsageError: For a file that cannot be read or used.
    """
    certPEM = readFile("tls-cert", cert)
    if key is None and not _PRIVATE_KEY.search(certPEM):
        raise usage.UsageError(
            f"--tls-cert {cert!r} holds no private key"
            " (-----BEGIN PRIVATE KEY-----): give the file of its key with"
            " --tls-key"
        )
    if key is not None and not _PRIVATE_KEY.search(readFile("tls-key", key)):
        raise usage.UsageError(
            f"--tls-key {key!r} holds no PEM private key (-----BEGIN PRIVATE KEY-----)"
        )
    try:
        return tlsOptionsFromFiles(cert, key, chain)
    except Exception as e:
        raise _tlsFailure(cert, key, chain, e) from None


def _tlsFailure(
    cert: str, key: str | None, chain: str | None, error: Exception
) -> usage.UsageError:
    """
    Say which of the TLS files made L{tlsOptionsFromFiles} fail: the
    certificate and its key (tried again without the chain to tell), or
    else the chain.

    @param error: What L{tlsOptionsFromFiles} raised with all the files.
    @return: The usage error to raise.
    """
    given = f"--tls-cert {cert!r}"
    given += " (no --tls-key)" if key is None else f" with --tls-key {key!r}"
    if chain is None:
        return usage.UsageError(f"{given}: {error}")
    try:
        tlsOptionsFromFiles(cert, key)
    except Exception as e:
        return usage.UsageError(f"{given}: {e}")
    if b"-----BEGIN CERTIFICATE-----" not in readFile("tls-chain", chain):
        return usage.UsageError(
            f"--tls-chain {chain!r} holds no PEM certificate"
            " (-----BEGIN CERTIFICATE-----)"
        )
    return usage.UsageError(f"--tls-chain {chain!r}: {error}")


def passwordChecker(path: str) -> FilePasswordDB:
    """
    Check the password file of C{--auth-file} and make its checker.

    The checker reads the file now, while C{twistd} still runs as the user
    who started it (the file may be readable by root only), and again
    whenever the file's modification time changes.

    @param path: The file of C{--auth-file}.
    @raise usage.UsageError: For a file that cannot be read, has no
        C{user:password} line or a line with an empty password.
    """
    users = 0
    # The same reading as FilePasswordDB's: user and password are the
    # first two fields of a line split on ":", trailing blanks dropped.
    for lineNumber, line in enumerate(readFile("auth-file", path).splitlines(), 1):
        fields = line.rstrip().split(b":")
        if len(fields) < 2:
            continue
        if not fields[1]:
            raise usage.UsageError(
                f"--auth-file {path!r}: line {lineNumber} has an empty password"
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


#: The built-in handlers by their short names, in L{twisted_smtpd.handlers}.
BUILTIN_HANDLERS = {
    "debugging": "Debugging",
    "sink": "Sink",
    "mailbox": "Mailbox",
    "proxy": "Proxy",
    "amqp": "AMQP",
    "inbox": "Inbox",
}


class HandlerArgumentParser:
    """
    What a handler's C{from_cli(parser, *args)} gets as C{parser}: aiosmtpd
    passes an C{argparse} parser, whose C{error} method is the one handlers
    call.
    """

    # Shown as twisted_smtpd.tap.HandlerArgumentParser, where users import
    # it from.
    __module__ = "twisted_smtpd.tap"

    def error(self, message: str) -> None:
        """
        Refuse the handler's arguments.

        @raise usage.UsageError: Always, with C{message}.
        """
        raise usage.UsageError(message)


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
