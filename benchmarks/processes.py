"""
The server processes that C{bench.py} measures, and what C{/proc} says about
them.

A server is a I{kind} (how it is run: L{KINDS}) and, for the kinds that run
twisted_smtpd (L{TREE_KINDS}), the source I{tree} whose twisted_smtpd it
runs.  Each is started as its own process, on a CPU of its own when the
machine has two, and stopped when done with (L{stop_all} stops any left
over, after an error or Ctrl-C).
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from dataclasses import dataclass

from servers import CHECKOUT, HOSTNAME, IMPORT_REPORT

PACKAGE = "twisted_smtpd"
PLUGIN = "twisted.plugins.twisted_smtpd_plugin"
#: How run_twistd.py reports the plugin dropin it imported.
PLUGIN_REPORT = f"{PLUGIN} imported from "

HERE = os.path.dirname(os.path.abspath(__file__))
SERVERS_PY = os.path.join(HERE, "servers.py")
RUN_TWISTD_PY = os.path.join(HERE, "run_twistd.py")
CLK_TCK = os.sysconf("SC_CLK_TCK")

#: Every kind of server, in the order of the table.
KINDS = (
    "twisted_smtpd",
    "twistd",
    "twistd-warn",
    "aiosmtpd",
    "aiosmtpd-cli",
    "twistedmail",
    "bare",
)
#: The kinds that run twisted_smtpd, once per source tree.
TREE_KINDS = ("twisted_smtpd", "twistd", "twistd-warn")
#: The kinds that run twistd, and the options of smtpd each adds.
TWISTD_KINDS = {"twistd": [], "twistd-warn": ["--log-level", "warn"]}
#: Short names for the table's headings.
SHORT = {
    "twisted_smtpd": "tsmtpd",
    "twistd": "twistd",
    "twistd-warn": "tw-warn",
    "aiosmtpd": "aiosmtpd",
    "aiosmtpd-cli": "aio-cli",
    "twistedmail": "tmail",
    "bare": "bare",
}
#: What each kind is, for the output.
DESCRIPTIONS = {
    "twisted_smtpd": "twisted_smtpd.SMTPFactory in servers.py, log at warnings",
    "twistd": "twistd -n --logfile FILE smtpd --handler twisted_smtpd.handlers.Sink",
    "twistd-warn": "the same with --log-level warn (no line per message)",
    "aiosmtpd": "aiosmtpd.smtp.SMTP in servers.py, its logger unconfigured",
    "aiosmtpd-cli": "python -m aiosmtpd -n -c aiosmtpd.handlers.Sink",
    "twistedmail": "twisted.mail.smtp.ESMTP in servers.py, log at warnings",
    "bare": "canned replies from a LineOnlyReceiver in servers.py",
}


def note(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


# --------------------------------------------------------------------------
# Source trees and servers


@dataclass(frozen=True)
class Tree:
    """
    A source tree of twisted_smtpd: a checkout, with C{twisted_smtpd/} and
    C{twisted/plugins/} at its top.

    @ivar label: Its name in the table (C{twistd@LABEL}); empty for the one
        tree used when no C{--tree} is given.
    """

    label: str
    path: str

    def describe(self) -> str:
        """
        The tree's path, and its git commit if it is a git checkout.
        """
        try:
            head = subprocess.run(
                ["git", "-C", self.path, "log", "-1", "--format=%h of %cs"],
                capture_output=True,
                text=True,
                timeout=10,
            ).stdout.strip()
            dirty = subprocess.run(
                ["git", "-C", self.path, "status", "--porcelain", "-uno"],
                capture_output=True,
                text=True,
                timeout=10,
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return self.path
        if not head:
            return self.path
        state = ", with uncommitted changes" if dirty else ""
        return f"{self.path} (git commit {head}{state})"


DEFAULT_TREE = Tree("", CHECKOUT)


@dataclass(frozen=True)
class ServerSpec:
    """
    One server to measure: a kind, and for twisted_smtpd's kinds, a tree.
    """

    kind: str
    tree: Tree | None = None

    @property
    def name(self) -> str:
        if self.tree is None or not self.tree.label:
            return self.kind
        return f"{self.kind}@{self.tree.label}"

    @property
    def short(self) -> str:
        if self.tree is None or not self.tree.label:
            return SHORT[self.kind]
        return f"{SHORT[self.kind]}@{self.tree.label}"

    def command(self, logdir: str, size: int | None) -> list[str]:
        """
        The command line that starts this server, which listens on an
        ephemeral port of 127.0.0.1.

        @param size: The largest message it should accept, or C{None} for
            its default.
        """
        if self.kind in TWISTD_KINDS:
            # twistd's own options (--logfile) come before the plugin's name.
            cmd = [sys.executable, RUN_TWISTD_PY, self.tree.path, "-n"]
            cmd += ["--logfile", self.twistd_log(logdir), "smtpd"]
            cmd += ["--handler", "twisted_smtpd.handlers.Sink"]
            cmd += TWISTD_KINDS[self.kind]
            cmd += ["--listen", "tcp:0:interface=127.0.0.1"]
            cmd += ["--hostname", HOSTNAME]
            return cmd + (["--size", str(size)] if size is not None else [])
        if self.kind == "aiosmtpd-cli":
            cmd = [sys.executable, "-m", "aiosmtpd", "-n"]
            cmd += ["-c", "aiosmtpd.handlers.Sink", "-l", "127.0.0.1:0"]
            return cmd + (["-s", str(size)] if size is not None else [])
        cmd = [sys.executable, SERVERS_PY, self.kind]
        if self.tree is not None:
            cmd += ["--tree", self.tree.path]
        return cmd + (["--size", str(size)] if size is not None else [])

    def announces_port(self) -> bool:
        """
        Whether the server prints its port (those of C{servers.py}); the
        others' port is found in C{/proc}.
        """
        return self.kind not in TWISTD_KINDS and self.kind != "aiosmtpd-cli"

    def twistd_log(self, logdir: str) -> str:
        return os.path.join(logdir, f"{self.name}.twistd.log")

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        if self.tree is not None:
            old = env.get("PYTHONPATH")
            env["PYTHONPATH"] = self.tree.path + (os.pathsep + old if old else "")
        return env


def make_specs(kinds: list[str], trees: list[Tree]) -> list[ServerSpec]:
    """
    The servers to measure: each kind of L{TREE_KINDS} once per tree, the
    others once, in the order of L{KINDS}.
    """
    specs = []
    for kind in KINDS:
        if kind not in kinds:
            continue
        if kind in TREE_KINDS:
            specs += [ServerSpec(kind, tree) for tree in trees]
        else:
            specs.append(ServerSpec(kind))
    return specs


# --------------------------------------------------------------------------
# /proc


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


def proc_cpu_precise(pid: int) -> float | None:
    """
    The time the threads of process C{pid} have run on a CPU so far, in
    seconds to the nanosecond (the first field of each thread's
    C{/proc/PID/task/TID/schedstat}): the same count as C{utime + stime}
    without its rounding to clock ticks, but without the threads that have
    ended.  C{None} if the kernel does not keep it.
    """
    total = 0
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except FileNotFoundError:  # the thread has just ended
            continue
        except (OSError, ValueError, IndexError):
            return None
    return total / 1e9


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


def listening_ports(pid: int) -> list[int]:
    """
    The TCP ports that process C{pid} listens on at 127.0.0.1: the sockets
    among its open files (C{/proc/PID/fd}) that C{/proc/PID/net/tcp} lists
    as listening.
    """
    inodes = set()
    fds = f"/proc/{pid}/fd"
    for fd in os.listdir(fds):
        try:
            target = os.readlink(os.path.join(fds, fd))
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = []
    with open(f"/proc/{pid}/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            address, port = fields[1].split(":")
            # 0A is LISTEN; 0100007F is 127.0.0.1 in the kernel's byte order.
            if fields[3] == "0A" and fields[9] in inodes and address == "0100007F":
                ports.append(int(port, 16))
    return ports


# CPUs to pin the servers and this client to (set by pin_cpus); None: none.
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


# --------------------------------------------------------------------------
# Starting and stopping servers


class ServerUnavailable(Exception):
    pass


#: Every server started and not yet stopped.
LIVE: set[Server] = set()


class Server:
    """
    One running server process.

    @ivar imported: For twisted_smtpd's kinds, the file twisted_smtpd was
        imported from, as the server reported it (checked to be in the
        server's tree).
    """

    START_TIMEOUT = 30.0

    def __init__(self, spec: ServerSpec, logdir: str, size: int | None = None):
        self.spec = spec
        self.name = spec.name
        self.logdir = logdir
        self.logpath = os.path.join(logdir, f"{spec.name}.log")
        self.imported: str | None = None
        rundir = os.path.join(logdir, spec.name)
        os.makedirs(rundir, exist_ok=True)  # its cwd, for twistd.pid
        cmd = spec.command(logdir, size)
        self.log = open(self.logpath, "ab")
        self.log.write(f"--- {' '.join(cmd)}\n".encode())
        self.log.flush()
        self.log_start = self.log.tell()
        announces = spec.announces_port()
        self.proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE if announces else self.log,
            stderr=self.log,
            stdin=subprocess.DEVNULL,
            cwd=rundir,
            env=spec.environment(),
        )
        LIVE.add(self)
        self.pid = self.proc.pid
        self.precise_cpu = proc_cpu_precise(self.pid) is not None
        try:
            if PIN["server"] is not None:
                os.sched_setaffinity(self.pid, {PIN["server"]})
            self.port = self.wait_for_port(announces)
            if spec.tree is not None:
                self.imported = self.check_import()
        except BaseException:
            self.stop()
            raise

    def wait_for_port(self, announced: bool) -> int:
        """
        Wait until the server listens, and return its port.
        """
        if announced:
            ready, _, _ = select.select([self.proc.stdout], [], [], self.START_TIMEOUT)
            line = self.proc.stdout.readline() if ready else b""
            if not line.strip().isdigit():
                raise ServerUnavailable(self.log_tail())
            return int(line)
        deadline = time.monotonic() + self.START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                ports = listening_ports(self.pid)
            except OSError:  # it is exiting
                ports = []
            if ports:
                return ports[0]
            time.sleep(0.05)
        raise ServerUnavailable(
            f"not listening (exit status {self.proc.poll()}): {self.log_tail()}"
        )

    def check_import(self) -> str:
        """
        Make sure that the server imported twisted_smtpd (and, for twistd,
        the plugin dropin, when it says so) from its tree, and return the
        file of twisted_smtpd.  The server says so before it listens.
        """
        with open(self.logpath, "rb") as f:
            f.seek(self.log_start)
            text = f.read().decode(errors="replace")
        tree = os.path.realpath(self.spec.tree.path)
        found = {}
        for line in text.splitlines():
            for module, mark in ((PACKAGE, IMPORT_REPORT), (PLUGIN, PLUGIN_REPORT)):
                if line.startswith(mark):
                    found[module] = os.path.realpath(line[len(mark) :].strip())
        if PACKAGE not in found:
            raise ServerUnavailable("it did not say where twisted_smtpd came from")
        for module, path in found.items():
            if os.path.commonpath([tree, path]) != tree:
                raise ServerUnavailable(
                    f"it imported {module} from {path}, not from the tree {tree}"
                )
        return found[PACKAGE]

    def log_tail(self, lines: int = 5) -> str:
        text = []
        paths = [self.logpath]
        if self.spec.kind in TWISTD_KINDS:
            paths.append(self.spec.twistd_log(self.logdir))
        for path in paths:
            try:
                with open(path, "rb") as f:
                    f.seek(max(0, os.path.getsize(path) - 8192))
                    text += f.read().decode(errors="replace").strip().splitlines()
            except OSError:
                continue
        return " | ".join(text[-lines:])

    def alive(self) -> bool:
        return self.proc.poll() is None

    def cpu(self) -> float:
        """
        The server's CPU time so far, in seconds: precise if the kernel
        says (L{proc_cpu_precise}), else in clock ticks.
        """
        if self.precise_cpu:
            precise = proc_cpu_precise(self.pid)
            if precise is not None:
                return precise
        return proc_cpu_seconds(self.pid)

    def cpu_ticks(self) -> float:
        return proc_cpu_seconds(self.pid)

    def mem(self) -> dict[str, int]:
        return proc_mem_kib(self.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.log.close()
        LIVE.discard(self)


def start_server(spec: ServerSpec, logdir: str, size: int | None = None):
    """
    Start C{spec}'s server; return the L{Server}, or C{None} after saying
    why it could not be started.
    """
    try:
        return Server(spec, logdir, size)
    except ServerUnavailable as e:
        note(f"SKIPPING {spec.name}: its server did not start ({e})")
        return None


def stop_all() -> None:
    """
    Stop every server still running.
    """
    for server in list(LIVE):
        server.stop()
