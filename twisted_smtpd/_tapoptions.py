# -*- test-case-name: tests.test_tap -*-
"""
The option table of C{twistd smtpd}: every flag and option with its help
text, default and coercer, and what a shell completes. L{twisted_smtpd.tap}
parses them and turns them into a server.
"""

from __future__ import annotations

import importlib.util

from twisted.internet.endpoints import serverFromString
from twisted.python import usage

from twisted_smtpd._cli import BUILTIN_HANDLERS, choice, networks, number
from twisted_smtpd._clientlimit import DEFAULT_EXCEPTIONS
from twisted_smtpd._config import BARE_NEWLINE_POLICIES, SMTPOptions
from twisted_smtpd._factory import MAX_CONNECTIONS_PER_CLIENT, SHUTDOWN_TIMEOUT
from twisted_smtpd._inbox import DEFAULT_MAX_BYTES, DEFAULT_MAX_MESSAGES
from twisted_smtpd._metrics import MISSING_CLIENT, metricsEndpoint
from twisted_smtpd.log import LEVELS


def trustedProxies(value: str) -> list[str]:
    """
    Read C{--proxy-protocol-trusted}: IP addresses and networks separated
    by commas, as C{--connection-limit-exceptions} takes them.

    @raise usage.UsageError: For one that is not an address or network.
    """
    try:
        return networks(value)
    except usage.UsageError as e:
        message = str(e).replace(
            "--connection-limit-exceptions", "--proxy-protocol-trusted"
        )
        raise usage.UsageError(message) from None


trustedProxies.coerceDoc = ""  # type: ignore[attr-defined]


def metricsListener(value: str) -> str:
    """
    Read C{--metrics}: an endpoint description, or a bare port (loopback).

    @raise usage.UsageError: For a description that cannot be read, or
        when C{prometheus_client} is not installed.
    """
    try:
        # Parsed only (no reactor is needed for that), to report it now.
        serverFromString(None, metricsEndpoint(value))
    except ValueError as e:
        raise usage.UsageError(f"--metrics: {e}") from None
    if importlib.util.find_spec("prometheus_client") is None:
        raise usage.UsageError(f"--metrics: {MISSING_CLIENT}")
    return value


metricsListener.coerceDoc = ""  # type: ignore[attr-defined]

#: The server's own defaults, which the options that set them share.
DEFAULTS = SMTPOptions()

#: The flags of C{twistd smtpd}: name, short name, help.
FLAGS = [
    [
        "lmtp",
        None,
        "Speak LMTP (RFC 2033) instead of SMTP: clients greet with LHLO and"
        " get one reply per recipient after the message.",
    ],
    ["smtputf8", None, "Offer SMTPUTF8 (RFC 6531): UTF-8 addresses and headers."],
    [
        "enhanced-status-codes",
        None,
        "Offer ENHANCEDSTATUSCODES (RFC 2034): every 2yz, 4yz and 5yz reply but"
        " the greeting and the EHLO reply carries an x.y.z code (RFC 3463)."
        " LMTP always does.",
    ],
    [
        "no-dsn",
        None,
        "Do not offer DSN (RFC 3461), whose MAIL and RCPT parameters are then"
        " refused with 555. Offering it commits the handler to send the"
        " notices or pass the parameters on (the proxy handler does).",
    ],
    [
        "requiretls",
        None,
        "Offer REQUIRETLS (RFC 8689) on TLS sessions; the handler must then"
        " relay such mail over validated TLS only (the proxy handler does, or"
        " refuses it). Needs --tls-cert.",
    ],
    [
        "decode-data",
        None,
        "Give handlers the message as str (ASCII, or UTF-8 with SMTPUTF8)"
        " and do not offer 8BITMIME.",
    ],
    [
        "no-chunking",
        None,
        "Do not offer CHUNKING (RFC 3030): clients send messages with DATA"
        " only, and BDAT and BODY=BINARYMIME are refused.",
    ],
    [
        "require-starttls",
        None,
        "Refuse every command but EHLO (LHLO), NOOP, STARTTLS and QUIT with"
        " 530 until the client has started TLS. Needs --tls-cert.",
    ],
    [
        "implicit-tls",
        None,
        "Start TLS as soon as a client connects (RFC 8314, port 465) on the"
        " plain listeners (tcp, unix...), after the PROXY header if any;"
        " ssl: endpoints have TLS anyway. Needs --tls-cert.",
    ],
    [
        "auth-required",
        None,
        "Refuse MAIL, RCPT, DATA, VRFY and HELP with 530 until the client"
        " has authenticated.",
    ],
    [
        "received-header",
        None,
        "Add a Received: header field (RFC 5321 section 4.4) at the top of"
        " each message before the handler gets it.",
    ],
    [
        "auth-allow-plaintext",
        None,
        "Offer AUTH without TLS too, which lets passwords travel in clear."
        " [default: AUTH only over TLS]",
    ],
]

#: The options of C{twistd smtpd} that take a value: name, short name,
#: default, help and coercer.
PARAMETERS = [
    [
        "handler",
        "c",
        None,
        "The handler: debugging, sink, mailbox, proxy, amqp, inbox, or"
        " package.module.ClassName. [default: debugging; with --web,"
        " twisted_smtpd.handlers.Inbox]",
    ],
    [
        "hostname",
        None,
        None,
        "The server's name in its greeting and EHLO reply"
        " [default: this machine's FQDN].",
    ],
    [
        "ident",
        None,
        None,
        "The software name in the 220 greeting [default: twisted_smtpd VERSION].",
    ],
    [
        "size",
        None,
        DEFAULTS.data_size_limit,
        "The largest message accepted, in octets; 0 for no limit.",
        number("size", int, 0),
    ],
    [
        "timeout",
        None,
        DEFAULTS.timeout,
        "Seconds a client may stay idle before 421 and disconnection;"
        " 0 for no timeout.",
        number("timeout", float, 0),
    ],
    [
        "bare-newline",
        None,
        DEFAULTS.bare_newline,
        "What to do with a CR or LF not part of a CRLF in a message:"
        " reject (550) or allow.",
        choice("bare-newline", BARE_NEWLINE_POLICIES),
    ],
    [
        "max-recipients",
        None,
        DEFAULTS.max_recipients,
        "The most recipients of one message; one more gets 452 and the client"
        " sends it in another transaction. 0 for no limit, else at least 100.",
        number("max-recipients", int, 0),
    ],
    [
        "hard-error-limit",
        None,
        DEFAULTS.hard_error_limit,
        "Error replies to a client's commands, without a message delivered"
        " in between, after which it gets 421 and is disconnected; 0 for no"
        " limit.",
        number("hard-error-limit", int, 0),
    ],
    [
        "junk-command-limit",
        None,
        DEFAULTS.junk_command_limit,
        "NOOP, VRFY, RSET and HELP commands, without a message delivered in"
        " between, beyond which each counts as an error; 0 for no limit.",
        number("junk-command-limit", int, 0),
    ],
    [
        "max-connections",
        None,
        None,
        "The most clients served at once; one more gets 421 and is"
        " disconnected. [default: no limit]",
        number("max-connections", int, 1),
    ],
    [
        "max-connections-per-client",
        None,
        MAX_CONNECTIONS_PER_CLIENT,
        "The most clients served at once from one address (the real one"
        " behind --proxy-protocol); one more gets 421. 0 for no limit.",
        number("max-connections-per-client", int, 0),
    ],
    [
        "connection-limit-exceptions",
        None,
        ",".join(DEFAULT_EXCEPTIONS),
        "Addresses and networks, separated by commas, that"
        " --max-connections-per-client does not limit ('' for none).",
        networks,
    ],
    [
        "high-water-mark",
        None,
        None,
        "The clients served at which a new one makes the session idle"
        " longest close with 421; 0 for never. [default: the open file"
        " limit less an eighth]",
        number("high-water-mark", int, 0),
    ],
    [
        "shutdown-timeout",
        None,
        SHUTDOWN_TIMEOUT,
        "Seconds that the messages being received and the hooks working"
        " when the server stops (SIGTERM) may take to finish and be"
        " answered; the sessions waiting for a command are told 421 at"
        " once. 0 to close every session at once.",
        number("shutdown-timeout", float, 0),
    ],
    [
        "tls-cert",
        None,
        None,
        "A PEM file with the server's certificate (and its private key and"
        " intermediate certificates, unless given apart): offers STARTTLS.",
    ],
    [
        "tls-key",
        None,
        None,
        "A PEM file with the private key of --tls-cert, if not in that file.",
    ],
    [
        "tls-chain",
        None,
        None,
        "A PEM file with the intermediate certificates to send after"
        " --tls-cert, if not in that file.",
    ],
    [
        "tls-handshake-timeout",
        None,
        DEFAULTS.tls_handshake_timeout,
        "Seconds a TLS handshake (after STARTTLS, or on an implicit-TLS"
        " listener) may take before the connection is dropped.",
        number("tls-handshake-timeout", float, 0, positive=True),
    ],
    [
        "auth-file",
        None,
        None,
        "Offer AUTH PLAIN, LOGIN and CRAM-MD5, checking the passwords in this"
        " file of user:password lines (plaintext; keep it mode 600), read by"
        " twisted.cred's FilePasswordDB when the server starts and again"
        " when it changes. For hashed passwords, give FilePasswordDB(path,"
        " hash=...) as portal= in a .tac file (see the README); CRAM-MD5"
        " then cannot be offered.",
    ],
    [
        "proxy-protocol",
        None,
        None,
        "Read a PROXY protocol header (v1 or v2) at the start of every"
        " connection, giving the real client's address; a connection"
        " without one within this many seconds is dropped. Only for"
        " listeners that nothing but the proxy can reach. [default: off]",
        number("proxy-protocol", float, 0, positive=True),
    ],
    [
        "proxy-protocol-trusted",
        None,
        None,
        "Addresses and networks, separated by commas, of the proxies that"
        " may send the PROXY header of --proxy-protocol; a connection from"
        " any other peer gets 421 and is closed before anything it sent is"
        " read. [default: any peer]",
        trustedProxies,
    ],
    [
        "metrics",
        None,
        None,
        "Serve Prometheus metrics at /metrics over HTTP on this endpoint"
        " (e.g. tcp:9101:interface=127.0.0.1; a bare port listens on"
        " 127.0.0.1 only). Needs prometheus_client: pip install"
        " 'twisted_smtpd[metrics]'. [default: off]",
        metricsListener,
    ],
    [
        "web",
        None,
        None,
        "Serve a web inbox of the messages received (a page and a JSON API)"
        " on this endpoint, e.g. tcp:8080:interface=127.0.0.1; a bare port"
        " listens on 127.0.0.1 only. Alone, the handler is an Inbox; with"
        " --handler, that handler runs first and every message is also shown"
        " in the inbox, whatever it replied. [default: no web inbox]",
    ],
    [
        "web-max-messages",
        None,
        DEFAULT_MAX_MESSAGES,
        "The most messages the web inbox keeps; beyond, the oldest are dropped first.",
        number("web-max-messages", int, 1),
    ],
    [
        "web-max-bytes",
        None,
        DEFAULT_MAX_BYTES,
        "The most octets of messages the web inbox keeps (256 MiB); beyond,"
        " the oldest are dropped first.",
        number("web-max-bytes", int, 1),
    ],
    [
        "web-maildir",
        None,
        None,
        "Keep the web inbox's messages in this Maildir too (made if missing),"
        " so that they survive a restart; each is stored before its 250."
        " [default: in memory only]",
    ],
    [
        "web-auth-file",
        None,
        None,
        "Ask for basic auth on the web inbox, checking the user:password"
        " lines of this file (the format of --auth-file). [default: no auth]",
    ],
    [
        "web-names",
        None,
        None,
        "Host names, separated by commas, that web requests may give in"
        " their Host header besides the address they came to (others get"
        " 421, against DNS rebinding). [default: none]",
    ],
    [
        "log-level",
        None,
        "info",
        "The least level of the events logged: debug, info (a line per"
        " message), warn, error or critical.",
        choice("log-level", tuple(LEVELS)),
    ],
    [
        "log-format",
        None,
        "text",
        "How the log is written: text (twistd's lines) or json (a JSON object"
        " per line, for log shippers).",
        choice("log-format", ("text", "json")),
    ],
]

#: What a shell completes for the options that take a value.
COMPLETIONS = usage.Completions(
    optActions={
        "handler": usage.CompleteList(list(BUILTIN_HANDLERS)),
        "bare-newline": usage.CompleteList(list(BARE_NEWLINE_POLICIES)),
        "tls-cert": usage.CompleteFiles("*.pem"),
        "tls-key": usage.CompleteFiles("*.pem"),
        "tls-chain": usage.CompleteFiles("*.pem"),
        "auth-file": usage.CompleteFiles(),
        "web-auth-file": usage.CompleteFiles(),
        "log-level": usage.CompleteList(list(LEVELS)),
        "log-format": usage.CompleteList(["text", "json"]),
    },
)


#: The flags that set a boolean option of L{SMTPFactory
#: <twisted_smtpd.SMTPFactory>}: flag, option.
FLAG_OPTIONS = {
    "smtputf8": "enable_SMTPUTF8",
    "enhanced-status-codes": "enhanced_status_codes",
    "decode-data": "decode_data",
    "requiretls": "requiretls",
    "require-starttls": "require_starttls",
    "implicit-tls": "implicit_tls",
    "auth-required": "auth_required",
    "received-header": "received_header",
}

#: The flags that turn a boolean option off: flag, option.
NEGATED_FLAGS = {
    "no-dsn": "dsn",
    "no-chunking": "chunking",
    "auth-allow-plaintext": "auth_require_tls",
}

#: The options taken as C{twistd smtpd} gives them: its option, the
#: factory's.
VALUE_OPTIONS = {
    "hostname": "hostname",
    "ident": "ident",
    "size": "data_size_limit",
    "bare-newline": "bare_newline",
    "max-recipients": "max_recipients",
    "hard-error-limit": "hard_error_limit",
    "junk-command-limit": "junk_command_limit",
    "max-connections": "max_connections",
    "max-connections-per-client": "max_connections_per_client",
    "high-water-mark": "high_water_mark",
    "shutdown-timeout": "shutdown_timeout",
    "tls-handshake-timeout": "tls_handshake_timeout",
    "proxy-protocol": "proxy_protocol_timeout",
}
