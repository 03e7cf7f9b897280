#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""`make bench`, inside the guest: ipmb.ko against ipmb_dev_int.ko, same boot, same client.

Runs on the bench kernel (no KASAN, lockdep, kmemleak; tests/kernel/bench.fragment) of x86 or
the AST2600 under QEMU's instruction counting (tests/qemu/run.py: -icount shift=0; on x86 a
1 GHz TSC given with tsc_early_khz= tsc=reliable, on ARM the generic timer): it prints the
clocksource and the hrtimer
resolution, and refuses to measure on jiffies. The traffic comes from the virtual bus's
kernel-side load source (tests/vbus/load.rs), the measuring from a C program
(tests/bench/ipmb-bench.c): Python only sets things up and collects. One client, ipmb-dev at
0x20 on adapter 0 (described by firmware, with i2c-protocol, so that the C driver sends IPMB
frames too), is bound to each driver in turn; rounds alternate the drivers' order. The raw
figures go out as one JSON line (IPMB-BENCH-JSON), which tests/bench_report.py turns into the
table and the plot on the host.

(d)'s requester (ipmb-bench, every path, and ipmi_ipmb's transmit thread for /dev/ipmi0) and
ipmb-responder run on one CPU (RTT_CPU). On a real system they are two machines: what one side
does after its frame's STOP (the requester's return from sending and its going to wait, the
responder's going back to poll) overlaps the other side's work and the wire, and is not part
of the round trip. In the guest every vCPU's instructions advance the one clock (-icount), and
TCG runs the vCPUs in turn, each until it idles: on two CPUs the side whose transfer just ended
(its vCPU takes the STOP's interrupt) ran that trailing work first, on the other side's
critical path, and unpinned the scheduler chose one CPU in some rounds and two in others. On
one CPU the side a STOP concerns runs first (its wake-up comes from the target backend's STOP
callback, before the wire wakes the master), and the other side's trailing work runs while it
waits for the wire, as on two machines. --stages shows it: the requester's thread runs
only after the responder has started its response, and the responder's after the
requester has returned.
"""

import argparse
import glob
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "e2e"))
import lib  # noqa: E402

BMC, SAT = lib.BMC, lib.SAT
C_DRIVER, RUST_DRIVER = "ipmb-dev", "ipmb"
DRIVERS = (C_DRIVER, RUST_DRIVER)
ROUNDS = 5
LOAD = lib.VBUS_LOAD
RUN, STATS, TRANSFERS = f"{LOAD}/run", f"{LOAD}/stats", f"{LOAD}/transfers"
# Wire ports (not I2C adapter numbers): the client is on port 0, the load comes from port 1.
CLIENT_PORT, LOAD_PORT = 0, 1
IPMI_PORT = 2  # (d): the ipmi_ipmb client's port; the responder is on LOAD_PORT
SIZES = (8, 32, 240)
COST_FRAMES = 300
# (b): frames per trial, 39 times either driver's queue (QUEUE_LEN), so that a queue that only
# absorbs a burst adds at most 1/39 to a rate found without loss.
RATE_FRAMES = 10000
QUEUE_LEN = 256  # ipmb_dev_int's REQUEST_QUEUE_MAX_LEN (fixed); ipmb.ko's queue_len (default)
RTT_CPU = 0  # (d): the CPU of the requester and the responder (see the docstring)
# (b)'s placements: the CPU of the load (whose irq_work runs the target callbacks) and the
# reader's. Unpinned, the scheduler put the reader beside the load in some runs and not in
# others, which is why the unpaced row did not repeat.
PLACEMENTS = {"one-cpu": (0, 0), "two-cpus": (0, 1)}
LADDER_START, LADDER_STEP, BISECTIONS = 20000, 1.25, 5  # (b)'s search, frames/s
READCOST_FRAMES = 200  # (b)'s read() path from a queue filled beforehand: fewer than QUEUE_LEN
PACED = 0.99  # a trial counts only if the load kept this share of the offered rate
LATENCY_SAMPLES = 100
SPEEDS = (100, 400, 1000)
REQUESTS = 16  # per round and path: 4 per command, under the 64 per 5 s a seq allows
MEM_INSTANCES, MEM_FILES = 4, 200

BENCH = None
# The sections of a round, by their key in the JSON: (a), (b), (c), (e), (f), (d).
SECTIONS = ("cost", "rate", "latency", "teardown", "memory", "rtt")


def say(text=""):
    print(text, flush=True)


def bench(*args, cpus=None):
    """Runs ipmb-bench, with its writer and reader pinned to cpus (writer, reader) if given;
    returns its "key value" lines as a dict (samples: a list)."""
    env = dict(os.environ)
    if cpus is not None:
        env.update(IPMB_BENCH_WRITER_CPU=str(cpus[0]), IPMB_BENCH_READER_CPU=str(cpus[1]))
    p = subprocess.run([BENCH, *map(str, args)], capture_output=True, text=True, timeout=600,
                       env=env)
    if p.returncode != 0:
        raise AssertionError(f"ipmb-bench {' '.join(map(str, args))}: {p.stderr.strip()}")
    out = {}
    for line in p.stdout.splitlines():
        k, _, v = line.partition(" ")
        out[k] = [int(x) for x in v.split()] if k in ("samples", "starts") else int(v)
    return out


def hist_median(hist, bucket_ns):
    """The median of a histogram of `bucket_ns` buckets, at the bucket's middle (its value for
    1 ns buckets), in ns."""
    total, seen = sum(hist.values()), 0
    for b in sorted(hist):
        seen += hist[b]
        if 2 * seen >= total:
            return b * bucket_ns + (bucket_ns - 1) / 2
    return 0.0


def reset():
    with open(STATS, "w") as f:
        f.write("0")


def ipmb_frame(size, seq):
    """A request to the BMC of `size` bytes in all (address included), for a cmd nobody
    registered: it goes to read() with either driver."""
    return lib.frame(BMC, 0x06, SAT, seq % 64, 0x30, bytes(size - 7))


def run_cmd(count, gap_ns, frames):
    """The load source's command: frames without their address byte, in hex."""
    return f"{LOAD_PORT} 0x{BMC >> 1:x} {count} {gap_ns} " + " ".join(f[1:].hex() for f in frames)


def clock_check():
    cs = lib.read("/sys/devices/system/clocksource/clocksource0/current_clocksource")
    res = time.clock_getres(time.CLOCK_MONOTONIC)
    say(f"clocksource: {cs}; hrtimer resolution (CLOCK_MONOTONIC): {res * 1e9:.0f} ns")
    with open("/proc/cmdline") as f:
        say(f"kernel command line: {f.read().strip()}")
    return cs, res


def timer_facts():
    """The clock event devices and whether high-resolution mode is on (/proc/timer_list)."""
    facts = []
    with open("/proc/timer_list") as f:
        for line in f:
            t = line.strip()
            if t.startswith(("Clock Event Device:", ".hres_active", "max_delta_ns:",
                             "min_delta_ns:", "mode:", "event_handler:", "Tick Device:")):
                facts.append(t)
    return facts


def interrupts(names=("LOC", "IWI", "RES", "CAL", "TLB", "0:")):
    """Per-CPU counts of some rows of /proc/interrupts."""
    out = {}
    with open("/proc/interrupts") as f:
        for line in f:
            k, _, rest = line.strip().partition(":")
            if k + ":" in names or k in names:
                out[k] = [int(x) for x in rest.split()[:2]]
    return out


def percentiles(samples):
    """Median, 10th and 90th percentile of a list."""
    v = sorted(samples)
    return v[len(v) // 2], v[len(v) // 10], v[len(v) * 9 // 10]


def drain_once(inst, count, frames, writer=None, reader=None, env_extra=None):
    """One drain run of `count` transfers with optional CPU pinning; returns the microseconds
    per transfer, the CPUs, and the interrupts it cost."""
    env = dict(os.environ)
    for k, v in (("IPMB_BENCH_WRITER_CPU", writer), ("IPMB_BENCH_READER_CPU", reader)):
        env.pop(k, None)
        if v is not None:
            env[k] = str(v)
    i0 = interrupts()
    reset()
    p = subprocess.run([BENCH, "drain", inst.dev, RUN, run_cmd(count, 0, frames)],
                       capture_output=True, text=True, timeout=600, env=env)
    i1 = interrupts()
    d = dict(line.split() for line in p.stdout.splitlines())
    s = lib.load_stats()
    dt = s["run_end_ns"] - s["run_start_ns"]
    diff = {k: [b - a for a, b in zip(i0[k], i1[k])] for k in i0 if k in i1}
    return dt / count / 1e3, d, diff


def probe(inst):
    """What a transfer of the test bus waits for: the timer facts, sleeps, and the load
    source's transfers with and without a reader, pinned or not, with the interrupts they
    cost."""
    for t in timer_facts():
        say(f"probe: {t}")
    for us in (50, 500):
        med, lo, hi = percentiles(bench("sleep", 200, us)["samples"])
        say(f"probe: clock_nanosleep {us} us: median {med / 1e3:.0f} us, "
            f"10% {lo / 1e3:.0f}, 90% {hi / 1e3:.0f}")
    frames = [ipmb_frame(32, i) for i in range(8)]
    # delay_us=1 makes the wire start each transfer with its hrtimer (as every transfer did
    # before the master queued the delivery itself).
    for label, params in (("queued by the master", {}), ("hrtimer, delay_us=1", {"delay_us": 1}),
                          ("paced, speed_khz=1000", {"speed_khz": 1000})):
        for k, v in params.items():
            lib.vbus_param(k, v)
        for writer, reader in ((0, 1), (1, 0), (None, None), (None, None)):
            us, d, diff = drain_once(inst, 40, frames, writer, reader)
            say(f"probe: {label}, writer CPU {writer} reader CPU {reader}: {us:.0f} us per "
                f"transfer; read {d.get('read')}, ended on writer {d.get('writer_cpu')} "
                f"reader {d.get('reader_cpu')}; interrupts {diff}")
        for k in params:
            lib.vbus_param(k, 0)


def cost(inst, order):
    """(a) cost in the target callback, one round."""
    out = {"cost": {}}
    for drv in order:
        inst.rebind(drv)
        for size in SIZES:
            frames = [ipmb_frame(size, i) for i in range(8)]
            reset()
            d = bench("drain", inst.dev, RUN, run_cmd(COST_FRAMES, 0, frames))
            s = lib.load_stats()
            n = s["stop"][0]
            byte, addr, stop = (hist_median(s[f"hist_{k}"], s["bucket_ns"])
                                for k in ("byte", "address", "stop"))
            out["cost"][f"{drv}/{size}"] = {
                # Medians: a host that deschedules the emulated CPU inflates a few events by
                # milliseconds, which would dominate means.
                "byte_ns": byte, "stop_ns": stop, "address_ns": addr,
                "frame_ns": addr + byte * (size - 1) + stop,
                "byte_mean_ns": s["byte"][1] / max(s["byte"][0], 1),
                "frame_mean_ns": (s["address"][1] + s["byte"][1] + s["stop"][1]) / max(n, 1),
                "byte_max_ns": s["byte"][3], "stop_max_ns": s["stop"][3],
                "read": d["read"], "sent": s["run_ok"], "clock_ns": s["clock_ns"],
            }
    return out


def rate_trial(inst, rate, cpus):
    """(b) one trial: RATE_FRAMES 32-byte frames offered at `rate` frames/s (0: unpaced), the
    load and the C reader on `cpus`. Lost: sent minus read, so that the C driver's silent
    drops count, plus the transfers the bus failed (NAKed)."""
    frames = [ipmb_frame(32, i) for i in range(8)]
    reset()
    gap = 10**9 // rate if rate else 0
    d = bench("drain", inst.dev, RUN, run_cmd(RATE_FRAMES, gap, frames), cpus=cpus)
    s = lib.load_stats()
    span = max(d["last_read_ns"], s["run_end_ns"]) - s["run_start_ns"]
    return {
        "rate": rate, "offered": RATE_FRAMES / ((s["run_end_ns"] - s["run_start_ns"]) / 1e9),
        "accepted": d["read"] / (span / 1e9), "read": d["read"], "sent": s["run_ok"],
        "nak": s["run_failed"], "lost": RATE_FRAMES - d["read"],
    }


def rate_search(inst, cpus):
    """(b) the highest offered rate without loss, with the load and the reader on `cpus`: up a
    ladder (LADDER_STEP apart) to the first rate with loss, then BISECTIONS halvings of the
    last step. A rate counts as taken if nothing was lost and the load kept its pace (PACED);
    `limit` says what stopped the search there: frames lost ("loss"), or the load falling
    behind its pace with nothing lost ("pace": the CPUs are full)."""
    trials = []

    def taken(rate):
        t = rate_trial(inst, rate, cpus)
        trials.append(t)
        return t["lost"] == 0 and t["offered"] >= PACED * rate

    lo, hi, rate = 0, None, LADDER_START
    while hi is None:
        if taken(rate):
            lo, rate = rate, int(rate * LADDER_STEP)
        else:
            hi = rate
    for _ in range(BISECTIONS):
        mid = (lo + hi) // 2
        if taken(mid):
            lo = mid
        else:
            hi = mid
    best = max((t for t in trials if t["rate"] == lo), key=lambda t: t["offered"], default=None)
    above = [t for t in trials if t["rate"] > lo]
    return {
        "highest": best["offered"] if best else 0.0, "highest_nominal": lo,
        "limit": "loss" if any(t["lost"] for t in above) else "pace", "trials": trials,
    }


def read_cost(inst):
    """(b) the read path alone: READCOST_FRAMES frames queued with nobody reading, then read()
    one by one (no wake-up, no sleep); medians in ns."""
    frames = [ipmb_frame(32, i) for i in range(8)]
    d = bench("readcost", inst.dev, RUN, run_cmd(READCOST_FRAMES, 0, frames))
    v = sorted(d["samples"])
    return {"read_ns": v[len(v) // 2] if v else 0, "reads": len(v),
            **{k: d[k] for k in ("poll_ready_ns", "read_empty_ns", "poll_empty_ns")}}


def rate(inst, order):
    """(b) receive throughput, one round: per driver the read path alone, and per placement
    the search for the highest rate without loss.

    No unpaced run: its figures did not repeat. Unpaced, the load's task never sleeps, so the
    reader drains only when the scheduler lets it: on the load's CPU when its wake-up preempts
    the load (or not), on the other CPU when QEMU switches to that CPU (under -icount one
    emulated CPU runs at a time). Unpinned, the reader sat on either CPU from run to run."""
    out = {"rate": {}}
    for drv in order:
        inst.rebind(drv)
        out["rate"][f"{drv}/read"] = read_cost(inst)
        for place, cpus in PLACEMENTS.items():
            out["rate"][f"{drv}/{place}"] = {"search": rate_search(inst, cpus)}
    return out


def latency(inst, order):
    """(c) STOP on the wire to read()'s return, one round: the samples per driver."""
    out = {}
    cmd = run_cmd(1, 0, [ipmb_frame(32, 0)])
    for drv in order:
        inst.rebind(drv)
        out[drv] = bench("latency", inst.dev, RUN, STATS, LATENCY_SAMPLES, cmd)["samples"]
    return out


def teardown(inst, order):
    """(e) unbind (no file open) and last close, one round."""
    out = {}
    for drv in order:
        inst.rebind(drv)
        close = bench("close", inst.dev)["close_ns"]
        unbind = bench("write", f"/sys/bus/i2c/drivers/{drv}/unbind", inst.client)["write_ns"]
        out[drv] = {"unbind_ns": unbind, "close_ns": close}
    return out


def kernel_memory_kb():
    """Slab and vmalloc memory in use, kB (/proc/meminfo)."""
    with open("/proc/meminfo") as f:
        m = {k.rstrip(":"): int(v) for k, v, *_ in (line.split() for line in f)}
    return m["Slab"] + m["VmallocUsed"]


def memory(inst, extra, order):
    """(f) memory per instance (binding MEM_INSTANCES clients) and per open file, one round."""
    out = {}
    for drv in order:
        for e in extra:
            e.unbind() if e.driver() else None
        time.sleep(0.2)
        before = kernel_memory_kb()
        for e in extra:
            e.rebind(drv)
        time.sleep(0.2)
        per_instance = (kernel_memory_kb() - before) * 1024 / len(extra)
        inst.rebind(drv)
        before = kernel_memory_kb()
        fds = [inst.open(os.O_RDWR) for _ in range(MEM_FILES)]
        per_file = (kernel_memory_kb() - before) * 1024 / MEM_FILES
        for fd in fds:
            os.close(fd)
        for e in extra:
            e.unbind()
        out[drv] = {"instance_bytes": per_instance, "file_bytes": per_file}
    return out


def ipmi_device():
    devs = sorted(glob.glob("/dev/ipmi[0-9]*"))
    return devs[0] if devs else None


# (d) --stages: the stages of a round trip, from the request's start (ipmb-bench's clock) and
# the wire's record of both transfers (tests/vbus/load.rs `transfers`): name, from, to.
STAGES = (("call", "t0", "rq.enter"),          # the requester's path to the bus
          ("rq_lock", "rq.enter", "rq.locked"),  # the wire's bus lock
          ("rq_start", "rq.locked", "rq.first"),  # set-up to the first event
          ("rq_wire", "rq.first", "rq.stop"),    # wire time of the request
          ("turn", "rq.stop", "rs.enter"),       # the responder: wake-up, receive, respond
          ("rs_lock", "rs.enter", "rs.locked"),  # the responder waits for the bus
          ("rs_start", "rs.locked", "rs.first"),
          ("rs_wire", "rs.first", "rs.stop"),    # wire time of the response
          ("back", "rs.stop", "t1"),             # the requester's wake-up and return
          # off the critical path (overlapping the stages above):
          ("rq_woken", "rq.stop", "rq.woken"), ("rq_tail", "rq.stop", "rq.exit"),
          ("rs_woken", "rs.stop", "rs.woken"), ("rs_tail", "rs.stop", "rs.exit"))
TRACE_KEYS = ("port", "enter", "locked", "first", "stop", "woken", "exit")


def kthreads(prefix):
    """The pids of the kernel threads whose name starts with `prefix`."""
    pids = []
    for d in glob.glob("/proc/[0-9]*/comm"):
        try:
            with open(d) as f:
                if f.read().startswith(prefix):
                    pids.append(int(d.split("/")[2]))
        except OSError:
            pass
    return pids


def set_transfers(on):
    """Starts ("1", cleared first) or stops ("0") the wire's record of the transfers."""
    with open(TRANSFERS, "w") as f:
        f.write(on)


def stages(out, rq_port, rs_port):
    """The stages (STAGES) of each request of ipmb-bench's output `out`, from the wire's record
    of the transfers: a dict of lists of ns."""
    with open(TRANSFERS) as f:
        trace = [dict(zip(TRACE_KEYS, map(int, line.split()))) for line in f]
    res = {name: [] for name, _, _ in STAGES}
    for t0, rtt in zip(out["starts"], out["samples"]):
        rq = next((t for t in trace if t["port"] == rq_port and t["enter"] >= t0), None)
        rs = rq and next((t for t in trace if t["port"] == rs_port
                          and t["enter"] >= rq["stop"]), None)
        if not rs:
            continue
        at = {"t0": t0, "t1": t0 + rtt}
        at.update({f"rq.{k}": v for k, v in rq.items()})
        at.update({f"rs.{k}": v for k, v in rs.items()})
        for name, a, b in STAGES:
            res[name].append(at[b] - at[a])
    return res


def round_trips(inst, ipmi_client, resp_dev, r, trace=False):
    """(d) request round trips at each bus speed, one round: samples per path (with `trace`,
    also each request's stages, under "stages/<path>/<speed>")."""
    out = {}
    paths = ["kernel", "user-ipmb", "user-ipmb-dev", "ipmi_ipmb"]
    if r % 2:
        paths.reverse()
    for speed in SPEEDS:
        lib.vbus_param("speed_khz", speed)
        for path in paths:
            if path == "ipmi_ipmb":
                if inst.driver():
                    inst.unbind()
                ipmi_client.rebind("ipmi-ipmb")
                dev = lib.wait_for(ipmi_device, "/dev/ipmiN", timeout=30)
                # Its requests go out from its own thread: part of the requester's side.
                for pid in kthreads("kipmb"):
                    os.sched_setaffinity(pid, {RTT_CPU})
                rq_port = IPMI_PORT
                cmd = ("req-ipmi", dev, REQUESTS)
            else:
                drv = C_DRIVER if path == "user-ipmb-dev" else RUST_DRIVER
                if ipmi_client.driver():
                    ipmi_client.unbind()
                inst.rebind(drv)
                rq_port = CLIENT_PORT
                if path == "kernel":
                    cmd = ("req-kernel", inst.dev, f"0x{SAT:x}", REQUESTS)
                else:
                    seq0 = (r * len(SPEEDS) + SPEEDS.index(speed)) * REQUESTS
                    cmd = ("req-user", inst.dev, f"0x{SAT:x}", REQUESTS, seq0)
            if trace:
                set_transfers("1")
            res = bench(*cmd, cpus=(RTT_CPU, RTT_CPU))
            if trace:
                set_transfers("0")
                out[f"stages/{path}/{speed}"] = stages(res, rq_port, LOAD_PORT)
            if path == "ipmi_ipmb":
                ipmi_client.unbind()
            out[f"{path}/{speed}"] = res["samples"]
    lib.vbus_param("speed_khz", 0)
    return out


def say_stages(rtt):
    """Prints the median of each stage of each path and speed of one round of (d)."""
    for key, st in rtt.items():
        if key.startswith("stages/") and st["call"]:
            meds = " ".join(f"{name}={sorted(v)[len(v) // 2]}" for name, v in st.items())
            say(f"bench: {key[len('stages/'):]} median ns: {meds}")


def main():
    global BENCH, ROUNDS, COST_FRAMES, RATE_FRAMES, LATENCY_SAMPLES, REQUESTS, PLACEMENTS
    ap = argparse.ArgumentParser()
    ap.add_argument("--repo", required=True)
    ap.add_argument("--kdir", required=True)
    ap.add_argument("--modules", default="",
                    help="directory (relative to the repository) of ipmb.ko and "
                         "tests/vbus/i2c_vbus.ko built for the booted kernel")
    ap.add_argument("--probe", action="store_true",
                    help="prints the guest's timer facts and what a bus transfer costs, no bench")
    ap.add_argument("--rate-only", action="store_true",
                    help="(b) alone (receive throughput), for work on it: no table of the rest")
    ap.add_argument("--no-search", action="store_true",
                    help="(b) without the search for the highest rate: the read path alone")
    ap.add_argument("--rounds", type=int, default=ROUNDS, help="rounds kept (after a warm-up)")
    ap.add_argument("--only", default=",".join(SECTIONS),
                    help="comma-separated sections to measure (of %s), for work on one of "
                         "them; tests/bench_report.py leaves the others out" % ",".join(SECTIONS))
    ap.add_argument("--stages", action="store_true",
                    help="(d): also break each round trip down into stages (the wire's record "
                         "of the transfers, tests/vbus/load.rs) and print their medians")
    ap.add_argument("--quick", action="store_true",
                    help="one round of few events: checks the bench works, figures mean nothing")
    args = ap.parse_args()
    only = {"rate"} if args.rate_only else set(args.only.split(","))
    if not only or not only <= set(SECTIONS):
        ap.error(f"--only: sections are {','.join(SECTIONS)}")
    lib.configure(args.repo, args.kdir)
    ROUNDS = args.rounds
    if args.no_search:
        PLACEMENTS = {}
    if args.quick:
        ROUNDS, COST_FRAMES, RATE_FRAMES, LATENCY_SAMPLES, REQUESTS = 1, 20, 300, 5, 4
    BENCH = os.path.join(args.repo, "build", "bench", "ipmb-bench")
    if args.modules:
        base = os.path.join(args.repo, args.modules)
        ours = {"ipmb": os.path.join(base, "ipmb.ko"),
                "i2c_vbus": os.path.join(base, "tests", "vbus", "i2c_vbus.ko"),
                "ipmi_ipmb": os.path.join(base, "build", "ipmi-ipmb", "ipmi_ipmb.ko")}
        kernel_path = lib.module_path
        lib.module_path = lambda name: ours.get(name) or kernel_path(name)

    cs, res = clock_check()
    if cs == "jiffies" or res > 1e-6:
        say("bench: the guest's clock does not resolve microseconds: no figures")
        return 1
    debug = [p for p in ("/proc/lockdep", "/sys/kernel/debug/kmemleak") if os.path.exists(p)]
    if debug:
        say(f"bench: WARNING: a debug kernel ({', '.join(debug)}): figures are not the drivers'")

    a = lib.vbus(8, fw_client=0, fw_i2c_protocol=1)
    lib.insmod("ipmb_dev_int")
    lib.insmod("ipmb", f"max_frame_len=240 queue_len={QUEUE_LEN}")
    lib.insmod("ipmi_devintf")
    lib.insmod("ipmi_ipmb", f"bmcaddr=0x{SAT:x}")
    inst = lib.Instance(a[0], BMC, driver=None, new=False)
    resp = lib.Instance(a[1], SAT, RUST_DRIVER)
    responder = subprocess.Popen([os.path.join(args.repo, "samples", "ipmb-responder"),
                                  resp.dev], stdout=subprocess.PIPE, text=True)
    if responder.stdout.readline().strip() != "ready":
        raise AssertionError("ipmb-responder did not start")
    os.sched_setaffinity(responder.pid, {RTT_CPU})
    # The ipmi_ipmb client: the same 0x20 on adapter 2, bound only while adapter 0's is not
    # (one target per address on the wire).
    if inst.driver():
        inst.unbind()
    with open(f"/sys/bus/i2c/devices/i2c-{a[2]}/new_device", "w") as f:
        f.write(f"ipmi-ipmb 0x{lib.OWN_SLAVE | (BMC >> 1):x}")
    ipmi_client = lib.Instance(a[2], BMC, driver=None, new=False)
    lib.wait_for(ipmi_device, "/dev/ipmiN of ipmi_ipmb", timeout=30)
    ipmi_client.unbind()
    extra = []
    for i in range(MEM_INSTANCES):
        e = lib.Instance(a[3 + i], 0x30 + 2 * i, driver=None)
        if e.driver():
            e.unbind()
        extra.append(e)

    if args.probe:
        inst.rebind(RUST_DRIVER)
        probe(inst)
        responder.terminate()
        responder.wait(10)
        return 0

    result = {"clocksource": cs, "hrtimer_res_ns": res * 1e9, "rounds": ROUNDS,
              "sizes": SIZES, "speeds": SPEEDS, "requests": REQUESTS,
              "cost_frames": COST_FRAMES, "rate_frames": RATE_FRAMES, "queue_len": QUEUE_LEN,
              "placements": PLACEMENTS, "readcost_frames": READCOST_FRAMES,
              "latency_samples": LATENCY_SAMPLES, "rounds_data": []}
    # The guest (tests/qemu/init.sh): x86_64 or ast2600-evb, for tests/bench_report.py.
    result["machine"] = os.environ.get("IPMB_MACHINE", "")
    try:
        # Round 0 warms caches and allocators up; it is not kept.
        for r in range(ROUNDS + 1):
            order = DRIVERS if r % 2 == 0 else DRIVERS[::-1]
            t0 = time.monotonic()
            rd = {}
            if "cost" in only:
                rd.update(cost(inst, order))
            if "rate" in only:
                rd.update(rate(inst, order))
            if "latency" in only:
                rd["latency"] = latency(inst, order)
            if "teardown" in only:
                rd["teardown"] = teardown(inst, order)
            if "memory" in only:
                rd["memory"] = memory(inst, extra, order)
            if "rtt" in only:
                rd["rtt"] = round_trips(inst, ipmi_client, resp.dev, r, args.stages)
                if args.stages:
                    say_stages(rd["rtt"])
            if args.rate_only:
                say(f"bench: round {r}: " + json.dumps(rd))
            say(f"bench: round {r} done in {time.monotonic() - t0:.1f} s"
                + (" (warm-up, not kept)" if r == 0 else ""))
            if r > 0:
                result["rounds_data"].append(rd)
    finally:
        responder.terminate()
        responder.wait(10)
    say("IPMB-BENCH-JSON: " + json.dumps(result, separators=(",", ":")))
    for i in [inst, ipmi_client, *extra]:
        if i.driver():
            i.unbind()
    with open(f"/sys/bus/i2c/devices/i2c-{a[2]}/delete_device", "w") as f:
        f.write(f"0x{lib.OWN_SLAVE | (BMC >> 1):x}")
    lib.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
