# SPDX-License-Identifier: GPL-2.0
"""Helpers of the tests with real clients (test_pyipmi.py, test_ipmitool.py): python-ipmi run by
the Python of its venv (`scripts/setup.sh clients` records it in $IPMB_CACHE/env-clients; the
guest sees the host's root, so it runs here), samples/ipmb-responder, diagnostics."""

import json
import os
import shlex
import subprocess

import lib

C_DRIVER, RUST_DRIVER = "ipmb-dev", "ipmb"
HERE = os.path.dirname(os.path.abspath(__file__))


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
