# SPDX-License-Identifier: GPL-2.0
"""The soak: traffic of every kind, random bus faults, unbind/bind and rmmod/insmod cycles,
and an exact account of every frame and request of every instance.

Three ipmb.ko nodes (0x20, 0x72, 0x40) and a fourth adapter without one (raw frames, through
i2c-dev) share the virtual bus, which injects random faults (tests/vbus/fault.rs: NAK,
arbitration loss, no STOP, a corrupted byte, delays). For the whole run, forked processes do
at once, on every node: blocking read()s, registered responders (RECEIVE + RESPOND),
synchronous REQUESTs (answered, timed out, NAKed, too long, broadcast), asynchronous SUBMIT
bursts, a REQUEST that waits 60 s for a responder that never answers, write() bursts into a
16-frame read() queue and into a full inbox, and malformed raw frames (the workers run at
nice 10: the cycles go first). Meanwhile the main process unbinds and rebinds one node at a
time, and unloads and reloads ipmb.ko, at the pace that reaches 1000 and 200 cycles in
600 s; each rmmod is first tried with the files open (it must fail), then the three nodes
are unbound at once, which wakes the blocked callers with ENODEV; the module goes once the
last file is closed. It prints the median and longest time of each kind of cycle and step.

An instance is one bind of one node. When it dies, ipmb.ko logs its final counters and what it
still held (rust/instance/account.rs); the bus counts the frames it delivered to each target
(frames_to_<N>). Each instance must balance:
  wire      frames delivered by the bus = rx_frames + every drop counter + a frame cut by
            unbind; "lost" is the difference and must be 0
  read()    frames queued for read() (rx_frames - rx_routed - rsp_matched) = frames the
            readers got + frames still queued at unbind
  requests  req_sent = rsp_matched + req_timeouts + req_bus_errors + req_aborted + requests
            still waiting at unbind (aborted by it)
and the userspace side of each instance (what the processes counted) is printed beside it.
The workers are in soak_workers.py.
"""

import contextlib
import ctypes
import errno
import os
import platform
import random
import re
import shutil
import statistics
import threading
import time

import lib
from soak_workers import (DROPS, FAULT_PERMILLE, NODES, PARAMS, SYSCALLS, Shared, async_requester,
                          blocker, fork, injector, reader, responder, sync_requester, writer)


class Kmsg:
    """Reads new kernel log records."""

    def __init__(self):
        self.fd = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
        os.lseek(self.fd, 0, os.SEEK_END)

    def records(self):
        out = []
        while True:
            try:
                rec = os.read(self.fd, 8192).decode(errors="replace")
            except BlockingIOError:
                return out
            except OSError as e:
                if e.errno == errno.EPIPE:   # overwritten records: go on with the next
                    continue
                raise
            out.append(rec.split(";", 1)[-1].split("\n", 1)[0])


FINAL = re.compile(r"ipmb-(\d+): final account:(.*)$")


def final_accounts(records):
    """The final accounts among kernel log records: {adapter: {counter: value}}."""
    out = {}
    for rec in records:
        m = FINAL.search(rec)
        if m:
            out[int(m.group(1))] = dict(
                (k, int(v)) for k, v in (kv.split("=") for kv in m.group(2).split()))
    return out


def wire_total(final):
    """What an instance's final account says the bus delivered to it: every frame it took,
    dropped, or had cut by unbind."""
    return final["rx_frames"] + sum(final[k] for k in DROPS) + final["rx_partial"]


def frames_to(port):
    return int(lib.read(f"/sys/module/i2c_vbus/parameters/frames_to_{port}"))


def cpu_times():
    """(busy, all) jiffies of every CPU since boot, from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]  # idle, iowait
    return sum(v) - idle, sum(v)


def blocked_in_syscall(pids):
    """How many of the processes sleep in read() or ioctl()."""
    nrs = SYSCALLS.get(platform.machine(), ())
    n = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/syscall") as f:
                first = f.read().split()[0]
        except (OSError, IndexError):
            continue
        if first.isdigit() and int(first) in nrs:
            n += 1
    return n


class Soak:
    def __init__(self, seconds, pace, required, limit, out):
        self.seconds, self.pace, self.required = seconds, pace, required
        self.limit, self.out = limit, out
        self.sh = Shared()
        self.accounts = []      # one per dead instance
        self.start_frames = {}  # node -> frames_to at bind
        self.unbinds = self.unbind_cycles = self.module_cycles = self.rmmod_refused = 0
        self.blocked_at_unbind = []
        self.reader_blocked_at_unbind = []
        self.pending_reports = []
        self.times = {}
        self.finals = {}        # adapter -> final account logged, not yet booked

    def say(self, text):
        self.out(text)

    def setup(self):
        adapters = lib.vbus(len(NODES) + 1)
        # Loaded 200 times: from memory rather than over 9p.
        self.ko = os.path.join(os.environ.get("TMPDIR", "/tmp"), "soak-ipmb.ko")
        shutil.copy(lib.module_path("ipmb"), self.ko)
        self.insmod()
        self.inst = [lib.Instance(adapters[i], a) for i, a in enumerate(NODES)]
        for i, a in enumerate(adapters):
            self.sh.set_adapter(i, a)
        for i in range(len(NODES)):
            self.start_frames[i] = frames_to(i)
        self.kmsg = Kmsg()
        lib.vbus_param("fault_permille", FAULT_PERMILLE)

    def spawn(self):
        sh, procs, blockers, readers = self.sh, [], [], []
        for i in range(len(NODES)):
            readers.append(fork(reader, sh, i, i == 1))
            procs.append(readers[-1])
            procs.append(fork(responder, sh, i))
            procs.append(fork(sync_requester, sh, i))
            procs.append(fork(async_requester, sh, i))
            procs.append(fork(writer, sh, i))
            b = fork(blocker, sh, i)
            procs.append(b)
            blockers.append(b)
        procs.append(fork(injector, sh))
        self.procs, self.blockers, self.readers = procs, blockers, readers

    def unbind(self, *nodes):
        """Unbinds the nodes, at once (a thread each) if several, and books the final account
        of their instances."""
        for i in nodes:
            self.blocked_at_unbind.append(blocked_in_syscall([self.blockers[i]]))
            self.reader_blocked_at_unbind.append(blocked_in_syscall([self.readers[i]]))
        errors = []

        def unbind_one(i):
            try:
                self.inst[i].unbind()
            except OSError as e:
                errors.append(e)
        with self.timed("unbind" if len(nodes) == 1 else f"unbind x{len(nodes)} at once"):
            threads = [threading.Thread(target=unbind_one, args=(i,)) for i in nodes[1:]]
            for t in threads:
                t.start()
            unbind_one(nodes[0])
            for t in threads:
                t.join()
        if errors:
            raise errors[0]
        for i in nodes:
            self.unbinds += 1
            self.book(i)

    def book(self, i):
        nr = self.sh.adapter(i)
        self.finals.update(final_accounts(self.kmsg.records()))
        final = self.finals.pop(nr, None)
        now = frames_to(i)
        self.accounts.append(dict(node=i, gen=self.sh.gen(i), final=final,
                                  wire=now - self.start_frames[i]))
        self.start_frames[i] = now
        self.sh.bump_gen(i)

    def bind(self, i):
        with self.timed("bind"), open("/sys/bus/i2c/drivers/ipmb/bind", "w") as f:
            f.write(self.inst[i].client)

    def insmod(self):
        # Its time in the kernel log, next to the probes it causes.
        with open("/dev/kmsg", "w") as f:
            f.write("soak: insmod ipmb\n")
        fd = os.open(self.ko, os.O_RDONLY)
        try:
            ret, err = lib._syscall(lib.SYS_FINIT_MODULE, ctypes.c_int(fd),
                                    ctypes.c_char_p(" ".join(PARAMS).encode()), ctypes.c_int(0))
        finally:
            os.close(fd)
        lib.true(ret == 0, f"insmod ipmb: {os.strerror(err)}")
        lib._loaded.append("ipmb")

    @contextlib.contextmanager
    def timed(self, what):
        t = time.monotonic()
        yield
        self.times.setdefault(what, []).append(time.monotonic() - t)

    def module_cycle(self):
        with self.timed("rmmod/insmod cycle"):
            self._module_cycle()

    def _module_cycle(self):
        r = lib.rmmod("ipmb", check=False)
        lib.true(r.returncode != 0, "rmmod ipmb succeeded with files open")
        self.rmmod_refused += 1
        self.unbind(*range(len(NODES)))
        deadline = time.monotonic() + 30
        with self.timed("rmmod (until the last file is closed)"):
            while lib.rmmod("ipmb", check=False).returncode != 0:
                if time.monotonic() > deadline:
                    self.dump_holders()
                    raise AssertionError("rmmod ipmb: still in use 30 s after unbind")
                time.sleep(0.005)
        # Nothing can be delivered to a node without its instance.
        for i in range(len(NODES)):
            self.start_frames[i] = frames_to(i)
        with self.timed("insmod"):
            self.insmod()
        self.module_cycles += 1

    def dump_holders(self):
        """Says which processes hold ipmb files, and where they are."""
        self.say(f"refcnt {lib.read('/sys/module/ipmb/refcnt')}")
        for pid in self.procs + [os.getpid()]:
            try:
                fds = [os.readlink(f"/proc/{pid}/fd/{f}") for f in os.listdir(f"/proc/{pid}/fd")]
                with open(f"/proc/{pid}/stack") as f:
                    stack = f.read().split()
            except OSError:
                continue
            self.say(f"pid {pid}: {[x for x in fds if 'ipmb' in x]} stack {stack[:12]}")

    def run(self):
        """Runs at least `seconds`, and on until the required cycles are done (at most
        `limit` seconds); the cycles keep the pace that does `pace` in `seconds`, and go
        back to back when behind it."""
        self.setup()
        self.spawn()
        t0 = time.monotonic()
        self.cpu0 = cpu_times()
        want_u, want_m = self.pace
        need_u, need_m = self.required
        shown = 0
        try:
            while True:
                now = time.monotonic() - t0
                done_u = self.unbind_cycles
                if now >= self.seconds and (done_u >= need_u and self.module_cycles >= need_m
                                            or now >= self.limit):
                    break
                if now - shown >= 60:
                    shown = now
                    self.say(f"soak: {now:.0f} s: unbind/bind cycles {done_u}, rmmod/insmod "
                             f"cycles {self.module_cycles}, instances {len(self.accounts)}")
                self.pending_reports.extend(self.sh.reports())
                # Whichever kind of cycle lags its pace more goes next.
                frac = now / self.seconds
                lag_m = frac - self.module_cycles / max(want_m, 1)
                lag_u = frac - done_u / max(want_u, 1)
                if lag_m > 0 and lag_m >= lag_u and self.module_cycles < want_m:
                    self.module_cycle()
                elif lag_u > 0 and done_u < want_u:
                    i = random.randrange(len(NODES))
                    with self.timed("unbind/bind cycle"):
                        self.unbind(i)
                        # Now and then long enough for the node's workers to find it gone.
                        time.sleep(random.random() * 0.05)
                        self.bind(i)
                    self.unbind_cycles += 1
                else:
                    time.sleep(0.02)
            elapsed = time.monotonic() - t0
            busy, total = (b - a for a, b in zip(self.cpu0, cpu_times()))
            self.cpu_busy = busy / max(total, 1)
            lib.vbus_param("fault_permille", 0)
            self.sh.stop()
            self.unbind(*range(len(NODES)))
        finally:
            self.sh.stop()
            reports = self.collect()
        return self.judge(elapsed, reports, need_u, need_m)

    def collect(self):
        """The workers' counts, per (node, generation), once every worker has exited."""
        reports, failed = {}, []
        for item in self.pending_reports:
            self.add(reports, *item)
        deadline = time.monotonic() + 30
        pending = set(self.procs)
        while pending and time.monotonic() < deadline:
            for item in self.sh.reports():
                self.add(reports, *item)
            for pid in list(pending):
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    pending.discard(pid)
                    if status != 0:
                        failed.append(pid)
            time.sleep(0.05)
        for pid in pending:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        for item in self.sh.reports():
            self.add(reports, *item)
        # Judged after the accounts are printed.
        self.worker_errors = []
        if pending:
            self.worker_errors.append(f"workers {sorted(pending)} did not stop")
        if failed:
            self.worker_errors.append(f"workers {failed} failed (traceback on the console)")
        return reports

    @staticmethod
    def add(reports, name, i, gen, counts):
        d = reports.setdefault((i, gen), {})
        for k, v in counts.items():
            key = f"{name}.{k}"
            d[key] = d.get(key, 0) + v

    def judge(self, elapsed, reports, want_unbinds, want_modules):
        faults = {k: lib.read(f"/sys/module/i2c_vbus/parameters/faults_{k}")
                  for k in ("nak", "arb_lost", "drop_stop", "corrupt", "delay")}
        bad = []
        totals = {}
        self.say(f"soak: {elapsed:.0f} s, {len(self.accounts)} instances; unbind/bind cycles "
                 f"{self.unbind_cycles}, rmmod/insmod cycles {self.module_cycles} (rmmod refused "
                 f"with files open: {self.rmmod_refused}); unbinds in all {self.unbinds} (with "
                 f"the module cycles' and the final ones); at unbind, a requester blocked "
                 f"{sum(self.blocked_at_unbind)}/{len(self.blocked_at_unbind)} times, a reader "
                 f"{sum(self.reader_blocked_at_unbind)}/{len(self.reader_blocked_at_unbind)}")
        self.say("soak: seconds per cycle and step (median/max, count): " + ", ".join(
            f"{k} {statistics.median(v):.2f}/{max(v):.2f} ({len(v)})"
            for k, v in self.times.items())
            + f"; CPUs busy {100 * getattr(self, 'cpu_busy', 0):.0f}%")
        self.say("soak: bus faults injected: " + ", ".join(f"{k} {v}" for k, v in faults.items()))
        for a in self.accounts:
            f, user = a["final"], reports.get((a["node"], a["gen"]), {})
            name = f"{NODES[a['node']]:#04x}#{a['gen']}"
            if f is None:
                bad.append(f"{name}: no final account in the kernel log")
                continue
            lost = a["wire"] - wire_total(f)
            queued = f["rx_frames"] - f["rx_routed"] - f["rsp_matched"]
            reads = user.get("reader.reads", 0)
            unread = queued - reads - f["rx_queued"]
            reqs = (f["rsp_matched"] + f["req_timeouts"] + f["req_bus_errors"] + f["req_aborted"]
                    + f["req_inflight"])
            line = (f"{name}: wire {a['wire']} = rx_frames {f['rx_frames']} (read "
                    f"{reads} + queued at unbind {f['rx_queued']}, routed {f['rx_routed']}, "
                    f"matched {f['rsp_matched']}, in inboxes at unbind {f['inbox_queued']}) + "
                    "dropped " + " ".join(f"{k[3:]} {f[k]}" for k in DROPS if f[k])
                    + f" + cut by unbind {f['rx_partial']}; lost {lost}; "
                    f"requests {f['req_sent']} = matched {f['rsp_matched']} + c3 "
                    f"{f['req_timeouts']} + 82 {f['req_bus_errors']} + aborted "
                    f"{f['req_aborted']} + in flight at unbind {f['req_inflight']}")
            self.say(line)
            for k, v in list(f.items()) + [("wire", a["wire"])]:
                totals[k] = totals.get(k, 0) + v
            for k, v in user.items():
                totals[f"user.{k}"] = totals.get(f"user.{k}", 0) + v
            if lost:
                bad.append(f"{name}: lost {lost}")
            if unread:
                bad.append(f"{name}: read() queue: {queued} queued != {reads} read + "
                           f"{f['rx_queued']} left")
            if reqs != f["req_sent"]:
                bad.append(f"{name}: requests: req_sent {f['req_sent']} != {reqs}")
            if user.get("async.unknown_id"):
                bad.append(f"{name}: RECEIVE returned {user['async.unknown_id']} unknown ids")
        t = totals
        if t:
            self.say(f"soak: total: wire {t['wire']} = rx_frames {t['rx_frames']} + dropped "
                     + " ".join(f"{k[3:]} {t[k]}" for k in DROPS)
                     + f" + cut by unbind {t['rx_partial']}; lost "
                     f"{t['wire'] - t['rx_frames'] - sum(t[k] for k in DROPS) - t['rx_partial']}")
            self.say(f"soak: total: requests {t['req_sent']} = matched {t['rsp_matched']} + c3 "
                     f"{t['req_timeouts']} + 82 {t['req_bus_errors']} + aborted "
                     f"{t['req_aborted']} + in flight at unbind {t['req_inflight']}; "
                     f"tx_frames {t['tx_frames']}, tx_errors {t['tx_errors']}, tx_retries "
                     f"{t['tx_retries']}, broadcasts sent {t['tx_broadcast']} received "
                     f"{t['rx_broadcast']}")
            for who in ("sync", "async", "blocker"):
                keys = sorted(k for k in t if k.startswith(f"user.{who}."))
                self.say(f"soak: user {who}: " + ", ".join(f"{k.split('.', 2)[2]} {t[k]}"
                                                          for k in keys))
            for who in ("reader", "responder", "writer"):
                keys = sorted(k for k in t if k.startswith(f"user.{who}."))
                self.say(f"soak: user {who}: " + ", ".join(f"{k.split('.', 2)[2]} {t[k]}"
                                                          for k in keys))
        if self.unbind_cycles < int(want_unbinds):
            bad.append(f"unbind/bind cycles: {self.unbind_cycles} < "
                       f"{int(want_unbinds)}")
        if self.module_cycles < int(want_modules):
            bad.append(f"rmmod/insmod cycles: {self.module_cycles} < {int(want_modules)}")
        bad += getattr(self, "worker_errors", [])
        for b in bad:
            self.say(f"soak: FAIL {b}")
        return not bad


def run(seconds, pace, required, limit, out=print):
    """Runs the soak for `seconds` with cycles (unbind/bind, rmmod/insmod) at the pace of
    `pace` in that time, and on until `required` are done (at most `limit` seconds);
    returns True if every account balanced and the required cycles were done."""
    return Soak(seconds, pace, required, limit, out).run()
