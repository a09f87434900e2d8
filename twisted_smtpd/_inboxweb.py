# -*- test-case-name: tests.test_inboxweb,tests.test_inboxbrowser -*-
"""
The web inbox: a page and a JSON API over L{twisted.web} showing the
messages an L{Inbox} caught.

Safety, since the page shows mail written by anyone: every response has
C{X-Content-Type-Options: nosniff}, C{Cache-Control: no-store} and no CORS
header; message content (raw source, HTML part, attachments) is served with
C{Content-Security-Policy: sandbox} and, but for the HTML part the page
shows in a sandboxed frame, C{Content-Disposition: attachment}; a request
whose C{Host} is neither the address it came to nor a configured name gets
421 (DNS rebinding); no C{GET} changes anything; optional basic auth.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from collections.abc import Iterable
from importlib.resources import files
from typing import Any
from urllib.parse import quote

from twisted.application.internet import StreamServerEndpointService
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import serverFromString
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request, Site

from twisted_smtpd._inbox import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_MESSAGES,
    Inbox,
    InboxAfter,
    InboxMessage,
)
from twisted_smtpd._inboxmime import attachment, detail, htmlPart, summary

__all__ = ["InboxResource", "inboxSite", "inboxWebService", "webEndpoint"]

#: The page's own files, served from the package.
_STATIC = {
    "": ("index.html", "text/html; charset=utf-8"),
    "inbox.js": ("inbox.js", "text/javascript; charset=utf-8"),
    "inbox.css": ("inbox.css", "text/css; charset=utf-8"),
}

#: The page may load its own script, style and frames, nothing else.
_PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
    " connect-src 'self'; frame-src 'self'; base-uri 'none'; form-action 'none';"
    " frame-ancestors 'none'"
)

#: A message's HTML part: no script (sandbox without allow-scripts), no
#: request anywhere; only the inbox page may frame it.
_HTML_POLICY = (
    "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:;"
    " font-src data:; frame-ancestors 'self'"
)

#: The same, with remote images, when the user asks for them.
_HTML_POLICY_IMAGES = _HTML_POLICY.replace(
    "img-src data:", "img-src data: http: https:"
)

#: Downloads (raw source, attachments): nothing runs if opened anyway.
_DOWNLOAD_POLICY = "sandbox; default-src 'none'"

#: The longest and the default wait of C{GET /api/wait}, in seconds.
MAX_WAIT = 300.0
DEFAULT_WAIT = 30.0

_LOOPBACK = {"127.0.0.1", "::1", "localhost"}


def webEndpoint(description: str) -> str:
    """
    The endpoint description of C{--web}: a bare port number listens on
    loopback only (C{127.0.0.1}), unlike C{--listen}'s, since the inbox
    shows every message to whoever can reach it.
    """
    if description.isdigit():
        return f"tcp:{description}:interface=127.0.0.1"
    return description


def _matches(message: InboxMessage, filters: dict[str, str]) -> bool:
    """
    Whether a message matches the filters C{to}, C{from} and C{subject}:
    each a substring, without regard to case, of the envelope or header
    addresses, or of the subject.
    """
    if not filters:
        return True
    info = summary(message)
    fields = {
        "to": " ".join([*message.rcpt_tos, info["headerTo"]]),
        "from": f"{message.mail_from} {info['headerFrom']}",
        "subject": info["subject"],
    }
    return all(
        wanted.lower() in fields[name].lower() for name, wanted in filters.items()
    )


def _filters(request: Request) -> dict[str, str]:
    found = {}
    for name in ("to", "from", "subject"):
        values = request.args.get(name.encode())
        if values and values[0]:
            found[name] = values[0].decode("utf-8", "replace")
    return found


def _arg(request: Request, name: str) -> str | None:
    values = request.args.get(name.encode())
    return values[0].decode("utf-8", "replace") if values else None


def _json(request: Request, value: Any, code: int = 200) -> bytes:
    request.setResponseCode(code)
    request.setHeader(b"content-type", b"application/json; charset=utf-8")
    return json.dumps(value).encode("utf-8")


def _error(request: Request, code: int, message: str) -> bytes:
    return _json(request, {"error": message}, code)


def _download(request: Request, data: bytes, filename: str) -> bytes:
    """
    Serve bytes as a file to save, never to render in the inbox's origin.
    """
    request.setHeader(b"content-type", b"application/octet-stream")
    request.setHeader(b"content-security-policy", _DOWNLOAD_POLICY.encode())
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in filename)
    request.setHeader(
        b"content-disposition",
        f"attachment; filename=\"{safe or 'download'}\"; filename*=UTF-8''"
        f"{quote(filename, safe='')}".encode("ascii"),
    )
    return data


class InboxResource(Resource):
    """
    The whole web inbox, one leaf resource: the page, its files and the
    JSON API (see C{docs/inbox.rst}).

    @ivar inbox: The inbox shown.
    """

    isLeaf = True

    def __init__(
        self,
        inbox: Inbox,
        *,
        names: Iterable[str] = (),
        checker: Any = None,
        reactor: Any = None,
    ) -> None:
        """
        @param inbox: The inbox to show.
        @param names: Host names that requests may use besides the address
            they came to (e.g. a name behind a reverse proxy).
        @param checker: Something with C{getUser(name) -> (name, password)}
            raising C{KeyError} for an unknown user, such as the
            L{FilePasswordDB} of C{--auth-file}: basic auth is then needed.
            C{None} for no auth.
        @param reactor: The reactor for the long polls' timeouts.
        """
        super().__init__()
        if reactor is None:
            from twisted.internet import reactor
        self.inbox = inbox
        self._names = {n.lower() for n in names}
        self._checker = checker
        self._reactor = reactor

    # Guards, for every request.

    def render(self, request: Request) -> Any:
        """
        Check the request's C{Host} and credentials, then answer it.
        """
        request.setHeader(b"x-content-type-options", b"nosniff")
        request.setHeader(b"cache-control", b"no-store")
        request.setHeader(b"referrer-policy", b"no-referrer")
        if not self._hostAllowed(request):
            return _error(request, 421, "unknown Host")
        if not self._authorized(request):
            request.setHeader(b"www-authenticate", b'Basic realm="inbox"')
            return _error(request, 401, "authentication required")
        method = request.method.decode("ascii", "replace")
        if method not in ("GET", "HEAD", "DELETE"):
            request.setHeader(b"allow", b"GET, HEAD, DELETE")
            return _error(request, 405, "method not allowed")
        path = [p.decode("utf-8", "replace") for p in request.postpath]
        if method == "HEAD" and path[:2] in (["api", "wait"], ["api", "events"]):
            # Answers that never end (or only later) make no sense for HEAD.
            return _error(request, 405, "method not allowed")
        return self._route(request, "DELETE" if method == "DELETE" else "GET", path)

    def _hostAllowed(self, request: Request) -> bool:
        header = request.getHeader(b"host")
        if header is None:
            # HTTP/1.0 without Host: no browser sends that.
            return True
        header = header.decode("ascii", "replace").lower()
        if header.startswith("["):
            host = header[1:].partition("]")[0]
        else:
            host = header.rpartition(":")[0] if ":" in header else header
        local = request.getHost()
        address = getattr(local, "host", None)
        if host in self._names or host == str(address).lower():
            return True
        return host == "localhost" and address in _LOOPBACK

    def _authorized(self, request: Request) -> bool:
        if self._checker is None:
            return True
        header = (request.getHeader(b"authorization") or b"").decode("latin-1")
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, sep, password = base64.b64decode(encoded, validate=True).partition(
                b":"
            )
            _, expected = self._checker.getUser(user)
        except (binascii.Error, KeyError, ValueError):
            return False
        if isinstance(expected, str):
            expected = expected.encode("utf-8")
        return bool(sep) and hmac.compare_digest(password, expected)

    # Routing.

    def _route(self, request: Request, method: str, path: list[str]) -> Any:
        if path and path[-1] == "" and len(path) > 1:
            path = path[:-1]
        if not path or path == [""] or (len(path) == 1 and path[0] in _STATIC):
            if method != "GET":
                return _error(request, 405, "method not allowed")
            return self._static(request, path[0] if path else "")
        if path[0] != "api" or len(path) < 2:
            return _error(request, 404, "not found")
        endpoint = path[1]
        if endpoint == "messages":
            return self._messages(request, method, path[2:])
        if method == "GET" and len(path) == 2 and endpoint == "wait":
            return self._wait(request)
        if method == "GET" and len(path) == 2 and endpoint == "events":
            return self._events(request)
        return _error(request, 404, "not found")

    def _static(self, request: Request, name: str) -> bytes:
        filename, contentType = _STATIC[name]
        request.setHeader(b"content-type", contentType.encode())
        request.setHeader(b"content-security-policy", _PAGE_POLICY.encode())
        request.setHeader(b"x-frame-options", b"DENY")
        return files("twisted_smtpd").joinpath("inbox", filename).read_bytes()

    def _messages(self, request: Request, method: str, rest: list[str]) -> Any:
        if not rest:
            if method == "DELETE":
                self.inbox.clear()
                return _json(request, {"deleted": True})
            filters = _filters(request)
            return _json(
                request,
                [summary(m) for m in self.inbox if _matches(m, filters)],
            )
        message = self.inbox.get(rest[0])
        if message is None:
            return _error(request, 404, "no such message")
        if len(rest) == 1:
            if method == "DELETE":
                self.inbox.delete(message.id)
                return _json(request, {"deleted": True})
            return _json(request, detail(message))
        if method != "GET":
            return _error(request, 405, "method not allowed")
        if rest[1:] == ["raw"]:
            return _download(request, message.raw, f"message-{message.id}.eml")
        if rest[1:] == ["html"]:
            return self._html(request, message)
        if len(rest) == 3 and rest[1] == "attachments" and rest[2].isdigit():
            found = attachment(message, int(rest[2]))
            if found is not None:
                return _download(request, found.data, found.filename)
        return _error(request, 404, "not found")

    def _html(self, request: Request, message: InboxMessage) -> bytes:
        """
        The HTML part, for the page's sandboxed frame: sandboxed by CSP as
        well, so that it runs nothing even when opened on its own.
        """
        html = htmlPart(message)
        if html is None:
            return _error(request, 404, "no HTML part")
        policy = _HTML_POLICY_IMAGES if _arg(request, "images") == "1" else _HTML_POLICY
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        request.setHeader(b"content-security-policy", policy.encode())
        request.setHeader(b"x-frame-options", b"SAMEORIGIN")
        return html.encode("utf-8", "replace")

    # Waiting for mail.

    def _wait(self, request: Request) -> Any:
        """
        Answer with the first message matching the filters that is newer
        than C{since} (a message id; by default, only messages yet to
        come), or with 204 after C{timeout} seconds.
        """
        filters = _filters(request)
        try:
            timeout = float(_arg(request, "timeout") or DEFAULT_WAIT)
            since = int(_arg(request, "since") or "-1")
        except ValueError:
            return _error(request, 400, "timeout and since must be numbers")
        if not 0 <= timeout <= MAX_WAIT:
            return _error(request, 400, f"timeout must be 0 to {MAX_WAIT:g}")
        if since >= 0:
            for message in reversed(list(self.inbox)):
                if int(message.id) > since and _matches(message, filters):
                    return _json(request, detail(message))

        def answer(message: InboxMessage) -> None:
            if not _matches(message, filters):
                return
            finish()
            request.write(_json(request, detail(message)))
            request.finish()

        def expire() -> None:
            finish()
            request.setResponseCode(204)
            request.finish()

        unsubscribe = self.inbox.subscribe(answer)
        timer = self._reactor.callLater(timeout, expire)

        def finish(*ignored: object) -> None:
            unsubscribe()
            if timer.active():
                timer.cancel()

        request.notifyFinish().addErrback(finish)
        return NOT_DONE_YET

    def _events(self, request: Request) -> Any:
        """
        Server-sent events: a C{message} event, with the summary as JSON,
        for each new message, until the client goes away.
        """
        request.setHeader(b"content-type", b"text/event-stream; charset=utf-8")
        request.write(b": inbox events\n\n")

        def send(message: InboxMessage) -> None:
            data = json.dumps(summary(message))
            request.write(f"event: message\ndata: {data}\n\n".encode())

        unsubscribe = self.inbox.subscribe(send)
        gone: Deferred[None] = request.notifyFinish()
        gone.addBoth(lambda _: unsubscribe())
        return NOT_DONE_YET


def inboxSite(
    inbox: Inbox,
    *,
    names: Iterable[str] = (),
    checker: Any = None,
    reactor: Any = None,
) -> Site:
    """
    Make the web site of an inbox (see L{InboxResource} for the options).
    """
    resource = InboxResource(inbox, names=names, checker=checker, reactor=reactor)
    site = Site(resource, reactor=reactor)
    site.displayTracebacks = False
    return site


def inboxWebService(
    handler: Any,
    description: str,
    *,
    reactor: Any = None,
    names: Iterable[str] = (),
    checker: Any = None,
    maxMessages: int | None = None,
    maxBytes: int | None = None,
    maildir: str | None = None,
) -> tuple[Any, StreamServerEndpointService]:
    """
    Make the handler and the web service of C{--web}: an L{Inbox} handler
    is shown as it is; any other handler runs first, and each message is
    then put in a new L{Inbox} whatever the handler replied (L{InboxAfter}).

    @param handler: The server's handler.
    @param description: The endpoint to serve the inbox on; a bare port
        listens on loopback only (L{webEndpoint}).
    @param maxMessages: The inbox's bound in messages, if not the default.
    @param maxBytes: The inbox's bound in octets, if not the default.
    @param maildir: A Maildir to keep the messages of a new inbox in (see
        L{Inbox}); an L{Inbox} handler keeps its own.
    @return: The handler to give the server, and the service that serves
        the inbox.
    @raise ValueError: For an endpoint description that cannot be parsed.
    """
    if reactor is None:
        from twisted.internet import reactor
    if isinstance(handler, Inbox) and (maildir is None or handler.maildir):
        inbox = handler
    elif isinstance(handler, Inbox):
        # An Inbox made without a Maildir (--web alone): one with it instead.
        inbox = handler = Inbox(
            maxMessages or handler.maxMessages,
            maxBytes or handler.maxBytes,
            maildir=maildir,
            reactor=reactor,
        )
    else:
        inbox = Inbox(
            maxMessages or DEFAULT_MAX_MESSAGES,
            maxBytes or DEFAULT_MAX_BYTES,
            maildir=maildir,
            reactor=reactor,
        )
        handler = InboxAfter(handler, inbox)
    inbox.maxMessages = maxMessages or inbox.maxMessages
    inbox.maxBytes = maxBytes or inbox.maxBytes
    endpoint = serverFromString(reactor, webEndpoint(description))
    site = inboxSite(inbox, names=names, checker=checker, reactor=reactor)
    return handler, StreamServerEndpointService(endpoint, site)
