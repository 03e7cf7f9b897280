# SPDX-License-Identifier: GPL-2.0
"""The ioctl and file-operation fuzzer (tests/uapi/ioctl_fuzz.c) after the soak
(test_soak.py): a million calls in all with the 10-minute soak, 40 000 in `make check`.

On x86 the 64-bit and the -m32 program (the compat ioctl path) run at the same time, half
the calls each, each on a pair of nodes of its own; on ARM the native (32-bit) program makes
them all on one pair.
"""

import os
import subprocess
import time

import lib
from test_soak import SECONDS, _print

# Calls in all: a million with the 10-minute soak (about 0.65 ms a call, one program alone,
# in the x86 test guest; 0.5 ms on ARM), 40 000 in `make check`.
TOTAL_CALLS = 1000000 * SECONDS // 600 if SECONDS >= 600 else 40000
# (program, own addresses of its pair of nodes)
PROGRAMS = {None: (("ioctl_fuzz", (0x20, 0x72)), ("ioctl_fuzz32", (0x24, 0x76)))}
NATIVE = (("ioctl_fuzz", (0x20, 0x72)),)
PARAMS = ("tx_retries=0", "req_timeout_ms=10", "req_retries=0")


def test_ioctl_fuzz():
    """Every fuzzed call returns success or a documented errno, and each device's counters
    hold together at the end: both programs exit 0."""
    progs = PROGRAMS.get(lib.MACHINE, NATIVE)
    adapters = lib.vbus(2 * len(progs))
    lib.insmod("ipmb", *PARAMS)
    calls = TOTAL_CALLS // len(progs)
    procs = []
    t0 = time.monotonic()
    for k, (prog, addrs) in enumerate(progs):
        nodes = [lib.Instance(adapters[2 * k + j], a) for j, a in enumerate(addrs)]
        path = os.path.join(lib.REPO, "build", "uapi", prog)
        procs.append(subprocess.Popen([path, str(calls), str(os.getpid() + k)]
                                      + [n.dev for n in nodes], stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True))
    outs = [p.communicate(timeout=SECONDS * 2 + 600)[0] for p in procs]
    elapsed = time.monotonic() - t0
    done = {}
    for (prog, _), out in zip(progs, outs):
        for line in out.splitlines():
            _print(f"{prog}: {line}")
            if line.startswith("calls "):
                done[prog] = int(line.split()[1])
    _print(f"ioctl fuzz: {sum(done.values())} calls in all ("
           + ", ".join(f"{prog} {n}" for prog, n in done.items()) + f") in {elapsed:.0f} s")
    lib.eq([p.returncode for p in procs], [0] * len(procs),
           "exit status of " + ", ".join(prog for prog, _ in progs))


test_ioctl_fuzz.timeout = SECONDS * 2 + 660
