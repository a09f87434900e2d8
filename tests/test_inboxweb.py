# -*- test-case-name: tests.test_inboxweb -*-
"""
Tests for L{twisted_smtpd._inboxweb}: the web inbox's JSON API, page and
safety rules, over real HTTP on 127.0.0.1 with L{twisted.web.client.Agent};
and C{--web} of C{twistd smtpd} and C{makeService(web=...)}.
"""

from __future__ import annotations

import base64
import json
import os
import smtplib
import tempfile
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.protocol import Protocol
from twisted.internet.task import Clock
from twisted.internet.threads import deferToThread
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase, TestCase
from twisted.web.client import Agent, HTTPConnectionPool, readBody
from twisted.web.http_headers import Headers
from twisted.web.server import Site

from tests.test_inboxmime import MULTIPART
from twisted_smtpd._inbox import InboxAfter
from twisted_smtpd._inboxweb import InboxResource, webEndpoint
from twisted_smtpd.handlers import Inbox, Sink
from twisted_smtpd.service import makeService
from twisted_smtpd.tap import Options, StartupError
from twisted_smtpd.tap import makeService as makeTapService

SIMPLE = (
    b"From: Bob <bob@example.com>\r\nTo: Ann <ann@example.com>\r\n"
    b"Subject: Invoice 42\r\n\r\nHello\r\n"
)


class Response:
    """
    What a request got: status code, headers and body.
    """

    def __init__(self, code: int, headers: Headers, body: bytes) -> None:
        self.code = code
        self.headers = headers
        self.body = body

    def header(self, name: str) -> str | None:
        values = self.headers.getRawHeaders(name)
        return None if values is None else values[0]

    def json(self) -> Any:
        return json.loads(self.body)


class WebTestCase(TestCase):
    """
    Serves an inbox over real HTTP on 127.0.0.1 for each test (integration
    tests: real sockets, the global reactor), with a L{Clock} for the long
    polls' timeouts.
    """

    names: tuple[str, ...] = ()
    checker: Any = None

    def setUp(self) -> None:
        self.inbox = Inbox(clock=lambda: 0.0)
        self.clock = Clock()
        resource = InboxResource(
            self.inbox, names=self.names, checker=self.checker, reactor=self.clock
        )
        port = reactor.listenTCP(0, Site(resource), interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        self.port = port.getHost().port
        pool = HTTPConnectionPool(reactor, persistent=False)
        self.agent = Agent(reactor, pool=pool)

    async def request(
        self,
        path: str,
        method: bytes = b"GET",
        headers: dict[str, str] | None = None,
    ) -> Response:
        """
        Send a request and read the whole response.
        """
        url = f"http://127.0.0.1:{self.port}{path}".encode()
        raw = Headers({k: [v] for k, v in (headers or {}).items()})
        response = await self.agent.request(method, url, raw)
        body = await readBody(response)
        return Response(response.code, response.headers, body)

    def add(self, raw: bytes = SIMPLE, **kwargs: Any) -> Any:
        return self.inbox.add(
            kwargs.get("mail_from", "bob@example.com"),
            kwargs.get("rcpt_tos", ["ann@example.com"]),
            raw,
        )


def inTest(method: Any) -> Any:
    """
    Run an async test method as a L{Deferred}, which trial waits for.
    """

    def run(self: Any) -> Deferred[Any]:
        return Deferred.fromCoroutine(method(self))

    run.__doc__ = method.__doc__
    run.__name__ = method.__name__
    return run


class MessagesAPITests(WebTestCase):
    """
    C{/api/messages}: list, get, raw, HTML part, attachments, delete.
    """

    @inTest
    async def test_emptyList(self) -> None:
        """
        An empty inbox lists C{[]} as JSON, with nosniff, no-store and no
        CORS header.
        """
        response = await self.request("/api/messages")
        self.assertEqual(response.code, 200)
        self.assertEqual(response.json(), [])
        self.assertEqual(
            response.header("content-type"), "application/json; charset=utf-8"
        )
        self.assertEqual(response.header("x-content-type-options"), "nosniff")
        self.assertEqual(response.header("cache-control"), "no-store")
        self.assertIsNone(response.header("access-control-allow-origin"))

    @inTest
    async def test_listNewestFirst(self) -> None:
        """
        The list is newest first, each with id, from, to, subject, date and
        size.
        """
        self.add()
        self.add(MULTIPART, mail_from="a@x", rcpt_tos=["b@x", "c@x"])
        listed = (await self.request("/api/messages")).json()
        self.assertEqual([m["id"] for m in listed], ["2", "1"])
        first = listed[1]
        self.assertEqual(
            {k: first[k] for k in ("id", "from", "to", "subject", "size")},
            {
                "id": "1",
                "from": "bob@example.com",
                "to": ["ann@example.com"],
                "subject": "Invoice 42",
                "size": len(SIMPLE),
            },
        )
        self.assertEqual(first["date"], "1970-01-01T00:00:00+00:00")
        self.assertEqual(listed[0]["attachmentCount"], 1)

    @inTest
    async def test_filters(self) -> None:
        """
        C{to}, C{from} and C{subject} filter by substring, without regard
        to case, envelope or header address alike.
        """
        self.add()
        self.add(MULTIPART, mail_from="a@x", rcpt_tos=["b@x"])

        async def ids(query: str) -> list[str]:
            listed = (await self.request("/api/messages?" + query)).json()
            return [m["id"] for m in listed]

        self.assertEqual(await ids("to=ANN%40"), ["2", "1"])
        self.assertEqual(await ids("to=b%40x"), ["2"])
        self.assertEqual(await ids("from=j%40example"), ["2"])
        self.assertEqual(await ids("subject=invoice"), ["1"])
        self.assertEqual(await ids("subject=h%C3%A9llo&to=b%40x"), ["2"])
        self.assertEqual(await ids("subject=nothing"), [])

    @inTest
    async def test_getOne(self) -> None:
        """
        One message has its envelope, headers, text and HTML parts and
        attachments.
        """
        self.add(MULTIPART)
        info = (await self.request("/api/messages/1")).json()
        self.assertEqual(info["subject"], "héllo world")
        self.assertEqual(info["text"], "café")
        self.assertEqual(info["envelope"]["rcpt_tos"], ["ann@example.com"])
        self.assertEqual(info["attachments"][0]["filename"], "a b.svg")

    @inTest
    async def test_unknown(self) -> None:
        """
        An unknown message, path or attachment is 404 with a JSON error.
        """
        self.add()
        for path in (
            "/api/messages/9",
            "/api/nothing",
            "/nothing",
            "/api/messages/1/attachments/0",
            "/api/messages/1/html",
            "/api/messages/1/other",
        ):
            response = await self.request(path)
            self.assertEqual(response.code, 404, path)
            self.assertIn("error", response.json())

    @inTest
    async def test_raw(self) -> None:
        """
        The raw source is the exact bytes, as a download that cannot run.
        """
        self.add()
        response = await self.request("/api/messages/1/raw")
        self.assertDownload(
            response,
            SIMPLE,
            "attachment; filename=\"message-1.eml\"; filename*=UTF-8''message-1.eml",
        )

    @inTest
    async def test_attachment(self) -> None:
        """
        An SVG attachment is downloaded as bytes that cannot run, with its
        name quoted safely.
        """
        self.add(MULTIPART)
        response = await self.request("/api/messages/1/attachments/0")
        self.assertDownload(
            response,
            b"<svg/>",
            "attachment; filename=\"a_b.svg\"; filename*=UTF-8''a%20b.svg",
        )

    def assertDownload(self, response: Response, body: bytes, disposition: str):
        """
        Check that a response is C{body} as a download that cannot run.
        """
        self.assertEqual(response.body, body)
        self.assertEqual(response.header("content-type"), "application/octet-stream")
        self.assertEqual(response.header("content-disposition"), disposition)
        policy = response.header("content-security-policy")
        self.assertTrue(policy.startswith("sandbox;"), policy)
        self.assertEqual(response.header("x-content-type-options"), "nosniff")

    @inTest
    async def test_htmlPart(self) -> None:
        """
        The HTML part is served sandboxed: no script, no remote images
        unless asked, framed by the inbox only.
        """
        self.add(MULTIPART)
        response = await self.request("/api/messages/1/html")
        self.assertIn(b"<script>alert(1)</script>", response.body)
        policy = response.header("content-security-policy")
        self.assertTrue(policy.startswith("sandbox;"), policy)
        self.assertIn("default-src 'none'", policy)
        self.assertIn("img-src data:;", policy)
        self.assertNotIn("allow-scripts", policy)
        self.assertEqual(response.header("x-frame-options"), "SAMEORIGIN")
        images = await self.request("/api/messages/1/html?images=1")
        self.assertIn(
            "img-src data: http: https:", images.header("content-security-policy")
        )

    @inTest
    async def test_deleteOne(self) -> None:
        """
        DELETE of a message forgets it; a second DELETE is 404.
        """
        self.add()
        self.add()
        response = await self.request("/api/messages/1", b"DELETE")
        self.assertEqual(response.json(), {"deleted": True})
        self.assertEqual([m.id for m in self.inbox], ["2"])
        again = await self.request("/api/messages/1", b"DELETE")
        self.assertEqual(again.code, 404)

    @inTest
    async def test_deleteAll(self) -> None:
        """
        DELETE of the list forgets every message.
        """
        self.add()
        self.add()
        response = await self.request("/api/messages", b"DELETE")
        self.assertEqual(response.code, 200)
        self.assertEqual(len(self.inbox), 0)

    @inTest
    async def test_getChangesNothing(self) -> None:
        """
        No GET (nor HEAD) changes the inbox; other methods are 405.
        """
        self.add(MULTIPART)
        for path in (
            "/",
            "/api/messages",
            "/api/messages/1",
            "/api/messages/1/raw",
            "/api/messages/1/html",
            "/api/messages/1/attachments/0",
        ):
            await self.request(path)
            await self.request(path, b"HEAD")
        self.assertEqual(len(self.inbox), 1)
        for method in (b"POST", b"PUT", b"PATCH", b"OPTIONS"):
            response = await self.request("/api/messages", method)
            self.assertEqual(response.code, 405, method)
            self.assertIsNone(response.header("access-control-allow-origin"))
        self.assertEqual(len(self.inbox), 1)


class WaitTests(WebTestCase):
    """
    C{/api/wait}: the long poll for the next matching message.
    """

    @inTest
    async def test_nextMessage(self) -> None:
        """
        A waiting request gets the next message that matches, not one
        that does not.
        """
        waiting = Deferred.fromCoroutine(self.request("/api/wait?to=carol"))
        await deferLater()
        self.add()
        self.add(rcpt_tos=["carol@example.com"])
        response = await waiting
        self.assertEqual(response.code, 200)
        self.assertEqual(response.json()["id"], "2")
        self.assertEqual(response.json()["text"], "Hello\r\n")
        self.assertEqual(self.clock.getDelayedCalls(), [])

    @inTest
    async def test_since(self) -> None:
        """
        With C{since}, a message already there that is newer than that id
        is given at once.
        """
        self.add()
        self.add()
        response = await self.request("/api/wait?since=1")
        self.assertEqual(response.json()["id"], "2")
        first = await self.request("/api/wait?since=0&subject=invoice")
        self.assertEqual(first.json()["id"], "1")

    @inTest
    async def test_timeout(self) -> None:
        """
        Without a match within C{timeout} seconds, the answer is 204 with
        no body.
        """
        waiting = Deferred.fromCoroutine(self.request("/api/wait?timeout=5"))
        await deferLater()
        self.clock.advance(4.9)
        self.assertNoResult(waiting)
        self.clock.advance(0.1)
        response = await waiting
        self.assertEqual((response.code, response.body), (204, b""))
        self.add()
        self.assertEqual(len(self.inbox), 1)

    @inTest
    async def test_head(self) -> None:
        """
        HEAD of the long poll or of the events is 405 at once, rather than
        an answer that never ends.
        """
        for path in ("/api/wait", "/api/events"):
            response = await self.request(path, b"HEAD")
            self.assertEqual(response.code, 405, path)

    @inTest
    async def test_badTimeout(self) -> None:
        """
        A timeout that is not a number, or is out of range, is 400.
        """
        for query in ("timeout=x", "timeout=-1", "timeout=301", "since=x"):
            response = await self.request("/api/wait?" + query)
            self.assertEqual(response.code, 400, query)


async def deferLater() -> None:
    """
    Let the reactor run a little (for a request to reach the server).
    """
    from twisted.internet.task import deferLater as later

    for _ in range(20):
        await later(reactor, 0.01, lambda: None)


class Collect(Protocol):
    """
    Collects a streamed body, and fires C{self.seen} once it holds
    C{self.wanted} events (blocks ending with an empty line).
    """

    def __init__(self, wanted: int) -> None:
        self.wanted = wanted
        self.data = b""
        self.seen: Deferred[bytes] = Deferred()

    def dataReceived(self, data: bytes) -> None:
        self.data += data
        if self.data.count(b"\n\n") >= self.wanted and not self.seen.called:
            self.seen.callback(self.data)


class EventsTests(WebTestCase):
    """
    C{/api/events}: server-sent events for new mail.
    """

    @inTest
    async def test_newMessage(self) -> None:
        """
        Each new message is an event C{message} with its summary; the
        subscription ends with the connection.
        """
        url = f"http://127.0.0.1:{self.port}/api/events".encode()
        response = await self.agent.request(b"GET", url)
        self.assertEqual(
            response.headers.getRawHeaders("content-type"),
            ["text/event-stream; charset=utf-8"],
        )
        collect = Collect(2)
        response.deliverBody(collect)
        await deferLater()
        self.add()
        data = await collect.seen
        event = data.split(b"\n\n")[1]
        kind, payload = event.split(b"\n")
        self.assertEqual(kind, b"event: message")
        self.assertEqual(json.loads(payload[len(b"data: ") :])["subject"], "Invoice 42")
        collect.transport.stopProducing()
        await deferLater()
        self.assertEqual(self.inbox._subscribers, [])


class PageTests(WebTestCase):
    """
    The page and its files.
    """

    @inTest
    async def test_page(self) -> None:
        """
        The page is HTML with a strict policy: its own script and style
        only, never framed.
        """
        response = await self.request("/")
        self.assertEqual(response.header("content-type"), "text/html; charset=utf-8")
        self.assertIn(b'<script src="inbox.js" defer></script>', response.body)
        policy = response.header("content-security-policy")
        self.assertIn("script-src 'self';", policy)
        self.assertIn("default-src 'none';", policy)
        self.assertIn("frame-ancestors 'none'", policy)
        self.assertEqual(response.header("x-frame-options"), "DENY")

    @inTest
    async def test_files(self) -> None:
        """
        The script and the style sheet are served with their types.
        """
        script = await self.request("/inbox.js")
        self.assertEqual(
            script.header("content-type"), "text/javascript; charset=utf-8"
        )
        self.assertIn(b"EventSource", script.body)
        style = await self.request("/inbox.css")
        self.assertEqual(style.header("content-type"), "text/css; charset=utf-8")

    @inTest
    async def test_noInnerHTML(self) -> None:
        """
        The script never puts text in the page as HTML.
        """
        script = (await self.request("/inbox.js")).body
        for sink in (b"innerHTML", b"outerHTML", b"insertAdjacentHTML", b"eval("):
            self.assertNotIn(sink, script)


class HostTests(WebTestCase):
    """
    The C{Host} header must name the address the request came to, or a
    configured name (DNS rebinding).
    """

    names = ("inbox.test",)

    @inTest
    async def test_allowed(self) -> None:
        """
        The listening address, C{localhost} (on loopback) and configured
        names are served.
        """
        for host in (f"127.0.0.1:{self.port}", "localhost", "INBOX.test:80"):
            response = await self.request("/api/messages", headers={"Host": host})
            self.assertEqual(response.code, 200, host)

    @inTest
    async def test_refused(self) -> None:
        """
        Any other name is 421, with nosniff still, and changes nothing.
        """
        self.add()
        for host in ("attacker.example", "attacker.example:8080", "127.0.0.2"):
            response = await self.request(
                "/api/messages", b"DELETE", headers={"Host": host}
            )
            self.assertEqual(response.code, 421, host)
            self.assertEqual(response.header("x-content-type-options"), "nosniff")
        self.assertEqual(len(self.inbox), 1)


class Users:
    """
    A password checker with one user, as L{FilePasswordDB} answers.
    """

    def getUser(self, name: bytes) -> tuple[bytes, bytes]:
        if name != b"ann":
            raise KeyError(name)
        return b"ann", b"s3cret"


def basic(credentials: bytes) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(credentials).decode()}


class AuthTests(WebTestCase):
    """
    Basic auth, when a checker is given.
    """

    checker = Users()

    @inTest
    async def test_required(self) -> None:
        """
        Without credentials, or with wrong ones, every path is 401 with a
        challenge.
        """
        for headers in (
            {},
            basic(b"ann:wrong"),
            basic(b"bob:s3cret"),
            basic(b"ann"),
            {"Authorization": "Basic !!!"},
            {"Authorization": "Bearer x"},
        ):
            for path in ("/", "/api/messages"):
                response = await self.request(path, headers=headers)
                self.assertEqual(response.code, 401, (headers, path))
                self.assertEqual(
                    response.header("www-authenticate"), 'Basic realm="inbox"'
                )

    @inTest
    async def test_granted(self) -> None:
        """
        The right user and password are served.
        """
        response = await self.request("/api/messages", headers=basic(b"ann:s3cret"))
        self.assertEqual(response.code, 200)


class WebEndpointTests(SynchronousTestCase):
    """
    L{webEndpoint}: a bare port listens on loopback only.
    """

    def test_barePort(self) -> None:
        """
        A bare port is TCP on 127.0.0.1; a description is kept.
        """
        self.assertEqual(webEndpoint("8080"), "tcp:8080:interface=127.0.0.1")
        self.assertEqual(webEndpoint("tcp6:8080"), "tcp6:8080")


class TapWebTests(SynchronousTestCase):
    """
    C{--web} of C{twistd smtpd}.
    """

    def parse(self, *arguments: str) -> Options:
        options = Options(reactor=Clock())
        options.parseOptions(["--listen", "tcp:0", *arguments])
        return options

    def test_alone(self) -> None:
        """
        C{--web} alone makes an L{Inbox} the handler, and a web service.
        """
        options = self.parse("--web", "8080")
        self.assertIsInstance(options["factory"].handler, Inbox)
        self.assertIsNotNone(options.webService)
        self.assertEqual(options["handler"], "twisted_smtpd.handlers.Inbox")

    def test_withHandler(self) -> None:
        """
        With C{--handler}, that handler is followed by an inbox.
        """
        options = self.parse("--web", "8080", "--handler", "sink")
        handler = options["factory"].handler
        self.assertIsInstance(handler, InboxAfter)
        self.assertIsInstance(handler.handler, Sink)

    def test_without(self) -> None:
        """
        Without C{--web}, the default handler is still debugging.
        """
        options = self.parse()
        self.assertEqual(options["handler"], "debugging")
        self.assertIsNone(options.webService)

    def test_bounds(self) -> None:
        """
        C{--web-max-messages} and C{--web-max-bytes} bound the inbox, with
        or without C{--handler}; the defaults are 1,000 and 256 MiB; a bound
        below 1 is a usage error.
        """
        inbox = self.parse("--web", "8080")["factory"].handler
        self.assertEqual((inbox.maxMessages, inbox.maxBytes), (1000, 2**28))
        for extra in ([], ["--handler", "sink"]):
            options = self.parse(
                "--web",
                "8080",
                "--web-max-messages",
                "3",
                "--web-max-bytes",
                "99",
                *extra,
            )
            handler = options["factory"].handler
            inbox = getattr(handler, "inbox", handler)
            self.assertEqual((inbox.maxMessages, inbox.maxBytes), (3, 99))
        for option in ("--web-max-messages", "--web-max-bytes"):
            error = self.assertRaises(
                usage.UsageError, self.parse, "--web", "8080", option, "0"
            )
            self.assertIn(option, str(error))

    def test_maildir(self) -> None:
        """
        C{--web-maildir} keeps the inbox in that Maildir (made if missing,
        and then given to the user of C{twistd --uid}), with or without
        C{--handler}, within the C{--web-max-*} bounds, and loads what is
        already there; a Maildir that cannot be made is a usage error
        naming the option.
        """
        path = self.mktemp()
        Inbox(maildir=path).add("a@x", ["b@x"], b"kept")
        for extra in ([], ["--handler", "sink"]):
            options = self.parse(
                "--web",
                "8080",
                "--web-maildir",
                path,
                "--web-max-messages",
                "3",
                *extra,
            )
            handler = options["factory"].handler
            inbox = getattr(handler, "inbox", handler)
            self.assertIsInstance(inbox, Inbox)
            self.assertEqual((inbox.maildir, inbox.maxMessages), (path, 3))
            self.assertEqual([m.raw for m in inbox], [b"kept"])
            self.assertEqual(options.createdDirectories, [])
        fresh = os.path.abspath(self.mktemp())
        options = self.parse("--web", "8080", "--web-maildir", fresh)
        self.assertEqual(
            options.createdDirectories,
            [fresh] + [os.path.join(fresh, sub) for sub in ("tmp", "new", "cur")],
        )
        self.assertIsNone(self.parse("--web", "8080")["factory"].handler.maildir)
        blocker = self.mktemp()
        with open(blocker, "w"):
            pass
        error = self.assertRaises(
            usage.UsageError, self.parse, "--web", "8080", "--web-maildir", blocker
        )
        self.assertIn("--web-maildir", str(error))

    def test_makeServiceMaildir(self) -> None:
        """
        C{makeService(web=..., web_maildir=...)} keeps the inbox there.
        """
        path = self.mktemp()
        for handler in (Inbox(), Sink()):
            service = makeService(
                handler, ["tcp:0"], reactor=Clock(), web="8080", web_maildir=path
            )
            made = service.factory.handler
            self.assertEqual(getattr(made, "inbox", made).maildir, path)
        self.assertTrue(os.path.isdir(os.path.join(path, "new")))

    def test_badEndpoint(self) -> None:
        """
        A bad C{--web} description is a usage error naming the option.
        """
        error = self.assertRaises(usage.UsageError, self.parse, "--web", "nonsense:1")
        self.assertIn("--web 'nonsense:1'", str(error))

    def test_authFile(self) -> None:
        """
        C{--web-auth-file} is read as C{--auth-file} is; a missing file is
        a usage error.
        """
        directory = tempfile.mkdtemp()
        self.addCleanup(os.rmdir, directory)
        path = os.path.join(directory, "users")
        with open(path, "w") as f:
            f.write("ann:s3cret\n")
        self.addCleanup(os.remove, path)
        options = self.parse("--web", "8080", "--web-auth-file", path)
        checker = options.webService.factory.resource._checker
        self.assertEqual(checker.getUser(b"ann"), (b"ann", b"s3cret"))
        self.assertRaises(
            usage.UsageError,
            self.parse,
            "--web",
            "8080",
            "--web-auth-file",
            os.path.join(directory, "missing"),
        )


class MakeServiceTests(TestCase):
    """
    C{makeService(web=...)}, over real SMTP and HTTP on 127.0.0.1
    (integration test).
    """

    @inTest
    async def test_caughtAndShown(self) -> None:
        """
        A message sent over SMTP to a handler that refuses it is shown by
        the web inbox.
        """

        class Refusing:
            def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                return "550 No"

        service = makeService(
            Refusing(),
            ["tcp:0:interface=127.0.0.1"],
            web="tcp:0:interface=127.0.0.1",
            hostname="mx.test",
        )
        service.startService()
        self.addCleanup(service.stopService)
        [smtp] = await service.whenListening()
        smtpPort = smtp.getHost().port
        # The web inbox is a child of its own, not an SMTP endpoint.
        [web] = [child for child in service if getattr(child, "servesWeb", False)]
        webPort = (await web._waitingForPort).getHost().port

        def send() -> None:
            with smtplib.SMTP("127.0.0.1", smtpPort, timeout=10) as client:
                try:
                    client.sendmail("bob@example.com", ["ann@example.com"], SIMPLE)
                except smtplib.SMTPDataError as error:
                    assert error.smtp_code == 550

        await deferToThread(send)
        agent = Agent(reactor, pool=HTTPConnectionPool(reactor, persistent=False))
        url = f"http://127.0.0.1:{webPort}/api/messages".encode()
        response = await agent.request(b"GET", url)
        listed = json.loads(await readBody(response))
        self.assertEqual([m["subject"] for m in listed], ["Invoice 42"])


class TapServiceTests(TestCase):
    """
    The service of C{twistd smtpd --web}, over real TCP on 127.0.0.1
    (integration tests).
    """

    def service(self, web: str) -> Any:
        options = Options(reactor=reactor)
        options.parseOptions(["--listen", "tcp:0:interface=127.0.0.1", "--web", web])
        service = makeTapService(options)
        self.addCleanup(service.stopService)
        return service

    @inTest
    async def test_serves(self) -> None:
        """
        Started, the service serves the web inbox; stopped, it stops.
        """
        service = self.service("tcp:0:interface=127.0.0.1")
        service.privilegedStartService()
        service.startService()
        port = await service.webService._waitingForPort
        url = f"http://127.0.0.1:{port.getHost().port}/api/messages".encode()
        agent = Agent(reactor, pool=HTTPConnectionPool(reactor, persistent=False))
        response = await agent.request(b"GET", url)
        self.assertEqual(json.loads(await readBody(response)), [])
        await service.stopService()
        self.assertFalse(service.webService.running)
        self.assertFalse(port.connected)

    def test_portInUse(self) -> None:
        """
        A web port in use is one line in the log and L{StartupError}.
        """
        busy = reactor.listenTCP(0, Site(InboxResource(Inbox())), interface="127.0.0.1")
        self.addCleanup(busy.stopListening)
        web = f"tcp:{busy.getHost().port}:interface=127.0.0.1"
        service = self.service(web)
        logged: list[str] = []
        from twisted.logger import LogLevel, formatEvent, globalLogPublisher

        def observe(event: dict[str, Any]) -> None:
            if event.get("log_level") == LogLevel.critical:
                logged.append(formatEvent(event))

        globalLogPublisher.addObserver(observe)
        self.addCleanup(globalLogPublisher.removeObserver, observe)
        error = self.assertRaises(StartupError, service.privilegedStartService)
        self.assertEqual(
            str(error), f"smtpd: Address already in use: cannot listen on --web {web}"
        )
        self.assertEqual(logged, [str(error)])
        self.assertEqual(error.code, 1)
