# -*- test-case-name: tests.test_controller -*-
"""
Run an SMTP server in a background thread, for programs and test suites
that are not written with Twisted, as aiosmtpd's C{Controller} does.

L{Controller} listens on TCP, L{UnixSocketController} on a Unix socket.
C{start()} returns once the server listens (or raises why it cannot);
C{stop()} stops listening, closes the sessions waiting for a command with
C{421}, lets the messages being received and the hooks working finish
within a grace period and returns when the address is free again. Handler hooks run
in the reactor thread, not in the thread that called C{start()}.

A test case using it with the standard C{unittest} module::

    import smtplib
    import unittest

    from twisted_smtpd.controller import Controller


    class Recorder:
        def __init__(self):
            self.messages = []

        def handle_DATA(self, server, session, envelope):
            self.messages.append(envelope.content)
            return "250 OK"


    class MailTests(unittest.TestCase):
        def setUp(self):
            self.handler = Recorder()
            self.controller = Controller(self.handler, port=0)
            self.controller.start()
            self.addCleanup(self.controller.stop)

        def test_send(self):
            message = b"Subject: hi\\r\\n\\r\\nHello\\r\\n"
            host, port = self.controller.hostname, self.controller.port
            with smtplib.SMTP(host, port) as client:
                client.sendmail("a@example.com", ["b@example.com"], message)
            self.assertEqual(self.handler.messages, [message])


    if __name__ == "__main__":
        unittest.main()

B{One reactor per process.} Twisted's reactor cannot be restarted, so the
first controller started in a process runs the global reactor in a daemon
thread (C{reactor.run(installSignalHandlers=False)}) that every later
controller shares and that runs until the process exits. If the global
reactor already runs in another thread, the controllers use it. Code that
runs in the reactor thread, as a Twisted program's does, cannot use a
controller (C{start()} and C{stop()} raise L{RuntimeError} there, since
waiting would deadlock): it should listen with
L{twisted_smtpd.service.makeService}, or with an endpoint and
L{twisted_smtpd.SMTPFactory}, instead. At exit, the reactor thread is
stopped like a Twisted program's reactor (listening sockets close, and a
Unix socket's file is removed), even if no controller was stopped.
"""

from __future__ import annotations

import errno
import os
import socket
import stat
from pathlib import Path
from typing import Any, TypeVar

from twisted.internet.defer import Deferred, gatherResults, maybeDeferred
from twisted.internet.endpoints import (
    TCP4ServerEndpoint,
    TCP6ServerEndpoint,
    UNIXServerEndpoint,
)
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import (
    IListeningPort,
    IStreamServerEndpoint,
)
from twisted.internet.protocol import ServerFactory
from twisted.logger import Logger

from twisted_smtpd._controllersessions import DROP_WAIT, Sessions, TrackingFactory
from twisted_smtpd._factory import SMTPFactory
from twisted_smtpd._reactorthread import (
    callInReactor,
    refuseInReactorThread,
    runningReactor,
)
from twisted_smtpd._smtp import SMTP
from twisted_smtpd.service import DEFAULT_BACKLOG

__all__ = ["DEFAULT_READY_TIMEOUT", "Controller", "UnixSocketController"]

#: Seconds C{start()} waits for the reactor and the listening socket.
DEFAULT_READY_TIMEOUT = 5.0

_Self = TypeVar("_Self", bound="_ThreadedController")

log = Logger(namespace="twisted_smtpd.controller")


class _ThreadedController:
    """
    What L{Controller} and L{UnixSocketController} share: the factory, the
    reactor thread, starting and stopping.

    @ivar handler: The handler given to every connection.
    @ivar server_hostname: The name the server gives in its greeting and
        HELO/EHLO replies (C{None}: this machine's FQDN).
    @ivar ready_timeout: Seconds C{start()} waits for the server to listen.
    @ivar protocol: The protocol class given to L{SMTPFactory}.
    @ivar options: The options given to L{SMTPFactory}.
    @ivar smtpd: The protocol of the latest connection, or C{None}.
    @ivar web: An endpoint description on which to serve a web inbox of
        the messages received (see C{docs/inbox.rst}; a bare port listens
        on loopback only), or C{None}: the handler is then followed by an
        L{Inbox <twisted_smtpd.handlers.Inbox>} (or is one), and
        L{web_port} says where the inbox listens.
    @ivar inbox: The L{Inbox <twisted_smtpd.handlers.Inbox>} of C{web}
        once started, else C{None}.
    """

    def __init__(
        self,
        handler: Any,
        *,
        server_hostname: str | None = None,
        ready_timeout: float = DEFAULT_READY_TIMEOUT,
        protocol: type[SMTP] = SMTP,
        web: str | None = None,
        **options: Any,
    ) -> None:
        if "ssl_context" in options:
            raise TypeError(
                "ssl_context is aiosmtpd's option; for implicit TLS give"
                " tls_context=<Twisted TLS options> and implicit_tls=True"
            )
        self.handler = handler
        self.server_hostname = server_hostname
        self.ready_timeout = ready_timeout
        self.protocol = protocol
        options.setdefault("enable_SMTPUTF8", True)
        self.options = options
        self.smtpd: Any = None
        self.web = web
        self.inbox: Any = None
        self._webService: Any = None
        self._port: IListeningPort | None = None
        self._sessions: Sessions | None = None
        self._reactor: Any = None

    def factory(self) -> ServerFactory:
        """
        Make the factory of a listening period; C{start()} calls it in the
        reactor thread. Override it to serve with another factory or
        protocol; an exception it raises comes out of C{start()}.

        @return: An L{SMTPFactory} with this controller's handler, protocol
            and options.
        """
        return SMTPFactory(
            self.handler,
            protocol=self.protocol,
            hostname=self.server_hostname,
            **self.options,
        )

    def _endpoint(self, reactor: Any) -> IStreamServerEndpoint:
        raise NotImplementedError()

    def _address(self) -> str:
        raise NotImplementedError()

    def _prepare(self) -> None:
        """
        Get the address ready before listening.
        """

    @property
    def server(self) -> IListeningPort | None:
        """
        The listening port while started, else C{None}.
        """
        return self._port

    def start(self) -> None:
        """
        Start listening, and return once the server accepts connections.

        @raise OSError: If the address cannot be used (C{errno.EADDRINUSE}
            when it is taken).
        @raise TimeoutError: If the server is not listening within
            C{ready_timeout} seconds.
        @raise RuntimeError: If called in the reactor's thread, or when
            already started.
        @raise Exception: What C{factory()} raises, e.g. L{ValueError} for
            a bad option.
        """
        if self._port is not None:
            raise RuntimeError("the controller is already started")
        reactor = runningReactor(self.ready_timeout)
        self._prepare()
        sessions = Sessions(reactor, self)
        if self.web is not None and self._webService is None:
            self._serveInbox(reactor)

        def listen() -> Deferred[IListeningPort]:
            made = self.factory()
            if not callable(getattr(made, "buildProtocol", None)):
                # aiosmtpd's factory() returns one SMTP instance; here it
                # makes a server per connection.
                raise TypeError(
                    f"factory() must return a protocol factory such as"
                    f" SMTPFactory, not {made!r}; to serve with an SMTP"
                    f" subclass, pass it as protocol= instead"
                )
            factory = TrackingFactory(made, sessions)
            listening = self._endpoint(reactor).listen(factory)
            if self._webService is None:
                return listening
            self._webService.startService()
            web = self._webService._waitingForPort
            both = gatherResults([listening, web], consumeErrors=True)
            return both.addCallbacks(lambda ports: ports[0], _firstError)

        try:
            port = callInReactor(
                reactor,
                listen,
                self.ready_timeout,
                f"listening on {self._address()}",
                undo=lambda port: port.stopListening(),
            )
        except CannotListenError as e:
            error = e.socketError
            if isinstance(error, OSError) and error.errno is not None:
                raise OSError(error.errno, error.strerror, self._address()) from e
            raise
        self._reactor = reactor
        self._sessions = sessions
        self._port = port

    def stop(self, timeout: float = 5.0) -> None:
        """
        Stop listening and shut the open sessions down gracefully: those
        waiting for a command (even between MAIL and DATA) are sent
        C{421 4.3.2 <hostname> Service shutting down, closing transmission
        channel} and closed at once; a message being received, or a hook
        working, may take C{timeout} seconds to finish and gets its real
        reply, then the C{421}. Those still open when C{timeout} ends are
        sent the C{421} and closed (cut off, a second later, if they did
        not go). When it returns, the address is free and no session is
        left. Stopping a controller that is not started does nothing.

        @param timeout: The seconds the work under way may take.
        @raise RuntimeError: If called in the reactor's thread.
        @raise TimeoutError: If the reactor does not finish in time (a hook
            blocking its thread).
        """
        port, sessions, reactor = self._port, self._sessions, self._reactor
        if port is None:
            return
        refuseInReactorThread()
        self._port = self._sessions = None
        if not reactor.running:
            # The process is exiting: the reactor shut everything down.
            return

        web = self._webService

        def stopInReactor() -> Deferred[None]:
            d = maybeDeferred(port.stopListening)
            d.addCallback(lambda _: sessions.close(timeout))
            if web is not None and web.running:
                d.addCallback(lambda _: web.stopService())
            return d

        callInReactor(
            reactor,
            stopInReactor,
            timeout + DROP_WAIT + self.ready_timeout,
            f"stopping the server on {self._address()}",
        )

    def _serveInbox(self, reactor: Any) -> None:
        """
        Put a web inbox in front of the handler, once (see C{web}).
        """
        from twisted_smtpd._inboxweb import inboxWebService

        self.handler, self._webService = inboxWebService(
            self.handler, self.web, reactor=reactor
        )
        self.inbox = getattr(self.handler, "inbox", self.handler)

    @property
    def web_port(self) -> int | None:
        """
        The port the web inbox listens on while started (see C{web}), else
        C{None}.
        """
        service = self._webService
        if self._port is None or service is None or not service.running:
            return None
        waiting = service._waitingForPort
        port = getattr(waiting, "result", None)
        return port.getHost().port if port is not None else None

    def __enter__(self: _Self) -> _Self:
        """
        Start, for a C{with} block.
        """
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        """
        Stop, with the default grace period, at the end of a C{with} block.
        """
        self.stop()


class Controller(_ThreadedController):
    """
    An SMTP server on TCP in a background thread, with aiosmtpd's
    C{Controller} interface.

    C{hostname} is the address to listen on, as in aiosmtpd: C{None} means
    C{"127.0.0.1"}, C{""} every IPv4 interface, C{"::"} every interface
    (IPv6, and IPv4 too where the system allows dual-stack sockets). The
    name the server gives to its clients is C{server_hostname}.

    Use it in a C{with} block, or call C{start()} and C{stop()}; it can be
    started again after it stopped. Several controllers may run at once;
    they share one reactor thread (see L{twisted_smtpd.controller}).

    @ivar hostname: The address to listen on.
    """

    def __init__(
        self,
        handler: Any,
        hostname: str | None = "127.0.0.1",
        port: int = 8025,
        *,
        server_hostname: str | None = None,
        ready_timeout: float = DEFAULT_READY_TIMEOUT,
        protocol: type[SMTP] = SMTP,
        **options: Any,
    ) -> None:
        """
        @param handler: The object whose C{handle_*} hooks decide what
            happens; see L{SMTP}.
        @param hostname: The address to listen on: C{None} for
            C{"127.0.0.1"}, C{""} for every IPv4 interface, C{"::"} for
            every interface.
        @param port: The TCP port; C{0} lets the system choose one, which
            L{port} then gives.
        @param server_hostname: The name in the greeting and HELO/EHLO
            replies (the C{hostname} option of L{SMTPFactory}); this
            machine's FQDN by default.
        @param ready_timeout: Seconds C{start()} waits for the server to
            listen.
        @param protocol: L{SMTP}, L{twisted_smtpd.LMTP} or another subclass.
        @param options: The options of L{SMTPFactory} (C{data_size_limit},
            C{tls_context}, C{implicit_tls}, C{max_connections}...);
            C{enable_SMTPUTF8} is C{True} unless given, as in aiosmtpd's
            C{Controller}. They are checked by C{start()}.
        """
        super().__init__(
            handler,
            server_hostname=server_hostname,
            ready_timeout=ready_timeout,
            protocol=protocol,
            **options,
        )
        self.hostname = "127.0.0.1" if hostname is None else hostname
        self._wantedPort = port

    @property
    def port(self) -> int:
        """
        The port listened on while started (the one the system chose for
        port C{0}), else the port asked for.
        """
        if self._port is not None:
            return self._port.getHost().port
        return self._wantedPort

    def _address(self) -> str:
        return f"{self.hostname}:{self.port}"

    def _endpoint(self, reactor: Any) -> IStreamServerEndpoint:
        endpoint = TCP6ServerEndpoint if ":" in self.hostname else TCP4ServerEndpoint
        return endpoint(
            reactor, self._wantedPort, backlog=DEFAULT_BACKLOG, interface=self.hostname
        )


class UnixSocketController(_ThreadedController):
    """
    An SMTP server on a Unix socket in a background thread, with aiosmtpd's
    C{UnixSocketController} interface.

    A leftover socket file that nothing listens on is replaced; the file is
    removed when the controller stops.

    @ivar unix_socket: The path of the socket.
    """

    def __init__(
        self,
        handler: Any,
        unix_socket: str | os.PathLike[str],
        *,
        server_hostname: str | None = None,
        ready_timeout: float = DEFAULT_READY_TIMEOUT,
        protocol: type[SMTP] = SMTP,
        **options: Any,
    ) -> None:
        """
        @param handler: The object whose C{handle_*} hooks decide what
            happens; see L{SMTP}.
        @param unix_socket: The path of the socket to make.
        @param server_hostname: The name in the greeting and HELO/EHLO
            replies; this machine's FQDN by default.
        @param ready_timeout: Seconds C{start()} waits for the server to
            listen.
        @param protocol: L{SMTP}, L{twisted_smtpd.LMTP} or another subclass.
        @param options: The options of L{SMTPFactory}, as for L{Controller}.
        """
        super().__init__(
            handler,
            server_hostname=server_hostname,
            ready_timeout=ready_timeout,
            protocol=protocol,
            **options,
        )
        self.unix_socket = unix_socket

    def _address(self) -> str:
        return os.fspath(self.unix_socket)

    def _prepare(self) -> None:
        path = Path(self.unix_socket)
        try:
            if not stat.S_ISSOCK(path.lstat().st_mode):
                return
        except FileNotFoundError:
            return
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(os.fspath(path))
        except ConnectionRefusedError:
            # Nothing listens: a leftover of a process that died.
            path.unlink(missing_ok=True)
        except OSError:
            pass
        else:
            raise OSError(errno.EADDRINUSE, os.strerror(errno.EADDRINUSE), str(path))
        finally:
            probe.close()

    def _endpoint(self, reactor: Any) -> IStreamServerEndpoint:
        return UNIXServerEndpoint(
            reactor, os.fspath(self.unix_socket), backlog=DEFAULT_BACKLOG
        )


def _firstError(failure: Any) -> Any:
    """
    The error of the first listener that failed (of C{gatherResults}).
    """
    return failure.value.subFailure
