#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Boots the test kernel in QEMU (TCG), runs the KUnit suites and the e2e tests, judges the run.

The guest is a busybox initramfs (tests/qemu/init.sh) that loads the modules, then runs the
e2e runner with the host's root filesystem mounted read-only over 9p. The kernel console goes
to one serial port, the e2e results (KTAP) to another. The run fails on:
  - any KUnit or e2e failure, or a KTAP document that is malformed or incomplete;
  - any WARNING, BUG, Oops, KASAN, lockdep, kmemleak, hung-task or soft-lockup report;
  - a guest that does not reach the end of its script before the timeout.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ktap  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

# Reports that fail a run wherever they appear in the kernel log.
BAD = re.compile(
    r"WARNING:|BUG:|Oops|Kernel panic|general protection fault|KASAN:|UBSAN:|"
    r"possible circular locking|possible recursive locking|inconsistent lock state|"
    r"INFO: possible|suspicious RCU usage|bad unlock balance|held lock freed|"
    r"lock held when returning|unreferenced object|suspected memory leak|soft lockup|"
    r"blocked for more than|"
    r"rcu_.*stall|Call Trace:|kernel BUG|list_add corruption|list_del corruption"
)
MARKER = re.compile(r"IPMB-HARNESS: (.*)$")


def load_env():
    cache = os.environ.get("IPMB_CACHE", os.path.expanduser("~/.cache/ipmb"))
    env = {}
    with open(os.path.join(cache, "env")) as f:
        for line in f:
            k, _, v = line.strip().partition("=")
            env[k] = v.strip("'")
    return env


def build_initramfs(kdir, workdir, modules, mode, e2e_args):
    spec = os.path.join(workdir, "initramfs.spec")
    conf = os.path.join(workdir, "ipmb-test.conf")
    with open(conf, "w") as f:
        f.write(f"MODE={mode}\n")
        f.write(f"REPO={ROOT}\n")
        f.write(f"KDIR={kdir}\n")
        f.write(f"KUNIT_MODULES='{' '.join(os.path.basename(m) for m in modules)}'\n")
        f.write(f"E2E_ARGS='{e2e_args}'\n")
    lines = [
        "dir /dev 0755 0 0",
        "nod /dev/console 0600 0 0 c 5 1",
        "dir /bin 0755 0 0",
        "dir /sbin 0755 0 0",
        "dir /etc 0755 0 0",
        "dir /proc 0755 0 0",
        "dir /sys 0755 0 0",
        "dir /tmp 1777 0 0",
        "dir /host 0755 0 0",
        "dir /modules 0755 0 0",
        "file /bin/busybox /bin/busybox 0755 0 0",
        "slink /bin/sh /bin/busybox 0777 0 0",
        f"file /init {ROOT}/tests/qemu/init.sh 0755 0 0",
        f"file /etc/ipmb-test.conf {conf} 0644 0 0",
    ]
    for m in modules:
        lines.append(f"file /modules/{os.path.basename(m)} {m} 0644 0 0")
    with open(spec, "w") as f:
        f.write("\n".join(lines) + "\n")
    out = os.path.join(workdir, "initramfs.cpio")
    with open(out, "wb") as f:
        subprocess.run([os.path.join(kdir, "usr", "gen_init_cpio"), spec], stdout=f, check=True)
    return out


class Tail(threading.Thread):
    """Follows a growing file and hands each complete line to a callback."""

    def __init__(self, path, callback):
        super().__init__(daemon=True)
        self.path, self.callback, self.stop = path, callback, threading.Event()

    def run(self):
        while not os.path.exists(self.path) and not self.stop.is_set():
            time.sleep(0.05)
        with open(self.path, errors="replace") as f:
            buf = ""
            while True:
                chunk = f.read()
                if chunk:
                    buf += chunk
                    *lines, buf = buf.split("\n")
                    for line in lines:
                        self.callback(line)
                elif self.stop.is_set():
                    if buf:
                        self.callback(buf)
                    return
                else:
                    time.sleep(0.05)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--mode", choices=["check", "demo", "bench"], default="check")
    ap.add_argument("--timeout", type=int, default=900, help="seconds before the guest counts as hung")
    ap.add_argument("--module", action="append", default=[], help=".ko whose KUnit suites to run")
    ap.add_argument("--e2e-args", default="", help="arguments for tests/e2e/runner.py")
    ap.add_argument("--out", default=os.path.join(ROOT, "build", "qemu"), help="logs go here")
    ap.add_argument("--verbose", action="store_true", help="echo the whole console")
    args = ap.parse_args()

    env = load_env()
    kdir = env["KDIR"]
    modules = [os.path.abspath(m) for m in (args.module or [os.path.join(ROOT, "ipmb.ko")])]
    for m in modules:
        if not os.path.exists(m):
            sys.exit(f"run.py: {m} is not built")
    os.makedirs(args.out, exist_ok=True)
    console_log = os.path.join(args.out, f"{args.mode}-console.log")
    results_log = os.path.join(args.out, f"{args.mode}-results.log")
    for p in (console_log, results_log):
        if os.path.exists(p):
            os.unlink(p)

    work = tempfile.mkdtemp(prefix="ipmb-qemu-")
    try:
        initrd = build_initramfs(kdir, work, modules, args.mode, args.e2e_args)
        cmd = [
            "qemu-system-x86_64", "-machine", "pc", "-accel", "tcg", "-cpu", "max",
            "-m", "1024", "-smp", "2", "-no-reboot", "-display", "none", "-monitor", "none",
            "-serial", f"file:{console_log}", "-serial", f"file:{results_log}",
            "-kernel", os.path.join(kdir, "arch", "x86", "boot", "bzImage"),
            "-initrd", initrd,
            "-virtfs", "local,path=/,mount_tag=host,security_model=none,readonly=on,multidevs=remap",
            "-append", "console=ttyS0 panic=-1 loglevel=7 kmemleak=on",
        ]
        state = {"markers": [], "bad": []}

        def on_console(line):
            text = ktap.strip_console(line)
            m = MARKER.search(text)
            if m:
                state["markers"].append(m.group(1))
            if BAD.search(text):
                state["bad"].append(text)
            if args.verbose:
                print(line, flush=True)
            elif args.mode in ("demo", "bench"):
                # Guest programs print without a printk timestamp; kernel lines have one.
                if not ktap.TIMESTAMP.match(line) or BAD.search(text):
                    print(line, flush=True)
            elif m or BAD.search(text) or ktap.RESULT.match(text.strip()):
                print(f"  {text.strip()}", flush=True)

        def on_results(line):
            if args.mode == "check" and not args.verbose:
                t = line.strip()
                if t.startswith("ok ") or t.startswith("not ok ") or t.startswith("# "):
                    print(f"  e2e: {t}", flush=True)

        tails = [Tail(console_log, on_console), Tail(results_log, on_results)]
        for t in tails:
            t.start()
        start = time.time()
        print(f"[qemu] booting {os.path.basename(kdir)} (TCG); console log: {console_log}", flush=True)
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL)
        hung = False
        try:
            proc.wait(timeout=args.timeout)
        except subprocess.TimeoutExpired:
            hung = True
            proc.kill()
            proc.wait()
        for t in tails:
            t.stop.set()
            t.join()
        elapsed = time.time() - start
    finally:
        shutil.rmtree(work, ignore_errors=True)

    with open(console_log, errors="replace") as f:
        console = f.read().splitlines()
    results_text = ""
    if os.path.exists(results_log):
        with open(results_log, errors="replace") as f:
            results_text = f.read()

    # KUnit: the documents printed between the kunit markers.
    kunit_lines, inside = [], False
    for line in console:
        text = ktap.strip_console(line)
        if "IPMB-HARNESS: kunit-begin" in text:
            inside = True
        elif "IPMB-HARNESS: kunit-end" in text:
            inside = False
        elif inside:
            kunit_lines.append(line)
    kunit_results, kunit_errors = ktap.parse(kunit_lines)
    e2e_results, e2e_errors = ktap.parse(results_text.splitlines())

    checks = []  # (name, ok, detail)
    markers = state["markers"]
    checks.append(("harness.guest_finished", "done" in markers and not hung,
                   "guest hung: killed after timeout" if hung else f"markers seen: {markers}"))
    checks.append(("harness.kunit_ran", bool(kunit_results) and not kunit_errors
                   and not any(m.startswith("insmod-failed") for m in markers),
                   "; ".join(kunit_errors) or f"markers: {markers}"))
    if args.mode == "check":
        e2e_end = [m for m in markers if m.startswith("e2e-end")]
        checks.append(("harness.e2e_ran", bool(e2e_results) and not e2e_errors
                       and e2e_end == ["e2e-end rc=0"] or (bool(e2e_results) and not e2e_errors
                       and e2e_end and any(not r.ok for r in e2e_results)),
                       "; ".join(e2e_errors) or f"markers: {e2e_end or markers}"))
    checks.append(("harness.kernel_log_clean", not state["bad"], "\n      ".join(state["bad"][:20])))

    passed = failed = skipped = 0
    print(f"\n[qemu] guest ran {elapsed:.1f} s", flush=True)
    for group, results in (("kunit", kunit_results), ("e2e", e2e_results)):
        for r in results:
            if r.status == "passed":
                passed += 1
            elif r.status == "skipped":
                skipped += 1
            else:
                failed += 1
                print(f"  FAIL {group}: {r.path} {r.detail}")
        print(f"[qemu] {group}: {sum(r.status == 'passed' for r in results)} passed, "
              f"{sum(r.status == 'failed' for r in results)} failed, "
              f"{sum(r.status == 'skipped' for r in results)} skipped")
    for name, ok, detail in checks:
        if ok:
            passed += 1
        else:
            failed += 1
            print(f"  FAIL {name}: {detail}")
    print(f"qemu: {passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
