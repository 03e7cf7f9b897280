#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""`make demo`, inside the guest: shows a person what the module does today."""

import argparse
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "e2e"))
import lib  # noqa: E402


def say(text=""):
    print(text, flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repo", required=True)
    ap.add_argument("--kdir", required=True)
    args = ap.parse_args()
    lib.configure(args.repo, args.kdir)

    say("=" * 72)
    say("ipmb demo: the module on a Rust-enabled 7.2 kernel under QEMU")
    say("=" * 72)
    info = subprocess.run(["modinfo", lib.module_path("ipmb")], capture_output=True, text=True)
    for line in info.stdout.splitlines():
        if line.split(":")[0] in ("description", "license", "vermagic", "name"):
            say("  " + line)
    say()
    say("$ insmod ipmb.ko")
    lib.insmod("ipmb")
    dmesg = subprocess.run(["dmesg"], capture_output=True, text=True).stdout.splitlines()
    start = max(i for i, l in enumerate(dmesg) if "ipmb: loaded" in l or "KTAP version 1" in l)
    start = max(i for i, l in enumerate(dmesg[:start + 1]) if re.search(r"\] KTAP version 1$", l))
    say("The module's KUnit suites ran at load time (from dmesg):")
    for line in dmesg[start:]:
        text = re.sub(r"^\[\s*\d+\.\d+\] ", "", line)
        if re.match(r"^\s*(not )?ok \d+", text) or "ipmb: loaded" in text:
            say("  " + text)
    say()
    say("$ rmmod ipmb")
    lib.rmmod("ipmb")
    say("module unloaded cleanly: " + str(not lib.loaded("ipmb")))
    say()
    say("Next: the I2C target driver, /dev/ipmb-N and two nodes talking on a virtual bus.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
