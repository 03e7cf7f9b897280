# SPDX-License-Identifier: GPL-2.0
"""The ioctl and file-operation fuzzer (tests/uapi/ioctl_fuzz.c) on two instances, after the
soak (test_soak.py): 500 000 calls per program with `make soak`, 20 000 in `make check`."""

import os
import subprocess

import lib
from test_soak import SECONDS, _print

# Calls per program (64-bit and 32-bit): a million in all with the 10-minute soak, 20 000 each
# in `make check` (about 1 ms a call in the x86 test guest).
FUZZ_CALLS = 500000 * SECONDS // 600 if SECONDS >= 600 else 20000


def _fuzz(prog):
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
