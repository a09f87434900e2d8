"""
What running behind HAProxy costs (run by hand, not in CI):

    python benchmarks/cluster.py [--messages 2000] [--threads 4]
        [--per-connection 1] [--handlers sink,amqp]

For each handler (C{sink}, and C{amqp} to a private RabbitMQ node started
here), two set-ups of C{twistd -n smtpd}, each sent the same 1 KiB messages:

C{direct}
    one worker, reached by the client directly;
C{haproxy}
    two workers with C{--proxy-protocol 5 --proxy-protocol-trusted
    127.0.0.1} behind one HAProxy (C{send-proxy-v2}, health checks), as in
    C{docs/deployment.rst}.

It prints the CPU time (user plus system, from C{/proc/PID/stat}, before
and after the messages) per message of the workers together and of HAProxy
alone, and the wall time. Everything runs on loopback; the figures are for
comparing the two set-ups on one machine, not for sizing.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [HERE, ROOT]

from processes import proc_cpu_seconds  # noqa: E402
from smtpclient import DATA, EHLO, MAIL, QUIT, RCPT, SMALL_WIRE, LineSocket  # noqa: E402

from tests.test_cluster import freePort, runInThreads  # noqa: E402
from tests.test_proxyphase import HAPROXY_CONFIG  # noqa: E402

TWISTD = [
    sys.executable,
    "-c",
    "import sys; sys.argv[0] = 'twistd'; from twisted.scripts.twistd import run; run()",
]

#: The health checks of each server line, as in the example haproxy.cfg.
CHECK = "check inter 2s fall 2 rise 2"


def waitListening(port: int, process: subprocess.Popen, timeout: float = 60) -> None:
    """
    Wait until something accepts connections on 127.0.0.1:C{port}.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"process {process.args[:3]} exited")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"nothing listens on {port}")


class Setup:
    """
    Worker processes, and HAProxy in front of them when asked, started in
    C{directory}; L{stop} ends them all.
    """

    def __init__(self, directory: str, handler: list[str], workers: int, proxied: bool):
        self.directory = directory
        self.processes: list[subprocess.Popen] = []
        self.workers: list[subprocess.Popen] = []
        self.haproxy: subprocess.Popen | None = None
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            [ROOT, *filter(None, [env.get("PYTHONPATH")])]
        )
        ports = [freePort() for _ in range(workers)]
        for port in ports:
            options = ["--listen", f"tcp:{port}:interface=127.0.0.1"]
            if proxied:
                options += [
                    "--proxy-protocol",
                    "5",
                    "--proxy-protocol-trusted",
                    "127.0.0.1",
                ]
            log = open(os.path.join(directory, f"worker-{port}.log"), "wb")
            worker = subprocess.Popen(
                [*TWISTD, "-n", "--pidfile=", "smtpd", *options, "--handler", *handler],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=directory,
            )
            self.processes.append(worker)
            self.workers.append(worker)
        # Listening is not enough for amqp: wait for its queue.
        for port, worker in zip(ports, self.workers, strict=True):
            waitListening(port, worker)
            if handler[0] == "amqp":
                self.awaitLog(port, b"AMQP publisher ready")
        self.port = ports[0]
        if proxied:
            self.startHAProxy(ports)

    def awaitLog(self, port: int, text: bytes, timeout: float = 60) -> None:
        """
        Wait until the log of the worker on C{port} says C{text}.
        """
        path = os.path.join(self.directory, f"worker-{port}.log")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with open(path, "rb") as f:
                if text in f.read():
                    return
            time.sleep(0.2)
        raise SystemExit(f"worker on {port} never said {text!r}")

    def startHAProxy(self, ports: list[int]) -> None:
        """
        Start HAProxy on a new port in front of the workers on C{ports}.
        """
        frontend = socket.socket()
        frontend.bind(("127.0.0.1", 0))
        frontend.listen(1024)
        # The template's one server line, with the others after it.
        others = "".join(
            f"\n    server w{port} 127.0.0.1:{port} send-proxy-v2 {CHECK}"
            for port in ports[1:]
        )
        config = os.path.join(self.directory, "haproxy.cfg")
        with open(config, "w") as f:
            f.write(
                HAPROXY_CONFIG.replace("maxconn 64", "maxconn 4096").format(
                    fd=frontend.fileno(),
                    backend=ports[0],
                    sendProxy=f"send-proxy-v2 {CHECK}{others}",
                )
            )
        self.haproxy = subprocess.Popen(
            ["haproxy", "-f", config, "-db"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=[frontend.fileno()],
        )
        self.processes.append(self.haproxy)
        self.port = frontend.getsockname()[1]
        frontend.close()
        waitListening(self.port, self.haproxy)

    def cpu(self) -> tuple[float, float]:
        """
        CPU seconds used so far by the workers together, and by HAProxy.
        """
        workers = sum(proc_cpu_seconds(w.pid) for w in self.workers)
        haproxy = proc_cpu_seconds(self.haproxy.pid) if self.haproxy else 0.0
        return workers, haproxy

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(40)
            except subprocess.TimeoutExpired:
                process.kill()


def send(port: int, messages: int, threads: int, perConnection: int) -> None:
    """
    Send C{messages} 1 KiB messages to 127.0.0.1:C{port} from C{threads}
    threads, C{perConnection} messages per connection, checking each reply.
    """
    left = [messages]
    lock = threading.Lock()

    def take() -> int:
        with lock:
            n = min(perConnection, left[0])
            left[0] -= n
            return n

    def sender() -> None:
        while n := take():
            conn = LineSocket(port, timeout=30)
            try:
                conn.command(b"", b"220")
                conn.command(EHLO, b"250")
                for _ in range(n):
                    conn.command(MAIL + RCPT + DATA, b"250", b"250", b"354")
                    conn.command(SMALL_WIRE, b"250")
                conn.command(QUIT, b"221")
            finally:
                conn.close()

    runInThreads(sender, threads)


def measure(setup: Setup, args: argparse.Namespace) -> dict[str, float]:
    """
    Warm up, then send the messages and return the CPU per message (ms) of
    the workers and HAProxy, and the wall time (s).
    """
    send(setup.port, min(200, args.messages), args.threads, args.per_connection)
    workers, haproxy = setup.cpu()
    started = time.monotonic()
    send(setup.port, args.messages, args.threads, args.per_connection)
    wall = time.monotonic() - started
    workersAfter, haproxyAfter = setup.cpu()
    return {
        "workers": 1000 * (workersAfter - workers) / args.messages,
        "haproxy": 1000 * (haproxyAfter - haproxy) / args.messages,
        "wall": wall,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--per-connection", type=int, default=1)
    parser.add_argument("--handlers", default="sink,amqp")
    args = parser.parse_args(argv)
    handlers = args.handlers.split(",")
    node = None
    rows = []
    with tempfile.TemporaryDirectory(prefix="cluster-bench-") as directory:
        os.chmod(directory, 0o755)
        try:
            for name in handlers:
                handler = ["sink"]
                if name == "amqp":
                    if node is None:
                        from tests._rabbitmq import RabbitNode

                        node = RabbitNode()
                        node.start()
                    handler = ["amqp", node.url, f"bench-{uuid.uuid4().hex}"]
                for label, workers, proxied in (
                    ("direct", 1, False),
                    ("haproxy", 2, True),
                ):
                    where = os.path.join(directory, f"{name}-{label}")
                    os.mkdir(where)
                    setup = Setup(where, handler, workers, proxied)
                    try:
                        rows.append((name, label, workers, measure(setup, args)))
                    finally:
                        setup.stop()
        finally:
            if node is not None:
                node.stop()
    print(
        f"{args.messages} messages of 1 KiB, {args.threads} client threads,"
        f" {args.per_connection} message(s) per connection"
    )
    print(
        f"{'handler':8} {'set-up':9} {'workers':>7} {'workers ms/msg':>15}"
        f" {'haproxy ms/msg':>15} {'total ms/msg':>13} {'wall s':>7}"
    )
    for name, label, workers, figures in rows:
        total = figures["workers"] + figures["haproxy"]
        print(
            f"{name:8} {label:9} {workers:>7} {figures['workers']:>15.3f}"
            f" {figures['haproxy']:>15.3f} {total:>13.3f} {figures['wall']:>7.2f}"
        )


if __name__ == "__main__":
    main()
