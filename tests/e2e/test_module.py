# SPDX-License-Identifier: GPL-2.0
"""The module loads and unloads cleanly."""

import lib


def test_load_unload():
    lib.true(not lib.loaded("ipmb"), "ipmb loaded before the test")
    lib.insmod("ipmb")
    lib.true(lib.loaded("ipmb"), "/sys/module/ipmb missing after insmod")
    lib.eq(lib.read("/sys/module/ipmb/initstate"), "live", "initstate")
    lib.rmmod("ipmb")
    lib.true(not lib.loaded("ipmb"), "/sys/module/ipmb still present after rmmod")

