# SPDX-License-Identifier: GPL-2.0
"""Real clients nobody on this project wrote, against ipmb.ko on the virtual bus.

- python-ipmi (PyPI, pinned; interface `ipmbdev`, which opens /dev/ipmb-N and uses plain
  write()/read()), run by the Python of its venv in the cache (`scripts/setup.sh clients`
  records it in $IPMB_CACHE/env-clients; the guest sees the host's root, so it runs here).
  Its device is the firmware-described client at 0x20 on adapter 0 (with `i2c-protocol`, so
  that the C driver ipmb_dev_int can be bound to the same client and writes plain I2C too);
  the peer is ipmb.ko at 0x72 on adapter 1, running samples/ipmb-responder or samples/ipmb-raw.
  The driver under python-ipmi is swapped to show where ipmb_dev_int differs.
- ipmitool (Debian) through the kernel's own IPMI stack: ipmi_msghandler (built in),
  ipmi_devintf (/dev/ipmiN) and ipmi_ipmb, an `ipmi-ipmb` client at 0x72 on adapter 0; the
  BMC it talks to is ipmb.ko at 0x20 on adapter 1 with samples/ipmb-responder.

The commands are the ones README.md gives under "Using it with ...".
"""

import glob
import json
import os
import re
import shlex
import subprocess
import time

import lib
from lib import BMC, SAT, eq

C_DRIVER, RUST_DRIVER = "ipmb-dev", "ipmb"
HERE = os.path.dirname(os.path.abspath(__file__))

# What samples/ipmb-responder answers to Get Device ID, as python-ipmi decodes it.
RESPONDER_DEVICE_ID = {"device_id": 0x20, "revision": 1, "available": False,
                       "fw_revision": "1.23", "ipmi_version": "2.0",
                       "manufacturer_id": 0x0002A2, "product_id": 0x0001}


def clients_env():
    """The variables of $IPMB_CACHE/env-clients (written by scripts/setup.sh clients)."""
    cache = os.environ.get("IPMB_CACHE")
    lib.true(cache, "IPMB_CACHE is set in the guest (tests/qemu/run.py)")
    out = {}
    with open(os.path.join(cache, "env-clients")) as f:
        for line in f:
            key, _, value = line.strip().partition("=")
            out[key] = " ".join(shlex.split(value))
    return out


def client_argv(args):
    """The command line of tests/e2e/pyipmi_client.py, run by the venv's Python."""
    return [clients_env()["PYTHON_IPMI_PYTHON"], os.path.join(HERE, "pyipmi_client.py"),
            *[a if isinstance(a, str) else f"0x{a:x}" for a in args]]


def client_env(limit, debug):
    env = dict(os.environ, PYIPMI_CLIENT_LIMIT=str(limit))
    if debug:
        env["PYIPMI_CLIENT_DEBUG"] = "1"
    return env


def pyipmi(*args, limit=45, debug=True):
    """Runs pyipmi_client.py: its JSON result. A client past `limit` seconds prints its
    threads' stacks and exits, and the test fails with them (and the frame log with debug)."""
    p = subprocess.run(client_argv(args), capture_output=True, text=True, timeout=limit + 30,
                       env=client_env(limit, debug))
    lib.true(p.returncode == 0, f"python-ipmi {' '.join(map(str, args))}: exit status "
             f"{p.returncode}: {p.stderr.strip()[-3000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def pyipmi_start(*args, limit=45):
    """Starts pyipmi_client.py in the background; returns once it printed that it is ready."""
    p = subprocess.Popen(client_argv(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env=client_env(limit, True))
    line = p.stdout.readline()
    if json.loads(line or "{}").get("ready") is not True:
        p.kill()
        raise AssertionError(f"python-ipmi {args[0]} did not start: {line!r} "
                             f"{p.communicate(timeout=10)[1][-3000:]}")
    return p


def diag(text):
    """A diagnostic line in the KTAP output (shown by tests/qemu/run.py)."""
    print(f"# clients: {text}", flush=True)


def sample(name, *args):
    return os.path.join(lib.REPO, "samples", name), *args


class Responder:
    """samples/ipmb-responder on an ipmb.ko instance, stopped on exit."""

    def __init__(self, inst):
        self.p = subprocess.Popen(sample("ipmb-responder", inst.dev), stdout=subprocess.PIPE,
                                  text=True)

    def __enter__(self):
        if self.p.stdout.readline().strip() != "ready":
            self.p.kill()
            raise AssertionError("ipmb-responder did not start")
        return self

    def __exit__(self, *exc):
        self.p.terminate()
        self.p.wait(timeout=10)


# ---------------------------------------------------------------------------------------------
# python-ipmi

def pyipmi_bus(c_driver=False):
    """python-ipmi's client (0x20, adapter 0, from firmware) and the peer: ipmb.ko at 0x72 on
    adapter 1. With c_driver, ipmb_dev_int is loaded too (the client binds to one of them:
    callers rebind it)."""
    a0, a1 = lib.vbus(2, fw_client=0, fw_i2c_protocol=1)
    if c_driver:
        lib.insmod("ipmb_dev_int")
    lib.insmod("ipmb")
    return lib.Instance(a0, BMC, driver=None, new=False), lib.Instance(a1, SAT)


def test_pyipmi_get_device_id():
    client, peer = pyipmi_bus()
    client.rebind(RUST_DRIVER)
    with Responder(peer):
        got = pyipmi("device-id", client.dev, BMC, SAT)
    eq(got, RESPONDER_DEVICE_ID, "get_device_id() through ipmb.ko")


def test_pyipmi_get_device_id_same_on_c_driver():
    """One process with its own device: ipmb_dev_int and ipmb.ko give python-ipmi the same."""
    client, peer = pyipmi_bus(c_driver=True)
    got = {}
    with Responder(peer):
        for drv in (C_DRIVER, RUST_DRIVER):
            client.rebind(drv)
            got[drv] = pyipmi("device-id", client.dev, BMC, SAT)
    eq(got, {C_DRIVER: RESPONDER_DEVICE_ID, RUST_DRIVER: RESPONDER_DEVICE_ID},
       "get_device_id() per driver")


test_pyipmi_get_device_id_same_on_c_driver.timeout = 150


def test_pyipmi_100_sequential_requests():
    client, peer = pyipmi_bus()
    client.rebind(RUST_DRIVER)
    with Responder(peer):
        got = pyipmi("loop", client.dev, BMC, SAT, 100, limit=180, debug=False)
    diag(f"python-ipmi, 100 sequential get_device_id() on ipmb.ko: {got}")
    eq((got["answered"], got["timeouts"]), (100, 0), "(answered, timed out) of 100")


test_pyipmi_100_sequential_requests.timeout = 240


def shared_device(client, procs=4, count=50):
    """`procs` python-ipmi processes, `count` get_device_id() each, on one device at once:
    (answered, timed out, seconds) in all."""
    start = time.monotonic()
    ps = [subprocess.Popen(client_argv(["loop", client.dev, BMC, SAT, count]),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           env=client_env(200, False))
          for _ in range(procs)]
    results = []
    for p in ps:
        out, err = p.communicate(timeout=300)
        lib.true(p.returncode == 0, f"python-ipmi loop: exit status {p.returncode}: {err[-2000:]}")
        results.append(json.loads(out.strip().splitlines()[-1]))
    return (sum(r["answered"] for r in results), sum(r["timeouts"] for r in results),
            round(time.monotonic() - start, 1))


def test_pyipmi_shared_device_every_request_answered():
    """4 python-ipmi processes x 50 Get Device ID on one /dev/ipmb-N (their seqs overlap):
    each response reaches the process that wrote the request."""
    client, peer = pyipmi_bus()
    client.rebind(RUST_DRIVER)
    with Responder(peer):
        answered, timeouts, secs = shared_device(client)
    diag(f"python-ipmi, 4 processes x 50 on one device, ipmb.ko: {answered} of 200 answered, "
         f"{timeouts} timed out, {secs} s")
    eq((answered, timeouts), (200, 0), "(answered, timed out) of 200")


test_pyipmi_shared_device_every_request_answered.timeout = 240


def test_pyipmi_shared_device_c_driver_shown():
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


test_pyipmi_shared_device_c_driver_shown.timeout = 240


def pyipmi_responds(driver, requests=10):
    """python-ipmi answers Get Device ID on its device bound to `driver`; samples/ipmb-raw
    asks `requests` times from the peer. The ipmb-raw outputs."""
    client, peer = pyipmi_bus(c_driver=driver == C_DRIVER)
    client.rebind(driver)
    resp = pyipmi_start("respond", client.dev, BMC, requests, 60)
    outs = []
    try:
        for _ in range(requests):
            p = subprocess.run(sample("ipmb-raw", "-t", "2000", "-r", "0", peer.dev, f"0x{BMC:x}",
                                      "0x06", "0x01"), capture_output=True, text=True, timeout=30)
            outs.append((p.returncode, p.stdout))
        out, err = resp.communicate(timeout=60)
        eq(json.loads(out.strip().splitlines()[-1]), {"answered": requests},
           f"python-ipmi responder on {driver}: {err[-1000:]}")
    finally:
        if resp.poll() is None:
            resp.kill()
            resp.wait()
    return outs


def check_responses(outs):
    """Every ipmb-raw run got cc 0 and the identity the python-ipmi responder gives."""
    for rc, out in outs:
        eq(rc, 0, f"ipmb-raw exit status: {out}")
        lib.true(out.startswith("cc=0x00 (ok)"), f"completion code in {out!r}")
        ident = dict(re.findall(r"^(Device ID|Firmware Revision|Product ID)\s*: (.*)$", out, re.M))
        eq(ident, {"Device ID": "68", "Firmware Revision": "3.45", "Product ID": "258 (0x0102)"},
           "what ipmb-raw decoded")


def test_pyipmi_responder_answers_ipmb_raw():
    check_responses(pyipmi_responds(RUST_DRIVER))


def test_pyipmi_responder_on_c_driver_answers_ipmb_raw():
    check_responses(pyipmi_responds(C_DRIVER))


# ---------------------------------------------------------------------------------------------
# ipmitool through ipmi_msghandler + ipmi_devintf + ipmi_ipmb

class IpmiIpmb:
    """An `ipmi-ipmb` client at 8-bit address `addr` on adapter `nr` (deleted by cleanup)."""

    def __init__(self, nr, addr):
        self.nr, self.addr = nr, addr
        self.client = f"{nr}-{lib.OWN_SLAVE | (addr >> 1):04x}"
        before = set(glob.glob("/dev/ipmi[0-9]*"))
        start = time.monotonic()
        with open(f"/sys/bus/i2c/devices/i2c-{nr}/new_device", "w") as f:
            f.write(f"ipmi-ipmb 0x{lib.OWN_SLAVE | (addr >> 1):x}")
        lib._instances.append(self)
        new = lib.wait_for(lambda: set(glob.glob("/dev/ipmi[0-9]*")) - before, "/dev/ipmiN",
                           timeout=30)
        self.probe_secs = round(time.monotonic() - start, 1)
        self.num = int(min(new)[len("/dev/ipmi"):])

    def delete(self):
        with open(f"/sys/bus/i2c/devices/i2c-{self.nr}/delete_device", "w") as f:
            f.write(f"0x{lib.OWN_SLAVE | (self.addr >> 1):x}")


def ipmitool_bus():
    """ipmb.ko at 0x20 on adapter 1 (the BMC), ipmi_ipmb's client at 0x72 on adapter 0."""
    a0, a1 = lib.vbus(2)
    lib.insmod("ipmb")
    bmc = lib.Instance(a1, BMC)
    return a0, bmc


def ipmitool(host, *args):
    """ipmitool -I open -d N ARGS: (exit status, stdout, stderr, seconds)."""
    start = time.monotonic()
    p = subprocess.run(["ipmitool", "-I", "open", "-d", str(host.num), *args],
                       capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr, time.monotonic() - start


def with_ipmitool(*args):
    """Runs one ipmitool command against samples/ipmb-responder behind ipmb.ko.

    ipmi_msghandler's probe and ipmitool's own start (PICMG and VITA discovery) send commands
    the responder may not implement: each one it leaves unanswered costs ipmi_ipmb's timeout
    and retries, so the run is slow unless the responder answers 0xc1 to those (hence the
    tests' time limits)."""
    a0, bmc = ipmitool_bus()
    with Responder(bmc):
        lib.insmod("ipmi_devintf")
        lib.insmod("ipmi_ipmb")
        host = IpmiIpmb(a0, SAT)
        rc, out, err, secs = ipmitool(host, *args)
        diag(f"ipmi_ipmb probe (new_device to /dev/ipmi{host.num}) {host.probe_secs} s, "
             f"ipmitool {' '.join(args)} {secs:.1f} s")
        return rc, out, err, secs


def test_ipmitool_mc_info():
    rc, out, err, _ = with_ipmitool("mc", "info")
    eq(rc, 0, f"ipmitool mc info exit status ({err.strip()})")
    fields = dict(re.findall(r"^(Device ID|Firmware Revision|IPMI Version|Manufacturer ID|"
                             r"Product ID)\s*: (\S+)", out, re.M))
    eq(fields, {"Device ID": "32", "Firmware Revision": "1.23", "IPMI Version": "2.0",
                "Manufacturer ID": "674", "Product ID": "1"}, "ipmitool mc info fields")


test_ipmitool_mc_info.timeout = 150


def test_ipmitool_raw_get_device_id():
    rc, out, err, _ = with_ipmitool("raw", "0x06", "0x01")
    eq((rc, out.split()), (0, "20 01 01 23 02 00 a2 02 00 01 00".split()),
       f"ipmitool raw 0x06 0x01 ({err.strip()})")


test_ipmitool_raw_get_device_id.timeout = 150


def test_ipmitool_mc_selftest():
    rc, out, err, _ = with_ipmitool("mc", "selftest")
    eq((rc, out.strip()), (0, "Selftest: passed"), f"ipmitool mc selftest ({err.strip()})")


test_ipmitool_mc_selftest.timeout = 150


def test_ipmitool_unimplemented_command_0xc1_promptly():
    """Get System GUID (App 0x37), which samples/ipmb-responder does not implement: answered
    0xc1 (invalid command) at once, not left to ipmi_ipmb's timeout (0xc3)."""
    rc, out, err, secs = with_ipmitool("raw", "0x06", "0x37")
    diag(f"ipmitool raw 0x06 0x37: exit status {rc}, {secs:.2f} s: {err.strip()}")
    eq((rc, re.findall(r"rsp=(0x[0-9a-f]+)", err)), (1, ["0xc1"]),
       "ipmitool raw 0x06 0x37: (exit status, completion code)")
    lib.true(secs < 2.0, f"answered within 2 s (took {secs:.2f} s)")


test_ipmitool_unimplemented_command_0xc1_promptly.timeout = 150
