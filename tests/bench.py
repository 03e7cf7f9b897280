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
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "e2e"))
import lib  # noqa: E402

BMC, SAT = lib.BMC, lib.SAT
C_DRIVER, RUST_DRIVER = "ipmb-dev", "ipmb"
FRAMES, ROUNDS, LATENCY_SAMPLES = 200, 5, 100


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
    return 0


if __name__ == "__main__":
    sys.exit(main())
