#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""`make bench`, on the host: the table and the plot from the guest's raw figures.

  bench_report.py CONSOLE_LOG OUTDIR

reads the IPMB-BENCH-JSON line tests/bench.py printed on the guest's console, and writes
OUTDIR/results.json (the raw figures), OUTDIR/table.txt (printed too) and OUTDIR/bench.png
(matplotlib, Debian's python3-matplotlib; skipped with a note when it is missing). Each figure
is the median over the rounds of a per-round value, with the spread [least-greatest] of the
rounds; ratios are ipmb.ko over ipmb_dev_int.ko (or over the wire time).
"""

import json
import os
import statistics
import sys

C, RUST = "ipmb-dev", "ipmb"
MARK = "IPMB-BENCH-JSON: "
# Get Device ID, Get Self Test Results, Get ACPI Power State, Get Device GUID: request 7 bytes,
# response 8 + data (11, 2, 2, 16), addresses included; the bench cycles through the four.
EXCHANGE_BYTES = statistics.mean(7 + 8 + d for d in (11, 2, 2, 16))
PATHS = (("kernel", "ipmb.ko IPMB_IOC_REQUEST"),
         ("user-ipmb", "ipmb.ko write/poll/read"),
         ("user-ipmb-dev", "ipmb_dev_int write/poll/read"),
         ("ipmi_ipmb", "ipmi_ipmb /dev/ipmi0"))


def load(console):
    with open(console, errors="replace") as f:
        for line in f:
            i = line.find(MARK)
            if i >= 0:
                return json.loads(line[i + len(MARK):])
    sys.exit(f"bench_report: no {MARK.strip()} line in {console} (did the bench run?)")


def summary(values):
    """(median, least, greatest) of per-round values."""
    return statistics.median(values), min(values), max(values)


def fmt(s, scale=1.0, digits=0):
    m, lo, hi = (v * scale for v in s)
    return f"{m:.{digits}f} [{lo:.{digits}f}-{hi:.{digits}f}]"


def wire_us(speed_khz):
    return EXCHANGE_BYTES * 9 * 1000 / speed_khz


def table(res):
    rounds = res["rounds_data"]
    lines = []
    w = 36

    def row(label, c, r, scale=1.0, digits=0, ratio=True):
        rt = f"{r[0] / c[0]:6.2f}x" if ratio and c[0] else ""
        lines.append(f"  {label:{w}}{fmt(c, scale, digits):>24}{fmt(r, scale, digits):>24}  {rt}")

    def head(title):
        lines.append("")
        lines.append(title)
        lines.append(f"  {'':{w}}{'ipmb_dev_int.ko':>24}{'ipmb.ko':>24}  ratio")

    lines.append(f"ipmb.ko vs ipmb_dev_int.ko, one boot of the bench kernel, {len(rounds)} rounds "
                 f"(drivers alternate their order), median [least-greatest] of the rounds")
    lines.append(f"clocksource {res['clocksource']}, hrtimer resolution "
                 f"{res['hrtimer_res_ns']:.0f} ns; QEMU TCG -icount shift=0: guest time counts "
                 "instructions (1 ns each), not the host's time")

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
        lines.append(f"  {'    stopped by (loss or pace)':{w}}{stops[0]:>24}{stops[1]:>24}")
    lines.append(f"  read path alone, {res['readcost_frames']} frames queued first, ns:")
    for field, label in (("read_ns", "  read() of a queued frame"),
                         ("read_empty_ns", "  read() finding none (EAGAIN)"),
                         ("poll_ready_ns", "  poll() finding a frame")):
        row(label, *(summary([r["rate"][f"{drv}/read"][field] for r in rounds])
                     for drv in (C, RUST)))

    head(f"(c) read() latency, STOP callback to the reader's return, {res['latency_samples']} "
         "per round, us")
    for label, q in (("median", 0.5), ("90th percentile", 0.9)):
        def pick(s, q=q):
            s = sorted(s)
            return s[min(len(s) - 1, int(q * len(s)))]
        c = summary([pick(r["latency"][C]) for r in rounds])
        rr = summary([pick(r["latency"][RUST]) for r in rounds])
        row(label, c, rr, scale=1e-3, digits=1)

    lines.append("")
    lines.append(f"(d) request round trip to ipmb-responder on the other adapter, "
                 f"{res['requests']} requests per round and path, median per round, us "
                 "(x wire time)")
    lines.append(f"  {'':{w}}" + "".join(f"{f'{s} kHz':>26}" for s in res["speeds"]))
    lines.append(f"  {'wire time of the two frames':{w}}"
                 + "".join(f"{wire_us(s):>26.0f}" for s in res["speeds"]))
    for path, label in PATHS:
        cells = []
        for s in res["speeds"]:
            v = summary([statistics.median(r["rtt"][f"{path}/{s}"]) for r in rounds])
            cells.append(f"{fmt(v, 1e-3)} ({v[0] / 1e3 / wire_us(s):.2f}x)")
        lines.append(f"  {label:{w}}" + "".join(f"{c:>26}" for c in cells))

    head("(e) teardown, us")
    for key, label in (("unbind_ns", "unbind (no file open)"), ("close_ns", "last close()")):
        c = summary([r["teardown"][C][key] for r in rounds])
        rr = summary([r["teardown"][RUST][key] for r in rounds])
        row(label, c, rr, scale=1e-3, digits=1)

    head("(f) kernel memory (Slab + VmallocUsed of /proc/meminfo), bytes")
    for key, label in (("instance_bytes", "per instance (bound client)"),
                       ("file_bytes", "per open file")):
        c = summary([r["memory"][C][key] for r in rounds])
        rr = summary([r["memory"][RUST][key] for r in rounds])
        row(label, c, rr)
    return "\n".join(lines) + "\n"


def plot(res, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "no plot: matplotlib is missing (Debian: python3-matplotlib)"
    rounds = res["rounds_data"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(14, 5.5))
    data, labels = [], []
    for s in res["speeds"]:
        for p, label in PATHS:
            data.append([v / 1e3 / wire_us(s) for r in rounds for v in r["rtt"][f"{p}/{s}"]])
            labels.append(f"{label}\n{s} kHz")
    ax1.boxplot(data, vert=False, labels=labels, showfliers=True)
    ax1.axvline(1.0, color="grey", linestyle="--")
    ax1.set_xscale("log")
    ax1.set_xlabel("round trip / wire time of the two frames")
    ax1.set_title("request round trip, all samples")
    ax1.tick_params(axis="y", labelsize=7)
    width = 0.38
    for i, (drv, name) in enumerate(((C, "ipmb_dev_int.ko"), (RUST, "ipmb.ko"))):
        med, lo, hi = [], [], []
        for size in res["sizes"]:
            m, a, b = summary([r["cost"][f"{drv}/{size}"]["byte_ns"] for r in rounds])
            med.append(m)
            lo.append(m - a)
            hi.append(b - m)
        xs = [j + (i - 0.5) * width for j in range(len(res["sizes"]))]
        ax2.bar(xs, med, width, yerr=[lo, hi], capsize=4, label=name)
    ax2.set_xticks(range(len(res["sizes"])))
    ax2.set_xticklabels([f"{s}-byte frames" for s in res["sizes"]])
    ax2.set_ylabel("ns per byte in the target callback (median, range of rounds)")
    ax2.set_title("interrupt-context cost per byte")
    ax2.legend()
    fig.suptitle("ipmb bench (QEMU TCG -icount shift=0, bench kernel): 1 ns = 1 instruction")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return f"plot: {path}"


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: bench_report.py CONSOLE_LOG OUTDIR")
    res = load(sys.argv[1])
    out = sys.argv[2]
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(res, f, indent=1)
    text = table(res)
    with open(os.path.join(out, "table.txt"), "w") as f:
        f.write(text)
    print(text, end="")
    print(plot(res, os.path.join(out, "bench.png")))
    print(f"table: {os.path.join(out, 'table.txt')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
