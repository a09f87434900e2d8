"""
One big message into a Maildir: how fast, and how much memory the server
needs, when the message streams to disk (issue 12)::

    python benchmarks/streaming.py                 # 1 GiB, and 100 MiB to aiosmtpd
    python benchmarks/streaming.py --quick         # 128 MiB, and 32 MiB
    python benchmarks/streaming.py --size-mib 256 --dir /var/tmp

It measures, one after the other, each server freshly started:

 - the disk: C{size} MiB written in 1 MiB blocks to a file in the same
   directory as the Maildirs, and fsynced: the most a Maildir can take;
 - C{twistd -n smtpd --handler mailbox DIR --size 0} (twisted_smtpd of this
   checkout) with the message sent over DATA, then over BDAT in 1 MiB
   chunks (a fresh server each);
 - aiosmtpd's buffered Mailbox, C{python -m aiosmtpd -n -c
   aiosmtpd.handlers.Mailbox DIR}, over DATA, with a smaller message
   (C{--aiosmtpd-mib}, 100 by default): it holds the message whole, several
   times over.

For each: MiB/s from the start of the message (the 354 reply to DATA, or
the first BDAT) to the final reply, the server's CPU seconds per MiB, its
peak RSS (VmHWM, reset just before the message) and the growth of its RSS
over the message.  The client makes the message on the fly (76-character
lines, one in 16 starting with a dot) and holds at most a few MiB of it.
The stored file is checked (one file in C{new/}, of the message's size plus
the added fields) and removed after each run; the work directory is removed
at the end.

A plain script to run by hand on Linux (it reads C{/proc}); not part of the
test suite.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass

from processes import (
    DEFAULT_TREE,
    RUN_TWISTD_PY,
    Server,
    ServerSpec,
    ServerUnavailable,
    note,
    pin_cpus,
    proc_mem_kib,
    reset_peak_rss,
    stop_all,
)
from servers import HOSTNAME
from smtpclient import BenchError, LineSocket

MiB = 1024 * 1024
#: What the added fields (X-Peer, X-MailFrom, X-RcptTo) may add at most.
FIELDS_SLACK = 512
#: The last line of a reply, complete.
FINAL_LINE = re.compile(rb"^\d{3}(?: [^\r\n]*)?\r\n", re.MULTILINE)
#: The CHUNKING keyword in an EHLO reply.
CHUNKING = re.compile(rb"^250[- ]CHUNKING\b", re.MULTILINE | re.IGNORECASE)
#: BDAT chunks sent before waiting for the oldest one's reply.
BDAT_WINDOW = 4

HEAD = (
    b"From: Sender <sender@client.bench.local>\r\n"
    b"To: Sink <sink@bench.local>\r\n"
    b"Subject: streaming benchmark message\r\n"
    b"Message-ID: <bench.stream@client.bench.local>\r\n"
    b"\r\n"
)


def body_lines() -> list[bytes]:
    """
    1024 lines of 76 random characters and CRLF; one in 16 starts with a dot.
    """
    rnd = random.Random(12)
    alphabet = b"abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789,;:!?-"
    lines = []
    for i in range(1024):
        line = bytes(rnd.choice(alphabet) for _ in range(76))
        lines.append((b"." + line[1:] if i % 16 == 0 else line) + b"\r\n")
    return lines


def message(size: int, stuffed: bool) -> Iterator[bytes]:
    """
    The message of exactly C{size} octets (at least its header section and
    whole lines; the last line may be cut short), in pieces of about 80 KiB,
    dot-stuffed for DATA if C{stuffed} (the size is the unstuffed one).
    """
    lines = body_lines()
    block = b"".join(lines)
    wire = b"".join(b"." + ln if stuffed and ln[:1] == b"." else ln for ln in lines)
    yield HEAD
    left = size - len(HEAD)
    while left >= len(block):
        yield wire
        left -= len(block)
    # The rest: whole lines, then the start of one more, ended by CRLF.
    count, rest = divmod(left, len(lines[0]))
    if rest == 1 and count:
        # No bare LF: one longer line instead.
        count, rest = count - 1, rest + len(lines[0])
    tail = [b"." + ln if stuffed and ln[:1] == b"." else ln for ln in lines[:count]]
    if rest:
        tail.append(b"x" * (rest - 2) + b"\r\n")
    yield b"".join(tail)


def rechunk(pieces: Iterator[bytes], size: int) -> Iterator[bytes]:
    """
    C{pieces} joined and cut again into chunks of C{size} octets (the last
    one shorter).
    """
    buf = bytearray()
    for piece in pieces:
        buf += piece
        while len(buf) >= size:
            yield bytes(buf[:size])
            del buf[:size]
    if buf:
        yield bytes(buf)


@dataclass(frozen=True)
class MaildirSpec(ServerSpec):
    """
    A server that stores every message in the Maildir C{maildir}: twistd's
    C{--handler mailbox}, or aiosmtpd's command line with its Mailbox.
    """

    maildir: str = ""

    def command(self, logdir: str, size: int | None) -> list[str]:
        if self.kind == "aiosmtpd-cli":
            cmd = [sys.executable, "-m", "aiosmtpd", "-n", "-l", "127.0.0.1:0"]
            return cmd + ["-s", "0", "-c", "aiosmtpd.handlers.Mailbox", self.maildir]
        cmd = [sys.executable, RUN_TWISTD_PY, self.tree.path, "-n"]
        cmd += ["--logfile", self.twistd_log(logdir), "smtpd"]
        cmd += ["--handler", "mailbox", "--size", "0", "--hostname", HOSTNAME]
        return cmd + ["--listen", "tcp:0:interface=127.0.0.1", self.maildir]


class Client(LineSocket):
    """
    A blocking client that also reads the EHLO reply.
    """

    def ehlo(self) -> bytes:
        """
        Greet; return the reply to EHLO.
        """
        self.command(b"", b"220")
        self.sock.sendall(b"EHLO client.bench.local\r\n")
        while not FINAL_LINE.search(self.buf):
            data = self.sock.recv(65536)
            if not data:
                raise BenchError("connection lost")
            self.buf += data
        text = self.buf
        self.command(b"", b"250")
        return text

    def envelope(self) -> None:
        self.command(b"MAIL FROM:<sender@client.bench.local>\r\n", b"250")
        self.command(b"RCPT TO:<sink@bench.local>\r\n", b"250")

    def sendData(self, size: int) -> None:
        """
        The message over DATA (after the 354 reply), in 1 MiB writes; wait
        for the final reply.
        """
        for chunk in rechunk(message(size, stuffed=True), MiB):
            self.sock.sendall(chunk)
        self.command(b".\r\n", b"250")

    def sendBdat(self, size: int) -> None:
        """
        The message in BDAT chunks of 1 MiB, a few ahead of their replies.
        """
        waiting = 0
        chunks = rechunk(message(size, stuffed=False), MiB)
        chunk = next(chunks)
        for after in chunks:
            self.sock.sendall(b"BDAT %d\r\n" % len(chunk) + chunk)
            waiting += 1
            if waiting >= BDAT_WINDOW:
                self.command(b"", b"250")
                waiting -= 1
            chunk = after
        self.sock.sendall(b"BDAT %d LAST\r\n" % len(chunk) + chunk)
        self.command(b"", *[b"250"] * (waiting + 1))


def send(spec: MaildirSpec, how: str, size: int, logdir: str) -> dict:
    """
    Start the server of C{spec}, send it one message of C{size} octets over
    C{how} (C{"DATA"} or C{"BDAT"}), check what it stored and remove it.
    """
    server = Server(spec, logdir)
    try:
        client = Client(server.port, timeout=600)
        try:
            keywords = client.ehlo()
            if how == "BDAT" and not CHUNKING.search(keywords):
                raise BenchError("the server does not offer CHUNKING")
            client.envelope()
            if how == "DATA":
                client.command(b"DATA\r\n", b"354")
            if not reset_peak_rss(server.pid):
                note("  could not reset VmHWM; the peak includes start-up")
            before = proc_mem_kib(server.pid)["VmRSS"]
            cpu0, t0 = server.cpu(), time.monotonic()
            if how == "DATA":
                client.sendData(size)
            else:
                client.sendBdat(size)
            elapsed, cpu = time.monotonic() - t0, server.cpu() - cpu0
            peak = proc_mem_kib(server.pid)["VmHWM"]
            client.command(b"QUIT\r\n", b"221")
        finally:
            client.close()
    finally:
        server.stop()
    check_stored(spec.maildir, size)
    return {
        "MiB/s": size / MiB / elapsed,
        "CPU s/MiB": cpu / (size / MiB),
        "peak RSS MiB": peak / 1024,
        "RSS growth MiB": (peak - before) / 1024,
    }


def check_stored(maildir: str, size: int) -> None:
    """
    Check that C{maildir} holds the one message, of about C{size} octets
    (aiosmtpd's Mailbox stores it with LF line endings, a little smaller);
    then empty it.
    """
    new = os.path.join(maildir, "new")
    names = os.listdir(new)
    try:
        if len(names) != 1:
            raise BenchError(f"{len(names)} files in new/, not 1")
        stored = os.path.getsize(os.path.join(new, names[0]))
        if not size * 0.95 <= stored <= size + FIELDS_SLACK:
            raise BenchError(f"stored {stored} octets for a message of {size}")
    finally:
        for sub in ("new", "tmp", "cur"):
            folder = os.path.join(maildir, sub)
            for name in os.listdir(folder) if os.path.isdir(folder) else ():
                os.unlink(os.path.join(folder, name))


def disk_speed(directory: str, size: int) -> float:
    """
    MiB/s of writing C{size} octets in 1 MiB blocks to a new file in
    C{directory}, fsync included.
    """
    path = os.path.join(directory, "disk-speed")
    block = os.urandom(MiB)
    t0 = time.monotonic()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        for _ in range(size // MiB):
            view = memoryview(block)
            while view:
                view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
        elapsed = time.monotonic() - t0
        os.unlink(path)
    return size / MiB / elapsed


def run(args: argparse.Namespace, work: str) -> list[tuple[str, dict]]:
    """
    Every measurement, as rows of the table.
    """
    rows = []
    size, aio = args.size_mib * MiB, args.aiosmtpd_mib * MiB
    note(f"disk: writing {args.size_mib} MiB with fsync")
    rows.append(
        (
            f"disk, write + fsync, {args.size_mib} MiB",
            {
                "MiB/s": disk_speed(work, size),
            },
        )
    )
    runs = [
        ("twistd", "DATA", size),
        ("twistd", "BDAT", size),
        ("aiosmtpd-cli", "DATA", aio),
    ]
    for kind, how, octets in runs:
        label = {"twistd": "twistd smtpd mailbox", "aiosmtpd-cli": "aiosmtpd Mailbox"}
        name = f"{label[kind]}, {how}, {octets // MiB} MiB"
        note(name)
        tree = DEFAULT_TREE if kind == "twistd" else None
        maildir = os.path.join(work, f"maildir-{kind}")
        spec = MaildirSpec(kind, tree, maildir=maildir)
        try:
            rows.append((name, send(spec, how, octets, work)))
        except (BenchError, ServerUnavailable, OSError) as e:
            note(f"  {name}: failed: {e}")
            rows.append((name, {}))
    return rows


COLUMNS = ("MiB/s", "CPU s/MiB", "peak RSS MiB", "RSS growth MiB")


def table(rows: list[tuple[str, dict]]) -> str:
    width = max(len(name) for name, _ in rows)
    lines = [" " * width + "".join(f"{c:>16}" for c in COLUMNS)]
    for name, figures in rows:
        cells = "".join(
            f"{figures[c]:>16.3f}" if c in figures else f"{'-':>16}" for c in COLUMNS
        )
        lines.append(f"{name:<{width}}{cells}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, help="message size (default 1024)")
    parser.add_argument(
        "--aiosmtpd-mib", type=int, help="message size for aiosmtpd (default 100)"
    )
    parser.add_argument("--quick", action="store_true", help="128 MiB and 32 MiB")
    parser.add_argument("--dir", help="where the Maildirs go (default: a new /tmp dir)")
    parser.add_argument("--no-pin", action="store_true", help="do not pin CPUs")
    args = parser.parse_args()
    if args.size_mib is None:
        args.size_mib = 128 if args.quick else 1024
    if args.aiosmtpd_mib is None:
        args.aiosmtpd_mib = 32 if args.quick else 100
    note(pin_cpus(not args.no_pin))
    work = tempfile.mkdtemp(prefix="smtpstream-", dir=args.dir)
    note(f"work directory: {work}")
    try:
        rows = run(args, work)
    finally:
        stop_all()
        shutil.rmtree(work, ignore_errors=True)
    print(table(rows))


if __name__ == "__main__":
    main()
