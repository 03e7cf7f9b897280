#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""`make bench`, inside the guest: ipmb.ko against ipmb_dev_int.ko, same boot, same bus.

One client at 0x20 is bound to each driver in turn; a second adapter sends the traffic.
Absolute numbers under QEMU/TCG on a debug kernel (KASAN, lockdep) say little about a BMC;
the ratios between the two drivers, measured back to back in the same guest, are the point.
Each figure is the median of several rounds.
"""

import os
import select
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "e2e"))
import ipmbabi as abi  # noqa: E402
import lib  # noqa: E402

BMC, SAT = lib.BMC, lib.SAT
C_DRIVER, RUST_DRIVER = "ipmb-dev", "ipmb"
FRAMES, ROUNDS, LATENCY_SAMPLES = 200, 5, 100
# Requests per round, over the responder's four commands: 6 rounds * 40 / 4 = 60 per
# exchange in all, under the 64 a (responder, netFn, cmd) may have per 5 s.
REQUESTS = 40
CMDS = (0x01, 0x04, 0x07, 0x08)


def say(text=""):
    print(text, flush=True)


def rx_throughput(inst, sender, frames):
    """Frames per second from the first byte sent to the last frame read."""
    fd = inst.open(os.O_RDWR | os.O_NONBLOCK)
    dev = os.open(f"/dev/i2c-{sender}", os.O_RDWR)
    try:
        start = time.perf_counter()
        for f in frames:
            lib.send_raw(sender, f)
        got = 0
        while got < len(frames):
            os.read(fd, 256)
            got += 1
        return len(frames) / (time.perf_counter() - start)
    finally:
        os.close(dev)
        os.close(fd)


def rx_cycle(inst, sender, f):
    """Microseconds per cycle of: send one frame, poll until it is readable, read it.

    Timed over the whole batch: the guest clock is too coarse for single cycles under TCG.
    """
    fd = inst.open(os.O_RDWR | os.O_NONBLOCK)
    p = select.poll()
    p.register(fd, select.POLLIN)
    try:
        start = time.perf_counter()
        for _ in range(LATENCY_SAMPLES):
            lib.send_raw(sender, f)
            p.poll(1000)
            os.read(fd, 256)
        return (time.perf_counter() - start) / LATENCY_SAMPLES * 1e6
    finally:
        os.close(fd)


def requests_kernel(fd, n):
    """Microseconds per request with IPMB_IOC_REQUEST: the kernel allocates, matches, waits."""
    start = time.perf_counter()
    for i in range(n):
        r = abi.request(fd, SAT, 0x06, CMDS[i % len(CMDS)])
        if r["cc"] != 0 or r["flags"] & abi.MSG_SYNTHESIZED:
            raise AssertionError(f"request {i}: {r}")
    return (time.perf_counter() - start) / n * 1e6


def requests_userspace(fd, n, seq0):
    """Microseconds per request done the ipmbbridged way: write() with our own seq, then
    poll() and read() until the frame with that seq and cmd comes back."""
    p = select.poll()
    p.register(fd, select.POLLIN)
    start = time.perf_counter()
    for i in range(n):
        seq, cmd = (seq0 + i) % 64, CMDS[i % len(CMDS)]
        os.write(fd, lib.with_len(lib.frame(SAT, 0x06, BMC, seq, cmd)))
        while True:
            if not p.poll(2000):
                raise AssertionError(f"request {i}: no response")
            f = os.read(fd, 256)[1:]
            if f[4] >> 2 == seq and f[5] == cmd and f[3] == SAT:
                break
    return (time.perf_counter() - start) / n * 1e6


def request_bench():
    """Request round trips through ipmb.ko: in the kernel against in userspace (as
    ipmbbridged does on /dev/ipmb-N). ipmb_dev_int cannot take part: without the DT property
    `i2c-protocol` (which a client made through new_device cannot have) it sends SMBus block
    writes, which no IPMB responder parses."""
    bmc, sat = lib.two_nodes()
    resp = subprocess.Popen([os.path.join(lib.REPO, "samples", "ipmb-responder"), sat.dev],
                            stdout=subprocess.PIPE, text=True)
    fd = bmc.open(os.O_RDWR | os.O_NONBLOCK)
    try:
        if resp.stdout.readline().strip() != "ready":
            raise AssertionError("ipmb-responder did not start")
        kern, user = [], []
        for r in range(ROUNDS + 1):
            k, u = requests_kernel(fd, REQUESTS), requests_userspace(fd, REQUESTS, r * REQUESTS)
            if r > 0:
                kern.append(k)
                user.append(u)
        return statistics.median(user), statistics.median(kern)
    finally:
        os.close(fd)
        resp.terminate()
        resp.wait(10)


def main():
    lib.guest_main_args()

    a0, a1 = lib.vbus(2)
    lib.insmod("ipmb_dev_int")
    lib.insmod("ipmb", f"queue_len={FRAMES}")
    inst = lib.Instance(a0, BMC, driver=C_DRIVER)
    frames = [lib.frame(BMC, 0x07, SAT, i % 64, 0x01, bytes([0]) + bytes(20)) for i in range(FRAMES)]
    one = frames[0]

    # Rounds alternate between the drivers, so drift in the host's load hits both alike.
    samples = {C_DRIVER: ([], []), RUST_DRIVER: ([], [])}
    for r in range(ROUNDS + 1):
        for drv in (C_DRIVER, RUST_DRIVER):
            inst.rebind(drv)
            tput, cycle = rx_throughput(inst, a1, frames), rx_cycle(inst, a1, one)
            if r > 0:  # round 0 warms up caches and the allocator
                samples[drv][0].append(tput)
                samples[drv][1].append(cycle)
    results = {d: (statistics.median(t), statistics.median(c)) for d, (t, c) in samples.items()}

    (ct, cl), (rt, rl) = results[C_DRIVER], results[RUST_DRIVER]
    say("=" * 72)
    say(f"ipmb.ko vs ipmb_dev_int.ko, same boot, {FRAMES} frames of {len(one)} bytes, "
        f"median of {ROUNDS}")
    say("=" * 72)
    say(f"{'':28}{'ipmb_dev_int':>14}{'ipmb.ko':>14}{'ratio':>10}")
    say(f"{'rx throughput (frames/s)':28}{ct:14.0f}{rt:14.0f}{rt / ct:9.2f}x")
    say(f"{'send+poll+read cycle (us)':28}{cl:14.0f}{rl:14.0f}{rl / cl:9.2f}x")
    say("(throughput: higher is better; cycle time: lower is better; TCG + debug kernel)")
    lib.cleanup()

    user, kern = request_bench()
    say()
    say(f"request round trip to a responder (samples/ipmb-responder), {REQUESTS} requests, "
        f"median of {ROUNDS}")
    say(f"{'':28}{'userspace':>14}{'kernel':>14}{'ratio':>10}")
    say(f"{'matching, us per request':28}{user:14.0f}{kern:14.0f}{kern / user:9.2f}x")
    say("(userspace: write() + poll() + read() + match by seq on ipmb.ko, as ipmbbridged does")
    say(" with either driver; kernel: one IPMB_IOC_REQUEST. Lower is better.)")
    lib.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
