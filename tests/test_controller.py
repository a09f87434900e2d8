"""
Tests for L{twisted_smtpd.controller}.

The controllers run the global reactor in a thread of their own, which
trial's reactor, already running in this process, rules out: every test
here runs a small script in a subprocess (a fresh interpreter, with the
checkout as working directory) that starts a controller on 127.0.0.1 port 0
or a Unix socket, talks to it with C{smtplib} or a raw socket, prints what
it saw as one line of JSON and exits. The tests assert on that JSON.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.protocol import Protocol, ServerFactory
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

import twisted_smtpd.controller
from twisted_smtpd import SMTP, SMTPFactory
from twisted_smtpd._controllersessions import DROP_WAIT, Sessions, TrackingFactory

CHECKOUT = Path(__file__).resolve().parent.parent

# Shared by every script: a handler that records what DATA received, and a
# way to print the result.
PRELUDE = """\
import errno, json, os, smtplib, socket, sys, tempfile, threading, time
from twisted_smtpd import LMTP, SMTP, SMTPFactory
from twisted_smtpd.controller import Controller, UnixSocketController


class Recorder:
    def __init__(self):
        self.messages = []

    def handle_DATA(self, server, session, envelope):
        self.messages.append({
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "content": envelope.content.decode("latin-1"),
            "peer": session.peer,
            "tls": session.ssl is not None,
            "thread": threading.current_thread().name,
        })
        return "250 OK"


def send(port, message, host="127.0.0.1"):
    with smtplib.SMTP(host, port, timeout=10) as client:
        return client.sendmail("alice@example.com", ["bob@example.com"], message)


def emit(value):
    print(json.dumps(value))

"""


def runScript(testCase: SynchronousTestCase, script: str, timeout: float = 60) -> Any:
    """
    Run C{script} after L{PRELUDE} in a new interpreter and return the JSON
    value of the last line it printed; fail C{testCase}, with the script's
    error output, if it does not exit with status 0.
    """
    result = subprocess.run(
        [sys.executable, "-c", PRELUDE + textwrap.dedent(script)],
        timeout=timeout,
        capture_output=True,
        cwd=CHECKOUT,
        text=True,
    )
    testCase.assertEqual(result.returncode, 0, result.stderr)
    lines = result.stdout.splitlines()
    testCase.assertTrue(lines, f"no output; stderr:\n{result.stderr}")
    return json.loads(lines[-1])


def message(content: str, peer: str = "127.0.0.1") -> dict[str, Any]:
    """
    What L{PRELUDE}'s C{send} makes the recorder see, as a partial record
    to compare with C{assertMessages}.
    """
    return {
        "mail_from": "alice@example.com",
        "rcpt_tos": ["bob@example.com"],
        "content": content,
        "peer": peer,
    }


class _ScriptTests(SynchronousTestCase):
    def assertMessages(
        self, records: list[dict[str, Any]], expected: list[dict[str, Any]]
    ) -> None:
        """
        Assert that the recorder saw exactly the C{expected} messages (a TCP
        peer is compared by host only), in order.
        """
        seen = []
        for record in records:
            peer = record["peer"]
            seen.append(
                {
                    "mail_from": record["mail_from"],
                    "rcpt_tos": record["rcpt_tos"],
                    "content": record["content"],
                    "peer": peer[0] if isinstance(peer, list) else peer,
                }
            )
        self.assertEqual(seen, expected)


class ControllerTests(_ScriptTests):
    """
    Tests for L{twisted_smtpd.controller.Controller}: subprocess tests over
    real TCP on 127.0.0.1.
    """

    def test_sendMail(self) -> None:
        """
        A message sent with smtplib reaches the handler byte for byte, and
        the hook runs in the reactor thread, not in the caller's.
        """
        out = runScript(
            self,
            r"""
            handler = Recorder()
            controller = Controller(handler, port=0)
            controller.start()
            refused = send(controller.port, b"Subject: hi\r\n\r\nHello\r\n")
            controller.stop()
            emit({"refused": refused, "messages": handler.messages})
            """,
        )
        self.assertEqual(out["refused"], {})
        self.assertMessages(out["messages"], [message("Subject: hi\r\n\r\nHello\r\n")])
        self.assertNotEqual(out["messages"][0]["thread"], "MainThread")
        self.assertFalse(out["messages"][0]["tls"])

    def test_portZero(self) -> None:
        """
        With port 0, C{port} is the port the system chose once started (the
        listening port's own), and the server answers there; the bind
        address defaults to 127.0.0.1, also for C{hostname=None}.
        """
        out = runScript(
            self,
            """
            controller = Controller(Recorder(), port=0)
            before = controller.port
            controller.start()
            port = controller.port
            bound = controller.server.getHost().port
            with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
                noop = client.noop()[0]
            controller.stop()
            emit({
                "before": before, "port": port, "bound": bound, "noop": noop,
                "hostname": controller.hostname,
                "none": Controller(Recorder(), None, 0).hostname,
            })
            """,
        )
        self.assertEqual(out["before"], 0)
        self.assertGreater(out["port"], 0)
        self.assertEqual(out["port"], out["bound"])
        self.assertEqual(out["noop"], 250)
        self.assertEqual(out["hostname"], "127.0.0.1")
        self.assertEqual(out["none"], "127.0.0.1")

    def test_contextManager(self) -> None:
        """
        A C{with} block starts the controller and stops it on the way out:
        the port refuses connections afterwards.
        """
        out = runScript(
            self,
            r"""
            handler = Recorder()
            with Controller(handler, port=0) as controller:
                port = controller.port
                send(port, b"in the block\r\n")
                inside = controller.server is not None
            try:
                socket.create_connection(("127.0.0.1", port), timeout=5).close()
                after = "connected"
            except ConnectionRefusedError:
                after = "refused"
            emit({
                "inside": inside, "server": controller.server is None,
                "after": after, "messages": handler.messages,
            })
            """,
        )
        self.assertTrue(out["inside"])
        self.assertTrue(out["server"])
        self.assertEqual(out["after"], "refused")
        self.assertMessages(out["messages"], [message("in the block\r\n")])

    def test_webInbox(self) -> None:
        """
        With C{web}, the handler runs first and each message is also shown
        by a web inbox: its JSON API answers on C{web_port}, C{inbox} holds
        the message, and stopping closes the web port too.
        """
        out = runScript(
            self,
            r"""
            import urllib.request
            handler = Recorder()
            controller = Controller(handler, port=0, web="tcp:0:interface=127.0.0.1")
            controller.start()
            send(controller.port, b"Subject: caught\r\n\r\nHello\r\n")
            web = controller.web_port
            url = f"http://127.0.0.1:{web}/api/messages"
            with urllib.request.urlopen(url, timeout=10) as response:
                listed = json.loads(response.read())
            kept = len(controller.inbox)
            controller.stop()
            try:
                socket.create_connection(("127.0.0.1", web), timeout=5).close()
                after = "connected"
            except ConnectionRefusedError:
                after = "refused"
            emit({
                "subjects": [m["subject"] for m in listed], "kept": kept,
                "after": after, "messages": handler.messages,
            })
            """,
        )
        self.assertEqual(out["subjects"], ["caught"])
        self.assertEqual(out["kept"], 1)
        self.assertEqual(out["after"], "refused")
        self.assertMessages(
            out["messages"], [message("Subject: caught\r\n\r\nHello\r\n")]
        )

    def test_twoControllers(self) -> None:
        """
        Two controllers run at once on their own ports, each delivering only
        to its own handler, and share one reactor thread.
        """
        out = runScript(
            self,
            r"""
            first, second = Recorder(), Recorder()
            threads = threading.active_count()
            one = Controller(first, port=0)
            two = Controller(second, port=0)
            one.start()
            two.start()
            added = threading.active_count() - threads
            send(one.port, b"to one\r\n")
            send(two.port, b"to two\r\n")
            ports = [one.port, two.port]
            one.stop()
            two.stop()
            emit({"added": added, "ports": ports,
                  "first": first.messages, "second": second.messages})
            """,
        )
        self.assertEqual(out["added"], 1)
        self.assertNotEqual(out["ports"][0], out["ports"][1])
        self.assertMessages(out["first"], [message("to one\r\n")])
        self.assertMessages(out["second"], [message("to two\r\n")])

    def test_restart(self) -> None:
        """
        The same controller can be started again after it stopped, and
        serves again.
        """
        out = runScript(
            self,
            r"""
            handler = Recorder()
            controller = Controller(handler, port=0)
            for text in (b"first\r\n", b"second\r\n", b"third\r\n"):
                controller.start()
                send(controller.port, text)
                controller.stop()
            emit({"messages": handler.messages, "server": controller.server})
            """,
        )
        self.assertIsNone(out["server"])
        self.assertMessages(
            out["messages"],
            [message("first\r\n"), message("second\r\n"), message("third\r\n")],
        )

    def test_fixedPortFreeAfterStop(self) -> None:
        """
        On a fixed port, nothing else can listen while the controller runs;
        after C{stop()} the port is free, and the controller can take it
        again.
        """
        out = runScript(
            self,
            r"""
            probe = socket.socket()
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
            probe.close()

            def canListen():
                s = socket.socket()
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    s.bind(("127.0.0.1", port))
                    s.listen()
                    return True
                except OSError as e:
                    return e.errno
                finally:
                    s.close()

            handler = Recorder()
            controller = Controller(handler, port=port)
            controller.start()
            send(port, b"first\r\n")
            running = canListen()
            controller.stop()
            stopped = canListen()
            controller.start()
            again = controller.port
            send(port, b"second\r\n")
            controller.stop()
            emit({"port": port, "running": running, "stopped": stopped,
                  "again": again, "messages": handler.messages})
            """,
        )
        self.assertEqual(out["running"], errno.EADDRINUSE)
        self.assertIs(out["stopped"], True)
        self.assertEqual(out["again"], out["port"])
        self.assertMessages(
            out["messages"], [message("first\r\n"), message("second\r\n")]
        )

    def test_bindError(self) -> None:
        """
        C{start()} raises the bind error in the calling thread, as an
        L{OSError} with C{EADDRINUSE} naming the address; the controller
        stays stopped and can be started once the port is free.
        """
        out = runScript(
            self,
            """
            blocker = socket.socket()
            blocker.bind(("127.0.0.1", 0))
            blocker.listen()
            port = blocker.getsockname()[1]
            controller = Controller(Recorder(), port=port)
            try:
                controller.start()
                error = None
            except OSError as e:
                error = {"type": type(e).__name__, "errno": e.errno, "str": str(e)}
            server = controller.server
            blocker.close()
            controller.start()
            with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
                noop = client.noop()[0]
            controller.stop()
            emit({"port": port, "error": error, "server": server, "noop": noop})
            """,
        )
        self.assertEqual(
            out["error"],
            {
                "type": "OSError",
                "errno": errno.EADDRINUSE,
                "str": f"[Errno {errno.EADDRINUSE}] {os.strerror(errno.EADDRINUSE)}:"
                f" '127.0.0.1:{out['port']}'",
            },
        )
        self.assertIsNone(out["server"])
        self.assertEqual(out["noop"], 250)

    def test_badOptionRaisedFromStart(self) -> None:
        """
        An option L{SMTPFactory} refuses makes C{start()} raise its error,
        and nothing listens.
        """
        out = runScript(
            self,
            """
            errors = []
            for options in ({"data_size_limit": -1}, {"no_such_option": 1}):
                controller = Controller(Recorder(), port=0, **options)
                try:
                    controller.start()
                except Exception as e:
                    errors.append([type(e).__name__, str(e)])
                errors.append(controller.server)
            emit(errors)
            """,
        )
        self.assertEqual(
            out,
            [
                ["ValueError", "data_size_limit must be at least 0, not -1"],
                None,
                ["TypeError", "unknown option(s): no_such_option"],
                None,
            ],
        )

    def test_startTwiceAndStopWhenStopped(self) -> None:
        """
        Starting a started controller raises L{RuntimeError} and leaves it
        serving; stopping a stopped one does nothing.
        """
        out = runScript(
            self,
            """
            controller = Controller(Recorder(), port=0)
            controller.stop()
            controller.start()
            port = controller.port
            try:
                controller.start()
                error = None
            except RuntimeError as e:
                error = str(e)
            with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
                noop = client.noop()[0]
            controller.stop()
            controller.stop()
            emit({"error": error, "noop": noop, "samePort": controller.port == 0})
            """,
        )
        self.assertEqual(out["error"], "the controller is already started")
        self.assertEqual(out["noop"], 250)
        self.assertTrue(out["samePort"])

    def test_serverHostname(self) -> None:
        """
        C{server_hostname} is the name in the greeting and the EHLO reply;
        SMTPUTF8 is offered unless C{enable_SMTPUTF8=False} is given.
        """
        out = runScript(
            self,
            """
            result = {}
            for utf8 in (None, False):
                options = {} if utf8 is None else {"enable_SMTPUTF8": utf8}
                with Controller(Recorder(), port=0,
                                server_hostname="mx.example.test", **options) as c:
                    client = smtplib.SMTP(timeout=10)
                    greeting = client.connect("127.0.0.1", c.port)
                    ehlo = client.ehlo("client.example")
                    client.quit()
                result[str(utf8)] = [greeting[0], greeting[1].decode(),
                                     ehlo[0], ehlo[1].decode()]
            emit(result)
            """,
        )
        self.assertEqual(out["None"][0], 220)
        self.assertRegex(out["None"][1], r"^mx\.example\.test twisted_smtpd \S+$")
        self.assertEqual(
            out["None"][2:],
            [
                250,
                "mx.example.test\nSIZE 33554432\n8BITMIME\nSMTPUTF8\n"
                "DSN\nCHUNKING\nBINARYMIME\nPIPELINING\nHELP",
            ],
        )
        self.assertEqual(
            out["False"][2:],
            [
                250,
                "mx.example.test\nSIZE 33554432\n8BITMIME\n"
                "DSN\nCHUNKING\nBINARYMIME\nPIPELINING\nHELP",
            ],
        )

    def test_lmtp(self) -> None:
        """
        With C{protocol=LMTP}, smtplib's LMTP client is served: HELO is
        refused, LHLO accepted, and DATA gets one reply per recipient.
        """
        out = runScript(
            self,
            r"""
            handler = Recorder()
            with Controller(handler, port=0, protocol=LMTP,
                            server_hostname="lmtp.example.test") as controller:
                client = smtplib.LMTP("127.0.0.1", controller.port, timeout=10)
                replies = [
                    client.helo(),
                    client.ehlo(),
                    client.mail("alice@example.com"),
                    client.rcpt("bob@example.com"),
                    client.rcpt("carol@example.com"),
                    client.data(b"Subject: local\r\n\r\nHi\r\n"),
                    client.getreply(),
                    client.quit(),
                ]
                kind = type(controller.smtpd).__name__
            emit({"replies": [[code, text.decode()] for code, text in replies],
                  "kind": kind, "messages": handler.messages})
            """,
        )
        self.assertEqual(
            out["replies"],
            [
                [500, '5.5.2 Error: command "HELO" not recognized'],
                [
                    250,
                    "lmtp.example.test\nSIZE 33554432\n8BITMIME\nSMTPUTF8"
                    "\nDSN\nCHUNKING\nBINARYMIME\nPIPELINING\nENHANCEDSTATUSCODES\nHELP",
                ],
                [250, "2.0.0 OK"],
                [250, "2.0.0 OK"],
                [250, "2.0.0 OK"],
                [250, "2.0.0 OK"],
                [250, "2.0.0 OK"],
                [221, "2.0.0 Bye"],
            ],
        )
        self.assertEqual(out["kind"], "LMTP")
        self.assertEqual(len(out["messages"]), 1)
        self.assertEqual(
            out["messages"][0]["rcpt_tos"], ["bob@example.com", "carol@example.com"]
        )
        self.assertEqual(out["messages"][0]["content"], "Subject: local\r\n\r\nHi\r\n")

    def test_factoryOverride(self) -> None:
        """
        A subclass may override C{factory()} to serve with a factory of its
        own, as aiosmtpd users do to serve LMTP.
        """
        out = runScript(
            self,
            """
            class LMTPController(Controller):
                def factory(self):
                    return SMTPFactory(self.handler, protocol=LMTP,
                                       hostname="custom.example.test")

            with LMTPController(Recorder(), port=0) as controller:
                client = smtplib.LMTP(timeout=10)
                greeting = client.connect("127.0.0.1", controller.port)
                lhlo = client.ehlo()
                client.quit()
            emit([greeting[1].decode(), lhlo[0]])
            """,
        )
        self.assertRegex(out[0], r"^custom\.example\.test twisted_smtpd \S+$")
        self.assertEqual(out[1], 250)

    def test_factoryReturningServer(self) -> None:
        """
        A C{factory()} written the aiosmtpd way, returning one server,
        makes C{start()} raise a L{TypeError} that says what to do.
        """
        out = runScript(
            self,
            """
            class OneServer(Controller):
                def factory(self):
                    return SMTP(self.handler)

            controller = OneServer(Recorder(), port=0)
            try:
                controller.start()
            except TypeError as e:
                emit(str(e))
            """,
        )
        self.assertIn("must return a protocol factory", out)
        self.assertIn("pass it as protocol= instead", out)


class TLSTests(_ScriptTests):
    """
    The TLS options reach the server through the controller: subprocess
    tests over real TCP on 127.0.0.1, with a certificate from trustme.
    """

    TLS_SETUP = """
    import ssl
    import trustme
    from twisted.internet.ssl import PrivateCertificate

    ca = trustme.CA()
    pem = ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.bytes()
    serverTLS = PrivateCertificate.loadPEM(pem).options()
    clientTLS = ssl.create_default_context()
    ca.configure_trust(clientTLS)
    """

    def test_implicitTLS(self) -> None:
        """
        With C{tls_context} and C{implicit_tls=True}, an SMTPS client
        (C{smtplib.SMTP_SSL}) delivers, and the session has TLS.
        """
        out = runScript(
            self,
            self.TLS_SETUP
            + r"""
    handler = Recorder()
    with Controller(handler, port=0, tls_context=serverTLS,
                    implicit_tls=True) as controller:
        with smtplib.SMTP_SSL("127.0.0.1", controller.port,
                              context=clientTLS, timeout=10) as client:
            refused = client.sendmail("alice@example.com", ["bob@example.com"],
                                      b"secret\r\n")
    emit({"refused": refused, "messages": handler.messages})
    """,
        )
        self.assertEqual(out["refused"], {})
        self.assertMessages(out["messages"], [message("secret\r\n")])
        self.assertTrue(out["messages"][0]["tls"])

    def test_startTLS(self) -> None:
        """
        With C{tls_context} alone, STARTTLS is offered and works.
        """
        out = runScript(
            self,
            self.TLS_SETUP
            + r"""
    handler = Recorder()
    with Controller(handler, port=0, tls_context=serverTLS) as controller:
        with smtplib.SMTP("127.0.0.1", controller.port, timeout=10) as client:
            offered = client.ehlo()[1].decode()
            starttls = client.starttls(context=clientTLS)[0]
            refused = client.sendmail("alice@example.com", ["bob@example.com"],
                                      b"upgraded\r\n")
    emit({"offered": offered, "starttls": starttls, "refused": refused,
          "messages": handler.messages})
    """,
        )
        self.assertIn("\nSTARTTLS\n", out["offered"])
        self.assertEqual(out["starttls"], 220)
        self.assertEqual(out["refused"], {})
        self.assertMessages(out["messages"], [message("upgraded\r\n")])
        self.assertTrue(out["messages"][0]["tls"])


class GracefulStopTests(_ScriptTests):
    """
    How C{stop()} treats the sessions still open: subprocess tests over real
    TCP on 127.0.0.1.
    """

    def test_stopWaitsForSessionInProgress(self) -> None:
        """
        C{stop()} stops accepting connections at once, but waits for a
        client in the middle of its message: the client finishes it and
        gets C{250}, then C{421}, and C{stop()} returns then, before the
        grace period ends.
        """
        out = runScript(
            self,
            r"""
            handler = Recorder()
            controller = Controller(handler, port=0,
                                    server_hostname="mx.example.test")
            controller.start()
            port = controller.port
            client = smtplib.SMTP("127.0.0.1", port, timeout=10)
            client.ehlo("client.example")
            client.mail("alice@example.com")
            client.rcpt("bob@example.com")
            client.putcmd("data")
            goAhead = client.getreply()[0]
            stopped = {}

            def stop():
                controller.stop(timeout=10)
                stopped["at"] = time.monotonic()

            thread = threading.Thread(target=stop)
            began = time.monotonic()
            thread.start()
            time.sleep(0.5)
            waiting = thread.is_alive()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=5).close()
                newConnection = "accepted"
            except ConnectionRefusedError:
                newConnection = "refused"
            client.send(b"Subject: late\r\n\r\nStill here\r\n.\r\n")
            data = client.getreply()
            goodbye = client.getreply()
            thread.join(20)
            emit({
                "goAhead": goAhead,
                "waiting": waiting, "newConnection": newConnection,
                "data": [data[0], data[1].decode()],
                "goodbye": [goodbye[0], goodbye[1].decode()],
                "took": stopped["at"] - began,
                "messages": handler.messages,
            })
            """,
        )
        self.assertEqual(out["goAhead"], 354)
        self.assertTrue(out["waiting"])
        self.assertEqual(out["newConnection"], "refused")
        self.assertEqual(out["data"], [250, "OK"])
        self.assertEqual(
            out["goodbye"],
            [
                421,
                "4.3.2 mx.example.test Service shutting down,"
                " closing transmission channel",
            ],
        )
        self.assertLess(out["took"], 5)
        self.assertMessages(
            out["messages"], [message("Subject: late\r\n\r\nStill here\r\n")]
        )

    def test_stopClosesIdleSessionAtOnce(self) -> None:
        """
        A client waiting between commands is told C{421} and disconnected
        at once, without waiting for the grace period, and C{stop()}
        returns then.
        """
        out = runScript(
            self,
            r"""
            controller = Controller(Recorder(), port=0,
                                    server_hostname="mx.example.test")
            controller.start()
            sock = socket.create_connection(("127.0.0.1", controller.port),
                                            timeout=10)
            stream = sock.makefile("rb")
            stream.readline()
            sock.sendall(b"EHLO client.example\r\nMAIL FROM:<a@example.com>\r\n")
            while stream.readline()[3:4] != b" ":
                pass
            stream.readline()
            began = time.monotonic()
            controller.stop(timeout=5.0)
            took = time.monotonic() - began
            rest = stream.read()
            emit({"took": took, "rest": rest.decode()})
            """,
        )
        self.assertLess(out["took"], 2)
        self.assertEqual(
            out["rest"],
            "421 4.3.2 mx.example.test Service shutting down,"
            " closing transmission channel\r\n",
        )


class ReactorThreadTests(_ScriptTests):
    """
    Which reactor thread the controllers use, and where they refuse to
    work: subprocess tests over real TCP on 127.0.0.1.
    """

    def test_startInReactorThreadRefused(self) -> None:
        """
        In a Twisted program, C{start()} called in the reactor thread raises
        L{RuntimeError} (waiting there would deadlock) and points to the
        service module instead.
        """
        out = runScript(
            self,
            """
            from twisted.internet import reactor

            result = {}

            def inReactor():
                controller = Controller(Recorder(), port=0)
                try:
                    controller.start()
                except RuntimeError as e:
                    result["error"] = str(e)
                result["server"] = controller.server
                reactor.stop()

            reactor.callWhenRunning(inReactor)
            reactor.run()
            emit(result)
            """,
        )
        self.assertIsNone(out["server"])
        self.assertIn("reactor", out["error"])
        self.assertIn("twisted_smtpd.service", out["error"])

    def test_stopInHandlerRefused(self) -> None:
        """
        C{stop()} called from a hook (the reactor thread) raises
        L{RuntimeError}, leaves the server running, and the hook's reply
        still goes out.
        """
        out = runScript(
            self,
            r"""
            class Stopper(Recorder):
                def handle_DATA(self, server, session, envelope):
                    try:
                        controller.stop()
                    except RuntimeError as e:
                        self.error = str(e)
                    return "250 Still running"

            handler = Stopper()
            controller = Controller(handler, port=0)
            controller.start()
            with smtplib.SMTP("127.0.0.1", controller.port, timeout=10) as client:
                client.ehlo()
                client.mail("alice@example.com")
                client.rcpt("bob@example.com")
                data = client.data(b"stop\r\n")
            running = controller.server is not None
            controller.stop()
            emit({"error": handler.error, "data": [data[0], data[1].decode()],
                  "running": running})
            """,
        )
        self.assertIn("reactor", out["error"])
        self.assertEqual(out["data"], [250, "Still running"])
        self.assertTrue(out["running"])

    def test_reactorRunningInAnotherThread(self) -> None:
        """
        When the application already runs the global reactor in a thread of
        its own, the controller uses it: hooks run in that thread and no
        other thread is started.
        """
        out = runScript(
            self,
            r"""
            from twisted.internet import reactor

            thread = threading.Thread(
                target=reactor.run, kwargs={"installSignalHandlers": False},
                name="application reactor", daemon=True)
            thread.start()
            while not reactor.running:
                time.sleep(0.01)
            threads = threading.active_count()
            handler = Recorder()
            controller = Controller(handler, port=0)
            controller.start()
            send(controller.port, b"shared reactor\r\n")
            added = threading.active_count() - threads
            controller.stop()
            emit({"added": added, "messages": handler.messages})
            """,
        )
        self.assertEqual(out["added"], 0)
        self.assertMessages(out["messages"], [message("shared reactor\r\n")])
        self.assertEqual(out["messages"][0]["thread"], "application reactor")


class UnixSocketControllerTests(_ScriptTests):
    """
    Tests for L{twisted_smtpd.controller.UnixSocketController}: subprocess
    tests over a Unix socket in a temporary directory.
    """

    UNIX_CLIENT = """
    class UnixSMTP(smtplib.SMTP):
        def __init__(self, path, **kwargs):
            self.path = path
            super().__init__("localhost", 0, **kwargs)

        def _get_socket(self, host, port, timeout):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            sock.connect(self.path)
            return sock
    """

    def setUp(self) -> None:
        # A short path: Unix socket paths are limited to about 100 bytes.
        directory = tempfile.mkdtemp(prefix="tsmtpd")
        self.addCleanup(shutil.rmtree, directory, True)
        self.path = os.path.join(directory, "smtp.sock")

    def runUnix(self, script: str) -> Any:
        """
        Run C{script} with C{path} set to the socket path and C{UnixSMTP},
        an smtplib client over a Unix socket.
        """
        return runScript(
            self,
            f"path = {self.path!r}\n"
            + textwrap.dedent(self.UNIX_CLIENT)
            + textwrap.dedent(script),
        )

    def test_sendMail(self) -> None:
        """
        A message sent over the Unix socket reaches the handler; the socket
        file exists while the controller runs and is removed by C{stop()}.
        """
        out = self.runUnix(
            r"""
            handler = Recorder()
            controller = UnixSocketController(handler, path,
                                              server_hostname="unix.example.test")
            controller.start()
            exists = os.path.exists(path)
            with UnixSMTP(path, timeout=10) as client:
                greeting = client.ehlo()[1].decode().split("\n")[0]
                refused = client.sendmail("alice@example.com", ["bob@example.com"],
                                          b"over unix\r\n")
            controller.stop()
            emit({"exists": exists, "greeting": greeting, "refused": refused,
                  "after": os.path.exists(path), "messages": handler.messages})
            """
        )
        self.assertTrue(out["exists"])
        self.assertEqual(out["greeting"], "unix.example.test")
        self.assertEqual(out["refused"], {})
        self.assertFalse(out["after"])
        self.assertEqual(len(out["messages"]), 1)
        self.assertEqual(out["messages"][0]["content"], "over unix\r\n")
        self.assertEqual(out["messages"][0]["rcpt_tos"], ["bob@example.com"])

    def test_staleSocketReplaced(self) -> None:
        """
        A socket file left behind by a dead process (nothing listens on it)
        does not stop the controller from starting.
        """
        out = self.runUnix(
            r"""
            stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            stale.bind(path)
            stale.close()
            before = os.path.exists(path)
            handler = Recorder()
            with UnixSocketController(handler, path):
                with UnixSMTP(path, timeout=10) as client:
                    noop = client.noop()[0]
            emit({"before": before, "noop": noop})
            """
        )
        self.assertEqual(out, {"before": True, "noop": 250})

    def test_liveSocketRefused(self) -> None:
        """
        A socket another server listens on is left alone: C{start()} raises
        L{OSError} with C{EADDRINUSE}.
        """
        out = self.runUnix(
            r"""
            live = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            live.bind(path)
            live.listen()
            controller = UnixSocketController(Recorder(), path)
            try:
                controller.start()
                error = None
            except OSError as e:
                error = e.errno
            live.settimeout(5)
            client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            client.connect(path)
            accepted = live.accept()[0] is not None
            emit({"error": error, "accepted": accepted,
                  "server": controller.server})
            """
        )
        self.assertEqual(
            out, {"error": errno.EADDRINUSE, "accepted": True, "server": None}
        )

    def test_socketRemovedAtExit(self) -> None:
        """
        A program that exits without stopping its controller still closes
        the listening socket: the socket file is gone afterwards.
        """
        out = self.runUnix(
            """
            UnixSocketController(Recorder(), path).start()
            emit({"exists": os.path.exists(path)})
            """
        )
        self.assertTrue(out["exists"])
        self.assertFalse(os.path.exists(self.path))


class DocumentationTests(SynchronousTestCase):
    """
    The usage example of L{twisted_smtpd.controller}'s docstring works: a
    subprocess test over real TCP on 127.0.0.1.
    """

    def test_moduleExample(self) -> None:
        """
        The C{unittest} example in the module docstring runs and passes.
        """
        doc = twisted_smtpd.controller.__doc__
        lines = doc.splitlines()
        start = next(i for i, line in enumerate(lines) if line.endswith("::")) + 1
        block = []
        for line in lines[start:]:
            if line and not line.startswith("    "):
                break
            block.append(line)
        example = textwrap.dedent("\n".join(block))
        self.assertIn("unittest.main()", example)
        result = subprocess.run(
            [sys.executable, "-c", example],
            timeout=60,
            capture_output=True,
            cwd=CHECKOUT,
            text=True,
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("Ran 1 test", result.stderr)
        self.assertTrue(result.stderr.rstrip().endswith("OK"), result.stderr)


class _FakeController:
    """
    Stands for the controller whose C{smtpd} the sessions set.
    """

    smtpd = None


class SessionsTests(SynchronousTestCase):
    """
    Unit tests for how C{stop()} ends the open sessions (the private
    C{Sessions} and C{TrackingFactory}), in memory with a L{Clock}: no
    sockets, no real time.
    """

    GOODBYE = (
        b"421 4.3.2 mx.example.test Service shutting down,"
        b" closing transmission channel\r\n"
    )

    def setUp(self) -> None:
        self.clock = Clock()
        self.controller = _FakeController()
        self.sessions = Sessions(self.clock, self.controller)
        self.smtpFactory = SMTPFactory(
            object(), reactor=self.clock, timeout=None, hostname="mx.example.test"
        )

    def connect(self, factory: ServerFactory | None = None) -> Protocol:
        """
        Make a connection through a tracking factory, on a L{StringTransport}
        whose output so far (the greeting) is cleared.
        """
        tracking = TrackingFactory(factory or self.smtpFactory, self.sessions)
        protocol = tracking.buildProtocol(IPv4Address("TCP", "127.0.0.1", 4242))
        transport = StringTransport()
        protocol.makeConnection(transport)
        transport.clear()
        return protocol

    def lose(self, protocol: Protocol) -> None:
        """
        Tell C{protocol} its connection ended, as the transport would.
        """
        protocol.connectionLost(Failure(ConnectionDone()))

    def test_closeWithoutSessions(self) -> None:
        """
        With no connection open, closing is done at once, with no timer.
        """
        self.successResultOf(self.sessions.close(5))
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def inData(self, protocol: Protocol) -> Protocol:
        """
        Take C{protocol}'s session as far as the message data, with its
        replies cleared from the transport.
        """
        protocol.dataReceived(b"EHLO c\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\nDATA\r\n")
        protocol.transport.clear()
        return protocol

    def test_closeWaitsForEverySession(self) -> None:
        """
        Closing waits until the last session receiving a message ends,
        within the grace period, then leaves no timer behind; the clients
        heard nothing.
        """
        first, second = self.inData(self.connect()), self.inData(self.connect())
        done = self.sessions.close(5)
        self.clock.advance(4)
        self.lose(first)
        self.assertNoResult(done)
        self.lose(second)
        self.successResultOf(done)
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertEqual(first.transport.value(), b"")
        self.assertEqual(second.transport.value(), b"")

    def test_idleSessionClosedAtOnce(self) -> None:
        """
        An SMTP session waiting for a command is sent C{421} and closed at
        once.
        """
        protocol = self.connect()
        done = self.sessions.close(5)
        self.assertEqual(protocol.transport.value(), self.GOODBYE)
        self.assertTrue(protocol.transport.disconnecting)
        self.lose(protocol)
        self.successResultOf(done)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_goodbyeAfterGrace(self) -> None:
        """
        When the grace period ends, an SMTP session still receiving its
        message is sent C{421} and closed (not cut off); closing is done
        when it has gone.
        """
        protocol = self.inData(self.connect())
        done = self.sessions.close(5)
        self.clock.advance(4.9)
        self.assertEqual(protocol.transport.value(), b"")
        self.assertFalse(protocol.transport.disconnecting)
        self.clock.advance(0.1)
        self.assertEqual(protocol.transport.value(), self.GOODBYE)
        self.assertTrue(protocol.transport.disconnecting)
        self.assertFalse(protocol.transport.disconnected)
        self.assertNoResult(done)
        self.lose(protocol)
        self.successResultOf(done)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_abortAfterDropWait(self) -> None:
        """
        A session that is still open L{DROP_WAIT} seconds after its
        C{421} is cut off.
        """
        protocol = self.inData(self.connect())
        done = self.sessions.close(5)
        self.clock.advance(5)
        self.clock.advance(DROP_WAIT - 0.01)
        self.assertFalse(protocol.transport.disconnected)
        self.clock.advance(0.01)
        self.assertTrue(protocol.transport.disconnected)
        self.lose(protocol)
        self.successResultOf(done)

    def test_otherProtocolClosedSilently(self) -> None:
        """
        A connection of a factory that is not SMTP's is closed without a
        reply when the grace period ends.
        """
        protocol = self.connect(ServerFactory.forProtocol(Protocol))
        done = self.sessions.close(1)
        self.clock.advance(1)
        self.assertEqual(protocol.transport.value(), b"")
        self.assertTrue(protocol.transport.disconnecting)
        self.lose(protocol)
        self.successResultOf(done)

    def test_protocolStillSeesConnectionLost(self) -> None:
        """
        Tracking a connection does not hide its end from the protocol: the
        factory's count of open connections goes back to zero.
        """
        protocol = self.connect()
        self.assertEqual(self.smtpFactory.connections, 1)
        self.lose(protocol)
        self.assertEqual(self.smtpFactory.connections, 0)
        self.assertNotIn("connectionLost", vars(protocol))

    def test_latestProtocol(self) -> None:
        """
        The controller's C{smtpd} is the protocol of the latest connection.
        """
        self.connect()
        second = self.connect()
        self.assertIs(self.controller.smtpd, second)

    def test_smtpServerNotWrapped(self) -> None:
        """
        The server of an L{SMTPFactory}'s connection is served as it is:
        the factory keeps its connections, and nothing is added per
        connection to watch it.
        """
        protocol = self.connect()
        self.assertIs(type(protocol), SMTP)
        self.assertIs(protocol.factory, self.smtpFactory)

    def test_severalFactories(self) -> None:
        """
        Closing waits for the connections of every L{SMTPFactory} and every
        other factory of the listening period.
        """
        other = SMTPFactory(
            object(), reactor=self.clock, timeout=None, hostname="mx.example.test"
        )
        first, second = self.connect(), self.connect(other)
        third = self.connect(ServerFactory.forProtocol(Protocol))
        done = self.sessions.close(5)
        for protocol in (first, third, second):
            self.assertNoResult(done)
            self.lose(protocol)
        self.successResultOf(done)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_otherProtocolSeesConnectionLostFirst(self) -> None:
        """
        The protocol of another factory sees its C{connectionLost} before
        closing is done, as when it was not watched.
        """
        seen = []

        class Recording(Protocol):
            def connectionLost(self, reason: Failure) -> None:
                seen.append(reason.type)

        protocol = self.connect(ServerFactory.forProtocol(Recording))
        done = self.sessions.close(5)
        done.addCallback(lambda _: seen.append("done"))
        self.lose(protocol)
        self.assertEqual(seen, [ConnectionDone, "done"])

    def test_otherFactoryRefusing(self) -> None:
        """
        When another factory builds no protocol for a connection, neither
        does the tracking factory, and nothing is watched.
        """

        class Refusing(ServerFactory):
            def buildProtocol(self, addr: Any) -> None:
                return None

        tracking = TrackingFactory(Refusing(), self.sessions)
        self.assertIsNone(tracking.buildProtocol(IPv4Address("TCP", "127.0.0.1", 1)))
        self.assertIsNone(self.controller.smtpd)
        self.successResultOf(self.sessions.close(5))

    def test_otherProtocolLogPrefix(self) -> None:
        """
        The transport's log lines name the protocol of another factory, not
        the wrapper that watches it.
        """
        protocol = self.connect(ServerFactory.forProtocol(Protocol))
        self.assertEqual(protocol.logPrefix(), "Protocol")
