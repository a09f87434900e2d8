# -*- test-case-name: tests.test_tap,tests.test_filelimit -*-
"""
What C{twistd smtpd} needs to start, beyond its options: the service that
raises the file descriptor limit and reports an endpoint it cannot listen
on as one line instead of a traceback, the log observer it gives
C{twistd}, and the Maildir of a mailbox handler made usable by the user
that C{twistd --uid} switches to.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from twisted.application.service import Service
from twisted.internet.error import CannotListenError
from twisted.logger import ILogObserver, Logger
from twisted.python.logfile import LogFile

from twisted_smtpd._endpoints import listeningService
from twisted_smtpd._filelimit import raiseFileLimit
from twisted_smtpd.log import LEVELS, LogFileObserver, classicText, jsonLine
from twisted_smtpd.service import SMTPService

if TYPE_CHECKING:
    from twisted_smtpd import SMTPFactory
    from twisted_smtpd._endpoints import Listener

# The namespace users see in the log, and docs/cli.rst shows: that of the
# module they run (twistd smtpd), not of this private one.
_log = Logger(namespace="twisted_smtpd.tap")


class StartupError(SystemExit, Exception):
    """
    The server cannot start, for a reason already logged in one line (such
    as a port already in use).

    It is a L{SystemExit} with status 1, so that C{twistd -n} exits without
    the traceback Python prints for other exceptions; and an L{Exception},
    so that a daemonizing C{twistd} passes its message to the process that
    started it, which prints it and exits with status 1 too.
    """

    # Shown as twisted_smtpd.tap.StartupError, where users import it from.
    __module__ = "twisted_smtpd.tap"

    def __init__(self, message: str) -> None:
        """
        @param message: What went wrong, in one line.
        """
        super().__init__(message)
        self.code = 1


def _startupFailed(format: str, **fields: Any) -> StartupError:
    """
    Log why the server cannot start as one critical event.

    @param format: The message, a format string for C{fields}.
    @return: The L{StartupError} to raise, with the same message.
    """
    _log.critical(format, **fields)
    return StartupError(format.format(**fields))


def missingMaildirDirectories(cls: Any, arguments: list[str]) -> list[str]:
    """
    List the directories that a L{Mailbox <twisted_smtpd.handlers.Mailbox>}
    handler made from the command line is about to create: those of its
    Maildir (and their parents) that do not exist yet.

    @param cls: The handler's class.
    @param arguments: The handler's arguments.
    @return: The absolute paths, parents first; none for other handlers,
        or for a subclass with its own C{from_cli}, whose argument may not
        be the directory.
    """
    from twisted_smtpd.handlers import Mailbox

    if not (isinstance(cls, type) and issubclass(cls, Mailbox)):
        return []
    fromCli = getattr(cls.from_cli, "__func__", None)
    if len(arguments) != 1 or fromCli is not Mailbox.from_cli.__func__:
        return []
    root = os.path.abspath(arguments[0])
    missing: list[str] = []
    for sub in ("tmp", "new", "cur"):
        path, chain = os.path.join(root, sub), []
        while not os.path.lexists(path) and path not in missing:
            chain.append(path)
            path = os.path.dirname(path)
        missing.extend(reversed(chain))
    return missing


def _switchedUser(parent: Any) -> tuple[int, int] | None:
    """
    Find the user and group that C{twistd --uid/--gid} will switch to, as
    C{twistd} does: with C{--uid} alone, the group is the user's.

    @param parent: The options of C{twistd}, or C{None}.
    @return: The uid and gid (C{-1} for one to keep), or C{None} when
        C{twistd} does not switch.
    """
    from twisted.python.util import gidFromString, uidFromString

    try:
        uid, gid = parent["uid"], parent["gid"]
    except (KeyError, TypeError):
        return None
    # Names or numbers, as strings or already converted by twistd.
    try:
        uid = None if uid is None else uidFromString(uid)
        gid = None if gid is None else gidFromString(gid)
    except (KeyError, ValueError):
        return None  # No such user or group: twistd will say so.
    if uid is None and gid is None:
        return None
    if gid is None:
        import pwd

        try:
            gid = pwd.getpwuid(uid).pw_gid
        except KeyError:
            gid = -1
    return (-1 if uid is None else uid), gid


def giveCreatedDirectories(options: Any) -> None:
    """
    Give the directories created while the C{twistd smtpd} options were
    parsed (a new
    Maildir) to the user that C{twistd --uid/--gid} switches to once it
    listens, so that the server can still write there.

    Only when running as root: otherwise C{twistd} cannot switch.

    @raise StartupError: If they cannot be given.
    """
    if not options.createdDirectories or getattr(os, "geteuid", None) is None:
        return
    ids = _switchedUser(getattr(options, "parent", None))
    if ids is None or os.geteuid() != 0:
        return
    uid, gid = ids
    for path in options.createdDirectories:
        try:
            os.chown(path, uid, gid)
        except OSError as e:
            raise _startupFailed(
                "smtpd: cannot give the new directory {path} to uid/gid"
                " {uid}/{gid}: {reason}",
                path=path,
                uid=uid,
                gid=gid,
                reason=e.strerror or e,
            ) from None


def _checkMaildir(handler: Any) -> None:
    """
    Log a warning for each directory of a L{Mailbox
    <twisted_smtpd.handlers.Mailbox>} handler's Maildir where this process
    cannot create messages (as when the Maildir belongs to root and
    C{twistd --uid} switched to another user): every message would get a
    451 reply.
    """
    from twisted_smtpd.handlers import Mailbox

    if not isinstance(handler, Mailbox):
        return
    effective = os.access in os.supports_effective_ids
    for sub in ("tmp", "new"):
        # The Maildir's absolute path: twistd --rundir changed directory.
        root = getattr(handler, "_path", None) or os.fspath(handler.mail_dir)
        path = os.path.join(root, sub)
        if not os.access(path, os.W_OK | os.X_OK, effective_ids=effective):
            _log.warn(
                "smtpd: this process (uid {uid}) cannot write to the Maildir"
                " directory {path}: every message will be refused with 451",
                uid=os.geteuid() if hasattr(os, "geteuid") else "?",
                path=os.path.abspath(path),
            )


def _listenFailure(error: Exception) -> str:
    """
    Say in a few words why an endpoint cannot listen.
    """
    reason = error.socketError if isinstance(error, CannotListenError) else error
    if isinstance(error, CannotListenError) and reason == "Cannot acquire lock":
        path = os.fsdecode(error.port)
        return f"another process holds its lock file {path}.lock"
    if isinstance(reason, OSError) and reason.strerror:
        return str(reason.strerror)
    return str(reason) or type(reason).__name__


def logFileLimit(before: int | None, after: int | None) -> None:
    """
    Log the limit on open file descriptors the server runs with (see
    L{twisted_smtpd._filelimit}), and what it was raised from.

    @param before: The soft limit the process started with (C{None}: none).
    @param after: The soft limit now.
    """
    if after is None:
        _log.info("smtpd: no limit on open file descriptors")
    elif before != after:
        _log.info(
            "smtpd: open file descriptor limit raised from {before} to {limit}",
            before=before,
            limit=after,
        )
    else:
        _log.info("smtpd: open file descriptor limit {limit}", limit=after)


class CommandLineService(SMTPService):
    """
    The service of C{twistd smtpd}: an L{SMTPService} that raises the limit
    on open file descriptors to the hard limit before it listens, and
    reports an endpoint it cannot listen on (a port in use, an address the
    machine does not have...) as one line in the log, naming the endpoint
    as given, and raises L{StartupError} so that C{twistd} exits with
    status 1 without a traceback.

    @cvar raiseFileLimit: What raises the limit, once, as the service
        starts: L{twisted_smtpd._filelimit.raiseFileLimit}. The limit is
        logged once the server listens.
    """

    raiseFileLimit = staticmethod(raiseFileLimit)
    _fileLimit: tuple[int | None, int | None] | None = None
    _limitLogged = False

    def __init__(
        self,
        factory: SMTPFactory,
        listeners: Iterable[Listener],
        *,
        reactor: Any = None,
        logObserver: Any = None,
    ) -> None:
        """
        @param factory: The factory that builds a server per connection.
        @param listeners: The endpoints, already made from their
            descriptions.
        @param reactor: The reactor to listen with; the global one by
            default.
        @param logObserver: The log observer to give C{twistd}, or C{None}
            to let it make its own.
        """
        super().__init__(factory, (), reactor=reactor)
        self.logObserver = logObserver
        self._listeners = list(listeners)
        for listener in self._listeners:
            listeningService(listener.endpoint, factory).setServiceParent(self)

    def setServiceParent(self, parent: Any) -> None:
        """
        Join C{twistd}'s application, and give it the log observer:
        C{twistd} logs through an application's L{ILogObserver} component,
        when it has one, instead of making its own.
        """
        super().setServiceParent(parent)
        if self.logObserver is not None and hasattr(parent, "setComponent"):
            parent.setComponent(ILogObserver, self.logObserver)

    def privilegedStartService(self) -> None:
        """
        Listen on every endpoint, before C{twistd} gives up root.

        @raise StartupError: For an endpoint that cannot listen.
        """
        Service.privilegedStartService(self)
        self._listen()

    def startService(self) -> None:
        """
        Listen on every endpoint, unless L{privilegedStartService} did, and
        warn if the server, now running as the user of C{twistd --uid},
        cannot write to the Maildir of a mailbox handler.

        @raise StartupError: For an endpoint that cannot listen.
        """
        self._listen()
        super().startService()
        _checkMaildir(self.factory.handler)

    def _listen(self) -> None:
        """
        Raise the file descriptor limit, the first time (before listening:
        the factory works out its high-water mark from it as it starts),
        then start listening on each endpoint that does not listen yet,
        have the factory watch over the ports, and log the limit.
        """
        if self._fileLimit is None:
            self._fileLimit = self.raiseFileLimit()
        for listener, child in zip(
            self._listeners, self.endpointServices(), strict=True
        ):
            if getattr(child, "_waitingForPort", None) is not None:
                continue
            try:
                child.privilegedStartService()
            except Exception as e:
                raise _startupFailed(
                    # The reason first: a daemonizing twistd shows only
                    # the first 100 bytes of the error.
                    "smtpd: {reason}: cannot listen on {endpoint}",
                    endpoint=listener.description.given,
                    reason=_listenFailure(e),
                ) from None
        self.watchPorts()
        if not self._limitLogged:
            self._limitLogged = True
            logFileLimit(*self._fileLimit)


def logObserverFor(
    twistd: Any, level: str, format: str, reactor: Any
) -> LogFileObserver | None:
    """
    Make the log observer of C{twistd smtpd}: a L{LogFileObserver} writing
    where C{twistd} itself would write (C{--logfile}, C{twistd.log} for a
    daemon, standard output with C{-n}), rotated as C{twistd} rotates its
    file (every megabyte, and on C{SIGUSR1}).

    @param twistd: C{twistd}'s own options.
    @param level: The name of the least level logged (C{--log-level}).
    @param format: C{"text"} (C{twistd}'s lines) or C{"json"} (JSON lines).
    @return: The observer, or C{None} where C{twistd} makes its own: with
        C{--logger} or C{--syslog}, and where C{twistd} refuses the options
        (a daemon logging to standard output) or is not the Unix one.
    """
    if twistd.get("logger") or twistd.get("syslog") or os.name != "posix":
        return None
    logfile = twistd.get("logfile")
    nodaemon = twistd.get("nodaemon")
    if logfile == "-" or (nodaemon and not logfile):
        if not nodaemon:
            return None
        outFile: Any = sys.stdout
    else:
        outFile = LogFile.fromFullPath(logfile or "twistd.log")
        if not signal.getsignal(signal.SIGUSR1):
            # As twistd does for its own log file.
            signal.signal(
                signal.SIGUSR1,
                lambda number, frame: reactor.callFromThread(outFile.rotate),
            )
    formatter = jsonLine if format == "json" else classicText()
    return LogFileObserver(
        outFile, formatter, minimumLevel=LEVELS[level], reactor=reactor
    )
