"""
The load generator's side of SMTP: the commands, the messages, and the
client connections that send them and check every reply.

L{Conn} is an asyncio connection for the 1 KiB runs and the idle
connections; L{LineSocket} a blocking socket for big messages and latency
probes.  Everything connects to 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import math
import random
import socket
import time

EHLO = b"EHLO client.bench.local\r\n"
MAIL = b"MAIL FROM:<sender@client.bench.local>\r\n"
RCPT = b"RCPT TO:<sink@bench.local>\r\n"
DATA = b"DATA\r\n"
QUIT = b"QUIT\r\n"


class BenchError(Exception):
    """
    A reply other than the one expected, or a connection that went away.
    """


# --------------------------------------------------------------------------
# An asyncio client connection that counts replies


class Conn(asyncio.Protocol):
    """
    A client connection that splits what it receives into SMTP replies and
    keeps the code of each complete (possibly multi-line) reply.
    """

    def __init__(self) -> None:
        self.buf = b""
        self.codes: list[bytes] = []
        self.want = 0
        self.waiter: asyncio.Future | None = None
        self.closed = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport
        sock = transport.get_extra_info("socket")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data if self.buf else data
        start = 0
        while True:
            end = buf.find(b"\r\n", start)
            if end < 0:
                break
            # "250-..." continues a reply, "250 ..." or "250" ends it.
            if buf[start + 3 : start + 4] != b"-":
                self.codes.append(buf[start : start + 3])
            start = end + 2
        self.buf = buf[start:]
        waiter = self.waiter
        if waiter is not None and len(self.codes) >= self.want:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def connection_lost(self, exc) -> None:
        if not self.closed.done():
            self.closed.set_result(None)
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            self.waiter = None
            waiter.set_exception(BenchError("connection lost"))

    async def expect(self, *codes: bytes) -> None:
        """
        Wait for C{len(codes)} replies and check their codes.
        """
        n = len(codes)
        if len(self.codes) < n:
            if self.closed.done():
                raise BenchError("connection lost")
            self.want = n
            self.waiter = asyncio.get_running_loop().create_future()
            await self.waiter
        got = tuple(self.codes[:n])
        del self.codes[:n]
        if got != codes:
            raise BenchError(f"expected {codes}, got {got}")

    def send(self, data: bytes) -> None:
        self.transport.write(data)

    async def close(self, timeout: float = 2.0) -> None:
        """
        Close, after letting the server close first when it is about to.
        """
        try:
            await asyncio.wait_for(asyncio.shield(self.closed), timeout)
        except asyncio.TimeoutError:
            pass
        self.transport.close()


async def open_conn(port: int) -> Conn:
    loop = asyncio.get_running_loop()
    _, conn = await loop.create_connection(Conn, "127.0.0.1", port)
    await conn.expect(b"220")
    conn.send(EHLO)
    await conn.expect(b"250")
    return conn


# --------------------------------------------------------------------------
# Small messages


def make_small_message(size: int = 1024) -> bytes:
    """
    A message of exactly C{size} bytes, CRLF lines, ready to send after
    354 with its terminating "."; none of its lines needs dot-stuffing.
    """
    head = (
        b"From: Sender <sender@client.bench.local>\r\n"
        b"To: Sink <sink@bench.local>\r\n"
        b"Subject: benchmark message\r\n"
        b"Message-ID: <bench.1@client.bench.local>\r\n"
        b"Date: Mon, 01 Jan 2024 00:00:00 +0000\r\n"
        b"\r\n"
    )
    line = b"The quick brown fox jumps over the lazy dog. 0123456789 abcdefghij\r\n"
    body = head
    while len(body) + len(line) <= size - 8:
        body += line
    body += b"x" * (size - len(body) - 2) + b"\r\n"
    assert len(body) == size
    return body + b".\r\n"


SMALL_WIRE = make_small_message()


async def transaction(conn: Conn, pipelined: bool) -> None:
    if pipelined:
        conn.send(MAIL + RCPT + DATA)
        await conn.expect(b"250", b"250", b"354")
    else:
        conn.send(MAIL)
        await conn.expect(b"250")
        conn.send(RCPT)
        await conn.expect(b"250")
        conn.send(DATA)
        await conn.expect(b"354")
    conn.send(SMALL_WIRE)
    await conn.expect(b"250")


async def quit_conn(conn: Conn) -> None:
    conn.send(QUIT)
    await conn.expect(b"221")
    await conn.close()


# --------------------------------------------------------------------------
# Big messages, over a blocking socket


class LineSocket:
    """
    A blocking client socket that reads SMTP replies.
    """

    def __init__(self, port: int, timeout: float):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def reply(self) -> bytes:
        while True:
            end = self.buf.find(b"\r\n")
            if end < 0:
                data = self.sock.recv(65536)
                if not data:
                    raise BenchError("connection lost")
                self.buf += data
                continue
            line, self.buf = self.buf[:end], self.buf[end + 2 :]
            if line[3:4] != b"-":
                return line[:3]

    def command(self, data: bytes, *codes: bytes) -> None:
        if data:
            self.sock.sendall(data)
        got = tuple(self.reply() for _ in codes)
        if got != codes:
            raise BenchError(f"expected {codes}, got {got}")

    def close(self) -> None:
        self.sock.close()


def smoke_test(port: int) -> None:
    """
    Send one 1 KiB message, checking every reply.
    """
    conn = LineSocket(port, timeout=10)
    try:
        conn.command(b"", b"220")
        conn.command(EHLO, b"250")
        conn.command(MAIL, b"250")
        conn.command(RCPT, b"250")
        conn.command(DATA, b"354")
        conn.command(SMALL_WIRE, b"250")
        conn.command(QUIT, b"221")
    finally:
        conn.close()


def make_big_message(size: int) -> tuple[bytes, int]:
    """
    Build a message of about C{size} bytes made of 76-character CRLF lines,
    one line in 16 starting with ".", and return it dot-stuffed and
    terminated for the wire, with the size of the unstuffed message.
    """
    head = (
        b"From: Sender <sender@client.bench.local>\r\n"
        b"To: Sink <sink@bench.local>\r\n"
        b"Subject: big benchmark message\r\n"
        b"Message-ID: <bench.big@client.bench.local>\r\n"
        b"Date: Mon, 01 Jan 2024 00:00:00 +0000\r\n"
        b"\r\n"
    )
    rnd = random.Random(20240101)
    alphabet = "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789,;:!?-"
    lines = []
    for i in range(1024):
        text = "".join(rnd.choice(alphabet) for _ in range(76))
        if i % 16 == 0:
            text = "." + text[1:]
        lines.append(text.encode("ascii"))
    block = b"".join(
        b"." + ln + b"\r\n" if ln[:1] == b"." else ln + b"\r\n" for ln in lines
    )
    nlines = max(1, (size - len(head)) // 78)
    whole, part = divmod(nlines, len(lines))
    tail = b"".join(
        b"." + ln + b"\r\n" if ln[:1] == b"." else ln + b"\r\n" for ln in lines[:part]
    )
    wire = b"".join([head, block * whole, tail, b".\r\n"])
    return wire, len(head) + nlines * 78


# --------------------------------------------------------------------------
# Idle connections


def probe_latency(port: int, count: int, timeout: float) -> tuple[list[float], int]:
    """
    Time C{count} sequential connect, greeting, EHLO, QUIT exchanges.
    """
    times = []
    failures = 0
    for _ in range(count):
        t0 = time.perf_counter()
        try:
            conn = LineSocket(port, timeout)
            try:
                conn.command(b"", b"220")
                conn.command(EHLO, b"250")
                conn.command(QUIT, b"221")
            finally:
                conn.close()
        except (OSError, BenchError):
            failures += 1
            continue
        times.append(time.perf_counter() - t0)
    return times, failures


def percentile(values: list[float], p: float) -> float:
    if not values:
        return math.nan
    values = sorted(values)
    k = (len(values) - 1) * p / 100
    lo, hi = math.floor(k), math.ceil(k)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


async def open_idle(port: int, count: int, conns: list, deadline: float) -> int:
    """
    Open C{count} more connections, greeted and EHLO'd, at most 100 at a
    time; return how many failed.
    """
    sem = asyncio.Semaphore(100)
    failures = 0

    async def one():
        nonlocal failures
        async with sem:
            if time.monotonic() > deadline:
                failures += 1
                return
            try:
                conns.append(await asyncio.wait_for(open_conn(port), 30))
            except (OSError, BenchError, asyncio.TimeoutError):
                failures += 1

    await asyncio.gather(*(one() for _ in range(count)))
    return failures
