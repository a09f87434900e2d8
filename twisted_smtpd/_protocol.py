# -*- test-case-name: tests.test_protocol -*-
"""
The SMTP server protocol.

L{SMTP} reads commands in line mode and the DATA phase in raw chunks, calls
the handler's hooks, and writes the replies of one batch of pipelined
commands in one write. It is the only module that touches the transport.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from twisted.internet.address import IPv6Address
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IHandshakeListener, ISSLTransport
from twisted.internet.tcp import Server as _TCPServer
from twisted.logger import Logger, LogLevel
from twisted.protocols.basic import LineReceiver
from twisted.python.failure import Failure
from zope.interface import implementer

from twisted_smtpd import _data
from twisted_smtpd._auth import (
    MISSING,
)
from twisted_smtpd._authcommands import AuthCommands
from twisted_smtpd._commands import MailCommands
from twisted_smtpd._config import Config, makeConfig
from twisted_smtpd._hooks import DONE, settle
from twisted_smtpd._proxy import ProxyError, ProxyParser
from twisted_smtpd._session import Envelope, Session
from twisted_smtpd._syntax import syntax

__version__ = "0.1.0"

log = Logger(namespace="twisted_smtpd.server")


@implementer(IHandshakeListener)
class SMTP(MailCommands, AuthCommands, LineReceiver):
    """
    An ESMTP server for one connection (RFC 5321), driven by a handler.

    The handler is any object; the server calls its optional hooks
    C{handle_HELO}, C{handle_EHLO}, C{handle_NOOP}, C{handle_QUIT},
    C{handle_VRFY}, C{handle_MAIL}, C{handle_RCPT}, C{handle_RSET},
    C{handle_DATA} and C{handle_exception} with aiosmtpd's signatures. A hook
    may return a reply, C{None} for the default reply, a L{Deferred} or a
    coroutine; while one is pending, reading pauses, so that pipelined
    commands are answered in order.

    Commands are methods named C{smtp_<VERB>} taking the argument (a C{str},
    or C{None}); a subclass adds or replaces commands by defining more, and
    gives them HELP text with L{syntax}.

    @ivar event_handler: The handler.
    @ivar session: The L{Session} of this connection.
    @ivar envelope: The L{Envelope} of the current transaction.
    """

    #: The greeting's product name when no C{ident} option is given.
    __ident__ = f"twisted_smtpd {__version__}"

    #: aiosmtpd's challenges for AUTH LOGIN.
    AuthLoginUsernameChallenge = "User Name\x00"
    AuthLoginPasswordChallenge = "Password\x00"

    _sendHeloFirst = "503 Error: send HELO first"

    #: The commands allowed before STARTTLS when it is required.
    _beforeTLSVerbs = frozenset(["NOOP", "EHLO", "STARTTLS", "QUIT"])

    _buffer = b""
    _dataReceiver: _data.DataReceiver | None = None
    _busy = False
    _hookPending = False
    _writePaused = False
    _readPaused = False
    _authWaiter: Deferred | None = None
    _tlsActive = False
    _tlsStarting = False
    _handshakePending = False
    _securityRefused = False
    _authFailures = 0
    _lastReply: bytes | None = None
    _inAuth = False
    _envelope: Envelope | None = None
    _proxyParser: ProxyParser | None = None
    _proxyHeld: bytes | None = None
    _proxyTimer: Any = None
    _closeTimer: Any = None
    factory: Any = None
    _logout: Callable[[], Any] | None = None
    _discarding = False
    _unknownCount = 0
    _callCounts: dict[str, int] | None = None
    _closing = False
    _out: list[bytes] | None = None
    _transactionStart = 0.0

    def __init__(self, handler: Any, *, _config: Config | None = None, **options):
        """
        @param handler: The object whose hooks decide what happens.
        @param options: C{data_size_limit=33554432}, C{enable_SMTPUTF8=False},
            C{decode_data=False}, C{hostname=None} (this machine's FQDN),
            C{ident=None}, C{timeout=300}, C{command_call_limit=None},
            C{line_length_limit=1001}, C{command_size_limit=512},
            C{local_part_limit=0}, C{bare_newline="reject"},
            C{max_unknown_commands=5}, C{reactor=None}; see the README.
        @raise TypeError: For an unknown option or a value of the wrong type.
        @raise ValueError: For a value out of range.
        """
        if _config is None:
            _config = makeConfig(handler, **options)
        self._config = _config
        self.event_handler = handler
        self._reactor = _config.reactor
        self._hooks = _config.hooks
        self.session: Session | None = None

    # aiosmtpd's public attributes, read from the shared configuration.

    @property
    def hostname(self) -> str:
        """
        The name this server gives in its greeting and HELO/EHLO replies.
        """
        return self._config.hostname

    @property
    def data_size_limit(self) -> int | None:
        """
        The largest message accepted, or C{None} for no limit.
        """
        return self._config.data_size_limit

    @property
    def enable_SMTPUTF8(self) -> bool:
        """
        Whether SMTPUTF8 (RFC 6531) is offered.
        """
        return self._config.enable_SMTPUTF8

    @property
    def loop(self) -> Any:
        """
        The asyncio loop under Twisted's asyncio reactor, else the reactor.
        """
        return self._config.asyncioLoop or self._reactor

    def _create_session(self) -> Session:
        """
        Make the L{Session} of a new connection; override to use your own.
        """
        return Session(self.loop)

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

    def _create_envelope(self) -> Envelope:
        """
        Make the L{Envelope} of a new transaction; override to use your own.
        """
        return Envelope()

    # Connection life.

    def connectionMade(self) -> None:
        """
        Set up the session and greet the client.
        """
        session = self.session = self._create_session()
        session.transport = self.transport
        session.peer = _peerOf(self.transport.getPeer())
        self._envelope = None
        if ISSLTransport.providedBy(self.transport):
            # Implicit TLS (RFC 8314): the listener is an ssl: endpoint.
            self._tlsActive = self._handshakePending = True
        self.transport.registerProducer(self, True)
        factory = self.factory
        if factory is not None and not factory.admitConnection(self):
            self._close("421 4.3.2 Too many connections, try again later")
            return
        timeout = self._config.proxy_protocol_timeout
        if timeout:
            # The PROXY header comes before anything else, TLS included.
            self._proxyParser = ProxyParser()
            self._proxyTimer = self._reactor.callLater(timeout, self._proxyTimedOut)
            return
        self._begin()

    def _begin(self, early: bytes = b"") -> None:
        """
        Start the SMTP session: TLS first on an implicit-TLS listener made
        of a plain TCP port, then the greeting.

        @param early: Bytes the client sent after the PROXY header, which
            belong to the TLS handshake or the SMTP session.
        """
        config = self._config
        if config.idle is not None:
            config.idle.touch(self)
        if config.implicit_tls and not self._tlsActive:
            self._tlsActive = self._handshakePending = True
            self.transport.startTLS(config.tls_context)
            if early:
                self.transport.protocol.dataReceived(early)
                early = b""
        ident = config.ident or self.__ident__
        self._write(f"220 {config.hostname} {ident}\r\n".encode())
        if early:
            self.dataReceived(early)

    def _proxyReceived(self, data: bytes) -> None:
        """
        Feed the PROXY header parser; act on the header once it is whole.
        Bytes that come while C{handle_PROXY} decides are held until it
        has, and its time counts against C{proxy_protocol_timeout}.
        """
        if self._proxyHeld is not None:
            self._proxyHeld += data
            return
        parser = self._proxyParser
        try:
            proxyData = parser.feed(data)
        except ProxyError as e:
            log.warn(
                "{peer} bad PROXY header: {error}", peer=self.session.peer, error=e
            )
            self._abort()
            return
        if proxyData is None:
            return
        self._proxyHeld = parser.rest
        session = self.session
        session.proxy_data = proxyData

        def decided(ok: Any) -> None:
            if self._closing:
                return
            held, self._proxyHeld = self._proxyHeld, None
            self._proxyParser = None
            self._proxyTimer.cancel()
            if ok:
                # Only now: while handle_PROXY decides, session.peer is the
                # proxy that connected, which is what a trust check needs.
                peer = proxyData.peer()
                if peer is not None:
                    session.peer = peer
                self._begin(held)
            else:
                log.info("{peer} refused by handle_PROXY", peer=session.peer)
                self._abort()

        if "PROXY" not in self._hooks:
            decided(True)
            return
        try:
            result = self._hook("PROXY", decided, proxyData)
        except Exception:
            log.failure("{peer} error in handle_PROXY", peer=session.peer)
            self._abort()
            return
        if isinstance(result, Deferred):
            result.addErrback(self._proxyHookFailed)

    def _proxyHookFailed(self, failure: Failure) -> None:
        log.failure("{peer} error in handle_PROXY", failure, peer=self.session.peer)
        self._abort()

    def _proxyTimedOut(self) -> None:
        log.info("{peer} sent no PROXY header in time", peer=self.session.peer)
        self._abort()

    def _abort(self) -> None:
        """
        Drop the connection without a word, as for a bad PROXY header.
        """
        self._closing = True
        self._proxyParser = None
        self.transport.abortConnection()

    def connectionLost(self, reason: Failure = None) -> None:
        """
        Stop the timer and let go of the message being received.
        """
        self._closing = True
        self._logAborted()
        if self._config.idle is not None:
            self._config.idle.forget(self)
        self._dataReceiver = None
        self._buffer = b""
        if self._handshakePending:
            log.info(
                "{peer} TLS handshake failed: {reason}",
                peer=self.session.peer,
                reason=reason.getErrorMessage() if reason is not None else None,
            )
        if self._proxyTimer is not None and self._proxyTimer.active():
            self._proxyTimer.cancel()
        if self._closeTimer is not None and self._closeTimer.active():
            self._closeTimer.cancel()
        if self.factory is not None:
            self.factory.releaseConnection(self)
        if self._authWaiter is not None:
            waiter, self._authWaiter = self._authWaiter, None
            waiter.callback(MISSING)
        logout, self._logout = self._logout, None
        if logout is not None:
            logout()

    def timeoutConnection(self) -> None:
        """
        Say why before closing an idle connection (RFC 5321 section 3.8).
        """
        log.info("{peer} timed out", peer=self.session.peer)
        self._close(f"421 4.4.2 {self._config.hostname} Error: timeout exceeded")

    #: Seconds a closing connection may take to deliver its last replies
    #: to a client that does not read them, before it is dropped.
    closeTimeout = 30.0

    def disconnect(self, reply: str) -> None:
        """
        Send a last reply, such as C{421} when the service shuts down, and
        close the connection once it is written (or after L{closeTimeout}
        seconds if the client reads nothing). Replies of commands still in
        progress are not sent.

        @param reply: The reply, without its final CRLF.
        """
        self._close(reply)

    def _close(self, reply: str) -> None:
        """
        Send a last reply and close the connection after it.
        """
        if self._closing:
            return
        self._reply(reply)
        self._flush()
        self._closing = True
        if self._config.idle is not None:
            self._config.idle.forget(self)
        # Twisted's TLS layer does not shut down while a producer is
        # registered.
        self.transport.unregisterProducer()
        if self._handshakePending:
            # The reply cannot go out before the handshake that never ends.
            self.transport.abortConnection()
        else:
            # loseConnection() waits for the replies to be written, which
            # is forever if the client reads nothing.
            self._closeTimer = self._reactor.callLater(
                self.closeTimeout, self.transport.abortConnection
            )
            self.transport.loseConnection()

    # Flow control: reading pauses while a hook is pending (unless it waits
    # for the client's answer to an AUTH challenge) or while the client does
    # not read our replies.

    def _canRead(self) -> bool:
        return not (
            self._writePaused
            or self._closing
            or (self._hookPending and self._authWaiter is None)
        )

    def _updateReading(self) -> None:
        """
        Pause or resume the transport to match what the state allows.
        """
        # During a TLS handshake the transport must go on reading, even if
        # the TLS layer holds back our greeting until it is done.
        paused = not self._canRead() and not self._handshakePending
        if paused != self._readPaused and not self._closing:
            self._readPaused = paused
            if paused:
                self.transport.pauseProducing()
            else:
                self.transport.resumeProducing()

    def pauseProducing(self) -> None:
        """
        The transport's write buffer is full: stop reading.
        """
        self._writePaused = True
        self._updateReading()

    def resumeProducing(self) -> None:
        """
        The transport's write buffer drained: read again.
        """
        self._writePaused = False
        self._updateReading()
        self._process()

    def stopProducing(self) -> None:
        """
        The transport is going away.
        """
        self._closing = True

    def _wait(self, pending: Deferred) -> None:
        """
        Stop reading until C{pending} fires, then go on with what is
        buffered.
        """
        self._hookPending = True
        self._waitingChanged()
        pending.addErrback(self._failed).addBoth(self._resume)

    def _resume(self, ignored: Any) -> None:
        self._hookPending = False
        self._flush()
        self._waitingChanged()
        self._process()

    def _waitingChanged(self) -> None:
        """
        What the server waits for changed (a hook started or finished, an
        AUTH challenge awaits the client or was answered): pause or resume
        reading and the idle clock to match.
        """
        self._updateReading()
        self._updateIdle()

    def _updateIdle(self) -> None:
        """
        Run the idle clock only while the server waits for the client (RFC
        5321 section 4.5.3.2.7): a hook still working is the server's time,
        and a 421 after the end of the data, while C{handle_DATA} delivers,
        would make the client send the message again.
        """
        idle = self._config.idle
        if idle is not None and not self._closing:
            if self._hookPending and self._authWaiter is None:
                idle.forget(self)
            else:
                idle.touch(self)

    # Input.

    def dataReceived(self, data: bytes) -> None:
        """
        Take bytes from the transport: commands in line mode, message data
        in DATA mode.
        """
        if self._closing:
            # After the last reply (a TLS transport goes on reading until
            # the client's close_notify): nothing more is kept.
            return
        if self._proxyParser is not None:
            self._proxyReceived(data)
            return
        idle = self._config.idle
        if idle is not None and not (self._hookPending and self._authWaiter is None):
            idle.touch(self)
        if self._buffer:
            self._buffer += data
        else:
            self._buffer = data
        self._process()

    def _process(self) -> None:
        """
        Work through the buffered input until it is used up or something
        asks to wait, then write the replies of the whole batch at once.
        """
        if self._busy:
            return
        self._busy = True
        try:
            while self._buffer and self._canRead():
                if self._dataReceiver is not None:
                    self._dataChunk()
                elif not self._lines():
                    break
        finally:
            self._busy = False
            self._flush()

    def _lines(self) -> bool:
        """
        Handle every complete command line in the buffer, until one of them
        changes the mode or asks to wait.

        @return: C{False} when only an incomplete line is left, so that more
            input is needed before going on.
        """
        buf = self._buffer
        start = 0
        limit = self._config.line_length_limit
        while True:
            end = buf.find(b"\n", start)
            if end < 0:
                rest = buf[start:] if start else buf
                if self._discarding or len(rest) >= limit:
                    # An overlong line: drop it up to its end and never parse
                    # any of it.
                    self._discarding = True
                    rest = b""
                self._buffer = rest
                return False
            line = buf[start:end]
            length = end + 1 - start
            start = end + 1
            if self._discarding or length > limit:
                self._discarding = False
                self._reply("500 Command line too long")
                if self._authWaiter is not None:
                    # An answer to an AUTH challenge: the 500 ends the
                    # exchange (RFC 4954 section 4).
                    waiter, self._authWaiter = self._authWaiter, None
                    waiter.callback(MISSING)
                    self._waitingChanged()
            elif self._authWaiter is not None:
                self._authResponse(line)
            else:
                self._command(line)
            if self._tlsStarting:
                # RFC 3207 section 4: what the client pipelined after
                # STARTTLS is never executed.
                self._buffer = b""
                return False
            if self._dataReceiver is not None or not self._canRead():
                self._buffer = buf[start:]
                return True

    def _command(self, line: bytes) -> None:
        """
        Decode and dispatch one command line (with its CR, if any).
        """
        if not line.endswith(b"\r"):
            self._reply("500 5.5.2 Error: bare LF received; end lines with CRLF")
            return
        line = line[:-1]
        if b"\r" in line:
            self._reply("500 5.5.2 Error: bare CR received")
            return
        if len(line) > self._config.command_size_limit and len(
            line
        ) > self._commandLimit(line):
            self._reply("500 Command line too long")
            return
        try:
            text = line.decode("ascii")
        except UnicodeDecodeError:
            if not self._config.enable_SMTPUTF8:
                self._reply("500 Error: strict ASCII mode")
                return
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError:
                self._reply("500 Error: bad syntax (invalid UTF-8)")
                return
        verb, sep, arg = text.partition(" ")
        # ASCII first: upper() makes ASCII letters of some others ("ı").
        if not verb.isascii() or not verb.isalnum():
            if verb:
                # Not a command at all (an HTTP header, say): it counts
                # towards the limit as an unknown one does.
                self._refuseUnknown("500 Error: bad syntax")
            else:
                self._reply("500 Error: bad syntax")
            return
        verb = verb.upper()
        arg = arg.strip() or None
        if self._config.callLimits is not None and self._overLimit(verb):
            return
        if (self._config.gated or self._securityRefused) and self._refused(verb):
            return
        method = getattr(self, "smtp_" + verb, None)
        if method is None:
            self._unknown(verb)
            return
        self._run(method, arg)

    def _run(self, call: Callable[..., Any], *args: Any) -> None:
        """
        Run a command or a step of one: an exception becomes a reply, and a
        result that is still pending stops reading until it is there.
        """
        try:
            result = call(*args)
            if result is not None:
                result = settle(result, self._config.asyncioLoop)
        except Exception:
            result = self._failed(Failure())
        if result is not None and isinstance(result, Deferred):
            self._wait(result)

    def _commandLimit(self, line: bytes) -> int:
        """
        The longest command line allowed, without its CRLF: RFC 1870, RFC
        6531 and RFC 4954 let MAIL grow by what their parameters need after
        EHLO.
        """
        limit = self._config.command_size_limit
        if line[:4].upper() == b"MAIL" and self.session.extended_smtp:
            if self._config.data_size_limit:
                limit += 26
            if self._config.enable_SMTPUTF8:
                limit += 10
            if self._offersAuth and self._authAllowedHere():
                # RFC 4954 section 3: room for the AUTH= parameter.
                limit += 500
        return limit

    def _refused(self, verb: str) -> bool:
        """
        Refuse a command that the security policy does not allow yet;
        return C{True} if so.
        """
        config = self._config
        if self._securityRefused:
            if verb == "QUIT":
                return False
            self._reply("554 Command refused due to lack of security")
            return True
        if (
            config.require_starttls
            and not self._tlsActive
            and verb not in self._beforeTLSVerbs
        ):
            self._reply("530 Must issue a STARTTLS command first")
            return True
        if (
            config.auth_required
            and not self.session.authenticated
            and verb in _NEED_AUTH
            # As in aiosmtpd, a transaction command before HELO gets the
            # command's own 503 first.
            and (self.session.host_name or verb not in _NEED_HELO)
        ):
            self._reply("530 5.7.0 Authentication required")
            return True
        return False

    def _overLimit(self, verb: str) -> bool:
        """
        Count a command against C{command_call_limit}; close the connection
        and return C{True} once it is used up.
        """
        counts = self._callCounts
        if counts is None:
            counts = self._callCounts = {}
        count = counts[verb] = counts.get(verb, 0) + 1
        limits = self._config.callLimits
        if count > limits.get(verb, limits["*"]):
            self._close(f"421 4.7.0 {verb} sent too many times")
            return True
        return False

    def _unknown(self, verb: str) -> None:
        """
        Refuse an unknown command; end the session after too many of them.
        """
        if len(verb) > 64:
            # A reply line must fit in 512 octets (RFC 5321 4.5.3.1.5).
            verb = verb[:64] + "..."
        self._refuseUnknown(f'500 Error: command "{verb}" not recognized')

    def _refuseUnknown(self, reply: str) -> None:
        """
        Refuse a line that is no command we know with C{reply}, or with 421
        and the end of the session once C{max_unknown_commands} is reached.
        """
        self._unknownCount += 1
        if self._unknownCount >= self._config.max_unknown_commands:
            self._close("421 4.7.0 Too many unrecognized commands, goodbye.")
        else:
            self._reply(reply)

    # Output.

    def push(self, status: str | bytes) -> Any:
        """
        Send one reply (or several, joined by CRLF) to the client now.

        @param status: The reply without its final CRLF.
        @return: An awaitable that is already complete, so that handlers
            written for aiosmtpd can C{await server.push(...)}.
        """
        self._reply(status)
        if not self._busy:
            self._flush()
        return DONE

    def _encode(self, status: str | bytes) -> bytes:
        """
        A reply as bytes: UTF-8 when SMTPUTF8 is offered, else ASCII.

        @raise TypeError: For anything but C{str} or C{bytes}.
        """
        if isinstance(status, str):
            if self._config.enable_SMTPUTF8:
                return status.encode("utf-8")
            return status.encode("ascii", "replace")
        if not isinstance(status, bytes):
            raise TypeError(f"a reply must be str or bytes, not {status!r}")
        return status

    def _reply(self, status: str | bytes) -> None:
        if self._closing:
            # Nothing goes out after the last reply of a closing connection.
            return
        status = self._encode(status)
        if self._inAuth:
            self._lastReply = status
        out = self._out
        if out is None:
            out = self._out = []
        out.append(status + b"\r\n")

    #: How the lines of the EHLO reply are sent (LMTP sends them unchanged).
    _ehloReply = _reply

    def _write(self, data: bytes) -> None:
        _send(self.transport, data)

    def _flush(self) -> None:
        out = self._out
        if out:
            self._out = None
            _send(self.transport, out[0] if len(out) == 1 else b"".join(out))

    # Calling hooks.

    def _hook(self, verb: str, then: Callable[[Any], Any], *args: Any) -> Any:
        """
        Call the handler's C{handle_<verb>} hook, if it has one, and pass its
        result (C{None} without a hook) to C{then}, now or once it is known.

        @return: What C{then} returns, or a L{Deferred} while the hook is
            pending.
        """
        hook = self._hooks.get(verb)
        if hook is None:
            return then(None)
        result = settle(
            hook(self, self.session, self.envelope, *args), self._config.asyncioLoop
        )
        if isinstance(result, Deferred):
            return result.addCallback(then)
        return then(result)

    def _failed(self, failure: Failure) -> Any:
        """
        Turn an exception in a command or a hook into a reply, never into a
        traceback for the client, and abort the transaction.
        """
        log.failure(
            "{peer} error while handling a command", failure, peer=self.session.peer
        )
        self._dataReceiver = None
        self._logAborted()
        self._envelope = None
        handler = getattr(self.event_handler, "handle_exception", None)
        if handler is None:
            return self._replyError(None)
        try:
            result = settle(handler(failure.value), self._config.asyncioLoop)
        except Exception:
            log.failure("{peer} error in handle_exception", peer=self.session.peer)
            return self._replyError(None)
        if isinstance(result, Deferred):
            return result.addCallbacks(self._replyError, self._errorInErrorHandler)
        return self._replyError(result)

    def _errorInErrorHandler(self, failure: Failure) -> None:
        log.failure("{peer} error in handle_exception", failure, peer=self.session.peer)
        self._replyError(None)

    def _replyError(self, status: Any) -> None:
        if not isinstance(status, (str, bytes)):
            status = "451 Requested action aborted: local error in processing"
        self.push(status)

    # TLS (RFC 3207, RFC 8314).

    @property
    def tls_context(self) -> Any:
        """
        The TLS options STARTTLS uses, or C{None}.
        """
        return self._config.tls_context

    @property
    def require_starttls(self) -> bool:
        """
        Whether commands other than EHLO, NOOP, STARTTLS and QUIT wait for
        TLS.
        """
        return self._config.require_starttls

    @syntax("STARTTLS", when="tls_context")
    def smtp_STARTTLS(self, arg: str | None) -> None:
        """
        Start TLS on this connection (RFC 3207).
        """
        if arg:
            self._reply("501 Syntax: STARTTLS")
        elif self._tlsActive:
            self._reply("503 Error: TLS already active")
        elif self._config.tls_context is None:
            self._reply("454 TLS not available")
        else:
            self._reply("220 Ready to start TLS")
            self._flush()
            self._tlsStarting = self._handshakePending = True
            self._buffer = b""
            self.transport.startTLS(self._config.tls_context)

    def handshakeCompleted(self) -> None:
        """
        TLS is up: record its details and, after STARTTLS, forget everything
        the plaintext session established (RFC 3207 section 4.2) except the
        facts of the connection itself.
        """
        self._tlsActive = True
        self._handshakePending = False
        starting, self._tlsStarting = self._tlsStarting, False
        old = self.session
        if starting:
            self._logAborted()
            self.session = self._create_session()
            self.session.transport = self.transport
            self.session.peer = old.peer
            self.session.proxy_data = old.proxy_data
            self._envelope = None
        self.session.ssl = _tlsDetails(self.transport)
        if starting and "STARTTLS" in self._hooks:
            self._run(self._hook, "STARTTLS", self._startTLSDecided)
        self._flush()
        self._updateReading()

    def _startTLSDecided(self, ok: Any) -> None:
        if not ok:
            self._securityRefused = True

    # Logging.

    def _logTransaction(self, envelope: Envelope, size: int, result: str) -> None:
        """
        Emit the one structured event of a transaction; the content and any
        credentials are left out.
        """
        # Logger.emit checks the level against a fresh list of all levels
        # on each call; on this per-message path the event is built as emit
        # builds it and handed to the observer directly.
        log.observer(
            {
                "log_logger": log,
                "log_level": LogLevel.info,
                "log_namespace": log.namespace,
                "log_source": None,
                "log_format": _TRANSACTION_FORMAT,
                "log_time": time.time(),
                "peer": self.session.peer,
                "sender": envelope.mail_from,
                "recipients": len(envelope.rcpt_tos),
                "size": size,
                "result": result,
                "duration": time.monotonic() - self._transactionStart,
            }
        )

    def _logAborted(self) -> None:
        envelope = self._envelope
        if envelope is not None and envelope.mail_from is not None:
            self._logTransaction(envelope, 0, "aborted")


_NEED_AUTH = frozenset(["MAIL", "RCPT", "DATA", "VRFY", "HELP"])
_NEED_HELO = frozenset(["MAIL", "RCPT", "DATA"])


def _tlsDetails(transport: Any) -> dict[str, Any]:
    """
    Describe the TLS of a connection as aiosmtpd's C{session.ssl} does, as
    far as OpenSSL tells: the protocol version, the cipher as C{(name,
    protocol, bits)} and the peer certificate (C{None} when the client sent
    none).
    """
    connection = transport.getHandle()
    details: dict[str, Any] = {"ssl_object": connection}
    try:
        details["protocol"] = connection.get_protocol_version_name()
        details["cipher"] = (
            connection.get_cipher_name(),
            connection.get_cipher_version(),
            connection.get_cipher_bits(),
        )
        certificate = connection.get_peer_certificate()
        details["peercert"] = (
            None if certificate is None else certificate.to_cryptography()
        )
    except Exception:
        log.failure("could not read the TLS details")
    return details


_TRANSACTION_FORMAT = (
    "{peer} message from {sender} to {recipients} recipient(s),"
    " {size} bytes: {result} in {duration:.3f}s"
)


def _send(transport: Any, data: bytes) -> None:
    """
    Write to a transport, straight to the socket when nothing is waiting to
    go out before it.

    Twisted's TCP transport only buffers in C{write} and sends on the next
    turn of the reactor, after registering for and receiving a "writable"
    event. For a reply of a few hundred bytes the socket has room at once,
    and sending it now, as asyncio does, saves two C{epoll_ctl} calls and a
    reactor turn: about a third of the CPU a pipelined message costs. Only
    a plain (no TLS) L{twisted.internet.tcp.Server} whose own buffers are
    empty qualifies, so the order of the bytes is kept; whatever the socket
    does not take now, and every other transport, goes through C{write}.
    """
    if type(transport) is _TCPServer:
        try:
            if (
                transport.connected
                and not transport.TLS
                and not transport.dataBuffer
                and not transport._tempDataBuffer
            ):
                sent = transport.socket.send(data)
                if sent == len(data):
                    return
                data = data[sent:]
        except (OSError, AttributeError):
            # A full or failing socket: write() buffers the data, and the
            # reactor reports a failure as the connection's loss.
            pass
    transport.write(data)


def _peerOf(address: Any) -> Any:
    """
    Give a transport address in aiosmtpd's (that is, asyncio's) shape:
    C{(host, port)} for IPv4, C{(host, port, flowinfo, scope_id)} for IPv6,
    the path for UNIX sockets.
    """
    host = getattr(address, "host", None)
    if host is not None:
        if isinstance(address, IPv6Address):
            return (host, address.port, address.flowInfo, address.scopeID)
        return (host, address.port)
    name = getattr(address, "name", None)
    if isinstance(name, bytes):
        return name.decode("utf-8", "replace")
    return name if name is not None else ""
