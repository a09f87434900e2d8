# -*- test-case-name: tests.test_metrics -*-
"""
Prometheus metrics of a server, served over HTTP at C{/metrics}.

Metrics are opt-in (C{makeService(metrics=ENDPOINT)}, C{twistd smtpd
--metrics ENDPOINT}) and need C{prometheus_client} (the C{metrics} extra).
They cost nothing when off: a server with metrics runs a subclass of its
protocol class (L{meteredProtocol}) whose overrides of a few public methods
of the connection (C{connectionMade}, C{run}, C{hook}, C{transactionEnded}
...) do the counting; a server without metrics runs the class it had,
untouched.

Each server has a registry of its own (L{Metrics.registry}), not
C{prometheus_client}'s global one, so that several servers in one process
do not collide. No label value comes from the client: a verb is one the
server class implements or C{unknown}, a code is one of the server's own
3-digit reply codes, a hook one of the handler's C{handle_*} names.
"""

from __future__ import annotations

import time
from typing import Any

from twisted.application.internet import StreamServerEndpointService
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import serverFromString
from twisted.web.resource import Resource
from twisted.web.server import Site

from twisted_smtpd._connhooks import SHED

__all__ = [
    "MISSING_CLIENT",
    "Metrics",
    "MetricsPage",
    "MetricsService",
    "meteredProtocol",
    "metricsEndpoint",
    "observePublish",
    "serveMetrics",
]

#: Why metrics cannot be served: C{prometheus_client} is not installed.
MISSING_CLIENT = "metrics need prometheus_client: pip install 'twisted_smtpd[metrics]'"

#: The label of a command line whose verb the server does not implement,
#: or that was refused before it ran.
UNKNOWN = "unknown"

# The metrics being served; L{observePublish} feeds each of them.
_active: list[Metrics] = []

#: The last state given to L{observeHandoff}, if any: C{[1]} or C{[0]}.
_handoff: list[int] = []


def _client() -> Any:
    """
    Import C{prometheus_client}, which is optional.

    @raise ImportError: With L{MISSING_CLIENT} when it is not installed.
    """
    try:
        import prometheus_client
    except ImportError:
        raise ImportError(MISSING_CLIENT) from None
    return prometheus_client


#: The metrics of a server: attribute of L{Metrics}, kind, name, help and
#: label names. A counter's name gets C{_total} in the exposition.
_METRICS = [
    ("connectionsOpen", "Gauge", "smtpd_connections_open", "Connections open.", ()),
    (
        "connections",
        "Counter",
        "smtpd_connections",
        "Connections accepted since the start.",
        (),
    ),
    (
        "shed",
        "Counter",
        "smtpd_sessions_shed",
        "Idle sessions closed to make room for new connections.",
        (),
    ),
    (
        "tls",
        "Counter",
        "smtpd_tls_handshakes",
        "TLS handshakes, by result (ok, failed).",
        ("result",),
    ),
    (
        "auth",
        "Counter",
        "smtpd_auth",
        "AUTH exchanges that ended with 235 (success) or 535 (failure).",
        ("result",),
    ),
    (
        "commands",
        "Counter",
        "smtpd_commands",
        "Commands by verb and the class of their final reply.",
        ("verb", "reply_class"),
    ),
    (
        "messages",
        "Counter",
        "smtpd_messages",
        "Transactions by outcome (accepted, refused, aborted) and the"
        " code(s) of the reply to the end of their data.",
        ("outcome", "code"),
    ),
    (
        "receivedBytes",
        "Counter",
        "smtpd_received_bytes",
        "Bytes received from clients.",
        (),
    ),
    (
        "messageBytes",
        "Counter",
        "smtpd_message_bytes",
        "Bytes of the messages received.",
        (),
    ),
    (
        "hookDuration",
        "Histogram",
        "smtpd_hook_duration_seconds",
        "How long the handler's hooks took, by hook.",
        ("hook",),
    ),
    (
        "publishDuration",
        "Histogram",
        "smtpd_publish_duration_seconds",
        "How long hand-offs of messages (e.g. to a broker) took.",
        (),
    ),
    (
        "publishFailures",
        "Counter",
        "smtpd_publish_failures",
        "Hand-offs of messages that failed.",
        (),
    ),
    (
        "handoffAvailable",
        "Gauge",
        "smtpd_handoff_available",
        "Whether the hand-off of messages (e.g. the broker) takes them now:"
        " 1 or 0; absent for a handler that hands nothing off.",
        (),
    ),
]


class Metrics:
    """
    The metrics of one server, in a registry of their own.

    @ivar registry: The C{prometheus_client} C{CollectorRegistry} that
        L{MetricsPage} exposes.

    Each metric is an attribute named as in L{_METRICS} (C{commands},
    C{messages}...), a C{prometheus_client} metric in L{registry}.
    """

    def __init__(self) -> None:
        """
        @raise ImportError: When C{prometheus_client} is not installed.
        """
        client = _client()
        registry = self.registry = client.CollectorRegistry()
        for attribute, kind, name, documentation, labels in _METRICS:
            made = getattr(client, kind)(name, documentation, labels, registry=registry)
            setattr(self, attribute, made)
        if _handoff:
            self.handoffAvailable.set(_handoff[-1])

    def observePublish(self, seconds: float, ok: bool) -> None:
        """
        Record one hand-off of a message: its duration and whether it
        succeeded (see L{observePublish}).
        """
        self.publishDuration.observe(seconds)
        if not ok:
            self.publishFailures.inc()

    def messageEnded(self, size: int, result: str) -> None:
        """
        Count a transaction that ended with C{result}: C{"aborted"}, or
        the reply code(s) to the end of its data, separated by commas.
        """
        if result == "aborted":
            self.messages.labels("aborted", "").inc()
            return
        self.messageBytes.inc(size)
        for code in result.split(","):
            if len(code) != 3 or not code.isdigit():
                code = "other"
            outcome = "accepted" if code[0] == "2" else "refused"
            self.messages.labels(outcome, code).inc()

    def replied(self, verb: str, status: bytes) -> None:
        """
        Count the final reply C{status} of a command C{verb}.
        """
        first = status[:1]
        cls = first.decode("ascii") + "xx" if first in b"2345" else "other"
        self.commands.labels(verb, cls).inc()
        if verb == "AUTH":
            if status[:3] == b"235":
                self.auth.labels("success").inc()
            elif status[:3] == b"535":
                self.auth.labels("failure").inc()


def observeHandoff(available: bool) -> None:
    """
    Record whether the hand-off of messages is available now (a broker
    connected and not blocking publishers, say), in the metrics of every
    server that serves them, and of those that start serving later. A
    handler calls it whenever that changes, whether or not metrics are on.
    """
    _handoff[:] = [int(available)]
    for metrics in _active:
        metrics.handoffAvailable.set(int(available))


def observePublish(seconds: float, ok: bool) -> None:
    """
    Record one hand-off of a message to the outside world (a broker's
    confirm, say) in the metrics of every server that serves them: how
    long it took and whether it failed. A handler calls it whether or not
    metrics are on: it does nothing when they are off.

    @param seconds: How long the hand-off took.
    @param ok: Whether it succeeded.
    """
    for metrics in _active:
        metrics.observePublish(seconds, ok)


def meteredProtocol(cls: type, metrics: Metrics) -> type:
    """
    A subclass of the server class C{cls} that counts into C{metrics}.

    @param cls: L{SMTP <twisted_smtpd.SMTP>}, L{LMTP <twisted_smtpd.LMTP>}
        or a subclass.
    """
    verbs = {}
    for name in dir(cls):
        if name.startswith("smtp_"):
            method = getattr(cls, name)
            verbs[name] = name[5:]
            builtin = getattr(method, "__smtp_command__", None)
            if builtin is not None:
                verbs[builtin.__func__] = name[5:]
    return type(
        "Metered" + cls.__name__,
        (_Metered, cls),
        {"_metrics": metrics, "_meterVerbs": verbs, "__module__": __name__},
    )


class _Metered:
    """
    The overrides of a metered server class (see L{meteredProtocol}).

    A command is known by the method that runs it (L{run}); its final
    reply (not a 3xx, not a line followed by more) is seen by the reply
    watcher of the connection. Commands run one at a time, so one pending
    verb is enough: after a final reply, the next one belongs to a line
    refused before it ran (L{UNKNOWN}) unless a command runs first. The
    server's own replies outside commands (a greeting from
    C{handle_CONNECT}, a 421 as it closes) are queued as "uncounted"
    replies, and are not counted as commands.
    """

    _metrics: Metrics
    _meterVerbs: dict[Any, str]
    # The verb whose final reply is awaited: UNKNOWN between commands.
    _meterVerb: str = UNKNOWN
    _meterInner: Any = None

    def connectionMade(self) -> None:
        metrics = self._metrics
        metrics.connections.inc()
        metrics.connectionsOpen.inc()
        self._watcher = self._meterReply
        super().connectionMade()

    def dataReceived(self, data: bytes) -> None:
        self._metrics.receivedBytes.inc(len(data))
        super().dataReceived(data)

    def run(self, call: Any, *args: Any, errorReplies: int = 1) -> None:
        verbs = self._meterVerbs
        verb = verbs.get(getattr(call, "__func__", call))
        if verb is None:
            name = getattr(call, "__name__", None)
            if name is not None and name.startswith("smtp_"):
                verb = verbs.get(name, UNKNOWN)
        if verb is not None:
            self._meterVerb = verb
        super().run(call, *args, errorReplies=errorReplies)

    def watchReplies(self, watcher: Any) -> None:
        self._meterInner = watcher

    def _meterReply(self, status: bytes) -> None:
        inner = self._meterInner
        if inner is not None:
            inner(status)
        if status[:1] == b"3":
            # 334, 354: the command goes on.
            return
        verb = self._meterVerb
        if status[3:4] == b"-" and b"\n" not in status:
            # A line of a reply that goes on.
            return
        if verb is UNKNOWN and self._uncounted:
            # The server's own reply (a 421 as it closes), not a command's.
            return
        self._meterVerb = UNKNOWN
        self._metrics.replied(verb, status)

    def disconnect(self, reply: str, reason: str = "closed") -> None:
        if not self._closing and reason == SHED:
            self._metrics.shed.inc()
        super().disconnect(reply, reason)

    def handshakeCompleted(self) -> None:
        self._metrics.tls.labels("ok").inc()
        super().handshakeCompleted()

    def hook(self, verb: str, then: Any, *args: Any, **kw: Any) -> Any:
        if verb not in self.config.hooks:
            return super().hook(verb, then, *args, **kw)
        start = time.monotonic()
        histogram = self._metrics.hookDuration.labels(verb)

        def timed(result: Any) -> Any:
            histogram.observe(time.monotonic() - start)
            return then(result)

        return super().hook(verb, timed, *args, **kw)

    def transactionEnded(self, envelope: Any, size: int, result: str) -> None:
        self._metrics.messageEnded(size, result)
        super().transactionEnded(envelope, size, result)

    def connectionLost(self, reason: Any = None) -> None:
        self._metrics.connectionsOpen.dec()
        if self._handshakePending:
            self._metrics.tls.labels("failed").inc()
        super().connectionLost(reason)


def metricsEndpoint(description: str) -> str:
    """
    Complete the description of the metrics listener: a bare port number
    listens on loopback only.

    @param description: E.g. C{"tcp:9101:interface=127.0.0.1"} or C{"9101"}.
    """
    if description.isdigit():
        return f"tcp:{description}:interface=127.0.0.1"
    return description


class MetricsPage(Resource):
    """
    The page of the metrics in the text format of Prometheus.
    """

    isLeaf = True

    def __init__(self, registry: Any) -> None:
        super().__init__()
        self._registry = registry

    def render_GET(self, request: Any) -> bytes:
        client = _client()
        request.setHeader(b"Content-Type", client.CONTENT_TYPE_LATEST.encode())
        return client.generate_latest(self._registry)


class _QuietSite(Site):
    """
    A site that logs no line per request: Prometheus scrapes every few
    seconds, and the server's log is for mail.
    """

    noisy = False

    def log(self, request: Any) -> None:
        pass


class MetricsService(StreamServerEndpointService):
    """
    The HTTP listener of a server's metrics, a child of its
    L{SMTPService <twisted_smtpd.service.SMTPService>}: it serves
    C{/metrics}, and feeds L{observePublish} while it runs.

    @ivar metrics: The L{Metrics} served.
    """

    #: Tells L{SMTPService <twisted_smtpd.service.SMTPService>} that this
    #: child listens for no SMTP client.
    servesMetrics = True

    def __init__(self, endpoint: Any, metrics: Metrics) -> None:
        root = Resource()
        root.putChild(b"metrics", MetricsPage(metrics.registry))
        super().__init__(endpoint, _QuietSite(root))
        self.metrics = metrics

    def privilegedStartService(self) -> None:
        if not self.running and self.metrics not in _active:
            _active.append(self.metrics)
        super().privilegedStartService()

    def startService(self) -> None:
        if self.metrics not in _active:
            _active.append(self.metrics)
        super().startService()

    def stopService(self) -> Deferred[None]:
        if self.metrics in _active:
            _active.remove(self.metrics)
        return super().stopService()

    def whenListening(self) -> Deferred[Any]:
        """
        Wait until the listener listens, e.g. to learn the port of C{tcp:0}.

        @raise RuntimeError: If the service has not been started.
        """
        waiting = getattr(self, "_waitingForPort", None)
        if waiting is None:
            raise RuntimeError("the service is not started")
        result: Deferred[Any] = Deferred()

        def fire(port: Any) -> Any:
            # The port, or None if it could not listen (Twisted logs why).
            result.callback(port)
            return port

        waiting.addCallback(fire)
        return result


def serveMetrics(service: Any, endpoint: Any, reactor: Any = None) -> Metrics:
    """
    Count the metrics of the server of C{service} and serve them on
    C{endpoint}, from a child service that starts and stops with it.

    @param service: An L{SMTPService <twisted_smtpd.service.SMTPService>}
        whose factory has built no server yet.
    @param endpoint: An endpoint description (a bare port listens on
        loopback) or an C{IStreamServerEndpoint}.
    @param reactor: The reactor to listen with; the global one by default.
    @return: The L{Metrics} served.
    @raise ImportError: When C{prometheus_client} is not installed.
    """
    metrics = Metrics()
    if isinstance(endpoint, str):
        if reactor is None:
            from twisted.internet import reactor
        endpoint = serverFromString(reactor, metricsEndpoint(endpoint))
    factory = service.factory
    factory.protocol = meteredProtocol(factory.protocol, metrics)
    MetricsService(endpoint, metrics).setServiceParent(service)
    return metrics
