#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Boots the test kernel in QEMU (TCG), runs the KUnit suites and the e2e tests, judges the run.

--machine picks the guest (tests/qemu/machines.py):
  - x86 (the default): the x86_64 kernel, the virtual I2C bus, tests/e2e. The guest is a
    busybox initramfs (tests/qemu/init.sh) that loads the modules, then runs the e2e runner
    with the host's root filesystem mounted read-only over 9p. The kernel console goes to one
    serial port, the e2e results (KTAP) to another.
  - ast2600-evb, bletchley-bmc: the ARM kernel on QEMU's AST2600 boards, with the IPMB peer
    device on one I2C bus, tests/bmc. No 9p there: the initramfs carries busybox and Python
    for armhf (scripts/setup-armhf.sh), the repository files the tests use at /repo, the ARM
    modules and samples, and the kernel's IPMI modules at /kdir. The results travel on the
    console, each line a /dev/kmsg record with a prefix stripped here.
The run fails on:
  - any KUnit or e2e failure, or a KTAP document that is malformed or incomplete;
  - any WARNING, BUG, Oops, KASAN, lockdep, kmemleak, hung-task or soft-lockup report;
  - a guest that does not reach the end of its script before the timeout;
  - a guest that did not bring up two CPUs.
"""

import argparse
import glob
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ktap  # noqa: E402
import machines  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CACHE = os.environ.get("IPMB_CACHE", os.path.expanduser("~/.cache/ipmb"))

# Reports that fail a run wherever they appear in the kernel log.
SMP_UP = re.compile(r"smp: Brought up \d+ nodes?, (\d+) CPUs?")
BAD = re.compile(
    r"WARNING:|BUG:|Oops|Kernel panic|general protection fault|KASAN:|UBSAN:|"
    r"possible circular locking|possible recursive locking|inconsistent lock state|"
    r"INFO: possible|suspicious RCU usage|bad unlock balance|held lock freed|"
    r"lock held when returning|unreferenced object|suspected memory leak|soft lockup|"
    r"blocked for more than|"
    r"rcu_.*stall|Call Trace:|kernel BUG|list_add corruption|list_del corruption|"
    r"Unable to handle kernel"
)
MARKER = re.compile(r"IPMB-HARNESS: (.*)$")
# ARM without a restart handler (no watchdog driver): `reboot -f` halts instead of resetting.
HALTED = "Reboot failed -- System halted"
NO_PEER = re.compile(r"warning: nic \S+ has no peer")


def load_env(name="env"):
    """The variables of a shell fragment $IPMB_CACHE/<name> (written with printf %q)."""
    path = os.path.join(CACHE, name)
    if not os.path.exists(path):
        sys.exit(f"run.py: {path} is missing (scripts/setup.sh has not built it)")
    with open(path) as f:
        keys = [m.group(1) for m in (re.match(r"([A-Za-z_][A-Za-z0-9_]*)=", l) for l in f) if m]
    out = subprocess.run(
        ["bash", "-c", '. "$0" && for k; do printf "%s=%s\\0" "$k" "${!k}"; done', path] + keys,
        stdout=subprocess.PIPE, check=True).stdout.decode()
    return dict(item.split("=", 1) for item in out.split("\0") if item)


def build_initramfs(kdir, workdir, modules, mode, e2e_args, soak_s=60, soak_limit=0):
    spec = os.path.join(workdir, "initramfs.spec")
    conf = os.path.join(workdir, "ipmb-test.conf")
    with open(conf, "w") as f:
        f.write(f"MODE={mode}\n")
        f.write(f"REPO={ROOT}\n")
        f.write(f"KDIR={kdir}\n")
        f.write(f"KUNIT_MODULES='{' '.join(os.path.basename(m) for m in modules)}'\n")
        f.write(f"E2E_ARGS='{e2e_args}'\n")
        f.write(f"SOAK_S={soak_s}\n")
        f.write(f"SOAK_LIMIT_S={soak_limit}\n")
        f.write("MACHINE=x86_64\n")
        # The e2e tests of real clients find their venv through $IPMB_CACHE/env-clients.
        f.write(f"IPMB_CACHE='{CACHE}'\n")
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


class Spec:
    """A gen_init_cpio spec: every directory once, parents before children."""

    def __init__(self):
        self.lines, self.dirs = [], {"/"}

    def dir(self, path, mode=0o755):
        if path in self.dirs:
            return
        self.dir(os.path.dirname(path))
        self.dirs.add(path)
        self.lines.append(f"dir {path} {mode:o} 0 0")

    def file(self, path, src, mode=None):
        if any(c.isspace() for c in path + src):
            sys.exit(f"run.py: {src!r}: gen_init_cpio cannot take names with spaces")
        self.dir(os.path.dirname(path))
        if mode is None:
            mode = 0o755 if os.access(src, os.X_OK) else 0o644
        self.lines.append(f"file {path} {src} {mode:o} 0 0")

    def slink(self, path, target):
        self.dir(os.path.dirname(path))
        self.lines.append(f"slink {path} {target} 777 0 0")

    def tree(self, src, dest):
        """Adds the files and symbolic links of the tree `src` at `dest` (not dot files)."""
        for dirpath, dirnames, filenames in os.walk(src):
            rel = os.path.relpath(dirpath, src)
            base = dest if rel == "." else os.path.join(dest, rel)
            for name in sorted(dirnames + filenames):
                p, d = os.path.join(dirpath, name), os.path.join(base, name)
                if name.startswith("."):
                    continue
                if os.path.islink(p):
                    self.slink(d, os.readlink(p))
                elif not os.path.isdir(p):
                    self.file(d, p)


# --mode bench on ARM: what the initramfs carries at /repo besides the tests, and where the
# host has it (make bench builds them; scripts/kmake.sh with IPMB_KERNEL=bench ARCH=arm).
BMC_BENCH_FILES = {
    "build/bench/ipmb-bench": "build/arm/bench/ipmb-bench",
    "build/arm-bench/ipmb.ko": "build/arm-bench/ipmb.ko",
    "build/arm-bench/tests/vbus/i2c_vbus.ko": "build/arm-bench/tests/vbus/i2c_vbus.ko",
    "build/arm-bench/build/ipmi-ipmb/ipmi_ipmb.ko": "build/arm-bench/build/ipmi-ipmb/ipmi_ipmb.ko",
}


def build_initramfs_bmc(machine, kdir, workdir, modules, mode, e2e_args, soak_s=60,
                        soak_limit=0):
    """The ARM guest: busybox, Python, /repo (the tests and the ARM builds), /kdir, /modules."""
    armhf = load_env("env-armhf")["ARMHF_ROOT"]
    conf = os.path.join(workdir, "ipmb-test.conf")
    with open(conf, "w") as f:
        f.write(f"MODE={mode}\n")
        f.write("REPO=/repo\n")
        f.write("KDIR=/kdir\n")
        f.write(f"KUNIT_MODULES='{' '.join(os.path.basename(m) for m in modules)}'\n")
        f.write(f"E2E_ARGS='{e2e_args}'\n")
        f.write(f"SOAK_S={soak_s}\n")
        f.write(f"SOAK_LIMIT_S={soak_limit}\n")
        f.write(f"MACHINE={machine.name}\n")
        f.write("GUEST_ROOT=initramfs\n")
        f.write(f"RESULTS_PREFIX='{machines.RESULTS_PREFIX}'\n")
        f.write("DEMO=tests/bmc/demo.py\n")
    spec = Spec()
    spec.dir("/dev")
    spec.lines.append("nod /dev/console 0600 0 0 c 5 1")
    for d in ("/sbin", "/etc", "/proc", "/sys", "/run", "/modules"):
        spec.dir(d)
    spec.dir("/tmp", 0o1777)
    spec.tree(armhf, "/")
    spec.slink("/bin/sh", "busybox")
    spec.file("/init", os.path.join(ROOT, "tests", "qemu", "init.sh"), 0o755)
    spec.file("/etc/ipmb-test.conf", conf, 0o644)
    for m in modules:
        spec.file(f"/modules/{os.path.basename(m)}", m, 0o644)
    # /repo: what the tests and lib.module_path() look for.
    for d in ("tests/e2e", "tests/bmc"):
        for f in sorted(glob.glob(os.path.join(ROOT, d, "*.py"))):
            spec.file(f"/repo/{d}/{os.path.basename(f)}", f, 0o644)
    spec.file("/repo/tests/qemu/machines.py", os.path.join(ROOT, "tests", "qemu", "machines.py"),
              0o644)
    spec.tree(os.path.join(ROOT, "include"), "/repo/include")
    if mode == "bench":
        # The bench (tests/bench.py) with its ARM program and the modules of the bench kernel.
        spec.file("/repo/tests/bench.py", os.path.join(ROOT, "tests", "bench.py"), 0o644)
        for dest, src in BMC_BENCH_FILES.items():
            spec.file(f"/repo/{dest}", os.path.join(ROOT, src))
    else:
        spec.file("/repo/ipmb.ko", os.path.join(ROOT, "build", "arm", "ipmb.ko"), 0o644)
    for prog in ("ipmb-raw", "ipmb-responder"):
        spec.file(f"/repo/samples/{prog}", os.path.join(ROOT, "build", "arm", "samples", prog),
                  0o755)
    # The soak's bus and ioctl fuzzer (tests/e2e/test_soak.py), when built for ARM.
    for src, dest in ((("tests", "vbus", "i2c_vbus.ko"), "/repo/tests/vbus/i2c_vbus.ko"),
                      (("uapi", "ioctl_fuzz"), "/repo/build/uapi/ioctl_fuzz")):
        path = os.path.join(ROOT, "build", "arm", *src)
        if os.path.exists(path):
            spec.file(dest, path)
    ipmi = os.path.join(kdir, "drivers", "char", "ipmi")
    for ko in sorted(glob.glob(os.path.join(ipmi, "*.ko"))):
        spec.file(f"/kdir/drivers/char/ipmi/{os.path.basename(ko)}", ko, 0o644)
    path = os.path.join(workdir, "initramfs.spec")
    with open(path, "w") as f:
        f.write("\n".join(spec.lines) + "\n")
    out = os.path.join(workdir, "initramfs.cpio")
    with open(out, "wb") as f:
        subprocess.run([os.path.join(kdir, "usr", "gen_init_cpio"), path], stdout=f, check=True)
    return out


def build_dtb(machine, env):
    """The machine's DTB: ours built from tests/bmc/dts (cheap: every run), or the kernel's."""
    kdir, ksrc = env["KDIR"], env["KSRC"]
    if machine.dtb:
        return os.path.join(kdir, "arch", "arm", "boot", "dts", machine.dtb)
    outdir = os.path.join(ROOT, "build", "arm", "dts")
    os.makedirs(outdir, exist_ok=True)
    name = os.path.splitext(os.path.basename(machine.dts))[0]
    pre, dtb = os.path.join(outdir, f"{name}.dts.pp"), os.path.join(outdir, f"{name}.dtb")
    inc = [f"-I{os.path.join(ksrc, d)}" for d in
           ("include", "arch/arm/boot/dts", "scripts/dtc/include-prefixes")]
    for cmd in (["cpp", "-nostdinc", *inc, "-undef", "-D__DTS__", "-x", "assembler-with-cpp",
                 os.path.join(ROOT, machine.dts), "-o", pre],
                [os.path.join(kdir, "scripts", "dtc", "dtc"), "-q", "-I", "dts", "-O", "dtb",
                 "-o", dtb, pre]):
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if r.returncode != 0:
            sys.exit(f"run.py: {' '.join(cmd)} failed:\n{r.stdout}")
    return dtb


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


# The bench's clock (--mode bench): QEMU counts instructions (-icount shift=0: one instruction
# is 1 ns of the guest's time; sleep=off: the time of an idle guest jumps to its next timer),
# so the guest's clock and timers follow the code it runs, not the shared host: a timer
# expiry is exact and costs its handler's instructions, the figures of one run are
# reproducible, and the host's load does not enter them. (Without it, every expiry of the
# emulated timer cost 100-300 us, and several ms on a busy host: the vbus probe of
# `bench.py --probe`.) The TSC then runs at 1 GHz; without ACPI the guest cannot calibrate it
# and stays on jiffies, so its rate is given, with tsc=reliable (either alone gives no 1 ns
# hrtimers). On the Aspeed machines the kernel's clocksource is the Cortex-A7's generic timer
# (arch_sys_counter), which QEMU runs on the same virtual clock: nothing to give.
BENCH_QEMU_ARGS = ["-icount", "shift=0,sleep=off"]
BENCH_KERNEL_ARGS = " tsc_early_khz=1000000 tsc=reliable"


def qemu_command(machine, env, initrd, console_log, results_log, extra_args="", bench=False):
    """The QEMU command line and its extra environment."""
    if machine.arch == "x86":
        kdir = env["KDIR"]
        # la57=off: with 5-level paging, Linux 7.2 has a window in identify_boot_cpu() where
        # boot_cpu_data's capabilities are cleared and re-read with interrupts on, before the
        # alternatives are patched. pgtable_l5_enabled() reads X86_FEATURE_LA57 there, so an
        # interrupt in that window computes KASAN_SHADOW_START for 4-level paging and KASAN
        # reports its own irq_desc lock (an ff11... address) as a wild-memory-access (seen
        # once, at 0.26 s of boot, in handle_edge_irq). Real BMCs are not x86; the test
        # guest runs 4-level paging, where the cleared bit agrees with the page tables.
        return [
            "qemu-system-x86_64", "-machine", "pc", "-accel", "tcg", "-cpu", "max,la57=off",
            # Two sockets of one core: SeaBIOS's MP table (this kernel has no ACPI) lists one
            # CPU per package, so a plain "-smp 2" (one socket, two cores) boots one CPU.
            "-m", "1024", "-smp", "2,sockets=2,cores=1",
            "-no-reboot", "-display", "none", "-monitor", "none",
            "-serial", f"file:{console_log}", "-serial", f"file:{results_log}",
            "-kernel", os.path.join(kdir, "arch", "x86", "boot", "bzImage"),
            "-initrd", initrd,
            "-virtfs", "local,path=/,mount_tag=host,security_model=none,readonly=on,multidevs=remap",
            "-append", "console=ttyS0 panic=-1 loglevel=7 kmemleak=on" + extra_args,
        ] + (BENCH_QEMU_ARGS if bench else []), {}
    qemu = load_env("env-qemu")
    extra = dict(v.split("=", 1) for v in shlex.split(qemu.get("QEMU_ARM_ENV", "")))
    bus, addr = machine.peer
    return [
        qemu["QEMU_ARM"], *shlex.split(qemu.get("QEMU_ARM_ARGS", "")),
        "-M", machine.qemu, "-no-reboot", "-monitor", "none",
        "-serial", f"file:{console_log}",
        "-kernel", os.path.join(env["KDIR"], "arch", "arm", "boot", "zImage"),
        "-dtb", build_dtb(machine, env),
        "-initrd", initrd,
        "-device", f"ipmb-peer,bus=aspeed.i2c.bus.{bus},address=0x{addr:02x}",
        # Userspace writes the e2e results to /dev/kmsg: no rate limit on them.
        "-append", f"console={machine.console} panic=-1 loglevel=7 kmemleak=on "
                   "printk.devkmsg=on" + extra_args,
    ] + (BENCH_QEMU_ARGS if bench else []), extra


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--mode", choices=["check", "demo", "bench"], default="check")
    ap.add_argument("--machine", default="x86",
                    choices=sorted(set(machines.MACHINES) | set(machines.ALIASES)),
                    help="the guest to boot (tests/qemu/machines.py)")
    # The x86 e2e run takes 5 to 15 minutes with the soak, depending on the host's load.
    ap.add_argument("--timeout", type=int, default=1800,
                    help="seconds before the guest counts as hung")
    ap.add_argument("--module", action="append", default=[], help=".ko whose KUnit suites to run")
    ap.add_argument("--e2e-args", default=None,
                    help="arguments for tests/e2e/runner.py (on ARM: --dir tests/bmc "
                         "--machine <machine> unless given)")
    ap.add_argument("--soak-seconds", type=int, default=60,
                    help="duration of the soak (tests/e2e/test_soak.py) in the guest")
    ap.add_argument("--soak-limit", type=int, default=0,
                    help="longest the soak may run on to finish its cycles (0: 8 times "
                         "--soak-seconds)")
    ap.add_argument("--kernel", choices=["test", "bench"], default=None,
                    help="the test kernel (debugging on), or the bench kernel (without; "
                         "modules from build/x86-bench/ or build/arm-bench/); default: bench "
                         "for --mode bench")
    ap.add_argument("--out", default=os.path.join(ROOT, "build", "qemu"), help="logs go here")
    ap.add_argument("--verbose", action="store_true", help="echo the whole console")
    args = ap.parse_args()

    machine = machines.get(args.machine)
    arm = machine.arch == "arm"
    tag = f"[qemu {machine.name}]"
    bench_kernel = (args.kernel or ("bench" if args.mode == "bench" else "test")) == "bench"
    env = load_env(("env-arm" if arm else "env") + ("-bench" if bench_kernel else ""))
    kdir = env["KDIR"]
    default_ko = os.path.join(ROOT, "build", "arm", "ipmb.ko") if arm else os.path.join(ROOT, "ipmb.ko")
    modules = [os.path.abspath(m) for m in (args.module or [default_ko])]
    extra_args = ""
    if args.mode == "bench" and not arm:
        extra_args = BENCH_KERNEL_ARGS
    if bench_kernel:
        # No KUnit in the bench kernel; the bench loads the modules built for it.
        modules = []
        # bench.py's own arguments (make bench's BENCH_ARGS) come after the modules'.
        if "--modules" not in (args.e2e_args or ""):
            args.e2e_args = " ".join(filter(None, (f"--modules build/{machine.arch}-bench",
                                                   args.e2e_args)))
    needed = list(modules)
    if arm:
        needed += [os.path.join(ROOT, "build", "arm", "samples", p)
                   for p in ("ipmb-raw", "ipmb-responder")]
        needed += ([os.path.join(ROOT, p) for p in BMC_BENCH_FILES.values()]
                   if args.mode == "bench" else [default_ko])
    for m in needed:
        if not os.path.exists(m):
            sys.exit(f"run.py: {m} is not built")
    e2e_args = args.e2e_args
    if e2e_args is None:
        e2e_args = f"--dir tests/bmc --machine {machine.name}" if arm else ""
    os.makedirs(args.out, exist_ok=True)
    prefix = f"{machine.name}-{args.mode}" if arm else args.mode
    console_log = os.path.join(args.out, f"{prefix}-console.log")
    results_log = os.path.join(args.out, f"{prefix}-results.log")
    for p in (console_log, results_log):
        if os.path.exists(p):
            os.unlink(p)

    work = tempfile.mkdtemp(prefix="ipmb-qemu-")
    try:
        if arm:
            initrd = build_initramfs_bmc(machine, kdir, work, modules, args.mode, e2e_args,
                                         args.soak_seconds, args.soak_limit)
        else:
            initrd = build_initramfs(kdir, work, modules, args.mode, e2e_args, args.soak_seconds,
                                     args.soak_limit)
        initrd_size = os.path.getsize(initrd)
        cmd, extra_env = qemu_command(machine, env, initrd, console_log, results_log, extra_args,
                                      bench=args.mode == "bench")
        state = {"markers": [], "bad": [], "results": [], "first_marker": None, "done": None,
                 "halted": False}

        def on_results(line):
            if arm:
                state["results"].append(line)
            if args.mode == "check" and not args.verbose:
                t = line.strip()
                if t.startswith("ok ") or t.startswith("not ok ") or t.startswith("# "):
                    print(f"  e2e: {t}", flush=True)

        def on_console(line):
            text = ktap.strip_console(line)
            if arm and text.startswith(machines.RESULTS_PREFIX):
                # A record the guest wrote to /dev/kmsg: a results line, not a kernel message.
                if args.verbose:
                    print(line, flush=True)
                on_results(text[len(machines.RESULTS_PREFIX):])
                return
            m = MARKER.search(text)
            if m:
                state["markers"].append(m.group(1))
                if state["first_marker"] is None:
                    state["first_marker"] = time.time()
                if m.group(1) == "done":
                    state["done"] = time.time()
            if HALTED in text and state["done"]:
                state["halted"] = True
            if BAD.search(text):
                state["bad"].append(text)
            if args.verbose:
                print(line, flush=True)
            elif args.mode in ("demo", "bench"):
                # Guest programs print without a printk timestamp; kernel lines have one.
                if (not ktap.TIMESTAMP.match(line) or BAD.search(text)) and \
                        not line.startswith("IPMB-BENCH-JSON"):
                    print(line, flush=True)
            elif m or BAD.search(text) or ktap.RESULT.match(text.strip()):
                print(f"  {text.strip()}", flush=True)

        tails = [Tail(console_log, on_console)]
        if not arm:
            tails.append(Tail(results_log, on_results))
        for t in tails:
            t.start()
        start = time.time()
        image = os.path.basename(kdir)
        print(f"{tag} booting {image} (TCG); initramfs {initrd_size / 2**20:.1f} MiB; "
              f"console log: {console_log}", flush=True)
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, env=dict(os.environ, **extra_env),
                                stderr=subprocess.PIPE, text=True, errors="replace")

        def qemu_stderr():
            for line in proc.stderr:
                # The Aspeed SoCs always have their four MACs; the guest needs no network.
                if not NO_PEER.search(line):
                    sys.stderr.write(line)

        stderr_thread = threading.Thread(target=qemu_stderr, daemon=True)
        stderr_thread.start()
        hung = False
        while proc.poll() is None:
            now = time.time()
            if now - start > args.timeout:
                hung = True
            elif state["halted"]:
                pass  # the guest finished and cannot reset the machine: QEMU is stopped here
            elif state["done"] and now - state["done"] > 30:
                # The guest finished but its reboot did not end QEMU: not a hang of ours.
                print(f"{tag} QEMU still running 30 s after the guest's last marker: stopped")
            else:
                time.sleep(0.1)
                continue
            proc.kill()
            break
        proc.wait()
        stderr_thread.join()
        for t in tails:
            t.stop.set()
            t.join()
        elapsed = time.time() - start
    finally:
        shutil.rmtree(work, ignore_errors=True)

    with open(console_log, errors="replace") as f:
        console = f.read().splitlines()
    if arm:
        results_text = "\n".join(state["results"])
        with open(results_log, "w") as f:
            f.write(results_text + "\n")
    else:
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
    if modules:
        checks.append(("harness.kunit_ran", bool(kunit_results) and not kunit_errors
                       and not any(m.startswith("insmod-failed") for m in markers),
                       "; ".join(kunit_errors) or f"markers: {markers}"))
    if args.mode == "check":
        e2e_end = [m for m in markers if m.startswith("e2e-end")]
        checks.append(("harness.e2e_ran", bool(e2e_results) and not e2e_errors
                       and e2e_end == ["e2e-end rc=0"] or (bool(e2e_results) and not e2e_errors
                       and e2e_end and any(not r.ok for r in e2e_results)),
                       "; ".join(e2e_errors) or f"markers: {e2e_end or markers}"))
    elif args.mode == "bench":
        e2e_end = [m for m in markers if m.startswith("e2e-end")]
        checks.append(("harness.bench_ran", e2e_end == ["e2e-end rc=0"],
                       f"markers: {e2e_end or markers}"))
    elif args.mode == "demo":
        e2e_end = [m for m in markers if m.startswith("e2e-end")]
        checks.append(("harness.demo_ran", e2e_end == ["e2e-end rc=0"],
                       f"markers: {e2e_end or markers}"))
    checks.append(("harness.kernel_log_clean", not state["bad"], "\n      ".join(state["bad"][:20])))
    # Every guest has two CPUs, so the interrupt path and process context really run
    # concurrently (the lock and teardown tests mean little on one CPU).
    cpus = [int(m.group(1)) for m in map(SMP_UP.search, console) if m]
    checks.append(("harness.two_cpus", cpus == [2], f"CPUs brought up: {cpus or 'no smp line'}"))

    passed = failed = skipped = 0
    init_after = ""
    if state["first_marker"]:
        init_after = f" (init after {state['first_marker'] - start:.1f} s)"
    print(f"\n{tag} guest ran {elapsed:.1f} s{init_after}", flush=True)
    for group, results in (("kunit", kunit_results), ("e2e", e2e_results)):
        for r in results:
            if r.status == "passed":
                passed += 1
            elif r.status == "skipped":
                skipped += 1
            else:
                failed += 1
                print(f"  FAIL {group}: {r.path} {r.detail}")
        print(f"{tag} {group}: {sum(r.status == 'passed' for r in results)} passed, "
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
