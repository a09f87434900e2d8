# -*- test-case-name: tests.test_cluster -*-
"""
The deployment of C{docs/deployment.rst} run for real: HAProxy in front of
two C{twistd smtpd} workers that hand every message to RabbitMQ, one worker
killed and restarted while a client sends, and no message that got 250 lost.
"""

from __future__ import annotations

import atexit
import queue
import smtplib
import socket
import threading
import time
import uuid
from typing import Any

from twisted.internet.threads import deferToThread
from twisted.trial.unittest import SkipTest, TestCase

from tests import test_service
from tests._rabbitmq import RabbitNode
from tests.test_amqp import _drain
from tests.test_proxyphase import HAProxy, startHAProxy
from tests.test_service import _Twistd
from twisted_smtpd.handlers import AMQP

#: The address the client sends from: not HAProxy's (127.0.0.1), so that the
#: proxy's own address cannot pass for the client's.
CLIENT_ADDRESS = "127.0.0.2"

#: Messages sent, threads sending them, attempts per message.
MESSAGES = 2000
THREADS = 8
ATTEMPTS = 20

#: Messages accepted before the first worker is killed; the client sends
#: no new message past L{WAIT_AFTER} until it runs again, so that the
#: restarted worker gets its share.
KILL_AFTER = MESSAGES // 4
WAIT_AFTER = MESSAGES // 2

#: The health checks of each server line: every 200 ms, down after two
#: failures, up again after one success.
CHECK = "check inter 200ms fall 2 rise 1"


def _canBind(address: str) -> bool:
    """
    Whether a TCP socket can be bound to C{address} here.
    """
    s = socket.socket()
    try:
        s.bind((address, 0))
    except OSError:
        return False
    finally:
        s.close()
    return True


def freePort() -> int:
    """
    A port free on 127.0.0.1 now (a worker must be restarted on the same
    port, so it cannot listen on port 0).
    """
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def _message(messageId: str) -> bytes:
    """
    A small message with its own Message-ID.
    """
    return (
        f"Message-ID: <{messageId}@client.example>\r\n"
        f"Subject: cluster test\r\n\r\nHello {messageId}.\r\n"
    ).encode()


def _messageId(content: bytes) -> str:
    """
    The Message-ID of a message made by L{_message}.
    """
    first = content.split(b"\r\n", 1)[0]
    if not first.startswith(b"Message-ID: <"):
        raise AssertionError(f"not a test message: {content[:80]!r}")
    return first[len(b"Message-ID: <") : first.index(b"@")].decode()


def runInThreads(function: Any, count: int) -> None:
    """
    Run C{function} in C{count} threads at once; return when all have
    ended.
    """
    threads = [threading.Thread(target=function) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


class _Client:
    """
    Threads that send every message through HAProxy from L{CLIENT_ADDRESS},
    keeping one SMTP session each across messages, and retry a message
    (with a new session) after a 4yz reply or when the session broke
    before the reply.

    @ivar accepted: The Message-IDs that got 250.
    @ivar retried: How many attempts failed and were retried.
    @ivar enoughAccepted: Set once L{KILL_AFTER} messages got 250.
    @ivar restarted: Set by the test once the killed worker runs again.
    @ivar errors: What went wrong beyond retrying (a 5yz, too many
        attempts); empty when all is well.
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self.accepted: set[str] = set()
        self.retried = 0
        self.errors: list[str] = []
        self.lock = threading.Lock()
        self.enoughAccepted = threading.Event()
        self.restarted = threading.Event()
        self.work: queue.Queue[str] = queue.Queue()
        for _ in range(MESSAGES):
            self.work.put(uuid.uuid4().hex)

    def connect(self) -> smtplib.SMTP:
        """
        A new session through HAProxy, from L{CLIENT_ADDRESS}.
        """
        client = smtplib.SMTP(
            "127.0.0.1",
            self.port,
            local_hostname="client.example",
            timeout=10,
            source_address=(CLIENT_ADDRESS, 0),
        )
        client.ehlo()
        return client

    def attempt(self, client: smtplib.SMTP | None, messageId: str) -> Any:
        """
        Send one message; return the session to go on with (C{None} when
        it broke) and the reply code (C{None} without a reply).
        """
        try:
            if client is None:
                client = self.connect()
            client.sendmail(
                "sender@example.com", ["rcpt@example.com"], _message(messageId)
            )
            return client, 250
        except smtplib.SMTPResponseException as e:
            code = e.smtp_code
        except smtplib.SMTPRecipientsRefused as e:
            [(code, _)] = e.recipients.values()
        except (OSError, smtplib.SMTPException):
            code = None
        if client is not None:
            client.close()
        return None, code

    def send(self, messageId: str, client: smtplib.SMTP | None) -> Any:
        """
        Send one message until it gets 250, at most L{ATTEMPTS} times;
        return the session to go on with.
        """
        for _ in range(ATTEMPTS):
            client, code = self.attempt(client, messageId)
            if code == 250:
                with self.lock:
                    self.accepted.add(messageId)
                    if len(self.accepted) >= KILL_AFTER:
                        self.enoughAccepted.set()
                return client
            if code is not None and code >= 500:
                self.errors.append(f"{messageId}: {code}")
                return client
            with self.lock:
                self.retried += 1
            time.sleep(0.1)
        self.errors.append(f"{messageId}: no 250 after {ATTEMPTS} attempts")
        return client

    def run(self) -> None:
        """
        Send from L{THREADS} threads until every message is sent.
        """

        def sender() -> None:
            client = None
            while True:
                if len(self.accepted) >= WAIT_AFTER:
                    self.restarted.wait(60)
                try:
                    messageId = self.work.get_nowait()
                except queue.Empty:
                    break
                client = self.send(messageId, client)
            if client is not None:
                client.close()

        runInThreads(sender, THREADS)


def _consume(url: str, queueName: str) -> list[dict[str, Any]]:
    """
    Take every message of C{queueName}: the JSON header of each, with the
    Message-ID of its content as C{"mid"}.
    """
    taken = []
    for _, body in _drain(url, queueName):
        facts, content = AMQP.decode(body)
        facts["mid"] = _messageId(content)
        taken.append(facts)
    return taken


class ClusterTests(TestCase):
    """
    Slow integration test: a private RabbitMQ node, HAProxy on 127.0.0.1
    with C{send-proxy-v2} and health checks, and two C{twistd -n smtpd}
    worker processes with the C{amqp} handler, C{--proxy-protocol} and
    C{--proxy-protocol-trusted 127.0.0.1}; the client sends from
    127.0.0.2 with several threads.
    """

    timeout = 180

    def setUp(self) -> None:
        if not _canBind(CLIENT_ADDRESS):
            raise SkipTest(f"cannot bind a socket to {CLIENT_ADDRESS}")
        self.node = RabbitNode()
        atexit.register(self.node.stop)
        self.addCleanup(deferToThread, self.node.stop)
        self.node.start()
        self.queue = f"mail-{uuid.uuid4().hex}"

    # Borrowed, not inherited: a subclass would run those tests again.
    scratchDirectory = test_service.TwistdIntegrationTests.scratchDirectory
    spawnTwistd = test_service.TwistdIntegrationTests.spawnTwistd

    async def startWorker(self, port: int) -> tuple[_Twistd, Any]:
        """
        Start a worker on 127.0.0.1:C{port} as C{docs/deployment.rst} does
        (gone at the end of the test), and wait until it listens and its
        queue is declared.
        """
        worker = self.spawnTwistd(
            *("smtpd", "--listen", f"tcp:{port}:interface=127.0.0.1"),
            *("--proxy-protocol", "5", "--proxy-protocol-trusted", "127.0.0.1"),
            *("--handler", "amqp", self.node.url, self.queue),
            *("confirm_timeout=10", "retry_max_delay=1"),
        )
        await worker.waitFor(rb"SMTPFactory starting on")
        await worker.waitFor(rb"AMQP publisher ready")
        return worker, worker.transport

    def assertQuiet(self, worker: _Twistd) -> None:
        """
        A worker's log has nothing at warn or above: HAProxy's health
        checks (connections that close before a PROXY header) are not
        errors.
        """
        output = worker.output.decode("utf-8", "replace")
        for marker in ("#warn]", "#error]", "#critical]", "Traceback"):
            self.assertNotIn(marker, output)

    async def test_workerKilledNoLoss(self) -> None:
        """
        Through HAProxy, with one worker killed by SIGKILL mid-run and
        restarted, every message gets 250 in the end (after retries), every
        message that got 250 is in the queue (duplicates allowed), and every
        published envelope has the client's address, 127.0.0.2, as its
        peer.
        """
        ports = [freePort(), freePort()]
        first, firstTransport = await self.startWorker(ports[0])
        second, _ = await self.startWorker(ports[1])
        proxy: HAProxy = startHAProxy(
            self,
            ports[0],
            f"send-proxy-v2 {CHECK}\n"
            f"    server second 127.0.0.1:{ports[1]} send-proxy-v2 {CHECK}",
        )
        client = _Client(proxy.port)
        sending = deferToThread(client.run)

        enough = await deferToThread(client.enoughAccepted.wait, 60)
        self.assertTrue(enough, f"{client.errors}; {proxy.describe()}")
        self.assertFalse(sending.called, "the run ended before the kill")
        firstTransport.signalProcess("KILL")
        await first.ended
        restarted, _ = await self.startWorker(ports[0])
        client.restarted.set()
        await sending

        self.assertEqual(client.errors, [], proxy.describe())
        self.assertEqual(len(client.accepted), MESSAGES)
        published = await deferToThread(_consume, self.node.url, self.queue)
        distinct = {facts["mid"] for facts in published}
        self.assertEqual(client.accepted - distinct, set())
        self.assertEqual(distinct - client.accepted, set())
        self.assertEqual({facts["peer"][0] for facts in published}, {CLIENT_ADDRESS})
        self.assertIn(b": 250 in ", restarted.output)
        self.assertQuiet(second)
        self.assertQuiet(restarted)
