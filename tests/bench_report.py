#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""`make bench`, on the host: the table and the plot from the guests' raw figures.

  bench_report.py CONSOLE_LOG [CONSOLE_LOG...] OUTDIR

reads the IPMB-BENCH-JSON line tests/bench.py printed on each guest's console (one boot per
machine: x86_64, ast2600-evb), and writes OUTDIR/results.json (the raw figures, by machine),
OUTDIR/table.txt (printed too: the machines side by side) and OUTDIR/bench.png (matplotlib,
Debian's python3-matplotlib; skipped with a note when it is missing; one row of plots per
machine). Each figure is the median over the rounds of a per-round value, with the spread
[least-greatest] of the rounds; ratios are ipmb.ko over ipmb_dev_int.ko of the same machine
(or over the wire time). A machine whose log has no figures gets "n/a" and the reason.
"""

import json
import os
import statistics
import sys

C, RUST = "ipmb-dev", "ipmb"
MARK = "IPMB-BENCH-JSON: "
# Get Device ID, Get Self Test Results, Get ACPI Power State, Get Device GUID: request 7 bytes,
# response 8 + data (11, 2, 2, 16), addresses included; the bench cycles through the four in
# this order (ipmb-bench's cmds[]), so request i of a path gets response i % 4.
RESPONSE_DATA = (11, 2, 2, 16)
PATHS = (("kernel", "ipmb.ko IPMB_IOC_REQUEST"),
         ("user-ipmb", "ipmb.ko write/poll/read"),
         ("user-ipmb-dev", "ipmb_dev_int write/poll/read"),
         ("ipmi_ipmb", "ipmi_ipmb /dev/ipmi0"))


def load(console):
    """The figures of one guest, or the reason there are none."""
    try:
        with open(console, errors="replace") as f:
            for line in f:
                i = line.find(MARK)
                if i >= 0:
                    return json.loads(line[i + len(MARK):]), None
    except OSError as e:
        return None, f"no log: {e.strerror}"
    return None, f"no {MARK.strip()} line in {console}: the bench did not finish"


def machine_name(res, console):
    """The machine of a log: as bench.py recorded it, else from the log's name."""
    name = os.path.basename(console).removesuffix("bench-console.log").rstrip("-")
    return (res or {}).get("machine") or name or "x86_64"


def summary(values):
    """(median, least, greatest) of per-round values."""
    return statistics.median(values), min(values), max(values)


def fmt(s, scale=1.0, digits=0):
    m, lo, hi = (v * scale for v in s)
    return f"{m:.{digits}f} [{lo:.{digits}f}-{hi:.{digits}f}]"


def wire_us(speed_khz, i):
    """The wire time of exchange i at speed_khz (9 bit times a byte), us."""
    return (7 + 8 + RESPONSE_DATA[i % len(RESPONSE_DATA)]) * 9 * 1000 / speed_khz


def wire_ratios(samples, speed_khz):
    """Each round trip (ns) over the wire time of its own two frames: the exchanges differ
    (17 to 31 bytes), so a median round trip over a mean wire time compares unlike things
    (that gave 0.96x at 100 kHz)."""
    return [v / 1e3 / wire_us(speed_khz, i) for i, v in enumerate(samples)]


W = 36  # the label column
CELL = 23  # a figure with its spread


def about(res):
    """What a machine's figures are."""
    return (f"{len(res['rounds_data'])} rounds (drivers alternate their order); clocksource "
            f"{res['clocksource']}, hrtimer resolution {res['hrtimer_res_ns']:.0f} ns")


class Lines:
    """The table of one machine, as items for render(): ("text", line) (lines.append: the same
    on every machine, or one line per machine), ("head", title) (a section with the drivers'
    columns), ("row", label, ipmb_dev_int.ko summary, ipmb.ko summary, scale, digits, ratio?),
    ("words", label, ipmb_dev_int.ko text, ipmb.ko text), ("cells", label, [text per column])."""

    def __init__(self):
        self.items = []

    def append(self, text):
        self.items.append(("text", text))


def table(res):
    rounds = res["rounds_data"]
    lines = Lines()
    w = W

    def row(label, c, r, scale=1.0, digits=0, ratio=True):
        lines.items.append(("row", label, c, r, scale, digits, ratio))

    def head(title):
        lines.items.append(("head", title))

    # Sections bench.py measured (all, unless run with --only).
    has = set(rounds[0]) if rounds else set()
    if "cost" in has:
        head(f"(a) time in the target callback (hard IRQ), {res['cost_frames']} frames, unpaced, "
             "median event, ns")
        for size in res["sizes"]:
            for key, label in (("byte_ns", f"per byte, {size}-byte frames"),
                               ("stop_ns", f"STOP, {size}-byte frames"),
                               ("frame_ns", f"per frame, {size}-byte (+addr, STOP)")):
                c = summary([r["cost"][f"{C}/{size}"][key] for r in rounds])
                rr = summary([r["cost"][f"{RUST}/{size}"][key] for r in rounds])
                row(label, c, rr, digits=0)
        clock = statistics.median(r["cost"][f"{C}/8"]["clock_ns"] for r in rounds)
        lines.append(f"  (every figure includes one clock read, {clock:.0f} ns at least)")

    if "rate" in has:
        head(f"(b) receive, 32-byte frames, a C reader draining, {res['rate_frames']} frames per "
             f"trial, queues of {res['queue_len']} frames")
        places = {"one-cpu": "load, callbacks and reader on one CPU",
                  "two-cpus": "reader on the other CPU"}
        for place in res["placements"]:
            key = [f"{drv}/{place}" for drv in (C, RUST)]
            lines.append(f"  {places[place]}:")
            row("  highest rate, no loss, frames/s",
                *(summary([r["rate"][k]["search"]["highest"] for r in rounds]) for k in key))
            stops = ["/".join(sorted({r["rate"][k]["search"]["limit"] for r in rounds}))
                     for k in key]
            lines.items.append(("words", "    stopped by (loss or pace)", *stops))
        lines.append(f"  read path alone, {res['readcost_frames']} frames queued first, ns:")
        for field, label in (("read_ns", "  read() of a queued frame"),
                             ("read_empty_ns", "  read() finding none (EAGAIN)"),
                             ("poll_ready_ns", "  poll() finding a frame")):
            row(label, *(summary([r["rate"][f"{drv}/read"][field] for r in rounds])
                         for drv in (C, RUST)))

    if "latency" in has:
        head(f"(c) read() latency, STOP callback to the reader's return, {res['latency_samples']} "
             "per round, us")
        for label, q in (("median", 0.5), ("90th percentile", 0.9)):
            def pick(s, q=q):
                s = sorted(s)
                return s[min(len(s) - 1, int(q * len(s)))]
            c = summary([pick(r["latency"][C]) for r in rounds])
            rr = summary([pick(r["latency"][RUST]) for r in rounds])
            row(label, c, rr, scale=1e-3, digits=1)

    if "rtt" in has:
        lines.append("")
        lines.append(f"(d) request round trip to ipmb-responder on the other adapter, "
                     f"{res['requests']} requests per round and path, median per round, us "
                     "(x wire time: median of each exchange over its own frames' wire time)")
        lines.append(f"  {'':{w}}" + "".join(f"{f'{s} kHz':>26}" for s in res["speeds"]))
        lines.append(f"  {'wire time of the two frames (17-31 bytes)':{w}}"
                     + "".join(f"{f'{wire_us(s, 1):.0f}-{wire_us(s, 3):.0f}':>26}"
                               for s in res["speeds"]))
        for path, label in PATHS:
            cells = []
            for s in res["speeds"]:
                v = summary([statistics.median(r["rtt"][f"{path}/{s}"]) for r in rounds])
                x = summary([statistics.median(wire_ratios(r["rtt"][f"{path}/{s}"], s))
                             for r in rounds])
                cells.append(f"{fmt(v, 1e-3)} ({x[0]:.2f}x)")
            lines.items.append(("cells", label, cells))

    if "teardown" in has:
        head("(e) teardown, us")
        for key, label in (("unbind_ns", "unbind (no file open)"), ("close_ns", "last close()")):
            c = summary([r["teardown"][C][key] for r in rounds])
            rr = summary([r["teardown"][RUST][key] for r in rounds])
            row(label, c, rr, scale=1e-3, digits=1)

    if "memory" in has:
        head("(f) kernel memory (Slab + VmallocUsed of /proc/meminfo), bytes")
        for key, label in (("instance_bytes", "per instance (bound client)"),
                           ("file_bytes", "per open file")):
            c = summary([r["memory"][C][key] for r in rounds])
            rr = summary([r["memory"][RUST][key] for r in rounds])
            row(label, c, rr)
    return lines.items


def render(machines):
    """The table: the figures of each machine side by side. `machines` lists (name, res,
    reason): res is None when the machine has no figures, for the reason given."""
    lines = ["ipmb.ko vs ipmb_dev_int.ko, one boot of the bench kernel per machine, median "
             "[least-greatest] of the rounds; ratio: ipmb.ko / ipmb_dev_int.ko on the same "
             "machine",
             "QEMU TCG -icount shift=0: guest time counts instructions (1 ns each), not the "
             "host's time; ratios compare the drivers, absolute times do not compare machines"]
    for name, res, reason in machines:
        lines.append(f"  {name}: " + (about(res) if res else f"n/a ({reason})"))
    tables = [(name, table(res) if res else None, reason) for name, res, reason in machines]
    order = next((items for _, items, _ in tables if items), [])
    block = 2 * CELL + 8  # a machine's columns: two figures and the ratio

    def mine(items, i, item):
        """This machine's item at the place of `item` (the same bench.py made them all): of
        the same kind, and for a row the same label (a text line may differ)."""
        if items and i < len(items) and items[i][0] == item[0] and \
                (item[0] == "text" or items[i][1] == item[1]):
            return items[i]
        return None

    def missing(reason, width):
        return f"n/a ({reason or 'not measured'})"[:width]

    for i, item in enumerate(order):
        kind, label = item[0], item[1]
        theirs = [(name, mine(items, i, item), reason) for name, items, reason in tables]
        if kind == "text":
            texts = {it[1] for _, it, _ in theirs if it}
            if len(texts) == 1:
                lines.append(label)
            else:
                lines += [f"{it[1]}  [{name}]" for name, it, _ in theirs if it]
        elif kind == "head":
            lines += ["", label,
                      f"  {'':{W}}" + "".join(f"{name:^{block}} |" for name, _, _ in theirs),
                      f"  {'':{W}}" + "".join(f"{'ipmb_dev_int.ko':>{CELL}}{'ipmb.ko':>{CELL}}"
                                              f"{'ratio':>8} |" for _ in theirs)]
        elif kind == "row":
            text = f"  {label:{W}}"
            for name, it, reason in theirs:
                if it is None:
                    text += f"{missing(reason, block):>{block}} |"
                    continue
                _, _, c, r, scale, digits, ratio = it
                rt = f"{r[0] / c[0]:7.2f}x" if ratio and c[0] > 0 else ""
                text += f"{fmt(c, scale, digits):>{CELL}}{fmt(r, scale, digits):>{CELL}}{rt:>8} |"
            lines.append(text)
        elif kind == "words":
            text = f"  {label:{W}}"
            for name, it, reason in theirs:
                text += (f"{it[2]:>{CELL}}{it[3]:>{CELL}}{'':8} |" if it
                         else f"{missing(reason, block):>{block}} |")
            lines.append(text)
        elif kind == "cells":
            lines.append(f"  {label}")
            for name, it, reason in theirs:
                cells = it[2] if it else [missing(reason, 80)]
                lines.append(f"    {name:{W - 2}}" + "".join(f"{c:>26}" for c in cells))
    return "\n".join(lines) + "\n"


def plot(machines, path):
    """One row per machine with figures: round trips over wire time, cost per byte."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "no plot: matplotlib is missing (Debian: python3-matplotlib)"
    shown = [(name, res) for name, res, _ in machines if res]
    fig, axes = plt.subplots(len(shown), 2, figsize=(14, 5.5 * len(shown)), squeeze=False)
    for (name, res), (ax1, ax2) in zip(shown, axes):
        plot_machine(name, res, ax1, ax2)
    fig.suptitle("ipmb bench (QEMU TCG -icount shift=0, bench kernel): 1 ns = 1 instruction")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return f"plot: {path}"


def plot_machine(name, res, ax1, ax2):
    rounds = res["rounds_data"]
    has = set(rounds[0]) if rounds else set()
    if "rtt" in has:
        data, labels = [], []
        for s in res["speeds"]:
            for p, label in PATHS:
                data.append([x for r in rounds for x in wire_ratios(r["rtt"][f"{p}/{s}"], s)])
                labels.append(f"{label}\n{s} kHz")
        ax1.boxplot(data, vert=False, labels=labels, showfliers=True)
        ax1.axvline(1.0, color="grey", linestyle="--")
        ax1.set_xscale("log")
        ax1.set_xlabel("round trip / wire time of the two frames")
        ax1.set_title(f"{name}: request round trip, all samples")
        ax1.tick_params(axis="y", labelsize=7)
    else:
        ax1.set_axis_off()
        ax1.set_title(f"{name}: request round trip not measured (bench.py --only)")
    if "cost" not in has:
        ax2.set_axis_off()
        ax2.set_title(f"{name}: cost per byte not measured (bench.py --only)")
        return
    width = 0.38
    for i, (drv, module) in enumerate(((C, "ipmb_dev_int.ko"), (RUST, "ipmb.ko"))):
        med, lo, hi = [], [], []
        for size in res["sizes"]:
            m, a, b = summary([r["cost"][f"{drv}/{size}"]["byte_ns"] for r in rounds])
            med.append(m)
            lo.append(m - a)
            hi.append(b - m)
        xs = [j + (i - 0.5) * width for j in range(len(res["sizes"]))]
        ax2.bar(xs, med, width, yerr=[lo, hi], capsize=4, label=module)
    ax2.set_xticks(range(len(res["sizes"])))
    ax2.set_xticklabels([f"{s}-byte frames" for s in res["sizes"]])
    ax2.set_ylabel("ns per byte in the target callback (median, range of rounds)")
    ax2.set_title(f"{name}: interrupt-context cost per byte")
    ax2.legend()


def main():
    if len(sys.argv) < 3:
        sys.exit("usage: bench_report.py CONSOLE_LOG [CONSOLE_LOG...] OUTDIR")
    *logs, out = sys.argv[1:]
    machines = []
    for log in logs:
        res, reason = load(log)
        machines.append((machine_name(res, log), res, reason))
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump({name: res for name, res, _ in machines if res}, f, indent=1)
    text = render(machines)
    with open(os.path.join(out, "table.txt"), "w") as f:
        f.write(text)
    print(text, end="")
    if any(res for _, res, _ in machines):
        print(plot(machines, os.path.join(out, "bench.png")))
    print(f"table: {os.path.join(out, 'table.txt')}")
    return 0 if all(res for _, res, _ in machines) else 1


if __name__ == "__main__":
    sys.exit(main())
