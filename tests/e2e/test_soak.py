# SPDX-License-Identifier: GPL-2.0
"""The soak (tests/e2e/soak.py) as an e2e case: 60 s in `make check`, SOAK_S in `make soak`.

The duration comes from IPMB_SOAK_S (tests/qemu/run.py --soak-seconds puts it in the guest's
environment); the runner's time limit for the case follows it.
"""

import os

import lib
import soak

SECONDS = int(os.environ.get("IPMB_SOAK_S", "60"))
# The cycles (unbind/bind, rmmod/insmod): 1000 and 200 per 600 s, the pace the soak keeps. A
# full soak (600 s or more) must do them all, running on for up to 8 times as long if the
# guest is too slow (SOAK_LIMIT_S caps that); the short one of `make check` does what fits,
# at least 10 and 2.
PACE = (1000 * SECONDS // 600, 200 * SECONDS // 600)
if SECONDS >= 600:
    REQUIRED, LIMIT = PACE, SECONDS * 8
else:
    REQUIRED, LIMIT = (10, 2), SECONDS * 2
# make soak SOAK_LIMIT_S=N: at most N seconds in all.
LIMIT = int(os.environ.get("IPMB_SOAK_LIMIT_S", "0")) or LIMIT


def _print(line):
    print(f"# {line}", flush=True)


def test_soak():
    lib.true(soak.run(SECONDS, PACE, REQUIRED, LIMIT, _print),
             "the soak failed: accounts or cycle counts (see above)")


test_soak.timeout = LIMIT + 300

# Calls of the ioctl fuzzer per program (64-bit and 32-bit): a million in all for the
# 10-minute soak, proportionally fewer for a shorter one.
FUZZ_CALLS = max(10000, SECONDS * 1000 * 1000 // 1200)


def _fuzz(prog):
    import subprocess
    bmc, sat = lib.two_nodes("tx_retries=0", "req_timeout_ms=10", "req_retries=0")
    path = os.path.join(lib.REPO, "build", "uapi", prog)
    p = subprocess.run([path, str(FUZZ_CALLS), str(os.getpid()), bmc.dev, sat.dev],
                       capture_output=True, text=True, timeout=SECONDS * 2 + 600)
    for line in (p.stdout + p.stderr).splitlines():
        _print(f"{prog}: {line}")
    lib.eq(p.returncode, 0, f"{prog} exit status")


def test_ioctl_fuzz():
    """The native program: 64-bit on x86, 32-bit on ARM."""
    _fuzz("ioctl_fuzz")


@lib.machines(None)
def test_ioctl_fuzz_32():
    """The -m32 program on the x86 guest: the compat ioctl path."""
    _fuzz("ioctl_fuzz32")


test_ioctl_fuzz.timeout = test_ioctl_fuzz_32.timeout = SECONDS * 2 + 660
