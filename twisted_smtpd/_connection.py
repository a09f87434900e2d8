# -*- test-case-name: tests.test_connection,tests.test_handshake -*-
"""
The session of one connection, below the commands.

L{Connection} adds to the byte stream of L{Channel} what every command
needs and none owns: the session and the envelope, the start of the
session (after a PROXY header, through implicit TLS), the one place that
calls the handler's hooks, the one place that turns an exception into a
reply, the wait for the client's answer to a challenge, and the switch to
TLS. It knows no SMTP command: L{twisted_smtpd.SMTP} adds them, in command
groups that use this class through
L{ServerCore <twisted_smtpd._interfaces.ServerCore>}.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IHandshakeListener, ISSLTransport
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from twisted_smtpd._channel import WAITING, Channel
from twisted_smtpd._config import Config, makeConfig
from twisted_smtpd._connhooks import (
    REFUSED,
    connect,
    disconnected,
    timedOut,
    untrustedProxy,
    usualGreeting,
)
from twisted_smtpd._errors import answerError
from twisted_smtpd._handshake import Handshake
from twisted_smtpd._hooks import settle
from twisted_smtpd._lines import ANSWER, COMMAND
from twisted_smtpd._proxyphase import ProxyHeader
from twisted_smtpd._session import Envelope, Session
from twisted_smtpd._streaming import abortStream
from twisted_smtpd._translog import logTransaction
from twisted_smtpd._transport import peerOfTransport, send, tlsDetails

log = Logger(namespace="twisted_smtpd.server")


@implementer(IHandshakeListener)
class Connection(Channel):
    """
    The session side of one SMTP connection; see the module docstring.

    @ivar config: The validated options (a L{Config}).
    @ivar event_handler: The handler.
    @ivar session: The L{Session} of this connection.
    """

    #: The greeting's product name when no C{ident} option is given. The
    #: version is the package's, which runs its first line before it
    #: imports this module (importing it from here would make a cycle).
    __ident__ = f"twisted_smtpd {sys.modules[__package__].__version__}"

    factory: Any = None
    _tlsActive = False
    _tlsHandshake: Handshake | None = None
    _atClose: list[Callable[[], Any]] | None = None
    _envelope: Envelope | None = None
    _transactionStart = 0.0

    def __init__(self, handler: Any, *, _config: Config | None = None, **options):
        """
        @param handler: The object whose hooks decide what happens.
        @param options: The options of L{twisted_smtpd.SMTPFactory}.
        @raise TypeError: For an unknown option or a value of the wrong type.
        @raise ValueError: For a value out of range.
        """
        self.config = makeConfig(handler, **options) if _config is None else _config
        self.enhancedStatusCodes |= self.config.enhanced_status_codes
        self.event_handler = handler
        self.session: Session | None = None

    @property
    def tlsActive(self) -> bool:
        """
        Whether the connection is encrypted, or its handshake under way.
        """
        return self._tlsActive

    @property
    def envelope(self) -> Envelope:
        """
        The L{Envelope} of the current transaction, made when first needed
        (an idle connection has none, to stay small).
        """
        envelope = self._envelope
        if envelope is None:
            envelope = self._envelope = self._create_envelope()
        return envelope

    @envelope.setter
    def envelope(self, envelope: Envelope | None) -> None:
        self._envelope = envelope

    def _create_session(self) -> Session:
        """
        Make the L{Session} of a new connection; override to use your own.
        """
        return Session(self.config.asyncioLoop or self.config.reactor)

    def _create_envelope(self) -> Envelope:
        """
        Make the L{Envelope} of a new transaction; override to use your own.
        """
        return Envelope()

    def resetSession(self) -> None:
        """
        Start a new session, as after STARTTLS (RFC 3207 section 4.2): the
        client is greeted again and nothing of the old session is kept but
        the facts of the connection itself (the peer, the PROXY header, TLS).
        """
        old = self.session
        session = self.session = self._create_session()
        session.transport = self.transport
        session.peer = old.peer
        session.proxy_data = old.proxy_data
        session.ssl = old.ssl

    # Connection life.

    def connectionMade(self) -> None:
        """
        Set up the session; greet the client, or wait for its PROXY header.
        """
        session = self.session = self._create_session()
        session.transport = self.transport
        session.peer = peerOfTransport(self.transport)
        if ISSLTransport.providedBy(self.transport):
            # Implicit TLS (RFC 8314): the listener is an ssl: endpoint.
            self._tlsActive = self._handshakePending = True
            self._tlsHandshake = Handshake(self)
        self.transport.registerProducer(self, True)
        factory = self.factory
        refusal = factory is not None and factory.screenConnection(self)
        if refusal or (refusal := untrustedProxy(self)):
            self.disconnect(refusal, REFUSED)
        elif self.config.proxy_protocol_timeout:
            # The PROXY header comes before anything else, TLS included.
            self._mode = ProxyHeader(self)
        else:
            self.begin()

    def begin(self) -> None:
        """
        Start the SMTP session: TLS first on an implicit-TLS listener made
        of a plain TCP port (the bytes already received belong to its
        handshake), then the greeting.
        """
        config = self.config
        if self._mode is not COMMAND:
            # After a PROXY header.
            self.setMode(COMMAND)
        if config.implicit_tls and not self._tlsActive:
            self._tlsActive = self._handshakePending = True
            self._tlsHandshake = Handshake(self)
            early = self._unread[self._offset :]
            self._unread, self._offset = b"", 0
            self.transport.startTLS(config.tls_context)
            if early:
                self.transport.protocol.dataReceived(early)
        connect(self, self.greet, self._tlsHandshake)

    def greet(self, status: str | None) -> None:
        """
        Send the greeting, C{status} or the usual one, and read on.
        """
        # Not while a handshake is under way: that has its own deadline.
        self._clockStarts()
        if status is None:
            send(self.transport, usualGreeting(self))
        else:
            self.uncounted(self.replyPlain, status)
            self.flush()
        self._process()

    def connectionLost(self, reason: Failure = None) -> None:
        """
        Stop the timers, let go of the message being received, and log a
        transaction cut short.
        """
        self._closing = True
        if "DISCONNECT" in self.config.hooks:
            disconnected(self)
        self.resetTransaction()
        if self.config.idle is not None:
            self.config.idle.forget(self)
        self._mode = WAITING
        self._unread, self._offset = b"", 0
        if self._handshakePending:
            self._tlsHandshake.lost(reason)
        if self._closeTimer is not None and self._closeTimer.active():
            self._closeTimer.cancel()
        if self.factory is not None:
            self.factory.releaseConnection(self)
        if self._answer is not None:
            self.answerReceived(None)
        calls, self._atClose = self._atClose, None
        for call in calls or ():
            call()

    def timeoutConnection(self) -> None:
        """
        Say why before closing an idle connection (RFC 5321 section 3.8).
        """
        log.info("{peer} timed out", peer=self.session.peer)
        timedOut(self, f"421 4.4.2 {self.config.hostname} Error: timeout exceeded")

    def atClose(self, call: Callable[[], Any]) -> None:
        """
        Have C{call} called once when the connection is lost.
        """
        if self._atClose is None:
            self._atClose = []
        self._atClose.append(call)

    # Running commands and hooks: the one place hooks are called, and the
    # one place their exceptions become replies.

    def hook(
        self,
        verb: str,
        then: Callable[[Any], Any],
        *args: Any,
        keepTransaction: bool = False,
    ) -> Any:
        """
        Call the handler's C{handle_<verb>} hook, if it has one, and pass its
        result (C{None} without a hook) to C{then}, now or once it is known.

        @param keepTransaction: Whether an exception in the hook (not in
            C{then}) only answers the command and keeps the transaction, as
            aiosmtpd does for C{handle_MAIL} and C{handle_RCPT}.
        @return: What C{then} returns, or a L{Deferred} while the hook is
            pending.
        """
        hook = self.config.hooks.get(verb)
        if hook is None:
            return then(None)
        try:
            result = settle(
                hook(self, self.session, self.envelope, *args),
                self.config.asyncioLoop,
            )
        except Exception:
            if not keepTransaction:
                raise
            return self._failed(Failure(), 1, True)
        if isinstance(result, Deferred):
            if keepTransaction:
                return result.addCallbacks(then, self._failed, errbackArgs=(1, True))
            return result.addCallback(then)
        return then(result)

    def _failed(
        self, failure: Failure, errorReplies: int = 1, keepTransaction: bool = False
    ) -> Any:
        """
        Turn an exception in a command or a hook into a reply, never into a
        traceback for the client (see L{answerError}), and abort the
        transaction unless told to keep it (see L{hook}).
        """
        if not keepTransaction:
            if self._mode is not WAITING and self._mode is not ANSWER:
                # Whatever the command was reading (the data, say) is over.
                self.setMode(COMMAND)
            self.resetTransaction()
        return answerError(self, failure, errorReplies)

    # TLS (RFC 3207, RFC 8314).

    def startTLS(self) -> Deferred:
        """
        Start TLS after the reply that announces it was queued: that reply
        goes out first, in plaintext, and whatever the client pipelined
        after the command is never read (RFC 3207 section 4).

        @return: A L{Deferred} firing with the TLS details (also put in
            C{session.ssl}) once the handshake is complete.
        """
        self.flush()
        self.dropUnread()
        self._handshakePending = True
        handshake = self._tlsHandshake = Handshake(self, Deferred())
        self.transport.startTLS(self.config.tls_context)
        return handshake.waiter

    def handshakeCompleted(self) -> None:
        """
        TLS is up: record its details and tell who started it.
        """
        self._tlsActive = True
        self._handshakePending = False
        handshake, self._tlsHandshake = self._tlsHandshake, None
        # The client now has the idle time to speak (EHLO again).
        self._clockStarts()
        details = self.session.ssl = tlsDetails(self.transport)
        if handshake is not None:
            handshake.completed(details)
        self.flush()
        self._updateReading()

    # The current transaction.

    @property
    def transactionInProgress(self) -> bool:
        """Whether MAIL was accepted or a hook works: not to be cut short by a 421."""
        return self._pending or getattr(self._envelope, "mail_from", None) is not None

    def resetTransaction(self) -> None:
        """
        Forget the current transaction, logging it as aborted if MAIL had
        started it.
        """
        envelope = self._envelope
        if envelope is not None and envelope.mail_from is not None:
            abortStream(self, envelope)
            self.transactionEnded(envelope, 0, "aborted")
        self._envelope = None

    def transactionStarted(self) -> None:
        """
        Note that a transaction began, for the duration in its log event.
        """
        self._transactionStart = time.monotonic()

    def transactionEnded(self, envelope: Envelope, size: int, result: str) -> None:
        """
        End the transaction of C{envelope}, if it is still the current one,
        and log it.

        @param size: The size of the message received.
        @param result: The reply code(s) to the end of the data.
        """
        if self._envelope is envelope:
            self._envelope = None
        logTransaction(
            self.session.peer, envelope, size, result, self._transactionStart
        )
