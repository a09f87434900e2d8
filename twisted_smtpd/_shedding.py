# -*- test-case-name: tests.test_shedding -*-
"""
Running out of file descriptors: which sessions to close to make room, and
how a listening port is kept from accepting more connections than there
are descriptors for.

Every connection costs the server a file descriptor, and a process has a
limited number (C{RLIMIT_NOFILE}; see L{twisted_smtpd._filelimit}). A
flood of connections that say nothing would take them all, and then no
honest client could be served, nor a message stored. Three things keep
the server on its feet:

    - B{The high-water mark.} L{SMTPFactory <twisted_smtpd.SMTPFactory>}
      counts its connections; when a new one comes while as many as the
      mark are served, the session idle longest is closed to make room for
      it (or, if every session is busy, the new one is refused with
      C{421}). The mark is below the limit (by an eighth of it, at least 64
      descriptors), so that this happens before anything fails, and the
      descriptors above it stay free for the handler's files and
      connections, the log, and the sessions being closed.
    - B{Accepting no more than there is room for.} A session closed to
      make room gives its descriptor back only on the next reactor pass,
      while Twisted's TCP port accepts up to C{numberAccepts} connections
      in one pass (a number that grows by 20 on every busy pass): under a
      flood, the connections being closed would pile up past the limit.
      L{AcceptGuard} takes the place of the port's C{doRead}, lowering
      C{numberAccepts} to the L{room} left (the mark and a small margin,
      less the connections open, closing ones included) and, with no room
      at all, stopping the port until a connection ends. The clients wait
      in the listen queue meanwhile, refused by no one.
    - B{Failures to accept.} When descriptors run out all the same (other
      factories, a handler keeping files open, another process for
      C{ENFILE}), C{accept()} fails. Twisted's TCP port deals with that
      itself (Twisted 26.10, C{twisted.internet.tcp.Port.doRead}): on
      C{EMFILE} it closes a descriptor it holds in reserve, accepts the
      waiting clients and closes them at once, logging a line for each;
      on C{ENFILE}, C{ENOBUFS} or C{ENOMEM} it logs a line and returns,
      and the reactor calls it again on its next pass since the listening
      socket is still readable: it spins, and logs on every pass. Those
      log lines are its only report. L{AcceptGuard} also takes the place
      of the port's logger: it recognises them, sums them up in one line a
      second at most (a L{Tally <twisted_smtpd._tally.Tally>}), has the
      factory close a batch of idle sessions, and stops the port for a
      tenth of a second (L{ACCEPT_PAUSE}) or until a connection ends, so
      that the reactor does not spin.

Which sessions are closed (L{sheddable}): those idle longest first, in the
order of the idle timer (or, without a C{timeout}, in the order they
connected), never one with a transaction in progress (C{MAIL} accepted,
message data coming in) or a command or hook still working. Each is told
C{421 4.7.0 <hostname> Too many connections, try again later}
(L{SHED_REPLY}) and closed: RFC 5321 lets a server close with 421 at any
time, and the client comes back later, when it has something to say.

Taking the place of a port's C{doRead} and logger (instance attributes,
set once the port listens) is how this works with every endpoint that
makes a Twisted port (C{tcp:}, C{ssl:}, C{unix:}, C{systemd:},
C{haproxy:}) without replacing them; the messages recognised are
Twisted's, checked by the tests against the installed version.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from twisted.internet import tcp
from twisted.logger import Logger

from twisted_smtpd._tally import Tally

__all__ = ["ACCEPT_PAUSE", "SHED_REPLY", "AcceptGuard", "room", "sheddable"]

#: The reply of a session closed to make room, a format string for the
#: server's host name.
SHED_REPLY = "421 4.7.0 {hostname} Too many connections, try again later"

#: Seconds a port stops accepting after an C{accept()} failed for want of
#: resources.
ACCEPT_PAUSE = 0.1

#: The least number of connections accepted over the high-water mark
#: while the sessions closed to make room for them are closing.
MARGIN_MINIMUM = 32

#: The errors of C{accept()} that say resources ran out; others (a client
#: gone before it was accepted: C{ECONNABORTED}) are only logged.
RESOURCE_ERRORS = frozenset(["EMFILE", "ENFILE", "ENOBUFS", "ENOMEM"])


def sheddable(connections: Iterable[Any], count: int) -> list[Any]:
    """
    Choose up to C{count} connections that may be closed to make room,
    taking them in the order given (the one idle longest first).

    @param connections: The candidates: servers (L{twisted_smtpd.SMTP}),
        which say whether they are closing and whether a transaction is in
        progress; anything else is passed over.
    @return: The connections chosen, in order.
    """
    chosen: list[Any] = []
    if count <= 0:
        return chosen
    for connection in connections:
        if getattr(connection, "transactionInProgress", True) or connection.closing:
            continue
        chosen.append(connection)
        if len(chosen) == count:
            break
    return chosen


def room(connections: int, mark: int | None) -> int | None:
    """
    How many more connections a port may accept now: up to the high-water
    mark and a margin above it, a sixteenth of the mark (at least
    L{MARGIN_MINIMUM}). Over the mark, each new connection takes a
    descriptor before the session closed to make room for it gives its own
    back (on the next reactor pass): the margin is for those.

    @param connections: The connections open, those closing included.
    @param mark: The high-water mark, or C{None} for none.
    @return: The number (zero or less for none), or C{None} for no limit.
    """
    if mark is None:
        return None
    return mark + max(MARGIN_MINIMUM, mark // 16) - connections


class AcceptGuard:
    """
    Watch over one listening port (a L{twisted.internet.tcp.Port}): accept
    no more connections at a time than there are file descriptors for, and
    turn the port's reports of failed C{accept()} calls into a pause in
    accepting, idle sessions closed, and a line a second at most; pass its
    other log events on unchanged.

    See the module docstring for why.
    """

    def __init__(
        self,
        port: tcp.Port,
        reactor: Any,
        room: Callable[[], int | None],
        exhausted: Callable[[], Any],
        log: Logger,
    ) -> None:
        """
        Start watching over C{port}.

        @param port: A listening TCP (or UNIX, or TLS) port.
        @param reactor: The reactor of the pause's timer and of the log's
            clock.
        @param room: Says how many more connections may be accepted now
            (C{None}: no limit).
        @param exhausted: Called when C{accept()} failed for want of
            resources, once per pause: it should close idle sessions.
        @param log: Where the summed-up failures are logged.
        """
        self._port = port
        self._reactor = reactor
        self._room = room
        self._exhausted = exhausted
        self._resumeCall: Any = None
        self._paused = False
        own = port._logger
        self._forward = own.observer
        port._logger = Logger(namespace=own.namespace, source=port, observer=self)
        self._doRead = port.doRead
        port.doRead = self.doRead
        host = port.getHost()
        self._where = getattr(host, "port", None) or getattr(host, "name", host)
        self._errors = Tally(
            reactor,
            log,
            "could not accept connections on {where} ({error}) {failures}"
            " time(s); {unserved} client(s) closed unserved for want of file"
            " descriptors",
            counters=("failures", "unserved"),
        )

    def doRead(self) -> Any:
        """
        Accept what the port has waiting, at most as many connections as
        there is room for (the port accepts up to C{numberAccepts} in one
        go, and each takes a descriptor until the next reactor pass even
        if it is closed at once); with no room, stop accepting until there
        is (see L{wake}).
        """
        room = self._room()
        if room is not None:
            if room <= 0:
                self._pause()
                return None
            port = self._port
            port.numberAccepts = min(port.numberAccepts, room)
        return self._doRead()

    def __call__(self, event: dict[str, Any]) -> None:
        """
        Receive an event the port logs.
        """
        text = event.get("log_format") or ""
        error = event.get("acceptError")
        errors = self._errors
        if error is not None:
            errors.add({"failures": 1}, where=self._where, error=str(error))
            self._failed(str(error))
        elif text.startswith("EMFILE encountered"):
            # The start of Twisted's recovery: the clients it closes and
            # its last line follow, and make one line with this failure.
            errors.count({"failures": 1}, where=self._where, error="EMFILE")
            self._failed("EMFILE")
        elif text.startswith("EMFILE recovery: Closed"):
            errors.count({"unserved": 1})
        elif text.startswith("Re-reserving EMFILE"):
            errors.add({})
        else:
            self._forward(event)

    def _failed(self, error: str) -> None:
        """
        C{accept()} failed with C{error}: if resources ran out, pause
        accepting and make room.
        """
        if error in RESOURCE_ERRORS and not self._paused:
            self._pause()
            self._exhausted()

    def _pause(self) -> None:
        """
        Stop accepting until L{wake} is called or L{ACCEPT_PAUSE} seconds
        have passed.
        """
        if self._paused:
            return
        self._paused = True
        self._port.stopReading()
        self._resumeCall = self._reactor.callLater(ACCEPT_PAUSE, self.wake)

    def wake(self) -> None:
        """
        Accept again, if accepting was paused: a connection ended, and gave
        its descriptor back.
        """
        if not self._paused:
            return
        self._paused = False
        if self._resumeCall.active():
            self._resumeCall.cancel()
        self._resumeCall = None
        port = self._port
        if port.connected and not port.disconnecting:
            port.startReading()

    def stop(self) -> None:
        """
        Stop the pause's timer and log what was counted and not logged yet,
        as the service ends; the port keeps reporting through this guard.
        """
        if self._resumeCall is not None and self._resumeCall.active():
            self._resumeCall.cancel()
        self._resumeCall = None
        self._paused = False
        self._errors.flush()
