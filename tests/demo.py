#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""`make demo`, inside the guest: two IPMB nodes on a virtual I2C bus, talking through ipmb.ko.

A BMC at 0x20 on one adapter asks a satellite controller at 0x72 on another for its device
ID, first with the request ioctl (samples/ipmb-raw against samples/ipmb-responder), then
through read()/write() as ipmb_dev_int users do. Timeouts, NAKs and a corrupted frame show
the synthesized completion codes, the checks and the counters at work.
"""

import os
import select
import subprocess
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "e2e"))
import lib  # noqa: E402

BMC, SAT = lib.BMC, lib.SAT
NETFN_APP = 0x06
GET_DEVICE_ID = 0x01


def say(text=""):
    print(text, flush=True)


def hexs(b):
    return " ".join(f"{x:02x}" for x in b)


def decode(buf):
    f = buf[1:]
    netfn, lun = f[1] >> 2, f[1] & 3
    kind = "response" if netfn & 1 else "request"
    out = [f"len={buf[0]} dest=0x{f[0]:02x} netFn=0x{netfn:02x} ({kind}) LUN={lun}",
           f"cs1=0x{f[2]:02x} src=0x{f[3]:02x} seq={f[4] >> 2} cmd=0x{f[5]:02x}",
           f"body=[{hexs(f[6:-1])}] cs2=0x{f[-1]:02x}"]
    return "\n      ".join(out)


def responder(sat, stop):
    """The satellite: answers Get Device ID requests read from its /dev/ipmb-N."""
    fd = sat.open(os.O_RDWR | os.O_NONBLOCK)
    try:
        while not stop.is_set():
            if not select.select([fd], [], [], 0.2)[0]:
                continue
            req = os.read(fd, 256)[1:]
            netfn, seq, cmd = req[1] >> 2, req[4] >> 2, req[5]
            if netfn == NETFN_APP and cmd == GET_DEVICE_ID:
                # Completion code 0, device ID 0x72, revision 1, firmware 2.05, IPMI 2.0.
                body = bytes([0x00, 0x72, 0x01, 0x02, 0x05, 0x02, 0x00, 0x57, 0x01, 0x00,
                              0x34, 0x12])
            else:
                body = bytes([0xC1])  # Invalid command.
            os.write(fd, lib.with_len(lib.frame(req[3], netfn | 1, SAT, seq, cmd, body)))
    finally:
        os.close(fd)


run = lib.run_sample


def main():
    lib.guest_main_args()

    say("=" * 72)
    say("ipmb demo: two IPMB nodes on a virtual I2C bus (Linux 7.2, QEMU)")
    say("=" * 72)
    bmc, sat = lib.two_nodes()
    a0, a1 = bmc.nr, sat.nr
    say(f"$ echo ipmb-dev 0x1010 > /sys/bus/i2c/devices/i2c-{a0}/new_device   # BMC, 0x20")
    say(f"$ echo ipmb-dev 0x1039 > /sys/bus/i2c/devices/i2c-{a1}/new_device   # satellite, 0x72")
    say(f"  -> {bmc.dev} and {sat.dev}")
    say()

    say("1. Request/response through the ioctls (samples/): the satellite runs a responder")
    say("   that registers NetFn App commands and the default route (everything else); the")
    say("   BMC asks with one ioctl, and the kernel fills rqSA, allocates the seq, builds the")
    say("   checksums, matches the answer.")
    resp = subprocess.Popen([os.path.join(lib.REPO, "samples", "ipmb-responder"), "-v",
                             sat.dev], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    say(f"$ ipmb-responder -v {sat.dev} &")
    say(f"  {resp.stdout.readline().rstrip()}")
    try:
        run(["ipmb-raw", bmc.dev, f"0x{SAT:02x}", "0x06", "0x01"], "Get Device ID")
        run(["ipmb-raw", bmc.dev, f"0x{SAT:02x}", "0x06", "0x04"], "Get Self Test Results")
        run(["ipmb-raw", bmc.dev, f"0x{SAT:02x}", "0x06", "0x02"],
            "Cold Reset: not implemented, the default route brings it to the responder")
        say("   The responder answers what it does not implement with 0xC1 (invalid command)")
        say("   at once, instead of leaving the requester to time out (0xC3).")
        run(["ipmb-raw", "-t", "50", bmc.dev, "0x74", "0x06", "0x01"],
            "nobody at 0x74: the address is NAKed")
    finally:
        resp.terminate()
        out, _ = resp.communicate(timeout=10)
    say("  responder log:")
    for line in out.splitlines():
        say(f"    {line}")
    say()

    say("2. The same exchange through read()/write(), byte-compatible with ipmb_dev_int:")
    stop = threading.Event()
    t = threading.Thread(target=responder, args=(sat, stop))
    t.start()
    fb = bmc.open()
    try:
        req = lib.with_len(lib.frame(SAT, NETFN_APP, BMC, 1, GET_DEVICE_ID))
        say(f"BMC writes a Get Device ID request to {bmc.dev}:")
        say(f"  [{hexs(req)}]\n      {decode(req)}")
        os.write(fb, req)
        rsp = os.read(fb, 256)
        say(f"BMC reads the satellite's answer from {bmc.dev}:")
        say(f"  [{hexs(rsp)}]\n      {decode(rsp)}")
    finally:
        stop.set()
        t.join()
        os.close(fb)
    say()

    say("3. A frame with a corrupted data checksum, sent raw on the wire to the BMC:")
    bad = bytearray(lib.frame(BMC, NETFN_APP | 1, SAT, 2, GET_DEVICE_ID, b"\x00"))
    bad[-1] ^= 0x55
    lib.send_raw(a1, bytes(bad))
    c = bmc.counters()
    say(f"  not delivered; counters of the BMC instance (sysfs {bmc.path}/statistics/):")
    for k in ("rx_frames", "rx_bad_cs2", "tx_frames", "req_sent", "req_retries",
              "req_timeouts", "req_bus_errors", "rsp_matched"):
        say(f"    {k:15} {c[k]}")
    say()
    lib.cleanup()
    say("Everything unloaded cleanly. Tests: make check.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
