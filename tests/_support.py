"""
Helpers shared by the integration tests: a server listening on 127.0.0.1
port 0 with the real reactor, and blocking socket clients meant to run in a
thread (L{twisted.internet.threads.deferToThread}) while the reactor serves.

Every blocking call has a socket timeout, so that a misbehaving server makes
a test fail instead of leaving a thread hanging.
"""

from __future__ import annotations

import signal
import smtplib
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, gatherResults
from twisted.trial.unittest import TestCase

from twisted_smtpd import SMTP, SMTPFactory

#: The name our test servers give in their greeting and EHLO replies.
HOSTNAME = "mx.example.test"

#: Seconds a blocking client waits for the server before giving up.
CLIENT_TIMEOUT = 10.0


def isAsyncioReactor() -> bool:
    """
    Return whether the global reactor is Twisted's asyncio reactor.
    """
    from twisted.internet import reactor
    from twisted.internet.asyncioreactor import AsyncioSelectorReactor

    return isinstance(reactor, AsyncioSelectorReactor)


class ReactorBlocked(Exception):
    """
    The reactor thread ran no event for longer than the watchdog allows.
    """


class ReactorWatchdog:
    """
    Turn a reactor thread stuck in a loop (a server bug) into an exception
    in that thread, so that the test fails instead of hanging the whole run:
    trial's own timeout needs a working reactor to fire.

    A thread pings the reactor with C{callFromThread}; when no ping has run
    for C{limit} seconds, it interrupts the reactor thread with C{SIGUSR2},
    whose handler raises L{ReactorBlocked} there.
    """

    def __init__(self, limit: float = 5.0) -> None:
        self.limit = limit
        self._last = time.monotonic()
        self._stopped = threading.Event()

    def start(self) -> None:
        """
        Start watching; call from the reactor thread.
        """
        self._reactorThread = threading.get_ident()
        self._previous = signal.signal(signal.SIGUSR2, self._interrupt)
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """
        Stop watching and restore the previous C{SIGUSR2} handler.
        """
        self._stopped.set()
        self._thread.join()
        signal.signal(signal.SIGUSR2, self._previous)

    def _beat(self) -> None:
        self._last = time.monotonic()

    def _interrupt(self, signum: int, frame: Any) -> None:
        raise ReactorBlocked(f"the reactor thread was stuck for {self.limit} s")

    def _watch(self) -> None:
        from twisted.internet import reactor

        while not self._stopped.wait(0.2):
            reactor.callFromThread(self._beat)
            if time.monotonic() - self._last > self.limit:
                self._last = time.monotonic()
                signal.pthread_kill(self._reactorThread, signal.SIGUSR2)


class Listening:
    """
    A server listening on 127.0.0.1 for one test.

    @ivar port: The TCP port number the server listens on.
    @ivar factory: The L{SMTPFactory}.
    @ivar servers: Every server protocol made so far, in connection order.
    """

    def __init__(self, port: int, factory: SMTPFactory, servers: list[SMTP]):
        self.port = port
        self.factory = factory
        self.servers = servers


def listen(
    testCase: TestCase,
    handler: Any,
    *,
    protocol: type[SMTP] = SMTP,
    **options: Any,
) -> Listening:
    """
    Listen with an L{SMTPFactory} on 127.0.0.1, port 0, with the global
    reactor, and register a cleanup on C{testCase} that stops listening and
    closes every server connection still open, waiting until each is gone.
    A L{ReactorWatchdog} guards the test while the server listens.

    @param testCase: The test that owns the server.
    @param handler: The handler.
    @param protocol: The server class.
    @param options: Options of the server; C{hostname} defaults to
        L{HOSTNAME}.
    @return: The port and the servers made.
    """
    from twisted.internet import reactor

    watchdog = ReactorWatchdog()
    watchdog.start()
    testCase.addCleanup(watchdog.stop)
    factory, servers, lost = trackedFactory(handler, protocol=protocol, **options)
    listeningPort = reactor.listenTCP(0, factory, interface="127.0.0.1")
    testCase.addCleanup(closeTracked, listeningPort, servers, lost)
    return Listening(listeningPort.getHost().port, factory, servers)


def trackedFactory(
    handler: Any, *, protocol: type[SMTP] = SMTP, **options: Any
) -> tuple[SMTPFactory, list[SMTP], dict[int, Deferred[None]]]:
    """
    Make an L{SMTPFactory} whose servers are recorded, so that a test can
    find them and wait for their connections to end.

    @param options: Options of the server; C{hostname} defaults to
        L{HOSTNAME}.
    @return: The factory, the servers it made in connection order, and a
        L{Deferred} by C{id()} of each server still connected, firing when
        its connection is lost.
    """
    servers: list[SMTP] = []
    lost: dict[int, Deferred[None]] = {}

    class Tracked(protocol):  # type: ignore[valid-type,misc]
        def connectionMade(self) -> None:
            servers.append(self)
            lost[id(self)] = Deferred()
            super().connectionMade()

        def connectionLost(self, reason: Any = None) -> None:
            try:
                super().connectionLost(reason)
            finally:
                lost.pop(id(self)).callback(None)

    Tracked.__name__ = protocol.__name__
    options.setdefault("hostname", HOSTNAME)
    return SMTPFactory(handler, protocol=Tracked, **options), servers, lost


def closeTracked(
    listeningPort: Any, servers: list[SMTP], lost: dict[int, Deferred[None]]
) -> Deferred[Any]:
    """
    Stop listening and abort the connections of L{trackedFactory}'s servers
    still open; fire once all of that is done.
    """
    waits = [Deferred.fromCoroutine(_stopListening(listeningPort))]
    for server in servers:
        pending = lost.get(id(server))
        if pending is not None:
            waits.append(pending)
            server.transport.abortConnection()
    return gatherResults(waits)


async def _stopListening(listeningPort: Any) -> None:
    await listeningPort.stopListening()


def trackClientLoss(factory: Any) -> Deferred[None]:
    """
    Return a L{Deferred} that fires once the connection made by the client
    factory C{factory} is lost (or failed), so that a test can wait for its
    client to be gone before it ends.
    """
    done: Deferred[None] = Deferred()
    for name in ("clientConnectionLost", "clientConnectionFailed"):
        original = getattr(factory, name)

        def notify(connector: Any, reason: Any, original: Callable = original) -> Any:
            try:
                return original(connector, reason)
            finally:
                if not done.called:
                    done.callback(None)

        setattr(factory, name, notify)
    return done


class RecordingReactor:
    """
    The global reactor, but remembering the factories given to
    C{connectTCP}, for APIs (such as L{twisted.mail.smtp.sendmail}) that make
    their own client factory.

    @ivar lost: One L{Deferred} per connection, fired when it is lost.
    """

    def __init__(self) -> None:
        from twisted.internet import reactor

        self._reactor = reactor
        self.lost: list[Deferred[None]] = []

    def connectTCP(self, host: str, port: int, factory: Any, *a: Any, **kw: Any):
        """
        Connect as the reactor does, tracking when the connection is lost.
        """
        self.lost.append(trackClientLoss(factory))
        return self._reactor.connectTCP(host, port, factory, *a, **kw)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._reactor, name)


# Blocking clients, for threads.


def smtpClient(port: int) -> smtplib.SMTP:
    """
    Connect C{smtplib} to our server on 127.0.0.1.
    """
    return smtplib.SMTP(
        "127.0.0.1", port, local_hostname="client.example", timeout=CLIENT_TIMEOUT
    )


def rawConnect(port: int, receiveBuffer: int | None = None) -> socket.socket:
    """
    Open a TCP connection to 127.0.0.1:C{port}.

    @param receiveBuffer: A C{SO_RCVBUF} size to set before connecting, to
        make the server's writes back up sooner.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(CLIENT_TIMEOUT)
    if receiveBuffer is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receiveBuffer)
    sock.connect(("127.0.0.1", port))
    return sock


def countReplies(data: bytes) -> int:
    """
    Count the complete replies in C{data}: lines whose fourth byte is a
    space (the last line of a reply) and that end with CRLF.
    """
    return sum(
        1 for line in data.split(b"\r\n")[:-1] if len(line) >= 4 and line[3:4] == b" "
    )


def readReplies(sock: socket.socket, count: int) -> bytes:
    """
    Read from C{sock} until C{count} complete replies have arrived.

    @return: The bytes read, which end with the last of those replies.
    @raise AssertionError: If the connection closes first, or if more bytes
        than those replies arrived.
    @raise TimeoutError: If the server stays silent for too long.
    """
    data = b""
    while countReplies(data) < count or not data.endswith(b"\r\n"):
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(
                f"connection closed after {countReplies(data)} of {count} replies:"
                f" {data[-200:]!r}"
            )
        data += chunk
    if countReplies(data) != count:
        raise AssertionError(f"more than {count} replies: {data[-200:]!r}")
    return data


def readToEnd(sock: socket.socket) -> bytes:
    """
    Read from C{sock} until the server closes the connection.

    @raise TimeoutError: If the server neither speaks nor closes in time.
    """
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
