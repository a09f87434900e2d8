"""
A private RabbitMQ node for integration tests: its own node name, its own
loopback ports (AMQP, Erlang distribution and epmd, so that nothing is
shared with a system node), its database and logs under a temporary
directory. Needs the Debian package C{rabbitmq-server}, whose wrapper
scripts run the node as the C{rabbitmq} user when started as root.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from twisted.trial.unittest import SkipTest

from tests.test_tls import commandLineTool

#: Seconds a C{rabbitmqctl} command may take.
CTL_TIMEOUT = 30.0

#: Seconds the node may take to start.
STARTUP_TIMEOUT = 40.0


def _freePorts(count: int) -> list[int]:
    """
    Ports free on loopback now, by binding port 0 (a small race, acceptable
    for tests).
    """
    sockets = []
    for _ in range(count):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        sockets.append(s)
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


class RabbitNode:
    """
    One private RabbitMQ node, started by L{start} and removed by L{stop}.

    @ivar port: Its AMQP port on 127.0.0.1.
    @ivar url: The C{amqp://} URL of its default vhost for C{guest}.
    """

    def __init__(self) -> None:
        self.server = commandLineTool("rabbitmq-server")
        self.ctlPath = commandLineTool("rabbitmqctl", "rabbitmq-server")
        self.directory = Path(tempfile.mkdtemp(prefix="twisted-smtpd-rabbitmq-"))
        # The node runs as the rabbitmq user: it must write there.
        self.directory.chmod(0o777)
        plugins = self.directory / "plugins"
        plugins.write_text("[].\n")
        plugins.chmod(0o644)
        self.port, distPort, self.epmdPort = _freePorts(3)
        self.node = f"twistedsmtpd{os.getpid()}@localhost"
        self.env = dict(
            os.environ,
            RABBITMQ_NODENAME=self.node,
            RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
            RABBITMQ_NODE_PORT=str(self.port),
            RABBITMQ_DIST_PORT=str(distPort),
            ERL_EPMD_PORT=str(self.epmdPort),
            ERL_EPMD_ADDRESS="127.0.0.1",
            RABBITMQ_MNESIA_BASE=str(self.directory / "mnesia"),
            RABBITMQ_LOG_BASE=str(self.directory / "log"),
            RABBITMQ_PID_FILE=str(self.directory / "pid"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(plugins),
        )
        self._stopped = False
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}/%2F"

    def _run(self, *args: str, timeout: float = CTL_TIMEOUT) -> str:
        done = subprocess.run(
            args,
            env=self.env,
            capture_output=True,
            timeout=timeout,
            check=True,
            cwd=self.directory,
        )
        return done.stdout.decode("utf-8", "replace")

    def ctl(self, *args: str) -> str:
        """
        Run C{rabbitmqctl -n NODE ARGS...}; return what it printed.
        """
        return self._run(self.ctlPath, "-n", self.node, *args)

    def start(self) -> None:
        """
        Start the node and wait until it accepts connections; skip the test
        (after cleaning up) when it cannot start.
        """
        try:
            self._run(self.server, "-detached")
            self._awaitStartup()
        except (OSError, subprocess.SubprocessError) as e:
            log = self.logTail()
            self.stop()
            reason = f"rabbitmq-server could not start ({e}); {log}"
            if os.environ.get("CI"):
                raise AssertionError(reason)
            raise SkipTest(reason)

    def _awaitStartup(self) -> None:
        """
        Wait for the node to run: C{-detached} returns before the node
        registers with epmd, so C{await_startup} fails at first.
        """
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            try:
                self.ctl("await_startup")
                return
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def stopApp(self) -> None:
        """
        Stop the broker application, keeping the node: connections are
        closed and the AMQP port stops listening.
        """
        self.ctl("stop_app")

    def startApp(self) -> None:
        """
        Start the broker application again after L{stopApp}.
        """
        self.ctl("start_app")
        self.ctl("await_startup")

    def restart(self) -> None:
        """
        Stop the whole node and start it again on the same database and
        ports, as an operator's restart would.
        """
        self.ctl("stop")
        self._run(self.server, "-detached")
        self._awaitStartup()

    def logTail(self) -> str:
        """
        The end of the node's logs, for a failure message.
        """
        texts = []
        for path in sorted((self.directory / "log").glob("*.log")):
            texts.append(path.read_text(errors="replace")[-2000:])
        return "\n".join(texts) or "(no log)"

    def _killEpmd(self) -> None:
        """
        Stop the node's own epmd, which refuses while the node that just
        stopped is still registered: try again for a few seconds.
        """
        epmd = shutil.which("epmd") or "/usr/lib/erlang/bin/epmd"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                done = subprocess.run(
                    [epmd, "-port", str(self.epmdPort), "-kill"],
                    capture_output=True,
                    timeout=CTL_TIMEOUT,
                )
            except (OSError, subprocess.SubprocessError):
                return
            said = done.stdout + done.stderr
            # "Killed", or "Cannot connect" when it is gone already; else
            # "Killing not allowed - living nodes in database".
            if b"Killed" in said or b"Cannot connect" in said:
                return
            time.sleep(0.2)

    def stop(self) -> None:
        """
        Stop the node and its epmd, and remove the directory; calling it
        again does nothing.
        """
        if self._stopped:
            return
        self._stopped = True
        try:
            self.ctl("stop")
        except (OSError, subprocess.SubprocessError):
            pass
        self._killEpmd()
        shutil.rmtree(self.directory, ignore_errors=True)
