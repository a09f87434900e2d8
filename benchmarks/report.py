"""
The tables that C{bench.py} prints at the end of a run: the figures of every
server, then the ratios between them.

Ratios are given for the servers that run twisted_smtpd (the I{subjects}):

 - between source trees, each kind from each tree against the same kind from
   the first tree (C{twistd new/base}), when more than one tree is measured;
 - against the other servers (aiosmtpd, aiosmtpd-cli, twistedmail, bare),
   for the subjects from the last tree given, and twistd against
   twisted_smtpd, which shows what twistd and its log add.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field

from processes import SHORT, TREE_KINDS, TWISTD_KINDS, ServerSpec, Tree


@dataclass
class Metric:
    """
    One row of figures: a value per server name.

    @ivar better: C{"higher"} or C{"lower"}: which way is better; C{None}
        for a row that gets no ratios (a figure that depends on the load
        generator as much as on the server, or one that a ratio of another
        row already says).
    @ivar floor: Below this, a value is too close to zero to divide by.
    """

    label: str
    values: dict[str, float]
    digits: int
    better: str | None = "lower"
    floor: float = 0.0


@dataclass
class Group:
    title: str
    metrics: list[Metric] = field(default_factory=list)


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


def _pick(per: dict, names: list[str], key: str) -> dict[str, float]:
    return {n: per.get(n, {}).get(key) for n in names}


def groups(results: dict, names: list[str]) -> list[tuple[str, list[Group]]]:
    """
    The rows of figures, as sections of groups of metrics.
    """
    sections = []
    small = []
    for key, per in results["small"].items():
        small.append(
            Group(
                key,
                [
                    Metric("msgs/s", _pick(per, names, "msgs_per_s"), 0, None),
                    Metric("server CPU ms/msg", _pick(per, names, "cpu_ms_per_msg"), 3),
                    Metric(
                        "client CPU %", _pick(per, names, "client_cpu_pct"), 0, None
                    ),
                ],
            )
        )
    if small:
        sections.append(("1 KiB messages (median of rounds)", small))
    big = []
    for key, per in results["big"].items():
        big.append(
            Group(
                key,
                [
                    Metric(
                        "MiB/s, 354 to 250", _pick(per, names, "mib_per_s"), 1, "higher"
                    ),
                    Metric("server CPU s/MiB", _pick(per, names, "cpu_s_per_mib"), 4),
                    Metric(
                        "peak server RSS MiB (VmHWM)",
                        _pick(per, names, "peak_rss_mib"),
                        0,
                        None,
                    ),
                    Metric(
                        "RSS growth / message size",
                        _pick(per, names, "growth_x"),
                        2,
                        floor=0.1,
                    ),
                ],
            )
        )
    if big:
        sections.append(("big messages (fresh server, median of rounds)", big))
    per = results["idle"]
    if per:
        held = min(r["held"] for r in per.values())
        measured = next(iter(per.values()))["conns_measured"]
        idle = Group(
            "fresh server",
            [
                Metric(
                    f"KiB of server RSS per idle conn ({measured})",
                    _pick(per, names, "kib_per_conn"),
                    2,
                ),
                Metric(
                    "new client p50 ms, no idle conns", _pick(per, names, "p50_ms_0"), 2
                ),
                Metric(
                    "new client p99 ms, no idle conns",
                    _pick(per, names, "p99_ms_0"),
                    2,
                    None,
                ),
                Metric(
                    f"new client p50 ms, {held} idle conns",
                    _pick(per, names, "p50_ms_idle"),
                    2,
                ),
                Metric(
                    f"new client p99 ms, {held} idle conns",
                    _pick(per, names, "p99_ms_idle"),
                    2,
                    None,
                ),
            ],
        )
        sections.append(("idle connections (median of rounds)", [idle]))
    return sections


def write_table(headers: list[str], rows: list, out) -> None:
    """
    Write C{rows} under C{headers}, the first column left-aligned and the
    others right-aligned; a row C{None} is a blank line and a row of one
    cell a heading.
    """
    widths = [0] * len(headers)
    for row in [headers] + [r for r in rows if r and len(r) > 1]:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))

    def line(cells):
        return "  ".join(
            c.ljust(widths[i]) if i == 0 else c.rjust(widths[i])
            for i, c in enumerate(cells)
        ).rstrip()

    head = line(headers)
    out.write(head + "\n" + "-" * len(head) + "\n")
    for row in rows:
        if row is None:
            out.write("\n")
        elif len(row) == 1:
            out.write(row[0] + "\n")
        else:
            out.write(line(row) + "\n")


def figures_table(sections, specs: list[ServerSpec], failures, out) -> None:
    names = [s.name for s in specs]
    rows: list = []
    for title, section in sections:
        rows += [None, [title]]
        for group in section:
            rows.append([group.title])
            for m in group.metrics:
                rows.append(
                    ["  " + m.label] + [fmt(m.values.get(n), m.digits) for n in names]
                )
    rows += [None, ["correctness"]]
    rows.append(
        ["  unexpected replies / lost conns"] + [str(failures[n]) for n in names]
    )
    write_table(["figures"] + [s.short for s in specs], rows, out)


def tree_ratios_table(sections, specs: list[ServerSpec], trees: list[Tree], out):
    """
    Each twisted_smtpd kind from each later tree against the first tree.
    """
    first = trees[0]
    pairs = []
    for kind in TREE_KINDS:
        for tree in trees[1:]:
            new, base = ServerSpec(kind, tree), ServerSpec(kind, first)
            if new in specs and base in specs:
                pairs.append((f"{SHORT[kind]} {tree.label}/{first.label}", new, base))
    if not pairs:
        return
    rows: list = []
    for title, section in sections:
        rows += [None, [title]]
        for group in section:
            rows.append([group.title])
            for m in group.metrics:
                if m.better is None:
                    continue
                rows.append(
                    [f"  {m.label} ({m.better} is better)"]
                    + [
                        ratio(m.values.get(new.name), m.values.get(base.name), m.floor)
                        for _, new, base in pairs
                    ]
                )
    out.write(
        f"\nSource trees: each figure of the later tree over the same kind's "
        f"from {first.label!r}\n"
        "(near 1.00x: the same cost; the machine's noise is several percent)\n\n"
    )
    write_table(["ratio"] + [p[0] for p in pairs], rows, out)


def reference_ratios_table(sections, specs: list[ServerSpec], tree: Tree, out):
    """
    The twisted_smtpd kinds from C{tree} against the other servers.
    """
    subjects = [s for s in specs if s.tree == tree and s.kind in TREE_KINDS]
    references = [s for s in specs if s.tree is None]
    quiet = ServerSpec("twisted_smtpd", tree)
    show_quiet = quiet in specs and any(
        ServerSpec(kind, tree) in specs for kind in TWISTD_KINDS
    )
    columns = ([quiet] if show_quiet else []) + references
    if not subjects or not columns:
        return
    rows: list = []
    for title, section in sections:
        rows += [None, [title]]
        for group in section:
            rows.append([group.title])
            for m in group.metrics:
                if m.better is None:
                    continue
                for i, subject in enumerate(subjects):
                    label = f"  {m.label} ({m.better} is better)" if i == 0 else ""
                    cells = [
                        "-"
                        if ref == subject
                        or ref == quiet
                        and subject.kind not in TWISTD_KINDS
                        else ratio(
                            m.values.get(subject.name), m.values.get(ref.name), m.floor
                        )
                        for ref in columns
                    ]
                    rows.append([label, subject.short] + cells)
    out.write(
        "\nThe twisted_smtpd servers against the others: each row's server's "
        "figure over\neach column's (with CPU, memory and latency, below "
        "1.00x is better; with rates, above)\n\n"
    )
    write_table(["ratio", "server"] + ["/" + c.short for c in columns], rows, out)


def print_report(
    results: dict, specs: list[ServerSpec], trees: list[Tree], out=sys.stdout
) -> None:
    names = [s.name for s in specs]
    sections = groups(results, names)
    failures = {n: 0 for n in names}
    for part in ("small", "big"):
        for per in results[part].values():
            for n in names:
                failures[n] += per.get(n, {}).get("failures", 0)
    for n in names:
        failures[n] += results["idle"].get(n, {}).get("failures", 0)
    figures_table(sections, specs, failures, out)
    if len(trees) > 1:
        tree_ratios_table(sections, specs, trees, out)
    reference_ratios_table(sections, specs, trees[-1], out)
    out.flush()
