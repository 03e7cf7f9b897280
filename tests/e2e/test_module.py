# SPDX-License-Identifier: GPL-2.0
"""The module loads and unloads cleanly, and the reference peers are available."""

import lib


def test_load_unload():
    lib.true(not lib.loaded("ipmb"), "ipmb loaded before the test")
    lib.insmod("ipmb")
    lib.true(lib.loaded("ipmb"), "/sys/module/ipmb missing after insmod")
    lib.eq(lib.read("/sys/module/ipmb/initstate"), "live", "initstate")
    lib.rmmod("ipmb")
    lib.true(not lib.loaded("ipmb"), "/sys/module/ipmb still present after rmmod")


def test_reference_peers_load():
    # The in-tree C drivers the differential tests compare against come from the same build.
    for name in ("ipmb_dev_int", "ipmi_ipmb", "ipmi_devintf"):
        lib.insmod(name)
        lib.true(lib.loaded(name), f"{name} did not load")
