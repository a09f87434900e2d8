# -*- test-case-name: tests.test_protocol -*-
"""
The SMTP server protocol.

L{SMTP} reads commands in line mode and the DATA phase in raw chunks, calls
the handler's hooks, and writes the replies of one batch of pipelined
commands in one write. It is the only module that touches the transport.
"""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Callable
from typing import Any

from twisted.cred.credentials import CramMD5Credentials, UsernamePassword
from twisted.cred.error import UnauthorizedLogin
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IHandshakeListener, ISSLTransport
from twisted.logger import Logger, LogLevel
from twisted.protocols.basic import LineReceiver
from twisted.python.failure import Failure
from zope.interface import implementer

from twisted_smtpd import _data
from twisted_smtpd._address import (
    PathRefused,
    PathSyntaxError,
    parseParameters,
    parsePath,
    splitArgument,
)
from twisted_smtpd._auth import (
    MISSING,
    AuthResult,
    IAuthenticatedUser,
    LoginPassword,
    auth_mechanism,
    mechanismName,
    portalSupportsCramMD5,
)
from twisted_smtpd._config import Config, makeConfig
from twisted_smtpd._hooks import DONE, settle
from twisted_smtpd._proxy import ProxyError, ProxyParser
from twisted_smtpd._session import Envelope, Session

__version__ = "0.1.0"

log = Logger(namespace="twisted_smtpd.server")

_USER_NAME = re.compile(r"[^\s<>@\x00-\x1f\x7f]+\Z")


def syntax(
    text: str, extended: str | None = None, when: str | None = None
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """
    Give an C{smtp_<VERB>} method its HELP text, as aiosmtpd's C{@syntax}.

    @param text: The syntax shown by C{HELP <VERB>}; the verb is listed by
        C{HELP} only when it has one.
    @param extended: Appended to C{text} once the client sent EHLO.
    @param when: The name of a server attribute that must be true for the
        verb to be listed (e.g. C{"tls_context"} for STARTTLS).
    """

    def decorator(method: Callable[..., Any]) -> Callable[..., Any]:
        method.__smtp_syntax__ = text  # type: ignore[attr-defined]
        method.__smtp_syntax_extended__ = extended  # type: ignore[attr-defined]
        method.__smtp_syntax_when__ = when  # type: ignore[attr-defined]
        return method

    return decorator


@implementer(IHandshakeListener)
class SMTP(LineReceiver):
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
    _proxyTimer: Any = None
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
        if factory is not None and not factory._admit(self):
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
        """
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
        self._proxyParser = None
        self._proxyTimer.cancel()
        session = self.session
        session.proxy_data = proxyData
        peer = proxyData.peer()
        if peer is not None:
            session.peer = peer
        rest = parser.rest
        if "PROXY" not in self._hooks:
            self._begin(rest)
            return

        def decided(ok: Any) -> None:
            if ok:
                self._begin(rest)
            else:
                log.info("{peer} refused by handle_PROXY", peer=session.peer)
                self._abort()

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
        if self._config.idle is not None:
            self._config.idle.forget(self)
        self._dataReceiver = None
        self._buffer = b""
        if self._handshakePending and self._tlsActive or self._tlsStarting:
            log.info(
                "{peer} TLS handshake failed: {reason}",
                peer=self.session.peer,
                reason=reason.getErrorMessage() if reason is not None else None,
            )
        if self._proxyTimer is not None and self._proxyTimer.active():
            self._proxyTimer.cancel()
        if self.factory is not None:
            self.factory._release(self)
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

    def _close(self, reply: str) -> None:
        """
        Send a last reply and close the connection after it.
        """
        self._reply(reply)
        self._flush()
        self._closing = True
        # Twisted's TLS layer does not shut down while a producer is
        # registered.
        self.transport.unregisterProducer()
        if self._handshakePending:
            # The reply cannot go out before the handshake that never ends.
            self.transport.abortConnection()
        else:
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
        self._updateReading()
        pending.addErrback(self._failed).addBoth(self._resume)

    def _resume(self, ignored: Any) -> None:
        self._hookPending = False
        self._flush()
        self._updateReading()
        self._process()

    # Input.

    def dataReceived(self, data: bytes) -> None:
        """
        Take bytes from the transport: commands in line mode, message data
        in DATA mode.
        """
        if self._proxyParser is not None:
            self._proxyReceived(data)
            return
        idle = self._config.idle
        if idle is not None:
            idle.touch(self)
        if self._buffer:
            self._buffer += data
        else:
            self._buffer = data
        if not self._busy:
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
        verb = verb.upper()
        if not verb.isalnum() or not verb.isascii():
            self._reply("500 Error: bad syntax")
            return
        arg = arg.strip() or None
        if self._config.callLimits is not None and self._overLimit(verb):
            return
        if (self._config.gated or self._securityRefused) and self._refused(verb):
            return
        method = getattr(self, "smtp_" + verb, None)
        if method is None:
            self._unknown(verb)
            return
        try:
            result = method(arg)
            if result is not None:
                result = settle(result, self._config.asyncioLoop)
        except Exception:
            result = self._failed(Failure())
        if result is not None and isinstance(result, Deferred):
            self._wait(result)

    def _commandLimit(self, line: bytes) -> int:
        """
        The longest command line allowed, without its CRLF: RFC 1870 and
        RFC 6531 let MAIL grow by what their parameters need after EHLO.
        """
        limit = self._config.command_size_limit
        if line[:4].upper() == b"MAIL" and self.session.extended_smtp:
            if self._config.data_size_limit:
                limit += 26
            if self._config.enable_SMTPUTF8:
                limit += 10
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
        self._unknownCount += 1
        if self._unknownCount >= self._config.max_unknown_commands:
            self._close("421 4.7.0 Too many unrecognized commands, goodbye.")
        else:
            self._reply(f'500 Error: command "{verb}" not recognized')

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

    def _reply(self, status: str | bytes) -> None:
        if self._closing:
            # Nothing goes out after the last reply of a closing connection.
            return
        if isinstance(status, str):
            if self._config.enable_SMTPUTF8:
                status = status.encode("utf-8")
            else:
                status = status.encode("ascii", "replace")
        elif not isinstance(status, bytes):
            raise TypeError(f"a reply must be str or bytes, not {status!r}")
        if self._inAuth:
            self._lastReply = status
        out = self._out
        if out is None:
            out = self._out = []
        out.append(status + b"\r\n")

    #: How the lines of the EHLO reply are sent (LMTP sends them unchanged).
    _ehloReply = _reply

    def _write(self, data: bytes) -> None:
        self.transport.write(data)

    def _flush(self) -> None:
        out = self._out
        if out:
            self._out = None
            self.transport.write(out[0] if len(out) == 1 else b"".join(out))

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

    # Commands.

    def _needHelo(self) -> bool:
        """
        Refuse a transaction command before HELO/EHLO; return C{True} if so.
        """
        if self.session.host_name:
            return False
        self._reply(self._sendHeloFirst)
        return True

    @syntax("HELO hostname")
    def smtp_HELO(self, arg: str | None) -> Any:
        """
        Greet without extensions (RFC 5321 section 4.1.1.1).
        """
        if not arg:
            self._reply("501 Syntax: HELO hostname")
            return None
        self._envelope = None
        self.session.extended_smtp = False

        def then(status: Any) -> None:
            if status is None:
                self.session.host_name = arg
                status = f"250 {self._config.hostname}"
            self._reply(status)

        return self._hook("HELO", then, arg)

    @syntax("EHLO hostname")
    def smtp_EHLO(self, arg: str | None) -> Any:
        """
        Greet and list the extensions offered (RFC 5321 section 4.1.1.1).
        """
        if not arg:
            self._reply("501 Syntax: EHLO hostname")
            return None
        self._envelope = None
        self.session.extended_smtp = True
        responses = self._ehloResponses()
        if "EHLO" not in self._hooks:
            self.session.host_name = arg
            for line in responses:
                self._ehloReply(line)
            return None
        if self._config.ehloStyle == "old":
            for line in responses[:-1]:
                self._ehloReply(line)

            def thenOld(status: Any) -> None:
                if status is None:
                    self.session.host_name = self.session.host_name or arg
                    status = responses[-1]
                self._ehloReply(status)

            return self._hook("EHLO", thenOld, arg)

        def thenNew(lines: Any) -> None:
            if lines is None:
                self.session.host_name = self.session.host_name or arg
                lines = responses
            elif isinstance(lines, (str, bytes)):
                lines = [lines]
            for line in lines:
                self._ehloReply(line)

        return self._hook("EHLO", thenNew, arg, responses)

    def _ehloResponses(self) -> list[str]:
        """
        The EHLO reply lines, last one included (C{"250 HELP"}).
        """
        config = self._config
        lines = [f"250-{config.hostname}"]
        if config.data_size_limit:
            lines.append(f"250-SIZE {config.data_size_limit}")
        if not config.decode_data:
            lines.append("250-8BITMIME")
        if config.enable_SMTPUTF8:
            lines.append("250-SMTPUTF8")
        lines.extend(self._extraExtensions())
        lines.append("250-PIPELINING")
        lines.append("250 HELP")
        return lines

    def _extraExtensions(self) -> list[str]:
        """
        EHLO lines of the extensions that depend on the connection's state
        (STARTTLS, AUTH).
        """
        lines = []
        if self._config.tls_context is not None and not self._tlsActive:
            lines.append("250-STARTTLS")
        if self._authAllowedHere() and self._offersAuth:
            mechanisms = " ".join(sorted(self._mechanisms()))
            lines.append(f"250-AUTH {mechanisms}".rstrip())
        return lines

    @syntax("NOOP [ignored]")
    def smtp_NOOP(self, arg: str | None) -> Any:
        """
        Do nothing (RFC 5321 section 4.1.1.9).
        """
        return self._hook("NOOP", self._replyOr("250 OK"), arg)

    def _replyOr(self, default: str) -> Callable[[Any], None]:
        def then(status: Any) -> None:
            self._reply(default if status is None else status)

        return then

    @syntax("QUIT")
    def smtp_QUIT(self, arg: str | None) -> Any:
        """
        Say goodbye and close (RFC 5321 section 4.1.1.10).
        """
        if arg:
            self._reply("501 Syntax: QUIT")
            return None

        def then(status: Any) -> None:
            self._close("221 Bye" if status is None else status)

        return self._hook("QUIT", then)

    @syntax("RSET")
    def smtp_RSET(self, arg: str | None) -> Any:
        """
        Abort the transaction (RFC 5321 section 4.1.1.5).
        """
        if arg:
            self._reply("501 Syntax: RSET")
            return None
        self._logAborted()
        self._envelope = None
        return self._hook("RSET", self._replyOr("250 OK"))

    @syntax("VRFY <address>")
    def smtp_VRFY(self, arg: str | None) -> Any:
        """
        Answer that we cannot verify but will try (RFC 5321 section 3.5.3).
        """
        if not arg:
            self._reply("501 Syntax: VRFY <address>")
            return None
        try:
            address = parsePath(
                arg if arg.startswith("<") else f"<{arg}>",
                smtputf8=self._config.enable_SMTPUTF8,
                allowPostmaster=True,
            )
        except (PathSyntaxError, PathRefused):
            # A user name alone is a valid VRFY argument too.
            if _USER_NAME.match(arg) is None:
                self._reply(f"502 Could not VRFY {arg}")
                return None
            address = arg
        return self._hook(
            "VRFY",
            self._replyOr(
                "252 Cannot VRFY user, but will accept message and attempt delivery"
            ),
            address,
        )

    def smtp_EXPN(self, arg: str | None) -> None:
        """
        Refuse to expand mailing lists (RFC 5321 section 3.5.3).
        """
        self._reply("502 EXPN not implemented")

    @syntax("HELP [command]")
    def smtp_HELP(self, arg: str | None) -> None:
        """
        List the commands, or show the syntax of one (RFC 5321 section
        4.1.1.8); the codes are RFC 5321's 214 and 504, not aiosmtpd's 250
        and 501.
        """
        commands = self._helpTexts()
        if arg:
            text = commands.get(arg.upper())
            if text is not None:
                self._reply(f"214 Syntax: {text}")
                return
            code = 504
        else:
            code = 214
        self._reply(f"{code} Supported commands: {' '.join(sorted(commands))}")

    def _helpTexts(self) -> dict[str, str]:
        """
        The HELP text of every command available now, by verb.
        """
        texts = {}
        extended = self.session.extended_smtp
        for name in dir(type(self)):
            if not name.startswith("smtp_"):
                continue
            method = getattr(self, name)
            text = getattr(method, "__smtp_syntax__", None)
            if text is None:
                continue
            when = getattr(method, "__smtp_syntax_when__", None)
            if when and not getattr(self, when, None):
                continue
            more = getattr(method, "__smtp_syntax_extended__", None)
            if extended and more:
                text += more
            texts[name[5:]] = text
        return texts

    def _syntaxError(self, verb: str) -> None:
        if verb == "MAIL":
            text = "501 Syntax: MAIL FROM: <address>"
        else:
            text = "501 Syntax: RCPT TO: <address>"
        if self.session.extended_smtp:
            text += " [SP <mail-parameters>]"
        self._reply(text)

    @syntax("MAIL FROM: <address>", extended=" [SP <mail-parameters>]")
    def smtp_MAIL(self, arg: str | None) -> Any:
        """
        Start a transaction (RFC 5321 section 4.1.1.2) with the parameters
        of SIZE (RFC 1870), 8BITMIME (RFC 6152) and SMTPUTF8 (RFC 6531).
        """
        if self._needHelo():
            return None
        envelope = self.envelope
        if envelope.mail_from is not None:
            self._reply("503 Error: nested MAIL command")
            return None
        config = self._config
        try:
            path, params = splitArgument(arg or "", "FROM")
            options = parseParameters(params)
            if options and not self.session.extended_smtp:
                raise PathSyntaxError(params)
            smtputf8 = self._mailParameters(options)
            address = parsePath(
                path,
                smtputf8=smtputf8,
                localPartLimit=config.local_part_limit,
                allowNull=True,
            )
        except PathSyntaxError:
            self._syntaxError("MAIL")
            return None
        except PathRefused as e:
            self._reply(e.reply)
            return None
        mailOptions = params.upper().split()
        envelope.smtp_utf8 = smtputf8

        def then(status: Any) -> None:
            if status is None:
                if envelope.mail_from is None:
                    envelope.mail_from = address
                    envelope.mail_options.extend(mailOptions)
                status = "250 OK"
            self._transactionStart = time.monotonic()
            self._reply(status)

        return self._hook("MAIL", then, address, mailOptions)

    def _mailParameters(self, options: list[tuple[str, str | None]]) -> bool:
        """
        Check the MAIL parameters; return whether SMTPUTF8 was asked for.

        @raise PathRefused: For a parameter refused.
        @raise PathSyntaxError: For a parameter value of the wrong form.
        """
        config = self._config
        smtputf8 = False
        for key, value in options:
            if key == "SIZE":
                if not (value and value.isascii() and value.isdigit()):
                    raise PathSyntaxError(key)
                if config.data_size_limit and int(value) > config.data_size_limit:
                    raise PathRefused(
                        "552 Error: message size exceeds fixed maximum message size"
                    )
            elif key == "BODY" and not config.decode_data:
                if value is None or value.upper() not in ("7BIT", "8BITMIME"):
                    raise PathRefused(
                        "501 Error: BODY can only be one of 7BIT, 8BITMIME"
                    )
            elif key == "SMTPUTF8":
                if value is not None:
                    raise PathRefused("501 Error: SMTPUTF8 takes no arguments")
                if not config.enable_SMTPUTF8:
                    raise PathRefused("501 Error: SMTPUTF8 disabled")
                smtputf8 = True
            else:
                raise PathRefused(
                    "555 MAIL FROM parameters not recognized or not implemented"
                )
        return smtputf8

    @syntax("RCPT TO: <address>", extended=" [SP <mail-parameters>]")
    def smtp_RCPT(self, arg: str | None) -> Any:
        """
        Add a recipient (RFC 5321 section 4.1.1.3).
        """
        if self._needHelo():
            return None
        envelope = self.envelope
        if envelope.mail_from is None:
            self._reply("503 Error: need MAIL command")
            return None
        try:
            path, params = splitArgument(arg or "", "TO")
            options = parseParameters(params)
            if options and not self.session.extended_smtp:
                raise PathSyntaxError(params)
            if options:
                raise PathRefused(
                    "555 RCPT TO parameters not recognized or not implemented"
                )
            address = parsePath(
                path,
                smtputf8=envelope.smtp_utf8,
                localPartLimit=self._config.local_part_limit,
                allowPostmaster=True,
            )
        except PathSyntaxError:
            self._syntaxError("RCPT")
            return None
        except PathRefused as e:
            self._reply(e.reply)
            return None
        rcptOptions = params.upper().split()
        before = len(envelope.rcpt_tos)

        def then(status: Any) -> None:
            if status is None:
                if len(envelope.rcpt_tos) == before:
                    envelope.rcpt_tos.append(address)
                    envelope.rcpt_options.extend(rcptOptions)
                status = "250 OK"
            self._reply(status)

        return self._hook("RCPT", then, address, rcptOptions)

    @syntax("DATA")
    def smtp_DATA(self, arg: str | None) -> None:
        """
        Receive the message (RFC 5321 section 4.1.1.4).
        """
        if self._needHelo():
            return
        if arg:
            self._reply("501 Syntax: DATA")
            return
        if not self.envelope.rcpt_tos:
            if self.envelope.mail_from is None:
                self._reply("503 Error: need MAIL command")
            else:
                self._reply("503 Error: need RCPT command")
            return
        config = self._config
        self._dataReceiver = _data.DataReceiver(
            config.data_size_limit, config.line_length_limit, config.allowBareNewline
        )
        self._reply("354 End data with <CR><LF>.<CR><LF>")

    def _dataChunk(self) -> None:
        """
        Feed the buffer to the DATA framer; finish the message at its end.
        """
        receiver = self._dataReceiver
        rest = receiver.feed(self._buffer)
        if rest is None:
            self._buffer = b""
            return
        self._buffer = rest
        self._dataReceiver = None
        try:
            result = self._messageReceived(receiver)
        except Exception:
            result = self._failed(Failure())
        if isinstance(result, Deferred):
            self._wait(result)

    def _messageReceived(self, receiver: _data.DataReceiver) -> Any:
        """
        Check the message that just ended and hand it to the handler.
        """
        envelope = self.envelope
        error = receiver.error
        if error is not None:
            self._envelope = None
            reply = _DATA_ERRORS[error]
            self._logTransaction(envelope, receiver.size, reply[:3])
            self._dataReplies(reply)
            return None
        content = original = receiver.content()
        if self._config.decode_data:
            try:
                content = original.decode(
                    "utf-8" if envelope.smtp_utf8 else "ascii", "strict"
                )
            except UnicodeDecodeError:
                self._envelope = None
                self._logTransaction(envelope, receiver.size, "500")
                self._dataReplies("500 Error: strict ASCII mode")
                return None
        envelope.content = content
        envelope.original_content = original

        def then(status: Any) -> None:
            if status is None:
                status = "250 OK"
            if self._envelope is envelope:
                self._envelope = None
            self._logTransaction(envelope, receiver.size, _codeOf(status))
            self._dataReplies(status)

        return self._hook("DATA", then)

    def _dataReplies(self, status: Any) -> None:
        """
        Send the reply to the end of the data. A list of statuses (one per
        recipient, as for LMTP) becomes its first failure, or its first
        status when all succeeded, since SMTP has one reply.
        """
        if isinstance(status, (list, tuple)):
            failures = [s for s in status if _codeOf(s)[:1] != "2"]
            status = (failures or status or ["250 OK"])[0]
        self._reply(status)

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
            try:
                result = self._hook("STARTTLS", self._startTLSDecided)
            except Exception:
                result = self._failed(Failure())
            if isinstance(result, Deferred):
                self._wait(result)
        self._flush()
        self._updateReading()

    def _startTLSDecided(self, ok: Any) -> None:
        if not ok:
            self._securityRefused = True

    # AUTH (RFC 4954).

    def _authAllowedHere(self) -> bool:
        """
        Whether AUTH may be used on this connection as it is now.
        """
        return self._tlsActive or not self._config.auth_require_tls

    def _mechanisms(self) -> dict[str, Callable[..., Any]]:
        """
        The AUTH mechanisms offered, by name: the server's built-in ones,
        overridden or added to by the handler's C{auth_<NAME>} methods, less
        the excluded ones. None are offered without a credential source,
        unless the handler brings its own mechanisms or C{handle_AUTH}.
        """
        config = self._config
        found: dict[str, Callable[..., Any]] = {}
        if config.authenticator or config.auth_callback or config.portal:
            for name in _BUILTIN_MECHANISMS:
                found[mechanismName(name, None)] = getattr(self, name)
            if config.portal is None or not portalSupportsCramMD5(config.portal):
                del found["CRAM-MD5"]
        found.update(config.handlerMechanisms)
        for name in config.auth_exclude_mechanism:
            found.pop(name, None)
        return found

    @property
    def _offersAuth(self) -> bool:
        return bool(self._mechanisms()) or "AUTH" in self._hooks

    @syntax("AUTH <mechanism>", when="_offersAuth")
    def smtp_AUTH(self, arg: str | None) -> Any:
        """
        Authenticate with a SASL mechanism (RFC 4954 section 4).
        """
        session = self.session
        if not session.extended_smtp:
            self._reply("503 Error: send EHLO first")
            return None
        if not self._authAllowedHere():
            self._reply(
                "538 5.7.11 Encryption required for requested authentication mechanism"
            )
            return None
        if session.authenticated:
            self._reply("503 Already authenticated")
            return None
        if self.envelope.mail_from is not None:
            self._reply("503 5.5.1 Error: AUTH not allowed during a mail transaction")
            return None
        args = arg.split() if arg else []
        if not args:
            self._reply("501 Not enough value")
            return None
        if len(args) > 2:
            self._reply("501 Too many values")
            return None
        args[0] = args[0].upper()
        if "AUTH" in self._hooks:
            return self._hook("AUTH", self._replyOr(_AUTH_OK), args)
        mechanism = self._mechanisms().get(args[0])
        if mechanism is None:
            self._reply("504 5.5.4 Unrecognized authentication type")
            return None
        self._lastReply = None
        self._inAuth = True
        result = settle(mechanism(self, args), self._config.asyncioLoop)
        if isinstance(result, Deferred):
            return result.addCallback(self._authDone, args[0])
        return self._authDone(result, args[0])

    def _authDone(self, result: Any, mechanism: str) -> None:
        """
        Act on what a mechanism decided, making sure the client gets exactly
        one final reply (aiosmtpd sends none when a result says the failure
        was "handled" but no reply was sent).
        """
        session = self.session
        answered = self._answered()
        self._inAuth = False
        self._lastReply = None
        if hasattr(result, "success") and hasattr(result, "handled"):
            if result.success:
                session.authenticated = True
                session.auth_data = result.auth_data
                session._login_data = getattr(result.auth_data, "login", None)
                log.info(
                    "{peer} authenticated with {mechanism}",
                    peer=session.peer,
                    mechanism=mechanism,
                )
                self._reply(result.message or _AUTH_OK)
                return None
            if result.message:
                self._reply(result.message)
            elif not (result.handled and answered):
                self._reply(_AUTH_INVALID)
        elif result is None or result is MISSING or result is False:
            if not answered:
                self._reply(_AUTH_INVALID)
        else:
            # aiosmtpd's legacy: any other value means success, with the
            # value as the login data.
            session.authenticated = True
            session.auth_data = result
            session._login_data = result
            self._reply(_AUTH_OK)
            return None
        session.authenticated = False
        return self._countFailure()

    def _answered(self) -> bool:
        """
        Whether a final reply was sent since the AUTH command came.
        """
        last = self._lastReply
        return last is not None and not last.startswith(b"334")

    def _countFailure(self) -> None:
        """
        Count a failed AUTH; close after C{auth_failure_limit} of them.
        """
        self._authFailures += 1
        log.info("{peer} failed to authenticate", peer=self.session.peer)
        if self._authFailures >= self._config.auth_failure_limit:
            self._close("421 4.7.0 Too many failed authentication attempts")

    def challenge_auth(
        self,
        challenge: str | bytes,
        encode_to_b64: bool = True,
        log_client_response: bool = False,
    ) -> Deferred:
        """
        Send a C{334} challenge and wait for the client's answer.

        @param challenge: The challenge, base64-encoded here unless
            C{encode_to_b64} is false.
        @param log_client_response: Ignored: client responses are never
            logged, since they carry credentials.
        @return: An awaitable (a L{Deferred}, or an asyncio future under the
            asyncio reactor) giving the decoded answer, or
            L{MISSING} after replying 501 when the client cancelled (C{*}) or
            sent bad base64.
        """
        if isinstance(challenge, str):
            challenge = challenge.encode("utf-8")
        if encode_to_b64:
            challenge = base64.b64encode(challenge)
        self._reply(b"334 " + challenge)
        self._flush()
        waiter = self._authWaiter = Deferred()
        self._updateReading()
        return self._awaitable(waiter)

    def _awaitable(self, d: Deferred) -> Any:
        """
        Make C{d} awaitable where hooks run: as is when Twisted drives
        coroutines, as an asyncio future when they run as asyncio tasks
        (which cannot wait on a L{Deferred}).
        """
        loop = self._config.asyncioLoop
        return d if loop is None else d.asFuture(loop)

    def _authResponse(self, line: bytes) -> None:
        """
        Deliver the client's answer to an AUTH challenge.
        """
        waiter, self._authWaiter = self._authWaiter, None
        if line.endswith(b"\r"):
            line = line[:-1]
        if line == b"*":
            self._reply("501 5.7.0 Auth aborted")
            waiter.callback(MISSING)
            return
        try:
            decoded = base64.b64decode(line, validate=True)
        except ValueError:
            self._reply("501 5.5.2 Can't decode base64")
            waiter.callback(MISSING)
            return
        waiter.callback(decoded)

    async def _checkLogin(self, mechanism: str, login: LoginPassword) -> Any:
        """
        Check a user name and password with the configured source.
        """
        config = self._config
        if login.authzid and login.authzid != login.login:
            if not getattr(config.authenticator, "accepts_authzid", False):
                return AuthResult(success=False, handled=False)
        if config.portal is not None:
            return await self._portalLogin(
                UsernamePassword(login.login, login.password)
            )
        if config.auth_callback is not None:
            ok = config.auth_callback(mechanism, login.login, login.password)
            return AuthResult(success=bool(ok), handled=False, auth_data=login)
        result = config.authenticator(
            self, self.session, self.envelope, mechanism, login
        )
        result = settle(result, config.asyncioLoop)
        if isinstance(result, Deferred):
            result = await self._awaitable(result)
        return result

    async def _portalLogin(self, credentials: Any) -> AuthResult:
        """
        Log in through the twisted.cred portal; remember the logout.
        """
        try:
            _, avatar, logout = await self._awaitable(
                self._config.portal.login(credentials, None, IAuthenticatedUser)
            )
        except UnauthorizedLogin:
            return AuthResult(success=False, handled=False)
        except Exception:
            log.failure("{peer} credential check failed", peer=self.session.peer)
            return AuthResult(
                success=False,
                handled=False,
                message="454 4.7.0 Temporary authentication failure",
            )
        self._logout = logout
        return AuthResult(success=True, auth_data=avatar)

    async def auth_PLAIN(self, server: Any, args: list[str]) -> Any:
        """
        AUTH PLAIN (RFC 4616), with or without an initial response.
        """
        if len(args) == 2:
            if args[1] == "=":
                blob = b""
            else:
                try:
                    blob = base64.b64decode(args[1], validate=True)
                except ValueError:
                    self._reply("501 5.5.2 Can't decode base64")
                    return None
        else:
            blob = await self.challenge_auth("", encode_to_b64=False)
            if blob is MISSING:
                return None
        parts = blob.split(b"\0")
        if len(parts) != 3:
            self._reply("501 5.5.2 Can't split auth value")
            return None
        authzid, login, password = parts
        return await self._checkLogin(
            "PLAIN", LoginPassword(login, password, authzid or None)
        )

    async def auth_LOGIN(self, server: Any, args: list[str]) -> Any:
        """
        AUTH LOGIN (draft-murchison-sasl-login), with aiosmtpd's challenges.
        """
        if len(args) == 2:
            try:
                login = base64.b64decode(args[1], validate=True)
            except ValueError:
                self._reply("501 5.5.2 Can't decode base64")
                return None
        else:
            login = await self.challenge_auth(self.AuthLoginUsernameChallenge)
            if login is MISSING:
                return None
        password = await self.challenge_auth(self.AuthLoginPasswordChallenge)
        if password is MISSING:
            return None
        return await self._checkLogin("LOGIN", LoginPassword(login, password))

    @auth_mechanism("CRAM-MD5")
    async def auth_CRAM__MD5(self, server: Any, args: list[str]) -> Any:
        """
        AUTH CRAM-MD5 (RFC 2195), offered only when the portal's checker
        knows plaintext secrets.
        """
        if len(args) == 2:
            self._reply("501 5.5.2 CRAM-MD5 takes no initial response")
            return None
        credentials = CramMD5Credentials(self._config.hostname.encode("idna"))
        response = await self.challenge_auth(credentials.getChallenge())
        if response is MISSING:
            return None
        try:
            credentials.setResponse(response)
        except Exception:
            credentials = None
        if credentials is None or not credentials.username or not credentials.response:
            self._reply("501 5.5.2 Malformed CRAM-MD5 response")
            return None
        return await self._portalLogin(credentials)

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


_TRANSACTION_FORMAT = (
    "{peer} message from {sender} to {recipients} recipient(s),"
    " {size} bytes: {result} in {duration:.3f}s"
)

_AUTH_OK = "235 2.7.0 Authentication successful"
_AUTH_INVALID = "535 5.7.8 Authentication credentials invalid"

_BUILTIN_MECHANISMS = ("auth_PLAIN", "auth_LOGIN", "auth_CRAM__MD5")

_NEED_AUTH = frozenset(["MAIL", "RCPT", "DATA", "VRFY", "HELP"])

_DATA_ERRORS = {
    _data.TOO_BIG: "552 Error: Too much mail data",
    _data.LINE_TOO_LONG: "500 Line too long (see RFC5321 4.5.3.1.6)",
    _data.BARE_NEWLINE: "550 5.6.0 Error: bare CR or LF in message;"
    " lines must end with CRLF",
}


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


def _codeOf(status: Any) -> str:
    if isinstance(status, bytes):
        return status[:3].decode("ascii", "replace")
    if isinstance(status, str):
        return status[:3]
    return "?"


def _peerOf(address: Any) -> Any:
    """
    Give a transport address in aiosmtpd's shape: C{(host, port)} for IP,
    the path for UNIX sockets.
    """
    host = getattr(address, "host", None)
    if host is not None:
        return (host, address.port)
    name = getattr(address, "name", None)
    if isinstance(name, bytes):
        return name.decode("utf-8", "replace")
    return name if name is not None else ""
