# -*- test-case-name: tests.test_smtp -*-
"""
The two small interfaces that hold the server's layers apart.

An L{InputMode} says how the bytes a connection receives are framed and
what happens to each unit: command lines, the answer to an AUTH challenge,
message data, a PROXY header. L{ServerCore} is all that input modes and
command groups (the transaction, AUTH, STARTTLS, LMTP's changes) may use
of the connection; the connection knows nothing about the commands.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from twisted.internet.defer import Deferred

    from twisted_smtpd._config import Config
    from twisted_smtpd._session import Envelope, Session
    from twisted_smtpd._verbs import Parameter


class InputMode(Protocol):
    """
    What a connection reads at a given moment, and what it does with it.

    The connection owns the unread bytes: it calls L{frame} with them and
    the index where the unread part begins, then L{act} with the unit
    framed, so that a unit may switch to another mode and the next unit is
    framed by that one. A mode holds no bytes of its own but what its framer
    must remember between chunks.

    A timed mode that reads a stream of bytes rather than units (message
    data) says so with C{streamed = True}: its idle clock then starts again
    for every L{PROGRESS_BYTES <twisted_smtpd._channel.PROGRESS_BYTES>}
    received, not at the first byte of each unit. With C{streamed = False},
    a unit must be complete within C{timeout} of its first byte.
    """

    #: Whether the connection reads from the client in this mode (C{False}
    #: while a hook works, for example).
    reads: bool

    #: Whether the idle clock runs in this mode: it runs while the server
    #: waits for the client, not while it works itself or waits for a PROXY
    #: header, which has its own timeout.
    timed: bool

    #: Whether the idle clock of this timed mode starts again for every
    #: L{PROGRESS_BYTES <twisted_smtpd._channel.PROGRESS_BYTES>} received
    #: rather than for every unit.
    streamed: bool

    def frame(self, data: bytes, start: int, config: Config) -> tuple[Any, int]:
        """
        Find the next unit in C{data[start:]}: a pure framer, which changes
        nothing but the state of its own framing (a message's size so far,
        say).

        @param config: The server's options, for the limits.
        @return: The unit, or C{None} if more input is needed; and the
            index of the first byte not consumed (bytes may be consumed,
            and dropped, without a unit).
        """

    def act(self, server: ServerCore, unit: Any) -> None:
        """
        Act on a unit that L{frame} found.
        """


class ServerCore(Protocol):
    """
    What the server offers to input modes and command groups: the
    connection's facilities (L{twisted_smtpd._connection.Connection}) and
    the data that a server class declares (L{twisted_smtpd.SMTP}).

    @ivar session: The L{Session} of the connection.
    @ivar event_handler: The handler.
    @ivar helloVerb: The greeting verb transaction commands want first.
    @ivar beforeTLSVerbs: The verbs C{require_starttls} allows before TLS.
    @ivar enhancedStatusCodes: Whether replies get enhanced status codes.
    @ivar mailParameters: The MAIL parameters understood, by keyword.
    @ivar rcptParameters: The RCPT parameters understood, by keyword.
    @ivar securityRefused: Whether every command but QUIT is refused.
    @ivar uncountedVerbs: Unknown verbs not counted towards
        C{max_unknown_commands}, nor as errors.
    """

    session: Session
    event_handler: Any
    helloVerb: str
    beforeTLSVerbs: frozenset[str]
    enhancedStatusCodes: bool
    mailParameters: dict[str, Parameter]
    rcptParameters: dict[str, Parameter]
    securityRefused: bool
    uncountedVerbs: frozenset[str]

    @property
    def config(self) -> Config:
        """
        The validated options of the server.
        """

    @property
    def envelope(self) -> Envelope:
        """
        The envelope of the current transaction, made when first needed.
        """

    @property
    def tlsActive(self) -> bool:
        """
        Whether the connection is encrypted (or its handshake is under way).
        """

    @property
    def closing(self) -> bool:
        """
        Whether the connection is closing or closed.
        """

    def ehloKeywords(self) -> list[str]:
        """
        The EHLO keywords offered now, from every command group.
        """

    # Replies.

    def reply(self, status: str | bytes) -> None:
        """
        Queue one reply; the replies of a batch of commands go out together.
        An error reply counts towards C{hard_error_limit}.
        """

    def replyPlain(self, status: str | bytes) -> None:
        """
        Queue one reply line exactly as given (no enhanced status code), as
        the lines of the EHLO reply are.
        """

    def flush(self) -> None:
        """
        Write the queued replies now.
        """

    def disconnect(self, reply: str, reason: str = "closed") -> None:
        """
        Send a last reply and close the connection; C{reason} is what
        C{handle_DISCONNECT} is told (see L{twisted_smtpd._connhooks}).
        """

    def abort(self, reason: str = "dropped") -> None:
        """
        Drop the connection without a word.
        """

    def uncounted(self, call: Callable[..., Any], *args: Any) -> Any:
        """
        Call C{call}, whose error replies do not count towards
        C{hard_error_limit} (the server's own trouble).
        """

    def watchReplies(self, watcher: Callable[[bytes], None] | None) -> None:
        """
        Have C{watcher} called with each reply queued from now on, until
        called again with C{None}.
        """

    # Input.

    def setMode(self, mode: InputMode) -> None:
        """
        Read the following bytes in C{mode}.
        """

    def readAnswer(self) -> Deferred[bytes | None]:
        """
        Read one line that answers a challenge.

        @return: A L{Deferred} firing with the line without its line end,
            or with C{None} if the line was too long or the connection
            closed.
        """

    def answerReceived(self, line: bytes | None) -> None:
        """
        Deliver the line that answers a challenge (C{None}: too long).
        """

    # Running commands and hooks.

    def hook(
        self,
        verb: str,
        then: Callable[[Any], Any],
        *args: Any,
        keepTransaction: bool = False,
    ) -> Any:
        """
        Call the handler's C{handle_<verb>} hook, if any, and pass its result
        to C{then}, now or once it is known; with C{keepTransaction}, an
        exception in the hook answers the command and keeps the transaction.
        """

    def run(self, call: Callable[..., Any], *args: Any, errorReplies: int = 1) -> None:
        """
        Run a command or a step of one: an exception becomes
        C{errorReplies} error replies, a pending result stops reading.
        """

    def awaitable(self, d: Deferred[Any]) -> Any:
        """
        Make C{d} awaitable by the coroutines of hooks.
        """

    # State.

    def begin(self) -> None:
        """
        Start the SMTP session (after the PROXY header): implicit TLS, if
        so configured, then the greeting.
        """

    def resetSession(self) -> None:
        """
        Start a new session, keeping the facts of the connection (after
        STARTTLS).
        """

    def refuseAll(self) -> None:
        """
        Refuse every command but QUIT from now on.
        """

    def resetTransaction(self) -> None:
        """
        Forget the current transaction, logging it as aborted if it began.
        """

    def transactionStarted(self) -> None:
        """
        Note that a transaction began (MAIL was accepted), for its log line.
        """

    def transactionEnded(self, envelope: Envelope, size: int, result: str) -> None:
        """
        End the transaction of C{envelope} (if still current) and log it.
        """

    def stateOf(self, key: object, factory: Callable[[], Any] | None) -> Any:
        """
        The state a command group keeps for this connection under C{key},
        made by C{factory} when first asked for (with C{None}, C{None} when
        there is none yet).
        """

    def atClose(self, call: Callable[[], Any]) -> None:
        """
        Have C{call} called once when the connection is lost.
        """

    def startTLS(self) -> Deferred[dict[str, Any]]:
        """
        Start TLS after the reply that announces it was queued.

        @return: A L{Deferred} firing with C{session.ssl}'s details once the
            handshake is complete.
        """
