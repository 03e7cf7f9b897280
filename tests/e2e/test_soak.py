# SPDX-License-Identifier: GPL-2.0
"""The soak (tests/e2e/soak.py) as an e2e case: 60 s in `make check`, SOAK_S in `make soak`.

The duration comes from IPMB_SOAK_S (tests/qemu/run.py --soak-seconds puts it in the guest's
environment); the runner's time limit for the case follows it.
"""

import os

import lib
import soak

SECONDS = int(os.environ.get("IPMB_SOAK_S", "60"))


def _print(line):
    print(f"# {line}", flush=True)


def test_soak():
    lib.true(soak.run(SECONDS, _print), "the soak's accounts do not balance (see above)")


test_soak.timeout = SECONDS + 240
