# SPDX-License-Identifier: GPL-2.0
"""python-ipmi (PyPI, pinned), a client nobody on this project wrote, against ipmb.ko.

Its interface `ipmbdev` opens /dev/ipmb-N and uses plain write()/read(). The client runs with
the Python of its venv in the cache (tests/e2e/pyipmi_client.py). Its device is the
firmware-described client at 0x20 on adapter 0 (with `i2c-protocol`, so that the C driver
ipmb_dev_int can be bound to the same client and writes plain I2C too); the peer is ipmb.ko at
0x72 on adapter 1, running samples/ipmb-responder or samples/ipmb-raw. The driver under
python-ipmi is swapped to show where ipmb_dev_int differs. The commands are the ones
README.md gives under "Using it with ...".
"""

import re
import subprocess
import time

import lib
from clients import (C_DRIVER, RUST_DRIVER, Forked, Responder, diag, pyipmi, pyipmi_client,
                     sample)
from lib import BMC, SAT, eq

# What samples/ipmb-responder answers to Get Device ID, as python-ipmi decodes it.
RESPONDER_DEVICE_ID = {"device_id": 0x20, "revision": 1, "available": False,
                       "fw_revision": "1.23", "ipmi_version": "2.0",
                       "manufacturer_id": 0x0002A2, "product_id": 0x0001}


def pyipmi_bus(c_driver=False):
    """python-ipmi's client (0x20, adapter 0, from firmware) and the peer: ipmb.ko at 0x72 on
    adapter 1. With c_driver, ipmb_dev_int is loaded too (the client binds to one of them:
    callers rebind it)."""
    a0, a1 = lib.vbus(2, fw_client=0, fw_i2c_protocol=1)
    if c_driver:
        lib.insmod("ipmb_dev_int")
    lib.insmod("ipmb")
    return lib.Instance(a0, BMC, driver=None, new=False), lib.Instance(a1, SAT)


def test_get_device_id():
    client, peer = pyipmi_bus()
    client.rebind(RUST_DRIVER)
    with Responder(peer):
        got = pyipmi("device_id", client.dev, BMC, SAT)
    eq(got, RESPONDER_DEVICE_ID, "get_device_id() through ipmb.ko")


test_get_device_id.timeout = 300


def test_get_device_id_same_on_c_driver():
    """One process with its own device: ipmb_dev_int and ipmb.ko give python-ipmi the same."""
    client, peer = pyipmi_bus(c_driver=True)
    got = {}
    with Responder(peer):
        for drv in (C_DRIVER, RUST_DRIVER):
            client.rebind(drv)
            got[drv] = pyipmi("device_id", client.dev, BMC, SAT)
    eq(got, {C_DRIVER: RESPONDER_DEVICE_ID, RUST_DRIVER: RESPONDER_DEVICE_ID},
       "get_device_id() per driver")


test_get_device_id_same_on_c_driver.timeout = 300


def test_100_sequential_requests():
    client, peer = pyipmi_bus()
    client.rebind(RUST_DRIVER)
    with Responder(peer):
        got = pyipmi("loop", client.dev, BMC, SAT, 100, limit=200)
    diag(f"python-ipmi, 100 sequential get_device_id() on ipmb.ko: {got}")
    eq((got["answered"], got["timeouts"]), (100, 0), "(answered, timed out) of 100")


test_100_sequential_requests.timeout = 300


def shared_device(dev, procs=4, count=50):
    """`procs` python-ipmi processes, `count` get_device_id() each, on one device at once:
    (answered, timed out, seconds) in all."""
    start = time.monotonic()
    loop = pyipmi_client().loop
    ps = [Forked(loop, dev.dev, BMC, SAT, count) for _ in range(procs)]
    results = [p.result(200) for p in ps]
    return (sum(r["answered"] for r in results), sum(r["timeouts"] for r in results),
            round(time.monotonic() - start, 1))


def test_shared_device_every_request_answered():
    """4 python-ipmi processes x 50 Get Device ID on one /dev/ipmb-N (their seqs overlap):
    each response reaches the process that wrote the request."""
    client, peer = pyipmi_bus()
    client.rebind(RUST_DRIVER)
    with Responder(peer):
        answered, timeouts, secs = shared_device(client)
    diag(f"python-ipmi, 4 processes x 50 on one device, ipmb.ko: {answered} of 200 answered, "
         f"{timeouts} timed out, {secs} s")
    eq((answered, timeouts), (200, 0), "(answered, timed out) of 200")


test_shared_device_every_request_answered.timeout = 300


def test_shared_device_c_driver_shown():
    """The same 4 x 50 on ipmb_dev_int: whichever process reads first takes a response, by the
    C driver's design, so some requests time out. Printed, not asserted: only that every
    request ends, answered or timed out."""
    client, peer = pyipmi_bus(c_driver=True)
    client.rebind(C_DRIVER)
    with Responder(peer):
        answered, timeouts, secs = shared_device(client)
    diag(f"python-ipmi, 4 processes x 50 on one device, ipmb_dev_int: {answered} of 200 "
         f"answered, {timeouts} timed out, {secs} s")
    eq(answered + timeouts, 200, "requests that ended (answered or timed out)")


test_shared_device_c_driver_shown.timeout = 300


def pyipmi_responds(driver, requests=10):
    """python-ipmi answers Get Device ID on its device bound to `driver`; samples/ipmb-raw
    asks `requests` times from the peer. The ipmb-raw outputs."""
    dev, peer = pyipmi_bus(c_driver=driver == C_DRIVER)
    dev.rebind(driver)
    resp = Forked(pyipmi_client().respond, dev.dev, BMC, requests, 120, ready=True)
    outs = []
    try:
        resp.wait_ready(120)
        for _ in range(requests):
            p = subprocess.run(sample("ipmb-raw", "-t", "2000", "-r", "0", peer.dev, f"0x{BMC:x}",
                                      "0x06", "0x01"), capture_output=True, text=True, timeout=30)
            outs.append((p.returncode, p.stdout))
        eq(resp.result(120), {"answered": requests}, f"python-ipmi responder on {driver}")
    finally:
        resp.close()
    return outs


def check_responses(outs):
    """Every ipmb-raw run got cc 0 and the identity the python-ipmi responder gives."""
    for rc, out in outs:
        eq(rc, 0, f"ipmb-raw exit status: {out}")
        lib.true(out.startswith("cc=0x00 (ok)"), f"completion code in {out!r}")
        ident = dict(re.findall(r"^(Device ID|Firmware Revision|Product ID)\s*: (.*)$", out, re.M))
        eq(ident, {"Device ID": "68", "Firmware Revision": "3.45", "Product ID": "258 (0x0102)"},
           "what ipmb-raw decoded")


def test_responder_answers_ipmb_raw():
    check_responses(pyipmi_responds(RUST_DRIVER))


test_responder_answers_ipmb_raw.timeout = 300


def test_responder_on_c_driver_answers_ipmb_raw():
    check_responses(pyipmi_responds(C_DRIVER))


test_responder_on_c_driver_answers_ipmb_raw.timeout = 300
