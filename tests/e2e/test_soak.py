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
