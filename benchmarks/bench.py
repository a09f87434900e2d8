"""
Compare twisted_smtpd with aiosmtpd and twisted.mail as SMTP receivers.

Run from the checkout::

    python benchmarks/bench.py [--quick] [--only small|big|idle]
                               [--servers twisted_smtpd,aiosmtpd,twistedmail]

Each server runs in its own process (``benchmarks/servers.py``) on
127.0.0.1, so that its CPU time and memory can be read from ``/proc``; this
process is the load generator.  See ``benchmarks/README.rst`` for what each
figure means.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import select
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from servers import SERVERS, raise_nofile  # noqa: E402

SERVERS_PY = os.path.join(HERE, "servers.py")
CLK_TCK = os.sysconf("SC_CLK_TCK")
MiB = 1024 * 1024
SHORT = {"twisted_smtpd": "tsmtpd", "aiosmtpd": "aiosmtpd", "twistedmail": "tmail"}

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
# The server processes and what /proc says about them


def proc_cpu_seconds(pid: int) -> float:
    """
    User plus system CPU time used so far by process C{pid}, in seconds.
    """
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    # The command name (field 2) may contain spaces: split after its ")".
    fields = stat.rsplit(")", 1)[1].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / CLK_TCK


def proc_mem_kib(pid: int) -> dict[str, int]:
    """
    The Vm* lines of C{/proc/PID/status}, in KiB.
    """
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Vm"):
                key, value = line.split(":", 1)
                out[key] = int(value.split()[0])
    return out


def reset_peak_rss(pid: int) -> bool:
    """
    Reset VmHWM of C{pid} to its current VmRSS (Linux 4.0 and later).
    """
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


# CPUs to pin the servers and this client to (set by main); None: no pinning.
PIN: dict[str, int | None] = {"server": None, "client": None}


def pin_cpus(enabled: bool) -> str:
    """
    Put the servers on one CPU and this client on another, so that the two
    never compete for a core; return a description of what was done.
    """
    cpus = sorted(os.sched_getaffinity(0))
    if not enabled:
        return "not pinned (--no-pin)"
    if len(cpus) < 2:
        return f"not pinned (only CPU {cpus} available)"
    PIN["server"], PIN["client"] = cpus[0], cpus[1]
    os.sched_setaffinity(0, {PIN["client"]})
    return f"servers pinned to CPU {PIN['server']}, client to CPU {PIN['client']}"


class OtherLoad:
    """
    How much CPU time processes other than this one and its servers used
    while it ran, from C{/proc/stat}: other work on the machine makes the
    wall-clock figures (rates, latencies) unreliable.
    """

    def __init__(self) -> None:
        self.t0 = time.monotonic()
        self.busy0, self.steal0 = self.machine()
        self.own0 = self.own()

    @staticmethod
    def machine() -> tuple[float, float]:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        # user nice system idle iowait irq softirq steal ...
        busy = v[0] + v[1] + v[2] + v[5] + v[6]
        steal = v[7] if len(v) > 7 else 0
        return busy / CLK_TCK, steal / CLK_TCK

    @staticmethod
    def own() -> float:
        # Servers count once they have been stopped and reaped.
        t = os.times()
        return t.user + t.system + t.children_user + t.children_system

    def cpus(self) -> tuple[float, float]:
        """
        Return the average number of CPUs busy with other work since this
        object was made, and the average number stolen by the hypervisor.
        """
        wall = time.monotonic() - self.t0
        busy, steal = self.machine()
        others = (busy - self.busy0) - (self.own() - self.own0)
        return max(0.0, others) / wall, (steal - self.steal0) / wall


class ServerUnavailable(Exception):
    pass


class Server:
    """
    One server subprocess, started with C{servers.py NAME}.
    """

    def __init__(self, name: str, logdir: str, size: int | None = None):
        self.name = name
        self.logpath = os.path.join(logdir, f"{name}.log")
        cmd = [sys.executable, SERVERS_PY, name]
        if size is not None:
            cmd += ["--size", str(size)]
        self.log = open(self.logpath, "ab")
        self.log.write(f"--- {' '.join(cmd)}\n".encode())
        self.log.flush()
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=self.log, stdin=subprocess.DEVNULL
        )
        self.pid = self.proc.pid
        if PIN["server"] is not None:
            os.sched_setaffinity(self.pid, {PIN["server"]})
        ready, _, _ = select.select([self.proc.stdout], [], [], 30)
        line = self.proc.stdout.readline() if ready else b""
        if not line.strip().isdigit():
            self.stop()
            raise ServerUnavailable(self.log_tail())
        self.port = int(line)

    def log_tail(self, lines: int = 5) -> str:
        with open(self.logpath, "rb") as f:
            text = f.read().decode(errors="replace").strip().splitlines()
        return " | ".join(text[-lines:])

    def alive(self) -> bool:
        return self.proc.poll() is None

    def cpu(self) -> float:
        return proc_cpu_seconds(self.pid)

    def mem(self) -> dict[str, int]:
        return proc_mem_kib(self.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        self.log.close()


def start_server(name: str, logdir: str, size: int | None = None) -> Server | None:
    try:
        return Server(name, logdir, size)
    except ServerUnavailable as e:
        note(f"SKIPPING {name}: its server did not start ({e})")
        return None


def note(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


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


class SmallRun:
    def __init__(self, total: int, deadline: float):
        self.total = total
        self.deadline = deadline
        self.started = 0
        self.ok = 0
        self.failures = 0
        self.errors: list[str] = []
        self.ready = 0
        self.concurrency = 0
        self.all_ready = asyncio.Event()

    def set_ready(self) -> None:
        self.ready += 1
        if self.ready >= self.concurrency:
            self.all_ready.set()

    def next(self) -> bool:
        if self.started >= self.total or time.monotonic() >= self.deadline:
            return False
        self.started += 1
        return True

    def fail(self, e: BaseException) -> None:
        self.failures += 1
        if len(self.errors) < 5:
            self.errors.append(f"{type(e).__name__}: {e}")


async def reuse_worker(run: SmallRun, port: int, pipelined: bool, go) -> Conn | None:
    conn = None
    try:
        conn = await open_conn(port)
    except (OSError, BenchError) as e:
        run.fail(e)
    run.set_ready()
    await go.wait()
    while run.next():
        try:
            if conn is None:
                conn = await open_conn(port)
            await transaction(conn, pipelined)
            run.ok += 1
        except (OSError, BenchError) as e:
            run.fail(e)
            if conn is not None:
                conn.transport.abort()
                conn = None
    return conn


async def per_connection_worker(run: SmallRun, port: int, pipelined: bool, go):
    await go.wait()
    while run.next():
        conn = None
        try:
            conn = await open_conn(port)
            await transaction(conn, pipelined)
            await quit_conn(conn)
            run.ok += 1
        except (OSError, BenchError) as e:
            run.fail(e)
            if conn is not None:
                conn.transport.abort()


async def small_run_async(
    server: Server,
    pipelined: bool,
    reuse: bool,
    concurrency: int,
    total: int,
    time_limit: float,
) -> dict:
    # Far enough in the future not to end the set-up of the connections.
    run = SmallRun(total, time.monotonic() + 3600)
    run.concurrency = concurrency
    go = asyncio.Event()
    worker = reuse_worker if reuse else per_connection_worker
    tasks = [
        asyncio.ensure_future(worker(run, server.port, pipelined, go))
        for _ in range(concurrency)
    ]
    if reuse:
        # Connect and greet before the clock starts.
        try:
            await asyncio.wait_for(run.all_ready.wait(), 60)
        except asyncio.TimeoutError:
            pass
    cpu0, times0, t0 = server.cpu(), os.times(), time.perf_counter()
    run.deadline = time.monotonic() + time_limit
    go.set()
    done, pending = await asyncio.wait(tasks, timeout=time_limit + 15)
    t1, times1, cpu1 = time.perf_counter(), os.times(), server.cpu()
    for t in pending:
        t.cancel()
        run.fail(BenchError("timed out"))
    if pending:
        await asyncio.gather(*pending, return_exceptions=True)
    conns = []
    for t in done:
        if t.exception() is not None:
            run.fail(t.exception())
        elif t.result() is not None:
            conns.append(t.result())
    for conn in conns:
        try:
            await asyncio.wait_for(quit_conn(conn), 5)
        except (OSError, BenchError, asyncio.TimeoutError) as e:
            run.fail(e)
            conn.transport.abort()
    wall = t1 - t0
    client_cpu = (times1.user - times0.user) + (times1.system - times0.system)
    return {
        "messages": run.ok,
        "failures": run.failures,
        "errors": run.errors,
        "seconds": wall,
        "msgs_per_s": run.ok / wall if wall > 0 and run.ok else math.nan,
        "cpu_ms_per_msg": (cpu1 - cpu0) * 1000 / run.ok if run.ok else math.nan,
        "client_cpu_pct": 100 * client_cpu / wall if wall > 0 else math.nan,
        "timed_out": run.started < total,
    }


def bench_small(args, servers: list[str], logdir: str, results: dict) -> None:
    procs = {}
    for name in servers:
        srv = start_server(name, logdir)
        if srv is not None:
            procs[name] = srv
    if not procs:
        return
    loop = asyncio.new_event_loop()
    try:
        # Warm up each server (imports done lazily, caches, allocator).
        for srv in procs.values():
            loop.run_until_complete(
                small_run_async(srv, True, True, 10, 300, args.time_limit)
            )
            loop.run_until_complete(
                small_run_async(srv, False, False, 10, 100, args.time_limit)
            )
        for pipelined in (False, True):
            for reuse in (True, False):
                for conc in args.concurrency:
                    total = args.messages if reuse else args.conn_messages
                    key = (
                        f"{'pipelined' if pipelined else 'lock-step'}, "
                        f"{'reuse' if reuse else 'conn/msg'}, c={conc}"
                    )
                    runs = {name: [] for name in procs}
                    for rnd in range(args.rounds):
                        for name, srv in procs.items():
                            if not srv.alive():
                                continue
                            r = loop.run_until_complete(
                                small_run_async(
                                    srv, pipelined, reuse, conc, total, args.time_limit
                                )
                            )
                            runs[name].append(r)
                            note(
                                f"  small [{key}] round {rnd + 1} {name}: "
                                f"{r['messages']} msgs {r['msgs_per_s']:.0f}/s "
                                f"{r['cpu_ms_per_msg']:.3f} ms CPU/msg, "
                                f"client {r['client_cpu_pct']:.0f}% CPU, "
                                f"{r['failures']} failures"
                                + (f" {r['errors']}" if r["errors"] else "")
                                + (" (TIME LIMIT)" if r["timed_out"] else "")
                            )
                            if not srv.alive():
                                note(f"  {name} DIED: {srv.log_tail()}")
                    results["small"][key] = {
                        name: summarize_small(rs) for name, rs in runs.items()
                    }
    finally:
        loop.close()
        for srv in procs.values():
            srv.stop()


def summarize_small(runs: list[dict]) -> dict:
    if not runs:
        return {}

    def med(k):
        return statistics.median(r[k] for r in runs)

    return {
        "msgs_per_s": med("msgs_per_s"),
        "cpu_ms_per_msg": med("cpu_ms_per_msg"),
        "client_cpu_pct": med("client_cpu_pct"),
        "failures": sum(r["failures"] for r in runs),
        "messages": sum(r["messages"] for r in runs),
        "rounds": len(runs),
        "timed_out": any(r["timed_out"] for r in runs),
    }


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


def big_run(name: str, size: int, logdir: str, time_limit: float) -> dict | None:
    wire, msg_size = make_big_message(size)
    srv = start_server(name, logdir, size=max(2 * size, 64 * MiB))
    if srv is None:
        return None
    result: dict = {"size": msg_size, "failures": 0}
    conn = None
    try:
        conn = LineSocket(srv.port, timeout=time_limit)
        conn.command(b"", b"220")
        conn.command(EHLO, b"250")
        conn.command(MAIL + RCPT + DATA, b"250", b"250", b"354")
        time.sleep(0.2)
        base = srv.mem()["VmRSS"]
        hwm_reset = reset_peak_rss(srv.pid)
        if not hwm_reset:
            note("  could not reset VmHWM (clear_refs); peak RSS includes start-up")
        # Sample VmRSS as well, as a check on VmHWM.
        sampled = [base]
        stop = threading.Event()

        def sample():
            while not stop.wait(0.02):
                try:
                    sampled.append(srv.mem()["VmRSS"])
                except OSError:
                    return

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        cpu0, t0 = srv.cpu(), time.perf_counter()
        view = memoryview(wire)
        for off in range(0, len(view), MiB):
            conn.sock.sendall(view[off : off + MiB])
        code = conn.reply()
        t1, cpu1 = time.perf_counter(), srv.cpu()
        stop.set()
        sampler.join()
        mem = srv.mem()
        if code != b"250":
            result["failures"] += 1
            note(f"  {name}: end of data got {code!r}, expected 250")
        conn.command(QUIT, b"221")
        mib = msg_size / MiB
        peak = max(mem["VmHWM"], max(sampled))
        result.update(
            {
                "mib_per_s": mib / (t1 - t0),
                "cpu_s_per_mib": (cpu1 - cpu0) / mib,
                "peak_rss_mib": peak / 1024,
                "base_rss_mib": base / 1024,
                "growth_x": (peak - base) * 1024 / msg_size,
                "hwm_reset": hwm_reset,
                "seconds": t1 - t0,
            }
        )
    except (OSError, BenchError) as e:
        result["failures"] += 1
        result["error"] = f"{type(e).__name__}: {e}"
        note(f"  {name}: big message failed: {e} (server log: {srv.log_tail()})")
    finally:
        if conn is not None:
            conn.close()
        srv.stop()
    return result


def bench_big(args, servers: list[str], logdir: str, results: dict) -> None:
    for size_mib, rounds in args.big_sizes:
        key = f"{size_mib} MiB"
        runs = {name: [] for name in servers}
        for rnd in range(rounds):
            for name in servers:
                r = big_run(name, size_mib * MiB, logdir, args.big_time_limit)
                if r is None:
                    continue
                runs[name].append(r)
                if "mib_per_s" in r:
                    note(
                        f"  big [{key}] round {rnd + 1} {name}: "
                        f"{r['mib_per_s']:.1f} MiB/s, "
                        f"{r['cpu_s_per_mib']:.4f} CPU s/MiB, "
                        f"peak RSS {r['peak_rss_mib']:.0f} MiB "
                        f"(base {r['base_rss_mib']:.0f}, "
                        f"growth {r['growth_x']:.2f}x size)"
                    )
        summary = {}
        for name, rs in runs.items():
            good = [r for r in rs if "mib_per_s" in r]
            s = {"failures": sum(r["failures"] for r in rs), "rounds": len(rs)}
            for k in ("mib_per_s", "cpu_s_per_mib", "peak_rss_mib", "growth_x"):
                s[k] = statistics.median(r[k] for r in good) if good else math.nan
            if rs:
                summary[name] = s
        results["big"][key] = summary


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


def idle_run(name: str, args, logdir: str) -> dict | None:
    srv = start_server(name, logdir)
    if srv is None:
        return None
    loop = asyncio.new_event_loop()
    conns: list[Conn] = []
    result: dict = {}
    try:
        deadline = time.monotonic() + args.idle_time_limit
        probe_latency(srv.port, 20, 10)  # warm up
        lat0, fail0 = probe_latency(srv.port, args.probes, 10)
        time.sleep(0.3)
        base = srv.mem()["VmRSS"]
        fail1 = loop.run_until_complete(
            open_idle(srv.port, args.idle_conns, conns, deadline)
        )
        time.sleep(0.5)
        after = srv.mem()["VmRSS"]
        measured = len(conns)
        per_conn = (after - base) / max(1, measured)
        fail2 = loop.run_until_complete(
            open_idle(srv.port, args.idle_latency_conns - len(conns), conns, deadline)
        )
        time.sleep(0.5)
        after2 = srv.mem()["VmRSS"]
        held = len(conns)
        lat1, fail3 = probe_latency(srv.port, args.probes, 10)
        # The idle connections must all still be there.
        lost = sum(1 for c in conns if c.closed.done())
        result = {
            "kib_per_conn": per_conn,
            "kib_per_conn_all": (after2 - base) / max(1, held),
            "conns_measured": measured,
            "held": held,
            "p50_ms_0": percentile(lat0, 50) * 1000,
            "p99_ms_0": percentile(lat0, 99) * 1000,
            "p50_ms_idle": percentile(lat1, 50) * 1000,
            "p99_ms_idle": percentile(lat1, 99) * 1000,
            "failures": fail0 + fail1 + fail2 + fail3 + lost,
        }
        note(
            f"  idle {name}: {per_conn:.1f} KiB/conn over {measured} conns; "
            f"{held} held; latency p50/p99 {result['p50_ms_0']:.2f}/"
            f"{result['p99_ms_0']:.2f} ms idle-free, {result['p50_ms_idle']:.2f}/"
            f"{result['p99_ms_idle']:.2f} ms with {held} idle; "
            f"{result['failures']} failures"
        )
    finally:
        for c in conns:
            if c.transport is not None:
                c.transport.abort()
        loop.run_until_complete(asyncio.sleep(0.1))
        loop.close()
        srv.stop()
    return result


def bench_idle(args, servers: list[str], logdir: str, results: dict) -> None:
    for name in servers:
        r = idle_run(name, args, logdir)
        if r is not None:
            results["idle"][name] = r


# --------------------------------------------------------------------------
# The table


def fmt(v, digits: int) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:,.{digits}f}"


def ratio(a, b, floor: float = 0.0) -> str:
    if (
        a is None
        or b is None
        or any(isinstance(x, float) and math.isnan(x) for x in (a, b))
    ):
        return "-"
    if b == 0:
        return "-"
    if abs(b) < floor:
        return "n/m"  # not meaningful: the denominator is close to nothing
    return f"{a / b:.2f}x"


def print_table(results: dict, servers: list[str], out=sys.stdout) -> None:
    subject = servers[0]
    others = servers[1:]
    headers = ["metric"] + servers + [f"{SHORT[subject]}/{SHORT[o]}" for o in others]
    rows: list[list[str] | None] = []

    def add(label, values: dict, digits: int, floor: float = 0.0, ratios=True):
        row = [label] + [fmt(values.get(n), digits) for n in servers]
        if ratios:
            row += [ratio(values.get(subject), values.get(o), floor) for o in others]
        rows.append(row)

    def section(title):
        rows.append(None)
        rows.append([title])

    failures = {n: 0 for n in servers}

    if results["small"]:
        section("1 KiB messages (median of rounds)")
        for key, per in results["small"].items():
            add(
                f"{key}: msgs/s (higher is better)",
                {n: per.get(n, {}).get("msgs_per_s") for n in servers},
                0,
            )
            add(
                f"{key}: server CPU ms/msg (lower is better)",
                {n: per.get(n, {}).get("cpu_ms_per_msg") for n in servers},
                3,
            )
            add(
                f"{key}: client CPU %",
                {n: per.get(n, {}).get("client_cpu_pct") for n in servers},
                0,
                ratios=False,
            )
            for n in servers:
                failures[n] += per.get(n, {}).get("failures", 0)
    if results["big"]:
        section("big messages (fresh server for each message)")
        for key, per in results["big"].items():
            add(
                f"{key}: MiB/s, 354 to 250 (higher is better)",
                {n: per.get(n, {}).get("mib_per_s") for n in servers},
                1,
            )
            add(
                f"{key}: server CPU s/MiB (lower is better)",
                {n: per.get(n, {}).get("cpu_s_per_mib") for n in servers},
                4,
            )
            add(
                f"{key}: peak server RSS MiB (VmHWM)",
                {n: per.get(n, {}).get("peak_rss_mib") for n in servers},
                0,
            )
            add(
                f"{key}: RSS growth / message size",
                {n: per.get(n, {}).get("growth_x") for n in servers},
                2,
                floor=0.1,
            )
            for n in servers:
                failures[n] += per.get(n, {}).get("failures", 0)
    if results["idle"]:
        per = results["idle"]
        section("idle connections (fresh server)")
        first = next(iter(per.values()))
        held = min(r["held"] for r in per.values())
        add(
            f"KiB of server RSS per idle connection ({first['conns_measured']})",
            {n: per.get(n, {}).get("kib_per_conn") for n in servers},
            1,
        )
        add(
            "connect+greeting+EHLO+QUIT p50 ms, no idle conns",
            {n: per.get(n, {}).get("p50_ms_0") for n in servers},
            2,
        )
        add(
            "connect+greeting+EHLO+QUIT p99 ms, no idle conns",
            {n: per.get(n, {}).get("p99_ms_0") for n in servers},
            2,
        )
        add(
            f"connect+greeting+EHLO+QUIT p50 ms, {held} idle conns",
            {n: per.get(n, {}).get("p50_ms_idle") for n in servers},
            2,
        )
        add(
            f"connect+greeting+EHLO+QUIT p99 ms, {held} idle conns",
            {n: per.get(n, {}).get("p99_ms_idle") for n in servers},
            2,
        )
        for n in servers:
            failures[n] += per.get(n, {}).get("failures", 0)
    section("correctness")
    rows.append(
        ["unexpected replies / lost connections"] + [str(failures[n]) for n in servers]
    )

    widths = [0] * len(headers)
    for row in [headers] + [r for r in rows if r and len(r) > 1]:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    line = "  ".join(
        h.ljust(widths[0]) if i == 0 else h.rjust(widths[i])
        for i, h in enumerate(headers)
    )
    out.write(line + "\n" + "-" * len(line) + "\n")
    for row in rows:
        if row is None:
            out.write("\n")
        elif len(row) == 1:
            out.write(row[0] + "\n")
        else:
            out.write(
                "  ".join(
                    c.ljust(widths[0]) if i == 0 else c.rjust(widths[i])
                    for i, c in enumerate(row)
                )
                + "\n"
            )
    out.flush()


# --------------------------------------------------------------------------


def parse_args(argv):
    p = argparse.ArgumentParser(
        description="Compare twisted_smtpd, aiosmtpd and twisted.mail.",
    )
    p.add_argument("--quick", action="store_true", help="a short run (1-2 minutes)")
    p.add_argument("--only", choices=("small", "big", "idle"), help="run one part only")
    p.add_argument(
        "--servers",
        default=",".join(SERVERS),
        help="comma-separated, from: " + ",".join(SERVERS),
    )
    p.add_argument(
        "--messages",
        type=int,
        help="1 KiB messages per run with connection reuse (default 3000; quick 1000)",
    )
    p.add_argument(
        "--conn-messages",
        type=int,
        help="1 KiB messages per run with a connection each (default 1000; "
        "quick 300; a third of --messages when that is given)",
    )
    p.add_argument(
        "--rounds", type=int, help="rounds per scenario (default 3; quick 1)"
    )
    p.add_argument(
        "--concurrency",
        default="1,10,100",
        help="comma-separated client concurrencies (default 1,10,100)",
    )
    p.add_argument(
        "--time-limit",
        type=float,
        help="seconds after which a 1 KiB run stops sending (default 20; quick 5)",
    )
    p.add_argument(
        "--idle-conns",
        type=int,
        help="idle connections for the memory figure (default 5000; quick 2000)",
    )
    p.add_argument(
        "--idle-latency-conns",
        type=int,
        help="idle connections held while timing new ones (default 10000; quick 4000)",
    )
    p.add_argument(
        "--no-pin",
        action="store_true",
        help="do not pin the servers and the client to separate CPUs",
    )
    p.add_argument("--json", metavar="FILE", help="also write the raw figures here")
    args = p.parse_args(argv)
    args.servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    for s in args.servers:
        if s not in SERVERS:
            p.error(f"unknown server {s!r}; choose from {', '.join(SERVERS)}")
    args.servers = [s for s in SERVERS if s in args.servers]  # canonical order
    args.concurrency = [int(c) for c in args.concurrency.split(",")]
    q = args.quick
    args.messages_given = args.messages is not None
    if args.messages is None:
        args.messages = 1000 if q else 3000
    if args.conn_messages is None:
        if args.messages_given:
            args.conn_messages = max(1, args.messages // 3)
        else:
            args.conn_messages = 300 if q else 1000
    if args.rounds is None:
        args.rounds = 1 if q else 3
    if args.time_limit is None:
        args.time_limit = 5.0 if q else 20.0
    if args.idle_conns is None:
        args.idle_conns = 2000 if q else 5000
    if args.idle_latency_conns is None:
        args.idle_latency_conns = 4000 if q else 10000
    args.idle_latency_conns = max(args.idle_latency_conns, args.idle_conns)
    # (size in MiB, rounds); each round is a fresh server process.
    args.big_sizes = [(10, 1), (100, 1)] if q else [(10, 3), (100, 1)]
    args.big_time_limit = 120.0
    args.idle_time_limit = 120.0
    args.probes = 200
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    nofile = raise_nofile()
    need = args.idle_latency_conns + 200
    if args.only in (None, "idle") and nofile < need:
        note(
            f"RLIMIT_NOFILE could only be raised to {nofile}: holding "
            f"{nofile - 200} idle connections instead of {args.idle_latency_conns}"
        )
        args.idle_latency_conns = nofile - 200
        args.idle_conns = min(args.idle_conns, args.idle_latency_conns)
    logdir = tempfile.mkdtemp(prefix="smtpbench-")
    pinning = pin_cpus(not args.no_pin)
    note(
        f"servers: {', '.join(args.servers)}; RLIMIT_NOFILE {nofile}; {pinning}; "
        f"server logs in {logdir}"
    )
    # Find out up front which servers start at all.
    servers = []
    for name in args.servers:
        srv = start_server(name, logdir)
        if srv is None:
            continue
        try:
            smoke_test(srv.port)
        except (OSError, BenchError) as e:
            note(
                f"SKIPPING {name}: one 1 KiB message did not go through ({e}); "
                f"server log: {srv.log_tail()}"
            )
        else:
            servers.append(name)
        finally:
            srv.stop()
    if not servers:
        note("no server could be started")
        return 1
    results: dict = {"small": {}, "big": {}, "idle": {}, "servers": servers}
    ncpu = os.cpu_count() or 1
    probe = OtherLoad()
    time.sleep(1)
    others, _ = probe.cpus()
    if others > 0.1:
        note(
            f"WARNING: other processes are keeping {others:.1f} of {ncpu} CPUs "
            "busy: rates and latencies will be low and noisy"
        )
    load = OtherLoad()
    started = time.monotonic()
    if args.only in (None, "small"):
        note("== 1 KiB messages")
        bench_small(args, servers, logdir, results)
    if args.only in (None, "big"):
        note("== big messages")
        bench_big(args, servers, logdir, results)
    if args.only in (None, "idle"):
        note("== idle connections")
        bench_idle(args, servers, logdir, results)
    note(f"== done in {time.monotonic() - started:.0f} s")
    others, steal = load.cpus()
    results["other_load_cpus"] = others
    results["steal_cpus"] = steal
    print()
    print(
        f"{ncpu} CPUs; {pinning}.  Other processes kept {others:.2f} CPUs busy "
        f"on average during the run (hypervisor steal {steal:.2f})."
    )
    if others > 0.1:
        print(
            "The machine was not idle: msgs/s, MiB/s and latencies understate "
            "the servers; CPU-time figures are less affected."
        )
    print()
    print_table(results, servers)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
