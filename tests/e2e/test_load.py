# SPDX-License-Identifier: GPL-2.0
"""The virtual bus's load source (tests/vbus/load.rs), which `make bench` drives: it plays
frames into a target from the kernel and times the target callbacks. Functional checks only;
the bench measures: the one time asserted here is the least a paced run must take."""

import os

import lib

LOAD = lib.VBUS_LOAD
BMC, SAT = lib.BMC, lib.SAT


def play(count, frames, port=1, gap_ns=0):
    """Resets the statistics and plays `count` frames (addresses included) from wire port
    `port` to the BMC's address, in turn."""
    with open(f"{LOAD}/stats", "w") as f:
        f.write("0")
    with open(f"{LOAD}/run", "w") as f:
        f.write(f"{port} 0x{BMC >> 1:x} {count} {gap_ns} " + " ".join(fr[1:].hex() for fr in frames))


def two_frames():
    return [lib.frame(BMC, 0x06, SAT, seq, 0x30, bytes([seq])) for seq in (1, 2)]


def test_load_frames_reach_reader_in_turn():
    """A run of 5 frames from a list of 2 delivers them to ipmb.ko's read() in turn."""
    a0, _ = lib.vbus(2)
    lib.insmod("ipmb")
    inst = lib.Instance(a0, BMC)
    frames = two_frames()
    fd = inst.open(os.O_RDWR | os.O_NONBLOCK)
    try:
        play(5, frames)
        got = lib.queued_frames(fd)
    finally:
        os.close(fd)
    eq_frames = [lib.with_len(frames[i % 2]) for i in range(5)]
    lib.eq(got, eq_frames, "frames read after the run")


def test_load_stats_count_events():
    """stats counts one address event and one STOP per frame and one event per byte, and
    the run's delivered messages."""
    a0, _ = lib.vbus(2)
    lib.insmod("ipmb")
    lib.Instance(a0, BMC)
    frames = two_frames()
    play(4, frames, gap_ns=1000)
    s = lib.load_stats()
    per_frame = len(frames[0]) - 1
    lib.eq((s["address"][0], s["byte"][0], s["stop"][0], s["run_ok"], s["run_failed"]),
           (4, 4 * per_frame, 4, 4, 0), "address, byte, stop events, messages ok and failed")


def test_load_paced_run_spans_its_gaps():
    """With gap_ns, message i starts no earlier than i gaps after the first: 5 messages 25 ms
    apart take at least 100 ms from the run's start to its end. The gap is long beside what
    5 messages take unpaced (12 ms on the test kernel under TCG), so that a source
    ignoring gap_ns fails here (checked by making it do so)."""
    gap = 25_000_000
    a0, _ = lib.vbus(2)
    lib.insmod("ipmb")
    lib.Instance(a0, BMC)
    play(5, two_frames(), gap_ns=gap)
    s = lib.load_stats()
    span = s["run_end_ns"] - s["run_start_ns"]
    lib.eq((s["run_ok"], span >= 4 * gap), (5, True),
           f"messages delivered, and the run spanning 4 gaps ({span} ns)")


def test_load_histograms_hold_every_event():
    """Each event kind's histogram holds as many events as its count."""
    a0, _ = lib.vbus(2)
    lib.insmod("ipmb")
    lib.Instance(a0, BMC)
    play(40, two_frames())
    s = lib.load_stats()
    lib.eq([sum(s[f"hist_{k}"].values()) for k in ("address", "byte", "stop")],
           [s[k][0] for k in ("address", "byte", "stop")], "histogram totals against counts")


def test_load_bad_command_einval():
    """A command without frames, or with an odd number of hex digits, is refused."""
    lib.vbus(2)
    for cmd in ("1 0x10 1 0", "1 0x10 1 0 abc"):
        try:
            with open(f"{LOAD}/run", "w") as f:
                f.write(cmd)
        except OSError as e:
            lib.eq(e.errno, 22, f"errno of {cmd!r}")
            continue
        raise AssertionError(f"{cmd!r} was accepted")
