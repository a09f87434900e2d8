"""
Slow integration tests of a connection flood against C{twistd smtpd} run in
a child process whose file descriptor limit is low (C{RLIMIT_NOFILE}
1024, or 256), over loopback TCP: the idle sessions are closed to make
room for an honest client, C{accept()} failures are summed up in the log,
and the log stays small.

The module mirrors no single module: it tests L{twisted_smtpd._shedding},
L{twisted_smtpd._filelimit} and L{twisted_smtpd._daemon} together, as a
server under attack runs them.
"""

from __future__ import annotations

import errno
import smtplib
import socket
import time
from typing import Any

from twisted.internet import reactor
from twisted.internet.threads import deferToThread
from twisted.trial.unittest import SkipTest, TestCase

from tests import test_service

try:
    import resource
except ImportError:  # Windows
    resource = None  # type: ignore[assignment]

#: How many idle connections the flood holds.
FLOOD = 2000

#: The bytes a client closed to make room finds after its greeting.
SHED = b"421 4.7.0 mx.example Too many connections, try again later\r\n"


def childTwistd(limit: int) -> list[str]:
    """
    The arguments of C{python} that run C{twistd} with a soft and hard
    C{RLIMIT_NOFILE} of C{limit}, set before Twisted is imported.
    """
    return [
        "-c",
        "import resource, sys;"
        f" resource.setrlimit(resource.RLIMIT_NOFILE, ({limit}, {limit}));"
        " sys.argv[0] = 'twistd';"
        " from twisted.scripts.twistd import run; run()",
    ]


def needDescriptors(count: int) -> None:
    """
    Make sure this process may open C{count} more descriptors, raising its
    soft limit if need be.

    @raise SkipTest: If its hard limit is too low, or there is none.
    """
    if resource is None:
        raise SkipTest("no RLIMIT_NOFILE on this platform")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = count + 200
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return
    if hard != resource.RLIM_INFINITY and hard < wanted:
        raise SkipTest(f"needs {wanted} file descriptors; the hard limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def waitForServer(number: int) -> None:
    """
    Wait until the child server accepts connections (for 30 s at most).
    """
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection(("127.0.0.1", number), timeout=5) as s:
                s.recv(100)
                return
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def flood(number: int, count: int) -> list[socket.socket]:
    """
    Open C{count} connections that say nothing.
    """
    sockets = []
    try:
        for _ in range(count):
            sockets.append(socket.create_connection(("127.0.0.1", number), timeout=30))
    except BaseException:
        release(sockets)
        raise
    return sockets


def release(sockets: list[socket.socket]) -> None:
    """
    Close the connections of L{flood}.
    """
    for s in sockets:
        s.close()


def received(s: socket.socket) -> bytes:
    """
    What the server sent on C{s} so far, reading for at most two seconds
    until it closed or fell silent for half a second.
    """
    data = b""
    deadline = time.monotonic() + 2
    s.settimeout(0.5)
    while time.monotonic() < deadline:
        try:
            chunk = s.recv(4096)
        except TimeoutError:
            break
        except OSError as e:
            if e.errno in (errno.ECONNRESET, errno.EPIPE):
                break
            raise
        if not chunk:
            break
        data += chunk
    return data


def transaction(number: int) -> dict[str, Any]:
    """
    Send one message with C{smtplib}, which raises unless every reply,
    the one to the end of the data included, is a success; the generous
    timeout only guards against a hang.

    @return: The recipients refused: none.
    """
    with smtplib.SMTP(
        "127.0.0.1", number, local_hostname="client.example", timeout=60
    ) as client:
        return client.sendmail(
            "sender@example.com",
            ["rcpt@example.org"],
            b"Subject: honest\r\n\r\nHi.\r\n",
        )


class FileDescriptorExhaustionIntegrationTests(TestCase):
    """
    Slow integration tests: C{twistd smtpd} in a child process limited to
    1024 (or 256) file descriptors, flooded with idle loopback connections
    (loopback is exempt from C{max_connections_per_client} by default),
    and an honest client sending a message with C{smtplib}.
    """

    timeout = 120

    scratchDirectory = test_service.TwistdIntegrationTests.scratchDirectory
    spawnTwistd = test_service.TwistdIntegrationTests.spawnTwistd
    startLogging = test_service.TwistdLogTests.startLogging

    def startServer(self, limit: int, *smtpd: str) -> tuple[int, str, Any]:
        """
        Start C{twistd -n --logfile LOG smtpd --handler sink SMTPD...} on a
        free port in a child process limited to C{limit} file descriptors.

        @return: The port, the log file's path and the process protocol.
        """
        return self.startLogging(*smtpd, twistd=childTwistd(limit))

    async def stopServer(self, process: Any, log: str) -> str:
        """
        Stop the child server and return its log.
        """
        process.transport.signalProcess("TERM")
        await process.ended.addTimeout(30, reactor)
        with open(log, encoding="utf-8") as f:
            return f.read()

    async def test_honestClientServedDuringFlood(self) -> None:
        """
        While 2,000 idle connections are held against a server limited to
        1024 file descriptors, the sessions idle longest are closed with
        C{421 4.7.0} and an honest client completes a transaction; it does
        again once the flood is released; the newest idle sessions were
        not closed; the log, which gives the raised limit, stays under
        100 KB.
        """
        needDescriptors(FLOOD)
        number, log, process = self.startServer(1024)

        def attack():
            waitForServer(number)
            sockets = flood(number, FLOOD)
            try:
                during = transaction(number)
                oldest, newest = received(sockets[0]), received(sockets[-1])
            finally:
                release(sockets)
            return during, oldest, newest

        during, oldest, newest = await deferToThread(attack)
        self.assertEqual(during, {})
        self.assertTrue(oldest.startswith(b"220 mx.example "), oldest)
        self.assertTrue(oldest.endswith(b"\r\n" + SHED), oldest)
        self.assertEqual(oldest.count(b"\r\n"), 2)
        self.assertTrue(newest.startswith(b"220 mx.example "), newest)
        self.assertNotIn(b"421", newest)
        after = await deferToThread(transaction, number)
        self.assertEqual(after, {})
        text = await self.stopServer(process, log)
        self.assertLess(len(text.encode("utf-8")), 100_000)
        self.assertIn("smtpd: open file descriptor limit 1024", text)
        self.assertIn("idle session(s) to make room for new clients", text)
        self.assertNotIn("Traceback", text)

    async def test_acceptFailuresSummedUp(self) -> None:
        """
        With no high-water mark, a flood of 1,500 connections against a
        server limited to 256 file descriptors makes C{accept()} fail with
        EMFILE: the log has a line a second at most about it, none per
        client closed unserved, and stays under 100 KB; once the flood is
        gone the server serves again.
        """
        needDescriptors(1500)
        number, log, process = self.startServer(256, "--high-water-mark", "0")

        def attack():
            waitForServer(number)
            started = time.monotonic()
            sockets = flood(number, 1500)
            time.sleep(1.5)
            release(sockets)
            return time.monotonic() - started

        seconds = await deferToThread(attack)
        after = await deferToThread(transaction, number)
        self.assertEqual(after, {})
        text = await self.stopServer(process, log)
        self.assertLess(len(text.encode("utf-8")), 100_000)
        failures = [line for line in text.splitlines() if "could not accept" in line]
        self.assertTrue(failures, text[-2000:])
        self.assertIn("(EMFILE)", failures[0])
        self.assertLessEqual(len(failures), seconds + 3)
        self.assertNotIn("EMFILE recovery", text)
        self.assertNotIn("Traceback", text)
