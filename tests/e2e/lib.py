# SPDX-License-Identifier: GPL-2.0
"""Helpers shared by the e2e tests: module loading, sysfs, and assertions with messages."""

import os
import subprocess

REPO = None
KDIR = None
_loaded = []


def configure(repo, kdir):
    global REPO, KDIR
    REPO, KDIR = repo, kdir


def module_path(name):
    """Path of a module: ours at the repo top or under tests/, or one of the kernel build."""
    for p in (os.path.join(REPO, f"{name}.ko"),
              os.path.join(REPO, "tests", "vbus", f"{name}.ko"),
              os.path.join(KDIR, "drivers", "char", "ipmi", f"{name}.ko")):
        if os.path.exists(p):
            return p
    raise FileNotFoundError(f"module {name} is not built")


def loaded(name):
    return os.path.isdir(f"/sys/module/{name.replace('-', '_')}")


def insmod(name, *params):
    r = subprocess.run(["insmod", module_path(name), *params], capture_output=True, text=True)
    if r.returncode != 0:
        raise AssertionError(f"insmod {name} failed: {r.stderr.strip()}")
    _loaded.append(name)


def rmmod(name, check=True):
    r = subprocess.run(["rmmod", name], capture_output=True, text=True)
    if check and r.returncode != 0:
        raise AssertionError(f"rmmod {name} failed: {r.stderr.strip()}")
    if name in _loaded and r.returncode == 0:
        _loaded.remove(name)
    return r


def cleanup():
    """Unloads what the test loaded, newest first; a module that will not go is an error."""
    errors = []
    while _loaded:
        name = _loaded.pop()
        if loaded(name):
            r = subprocess.run(["rmmod", name], capture_output=True, text=True)
            if r.returncode != 0:
                errors.append(f"rmmod {name}: {r.stderr.strip()}")
    if errors:
        raise AssertionError("; ".join(errors))


def read(path):
    with open(path) as f:
        return f.read().strip()


def eq(actual, expected, what=""):
    if actual != expected:
        raise AssertionError(f"{what}: expected {expected!r}, got {actual!r}")


def true(cond, what):
    if not cond:
        raise AssertionError(what)
