"""
Compare twisted_smtpd with aiosmtpd, twisted.mail and a bare Twisted
responder as SMTP receivers, and twisted_smtpd from several source trees
with each other.

Run from the checkout::

    python benchmarks/bench.py [--quick] [--only small|big|idle]
                               [--servers twisted_smtpd,twistd,aiosmtpd,...]
                               [--tree base=../old --tree new=.]

Each server runs in its own process (C{processes.py} starts it) on
127.0.0.1, so that its CPU time and memory can be read from C{/proc}; this
process is the load generator.  See C{benchmarks/README.rst} for what each
server and each figure is.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import signal
import statistics
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from processes import (  # noqa: E402
    DEFAULT_TREE,
    DESCRIPTIONS,
    KINDS,
    TWISTD_KINDS,
    OtherLoad,
    Server,
    ServerSpec,
    Tree,
    make_specs,
    note,
    pin_cpus,
    reset_peak_rss,
    start_server,
    stop_all,
)
from report import print_report  # noqa: E402
from servers import raise_nofile  # noqa: E402
from smtpclient import (  # noqa: E402
    DATA,
    EHLO,
    MAIL,
    QUIT,
    RCPT,
    BenchError,
    Conn,
    LineSocket,
    make_big_message,
    open_conn,
    open_idle,
    percentile,
    probe_latency,
    quit_conn,
    smoke_test,
    transaction,
)

MiB = 1024 * 1024
#: The label of this checkout when one --tree is given to compare it with.
THIS = "this"


# --------------------------------------------------------------------------
# 1 KiB messages


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
    ticks0, cpu0 = server.cpu_ticks(), server.cpu()
    times0, t0 = os.times(), time.perf_counter()
    run.deadline = time.monotonic() + time_limit
    go.set()
    done, pending = await asyncio.wait(tasks, timeout=time_limit + 15)
    t1, times1 = time.perf_counter(), os.times()
    cpu1, ticks1 = server.cpu(), server.cpu_ticks()
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
        "cpu_s": cpu1 - cpu0,
        "cpu_s_ticks": ticks1 - ticks0,
        "cpu_disagree": disagree(cpu1 - cpu0, ticks1 - ticks0),
    }


def disagree(precise: float, ticks: float) -> bool:
    """
    Whether the precise CPU time of a run (the server's threads' run time in
    C{/proc/PID/task/*/schedstat}) and the whole process's, in clock ticks
    (C{/proc/PID/stat}), differ by more than the ticks' coarseness allows,
    as they would if a thread had ended during the run.
    """
    return abs(precise - ticks) > 0.03 + 0.1 * max(precise, ticks)


def close_loop(loop: asyncio.AbstractEventLoop) -> None:
    """
    Cancel what is left on C{loop} (after an error or Ctrl-C), let the
    connections it holds close, and close it.
    """

    async def settle():
        pending = asyncio.all_tasks() - {asyncio.current_task()}
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        await asyncio.sleep(0.1)

    try:
        loop.run_until_complete(settle())
    finally:
        loop.close()


def scenarios(args) -> list[tuple[str, bool, bool, int]]:
    """
    The 1 KiB scenarios: (key, pipelined, reuse, concurrency).
    """
    out = []
    for pipelined in (False, True):
        for reuse in (True, False):
            for conc in args.concurrency:
                key = (
                    f"{'pipelined' if pipelined else 'lock-step'}, "
                    f"{'reuse' if reuse else 'conn/msg'}, c={conc}"
                )
                out.append((key, pipelined, reuse, conc))
    return out


def bench_small(args, specs: list[ServerSpec], logdir: str, results: dict) -> None:
    """
    Every 1 KiB scenario, each server in turn in each round, every server
    being one process that lives through all the scenarios.
    """
    procs: dict[str, Server] = {}
    for spec in specs:
        srv = start_server(spec, logdir)
        if srv is not None:
            procs[spec.name] = srv
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
        for key, pipelined, reuse, conc in scenarios(args):
            total = args.messages if reuse else args.conn_messages
            runs: dict[str, list] = {name: [] for name in procs}
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
                        + (" (CPU SOURCES DISAGREE)" if r["cpu_disagree"] else "")
                    )
                    if not srv.alive():
                        note(f"  {name} DIED: {srv.log_tail()}")
            results["small"][key] = {
                name: summarize_small(rs) for name, rs in runs.items() if rs
            }
    finally:
        close_loop(loop)
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
        "cpu_disagree": any(r["cpu_disagree"] for r in runs),
    }


# --------------------------------------------------------------------------
# Big messages, over a blocking socket


def big_run(
    spec: ServerSpec, message: tuple[bytes, int], logdir: str, time_limit: float
) -> dict | None:
    """
    Send one big message (L{make_big_message}'s C{message}) to a fresh
    server and measure the transfer.
    """
    wire, msg_size = message
    name = spec.name
    srv = start_server(spec, logdir, size=max(2 * msg_size, 64 * MiB))
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


def bench_big(args, specs: list[ServerSpec], logdir: str, results: dict) -> None:
    for size_mib in args.big_sizes:
        key = f"{size_mib} MiB"
        message = make_big_message(size_mib * MiB)
        runs: dict[str, list] = {spec.name: [] for spec in specs}
        for rnd in range(args.rounds):
            for spec in specs:
                r = big_run(spec, message, logdir, args.big_time_limit)
                if r is None:
                    continue
                runs[spec.name].append(r)
                if "mib_per_s" in r:
                    note(
                        f"  big [{key}] round {rnd + 1} {spec.name}: "
                        f"{r['mib_per_s']:.1f} MiB/s, "
                        f"{r['cpu_s_per_mib']:.4f} CPU s/MiB, "
                        f"peak RSS {r['peak_rss_mib']:.0f} MiB "
                        f"(base {r['base_rss_mib']:.0f}, "
                        f"growth {r['growth_x']:.2f}x size)"
                    )
        del message
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


def idle_run(spec: ServerSpec, args, logdir: str) -> dict | None:
    """
    Hold many idle connections to a fresh server: the memory each costs,
    and how long a new client waits with and without them.
    """
    name = spec.name
    srv = start_server(spec, logdir)
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
        close_loop(loop)
        srv.stop()
    return result


def bench_idle(args, specs: list[ServerSpec], logdir: str, results: dict) -> None:
    runs: dict[str, list] = {spec.name: [] for spec in specs}
    for _ in range(args.rounds):
        for spec in specs:
            r = idle_run(spec, args, logdir)
            if r:
                runs[spec.name].append(r)
    for name, rs in runs.items():
        if not rs:
            continue
        summary = {
            k: statistics.median(r[k] for r in rs)
            for k in (
                "kib_per_conn",
                "kib_per_conn_all",
                "p50_ms_0",
                "p99_ms_0",
                "p50_ms_idle",
                "p99_ms_idle",
            )
        }
        summary["conns_measured"] = min(r["conns_measured"] for r in rs)
        summary["held"] = min(r["held"] for r in rs)
        summary["failures"] = sum(r["failures"] for r in rs)
        summary["rounds"] = len(rs)
        results["idle"][name] = summary


# --------------------------------------------------------------------------


def parse_tree(text: str) -> Tree:
    """
    Read a C{--tree} argument: C{LABEL=PATH}, or C{PATH} labelled with the
    directory's name.
    """
    label, sep, path = text.partition("=")
    if not sep:
        label, path = "", text
    path = os.path.realpath(os.path.expanduser(path))
    label = label or os.path.basename(path)
    if not re.fullmatch(r"[A-Za-z0-9._+-]+", label):
        raise argparse.ArgumentTypeError(
            f"tree label {label!r}: use letters, digits and ._+- only"
        )
    if not os.path.isfile(os.path.join(path, "twisted_smtpd", "__init__.py")):
        raise argparse.ArgumentTypeError(f"{path} has no twisted_smtpd/__init__.py")
    return Tree(label, path)


def parse_args(argv):
    p = argparse.ArgumentParser(
        description="Compare twisted_smtpd (from one or more source trees, "
        "in-process and as twistd) with aiosmtpd (in-process and its command "
        "line), twisted.mail and a bare Twisted responder.",
        epilog="kinds of server:\n"
        + "".join(f"  {k:14} {DESCRIPTIONS[k]}\n" for k in KINDS)
        + "\nSee benchmarks/README.rst for what they are and what the figures "
        "mean.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--quick", action="store_true", help="a short run")
    p.add_argument("--only", choices=("small", "big", "idle"), help="run one part only")
    p.add_argument(
        "--servers",
        default=",".join(KINDS),
        help="comma-separated kinds of server (default: all): " + ", ".join(KINDS),
    )
    p.add_argument(
        "--tree",
        action="append",
        type=parse_tree,
        dest="trees",
        metavar="LABEL=PATH",
        help="a source tree (a checkout) to run twisted_smtpd and twistd from, "
        "appearing as twisted_smtpd@LABEL and twistd@LABEL. Given once, the "
        f"tree is compared with the checkout this script is in (@{THIS}); "
        "given several times, those trees are compared with each other, the "
        "first being the base of the ratios between trees and the last the "
        "subject of the ratios to the other servers. Default: only the "
        "checkout this script is in",
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
        "--rounds",
        type=int,
        help="rounds of every scenario, big message and idle test, each "
        "server in turn in each round; the table shows the median "
        "(default 3; quick 1; 5 to compare trees)",
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
    kinds = [s.strip() for s in args.servers.split(",") if s.strip()]
    for s in kinds:
        if s not in KINDS:
            p.error(f"unknown server {s!r}; choose from {', '.join(KINDS)}")
    args.servers = [s for s in KINDS if s in kinds]  # canonical order
    if not args.trees:
        args.trees = [DEFAULT_TREE]
    elif len(args.trees) == 1 and args.trees[0].path != DEFAULT_TREE.path:
        # One tree to compare with this checkout, the subject.
        args.trees.append(Tree(THIS, DEFAULT_TREE.path))
    labels = [t.label for t in args.trees]
    if len(set(labels)) != len(labels):
        p.error(f"--tree labels must differ: {', '.join(labels)}")
    if any(kind in TWISTD_KINDS for kind in args.servers):
        for t in args.trees:
            dropin = os.path.join(
                t.path, "twisted", "plugins", "twisted_smtpd_plugin.py"
            )
            if not os.path.isfile(dropin):
                note(f"{t.path} has no {dropin}: twistd cannot run from it")
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
    if args.rounds < 1:
        p.error("--rounds must be at least 1")
    if args.time_limit is None:
        args.time_limit = 5.0 if q else 20.0
    if args.idle_conns is None:
        args.idle_conns = 2000 if q else 5000
    if args.idle_latency_conns is None:
        args.idle_latency_conns = 4000 if q else 10000
    args.idle_latency_conns = max(args.idle_latency_conns, args.idle_conns)
    # In MiB; each message goes to a fresh server process.
    args.big_sizes = [10, 100]
    args.big_time_limit = 120.0
    args.idle_time_limit = 120.0
    args.probes = 200
    return args


def available(specs: list[ServerSpec], logdir: str, info: dict) -> list[ServerSpec]:
    """
    The servers that start and take one 1 KiB message; for twisted_smtpd's
    kinds, C{info} gets where each imported twisted_smtpd from.
    """
    ok = []
    for spec in specs:
        srv = start_server(spec, logdir)
        if srv is None:
            continue
        try:
            smoke_test(srv.port)
        except (OSError, BenchError) as e:
            note(
                f"SKIPPING {spec.name}: one 1 KiB message did not go through ({e}); "
                f"server log: {srv.log_tail()}"
            )
        else:
            ok.append(spec)
            info[spec.name] = {
                "kind": spec.kind,
                "tree": spec.tree.label if spec.tree else None,
                "tree_path": spec.tree.path if spec.tree else None,
                "imported": srv.imported,
                "command": " ".join(spec.command(logdir, None)),
            }
            if srv.imported:
                note(f"  {spec.name}: twisted_smtpd imported from {srv.imported}")
        finally:
            srv.stop()
    return ok


def run(args) -> int:
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
    specs = make_specs(args.servers, args.trees)
    note(
        f"servers: {', '.join(s.name for s in specs)}; RLIMIT_NOFILE {nofile}; "
        f"{pinning}; server logs in {logdir}"
    )
    trees = [t for t in args.trees if any(s.tree == t for s in specs)]
    for t in trees:
        note(f"tree {t.label or '(this checkout)'}: {t.describe()}")
    info: dict = {}
    specs = available(specs, logdir, info)
    if not specs:
        note("no server could be started")
        return 1
    results: dict = {"small": {}, "big": {}, "idle": {}, "servers": info}
    results["trees"] = {t.label: t.describe() for t in trees}
    results["settings"] = {
        k: getattr(args, k)
        for k in ("quick", "rounds", "messages", "conn_messages", "concurrency")
    }
    results["settings"].update(idle_conns=args.idle_conns, big_sizes=args.big_sizes)
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
        bench_small(args, specs, logdir, results)
    if args.only in (None, "big"):
        note("== big messages")
        bench_big(args, specs, logdir, results)
    if args.only in (None, "idle"):
        note("== idle connections")
        bench_idle(args, specs, logdir, results)
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
    print(f"Rounds: {args.rounds}.  Servers:")
    for spec in specs:
        where = info[spec.name].get("imported")
        where = f"; twisted_smtpd from {where}" if where else ""
        print(f"  {spec.short:14} {DESCRIPTIONS[spec.kind]}{where}")
    for t in trees:
        if t.label:
            print(f"  @{t.label}: {t.describe()}")
    print()
    print_report(results, specs, trees)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2, default=str)
    return 0


def main(argv=None) -> int:
    args = parse_args(argv)

    def terminated(signum, frame):
        note("terminated: stopping the servers")
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, terminated)
    try:
        return run(args)
    except KeyboardInterrupt:
        note("interrupted: stopping the servers")
        return 130
    finally:
        stop_all()


if __name__ == "__main__":
    sys.exit(main())
