#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Runs the end-to-end tests inside the QEMU guest and prints KTAP on stdout.

Each `test_*` function of each `test_*.py` file of the test directory (--dir, by default
tests/e2e) is one test case. A case passes if it returns, fails if it raises (the exception is
printed as a KTAP diagnostic), and fails if it runs past its time limit (SIGALRM). Between
cases, modules a case loaded are unloaded, so each starts from the same state. A case marked
with @lib.machines(...) is collected only when --machine names one of those machines.
"""

import argparse
import glob
import importlib.util
import os
import signal
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import lib  # noqa: E402


class Timeout(Exception):
    pass


def on_alarm(signum, frame):
    raise Timeout("test ran past its time limit")


def collect(testdir, pattern):
    cases = []
    for path in sorted(glob.glob(os.path.join(testdir, "test_*.py"))):
        name = os.path.splitext(os.path.basename(path))[0]
        spec = importlib.util.spec_from_file_location(name, path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        for attr in sorted(dir(mod)):
            fn = getattr(mod, attr)
            if not (attr.startswith("test_") and callable(fn)):
                continue
            if lib.MACHINE not in getattr(fn, "machines", (lib.MACHINE,)):
                continue
            full = f"{name[5:]}.{attr[5:]}"
            if not pattern or any(p in full for p in pattern.split(",")):
                cases.append((full, fn, getattr(fn, "timeout", 60)))
    return cases


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repo", required=True)
    ap.add_argument("--kdir", required=True)
    ap.add_argument("--filter", default="", help="run the cases whose name contains this, or "
                    "one of these comma-separated strings")
    ap.add_argument("--dir", default=os.path.join("tests", "e2e"),
                    help="directory of the test_*.py files, relative to --repo")
    ap.add_argument("--machine", default=None,
                    help="the QEMU machine of the guest (lib.MACHINE); none for the x86 guest")
    args = ap.parse_args()
    lib.configure(args.repo, args.kdir, args.machine)

    testdir = os.path.join(args.repo, args.dir)
    if testdir not in sys.path:
        sys.path.insert(1, testdir)  # the tests' own helper modules
    cases = collect(testdir, args.filter)
    print("KTAP version 1")
    print(f"1..{len(cases)}", flush=True)
    signal.signal(signal.SIGALRM, on_alarm)
    failures = 0
    for n, (name, fn, limit) in enumerate(cases, 1):
        start = time.time()
        signal.alarm(limit)
        try:
            fn()
            ok, err = True, None
        except BaseException as e:  # noqa: B036 - a test's failure of any kind is reported
            ok, err = False, e
            tb = traceback.format_exc()
        finally:
            signal.alarm(0)
        try:
            lib.cleanup()
        except Exception as e:
            if ok:
                ok, err, tb = False, e, traceback.format_exc()
        elapsed = time.time() - start
        if ok:
            print(f"ok {n} {name} # time={elapsed:.2f}s", flush=True)
        else:
            failures += 1
            for line in tb.rstrip().splitlines():
                print(f"# {line}")
            print(f"not ok {n} {name} # {type(err).__name__}: {err}", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
