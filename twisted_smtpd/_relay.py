# -*- test-case-name: tests.test_handlers,tests.test_relay -*-
"""
Relaying: the L{Proxy <twisted_smtpd.handlers.Proxy>} handler (public in
L{twisted_smtpd.handlers}) and the small SMTP client it relays with, which
sends command lines and raw, already dot-stuffed data, and reads replies
whole.

Twisted's own client rewrites line endings and cannot send BODY= or
SMTPUTF8, so a relay that must be byte-exact needs its own.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Any

from twisted.internet import error as netError
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.endpoints import HostnameEndpoint, connectProtocol
from twisted.internet.ssl import optionsForClientTLS
from twisted.logger import Logger
from twisted.protocols.basic import LineReceiver
from twisted.protocols.policies import TimeoutMixin
from twisted.python.failure import Failure

from twisted_smtpd._dsn import utf8AddrXtext, xtext
from twisted_smtpd._headers import withHeaders

#: The MAIL parameters the relay writes itself rather than copy from
#: C{mail_options}, which keeps xtext values upper-cased.
_OWN_PARAMETERS = frozenset({"SIZE", "RET", "ENVID", "REQUIRETLS"})

#: The refusal of a REQUIRETLS message that cannot travel on as RFC 8689
#: section 5 requires.
REQUIRETLS_REFUSED = "550 5.7.30 REQUIRETLS not supported by the next hop"


class Refused(Exception):
    """
    The upstream refused the transaction; C{args[0]} is the reply to pass on.
    """


class Unavailable(Exception):
    """
    The upstream could not be reached, closed the connection, broke the
    protocol or was too slow.
    """


class UpstreamClient(LineReceiver, TimeoutMixin):
    """
    The client side of one connection to the upstream server: send command
    lines and raw data, read replies (multi-line ones whole).
    """

    delimiter = b"\n"
    MAX_LENGTH = 65536

    def __init__(self, reactor: Any, timeout: float) -> None:
        self._reactor = reactor
        self._timeout = timeout
        self._lines: list[str] = []
        self._replies: deque[tuple[int, list[str]]] = deque()
        self._waiting: Deferred | None = None
        self._error: Exception | None = None

    def callLater(self, period: float, func: Any) -> Any:
        return self._reactor.callLater(period, func)

    def connectionMade(self) -> None:
        self.setTimeout(self._timeout)

    def connectionLost(self, reason: Failure = None) -> None:
        self.setTimeout(None)
        self._fail(Unavailable("connection closed"))

    def timeoutConnection(self) -> None:
        self._fail(Unavailable("timed out"))
        self.transport.abortConnection()

    def lineLengthExceeded(self, line: bytes) -> None:
        self._fail(Unavailable("reply line too long"))
        self.transport.abortConnection()

    def lineReceived(self, line: bytes) -> None:
        self.resetTimeout()
        if line.endswith(b"\r"):
            line = line[:-1]
        code, sep = line[:3], line[3:4]
        if not (code.isdigit() and sep in (b" ", b"-", b"")):
            self._fail(Unavailable(f"bad reply line {line[:80]!r}"))
            self.transport.abortConnection()
            return
        # A CR inside a line would break the reply we pass on.
        self._lines.append(line[4:].replace(b"\r", b" ").decode("utf-8", "replace"))
        if sep != b"-":
            reply = (int(code), self._lines)
            self._lines = []
            waiting, self._waiting = self._waiting, None
            if waiting is None:
                self._replies.append(reply)
            else:
                waiting.callback(reply)

    def _fail(self, error: Exception) -> None:
        if self._error is None:
            self._error = error
        waiting, self._waiting = self._waiting, None
        if waiting is not None:
            waiting.errback(error)

    def reply(self) -> Deferred:
        """
        The next reply, as C{(code, lines)}.
        """
        if self._replies:
            return succeed(self._replies.popleft())
        if self._error is not None:
            return fail(self._error)
        self._waiting = Deferred()
        return self._waiting

    def command(self, line: str) -> Deferred:
        """
        Send a command line and return its reply.
        """
        self.resetTimeout()
        self.transport.write(line.encode("utf-8") + b"\r\n")
        return self.reply()


def replyText(code: int, lines: list[str]) -> str:
    """
    An upstream reply, to be sent on to our client.
    """
    body = [f"{code}-{line}" for line in lines[:-1]]
    body.append(f"{code} {lines[-1]}" if lines[-1] else str(code))
    return "\r\n".join(body)


def dotStuffed(data: bytes) -> bytes:
    """
    The DATA phase for C{data}: every line that starts with a dot gets
    another one, and the terminator is added.

    A dot after a bare LF is doubled too, so that an upstream which takes a
    bare LF for a line ending cannot see an early end of data (SMTP
    smuggling); a strict upstream then keeps that extra dot.
    """
    if data.startswith(b"."):
        data = b"." + data
    data = data.replace(b"\n.", b"\n..")
    if data and not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + b".\r\n"


log = Logger(namespace="twisted_smtpd.handlers")


def rcptDSN(facts: Any) -> str:
    """
    The DSN parameters to add to a relayed RCPT (with their leading
    spaces), from the recipient's L{RecipientDSN
    <twisted_smtpd._dsn.RecipientDSN>}, or C{""} for C{None}.
    """
    if facts is None:
        return ""
    text = ""
    if facts.notify is not None:
        text += " NOTIFY=" + ",".join(facts.notify)
    if facts.orcpt is not None:
        addrType, address = facts.orcpt
        if addrType.lower() == "utf-8":
            encoded = utf8AddrXtext(address)
        else:
            encoded = xtext(address)
        text += f" ORCPT={addrType};{encoded}"
    return text


def _peerHost(peer: Any) -> str:
    """
    The address of a peer: the host of a C{(host, port)} tuple, or the
    peer itself (a UNIX socket path).
    """
    if isinstance(peer, tuple) and peer:
        return str(peer[0])
    return str(peer)


class Proxy:
    """
    Relay every message to an upstream SMTP server and give the client the
    upstream's verdict.

    The relaying is asynchronous and the message is sent byte for byte,
    with an C{X-Peer: <client address>} header field added at the end of its
    header section. MAIL parameters pass on when the upstream offers their
    extension (C{BODY} with 8BITMIME, C{SMTPUTF8}, and C{SIZE}, given as
    the exact size sent). Replies to the end of the data:

        - C{250 OK} once the upstream accepted the message for at least one
          recipient (recipients it refused are logged: the client cannot be
          told after the fact);
        - the upstream's own reply when it refused the sender, every
          recipient (a temporary refusal preferred to a permanent one), or
          the message;
        - C{553 5.6.7} for an SMTPUTF8 message when the upstream does not
          offer SMTPUTF8 (RFC 6531 section 3.2);
        - C{451 4.4.1 Upstream not available} when the upstream could not be
          reached, closed the connection, timed out or broke the protocol;
        - C{550 5.7.30} for a REQUIRETLS message (RFC 8689) when the
          upstream does not offer STARTTLS, its certificate does not
          validate for C{remote_hostname}, or it does not offer REQUIRETLS
          over TLS.

    B{DSN} (RFC 3461): when the upstream offers DSN, C{RET}, C{ENVID}
    and each recipient's C{NOTIFY} and C{ORCPT} pass on (re-encoded from
    their decoded values), so that the upstream sends the notices the
    client asked for. When it does not, they are dropped: the upstream
    then sends the usual failure notices only, and no success notice is
    sent (RFC 3461 section 4.2 would have the relay send a "relayed"
    notice itself, which this handler does not).

    B{REQUIRETLS} (RFC 8689): a message that carries it is relayed only
    after STARTTLS with a certificate valid for C{remote_hostname}
    (against C{tls_trust_root}), and only to an upstream that offers
    REQUIRETLS then; the parameter passes on. Other messages are relayed
    without TLS.

    B{Relay protection}: recipients are accepted only in C{relay_domains},
    unless C{allow_relay} is true. With neither, every recipient is refused
    with C{550 5.7.1 Relaying denied}: configure one of them.

    No AUTH, and no TLS but for REQUIRETLS messages, towards the upstream;
    use it over a trusted network.
    """

    # Public as twisted_smtpd.handlers.Proxy.
    __module__ = "twisted_smtpd.handlers"

    def __init__(
        self,
        remote_hostname: str,
        remote_port: int,
        *,
        reactor: Any = None,
        relay_domains: Iterable[str] | None = None,
        allow_relay: bool = False,
        timeout: float = 300,
        tls_trust_root: Any = None,
    ) -> None:
        """
        @param remote_hostname: The upstream server's host name or address.
        @param remote_port: Its port.
        @param reactor: The reactor to connect with; the global one by
            default.
        @param relay_domains: The domains (compared case-insensitively, as
            given: no subdomains) whose recipients are accepted. With any,
            the domain-less C{Postmaster} is accepted too (RFC 5321 section
            4.5.1).
        @param allow_relay: Accept every recipient (an open relay, unless
            the server only listens for trusted clients).
        @param timeout: Seconds to wait for the connection and for each
            reply of the upstream.
        @param tls_trust_root: What the upstream's certificate is checked
            against for REQUIRETLS messages: the C{trustRoot} of
            L{optionsForClientTLS <twisted.internet.ssl.optionsForClientTLS>}
            (the platform's trust store by default).
        @raise TypeError: If C{relay_domains} is a single string.
        """
        if isinstance(relay_domains, (str, bytes)):
            raise TypeError("relay_domains must be a collection of domains")
        self._hostname = remote_hostname
        self._port = remote_port
        self._reactor = reactor
        self._relayDomains = frozenset(
            d.lower().rstrip(".") for d in (relay_domains or ())
        )
        self._allowRelay = allow_relay
        self._timeout = timeout
        self._trustRoot = tls_trust_root

    @classmethod
    def from_cli(cls, parser: Any, *args: str) -> Proxy:
        """
        Make a L{Proxy} for the command line: C{HOST PORT DOMAIN...}, with
        at least one domain to relay for.

        @param parser: An object whose C{error(message)} reports a usage
            error (and raises).
        """
        usage = "Proxy takes: HOST PORT DOMAIN [DOMAIN ...]"
        if len(args) < 3:
            parser.error(usage)
        host, port, *domains = args
        if not (port.isascii() and port.isdigit() and 0 < int(port) < 65536):
            parser.error(f"{usage} (bad port {port!r})")
        return cls(host, int(port), relay_domains=domains)

    def handle_RCPT(
        self,
        server: Any,
        session: Any,
        envelope: Any,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        """
        Accept a recipient we may relay for, refuse the others.
        """
        if not self._mayRelay(address):
            return "550 5.7.1 Relaying denied"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    def _mayRelay(self, address: str) -> bool:
        if self._allowRelay:
            return True
        local, at, domain = address.rpartition("@")
        if not at:
            return bool(self._relayDomains) and address.lower() == "postmaster"
        return domain.lower().rstrip(".") in self._relayDomains

    def handle_DATA(self, server: Any, session: Any, envelope: Any) -> Deferred:
        """
        Relay the message; reply with the outcome.
        """
        peer = f"X-Peer: {_peerHost(session.peer)}".encode("utf-8", "replace")
        data = withHeaders(envelope.original_content, [peer])
        return Deferred.fromCoroutine(
            self._relay(server.hostname, session.peer, envelope, data)
        )

    async def _relay(self, heloName: str, peer: Any, envelope: Any, data: bytes) -> str:
        reactor = self._reactor
        if reactor is None:
            from twisted.internet import reactor
        endpoint = HostnameEndpoint(
            reactor, self._hostname, self._port, timeout=self._timeout
        )
        client = UpstreamClient(reactor, self._timeout)
        try:
            await connectProtocol(endpoint, client)
        except (netError.ConnectError, netError.DNSLookupError) as e:
            log.warn(
                "{peer}: upstream {host}:{port} not available: {error}",
                peer=peer,
                host=self._hostname,
                port=self._port,
                error=e,
            )
            return "451 4.4.1 Upstream not available"
        try:
            return await self._transaction(client, heloName, envelope, data)
        except Refused as e:
            return e.args[0]
        except Unavailable as e:
            log.warn(
                "{peer}: upstream {host}:{port} failed: {error}",
                peer=peer,
                host=self._hostname,
                port=self._port,
                error=e,
            )
            return "451 4.4.1 Upstream not available"
        finally:
            if client.transport is not None and client._error is None:
                client.transport.write(b"QUIT\r\n")
            client.setTimeout(None)
            client.transport.loseConnection()

    async def _transaction(
        self, client: UpstreamClient, heloName: str, envelope: Any, data: bytes
    ) -> str:
        """
        The dialogue with the upstream, from its greeting to the reply to
        the end of the data.

        @raise Refused: With the reply for our client.
        @raise Unavailable: When the upstream cannot take the message.
        """
        code, lines = await client.reply()
        if code != 220:
            raise Unavailable(f"greeting {replyText(code, lines)!r}")
        extensions = await self._greet(client, heloName)
        if getattr(envelope, "requiretls", False):
            extensions = await requiredTLS(self, client, heloName, extensions)
        sender = "" if envelope.mail_from == "<>" else envelope.mail_from
        command = f"MAIL FROM:<{sender}>"
        for option in mailOptions(envelope, extensions, len(data)):
            command += " " + option
        code, lines = await client.command(command)
        if code != 250:
            raise Refused(self._verdict(code, lines))
        refused = []
        accepted = 0
        dsn = [None] * len(envelope.rcpt_tos)
        if "DSN" in extensions:
            dsn = getattr(envelope, "rcpt_dsn", dsn)
        for rcpt, facts in zip(envelope.rcpt_tos, dsn, strict=True):
            code, lines = await client.command(f"RCPT TO:<{rcpt}>{rcptDSN(facts)}")
            if code in (250, 251):
                accepted += 1
            else:
                refused.append((rcpt, code, lines))
        if not accepted:
            temporary = [r for r in refused if 400 <= r[1] < 500]
            rcpt, code, lines = (temporary or refused)[0]
            raise Refused(self._verdict(code, lines))
        code, lines = await client.command("DATA")
        if code != 354:
            raise Refused(self._verdict(code, lines))
        client.resetTimeout()
        client.transport.write(dotStuffed(data))
        code, lines = await client.reply()
        if code != 250:
            raise Refused(self._verdict(code, lines))
        if refused:
            log.warn(
                "upstream {host}:{port} accepted the message from {sender} but"
                " refused {refused}",
                host=self._hostname,
                port=self._port,
                sender=envelope.mail_from,
                refused=[(r, replyText(c, t)) for r, c, t in refused],
            )
        return "250 OK"

    async def _greet(self, client: UpstreamClient, heloName: str) -> dict[str, str]:
        """
        Send EHLO (HELO if the upstream refuses it permanently).

        @return: The extensions offered, keyword to parameters.
        """
        code, lines = await client.command(f"EHLO {heloName}")
        if code == 250:
            extensions = {}
            for line in lines[1:]:
                keyword, _, params = line.partition(" ")
                extensions[keyword.upper()] = params
            return extensions
        if 500 <= code < 600:
            code, lines = await client.command(f"HELO {heloName}")
            if code == 250:
                return {}
        raise Unavailable(f"greeting refused: {replyText(code, lines)!r}")

    @staticmethod
    def _verdict(code: int, lines: list[str]) -> str:
        """
        The reply for our client from a refusal of the upstream; anything
        but a 4xx or 5xx refusal means the upstream broke the protocol.

        @raise Unavailable: For a reply that is not a refusal.
        """
        if not 400 <= code < 600:
            raise Unavailable(f"unexpected reply {replyText(code, lines)!r}")
        return replyText(code, lines)


async def requiredTLS(
    proxy: Proxy, client: UpstreamClient, heloName: str, extensions: dict[str, str]
) -> dict[str, str]:
    """
    Start TLS with the upstream of C{proxy}, validating its certificate,
    and greet again, for a REQUIRETLS message (RFC 8689 section 5).

    @return: The extensions offered over TLS.
    @raise Refused: With L{REQUIRETLS_REFUSED} when the upstream does
        not offer STARTTLS, fails the handshake or the validation, or
        does not offer REQUIRETLS over TLS.
    """
    why = "does not offer STARTTLS"
    if "STARTTLS" in extensions:
        code, lines = await client.command("STARTTLS")
        why = f"refused STARTTLS: {replyText(code, lines)!r}"
        if code == 220:
            client.transport.startTLS(
                optionsForClientTLS(proxy._hostname, trustRoot=proxy._trustRoot)
            )
            try:
                extensions = await proxy._greet(client, heloName)
            except Unavailable as e:
                why = f"TLS failed: {e}"
            else:
                if "REQUIRETLS" in extensions:
                    return extensions
                why = "does not offer REQUIRETLS"
    log.warn(
        "upstream {host}:{port} {why}: REQUIRETLS message refused",
        host=proxy._hostname,
        port=proxy._port,
        why=why,
    )
    raise Refused(REQUIRETLS_REFUSED)


def mailOptions(envelope: Any, extensions: dict[str, str], size: int) -> list[str]:
    """
    The MAIL parameters to send: the client's, for the extensions the
    upstream offers, and the exact SIZE; DSN's and REQUIRETLS from
    their decoded values.

    @raise Refused: For an SMTPUTF8 message the upstream cannot take.
    """
    options = []
    for option in envelope.mail_options:
        keyword = option.partition("=")[0].upper()
        if keyword in _OWN_PARAMETERS:
            continue
        needed = "8BITMIME" if keyword == "BODY" else keyword
        if needed in extensions:
            options.append(option)
        elif keyword == "SMTPUTF8":
            raise Refused("553 5.6.7 Upstream does not support SMTPUTF8")
    if "SIZE" in extensions:
        options.append(f"SIZE={size}")
    if "DSN" in extensions:
        ret = getattr(envelope, "dsn_ret", None)
        envid = getattr(envelope, "dsn_envid", None)
        if ret is not None:
            options.append(f"RET={ret}")
        if envid is not None:
            options.append(f"ENVID={xtext(envid)}")
    if getattr(envelope, "requiretls", False):
        # _requireTLS made sure the upstream offers it.
        options.append("REQUIRETLS")
    return options
