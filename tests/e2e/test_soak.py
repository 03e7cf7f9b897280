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


def test_cut_foreign_broadcast_is_on_the_wire_count():
    """A general call naming another node, unfinished at a node when that node is unbound (its
    STOP withheld), is in the bus's count for that node as in its rx_partial: the wire account
    balances (the 600 s soak found one: "lost -1")."""
    a0, a1, a2 = lib.vbus(3)
    lib.insmod("ipmb")
    bmc = lib.Instance(a0, 0x20)
    lib.Instance(a1, 0x72)
    kmsg = soak.Kmsg()
    before = soak.frames_to(0)
    lib.vbus_param("drop_stop_next", 1)
    # The whole frame to the general-call address, rsSA (0x72) first.
    lib.i2c_xfer(a2, [(0, lib.frame(0x72, 0x30, 0x10, 1, 0x40, b"\x11"))])
    bmc.unbind()
    final = soak.final_accounts(kmsg.records()).get(a0)
    lib.true(final is not None, "the final account of the unbound node")
    lib.eq((soak.frames_to(0) - before, final["rx_partial"]), (1, 1),
           "(frames the bus counted for 0x20, rx_partial)")
