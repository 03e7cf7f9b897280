# SPDX-License-Identifier: GPL-2.0
"""Helpers of the tests with real clients (test_pyipmi.py, test_ipmitool.py): python-ipmi run by
the Python of its venv (`scripts/setup.sh clients` records it in $IPMB_CACHE/env-clients; the
guest sees the host's root, so it runs here), samples/ipmb-responder, diagnostics."""

import json
import os
import select
import shlex
import signal
import subprocess
import sys
import time
import traceback

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


def venv_site():
    """The site-packages of the python-ipmi venv, for this interpreter (the one that made it)."""
    venv = os.path.dirname(os.path.dirname(clients_env()["PYTHON_IPMI_PYTHON"]))
    site = os.path.join(venv, "lib", f"python{sys.version_info[0]}.{sys.version_info[1]}",
                        "site-packages")
    lib.true(os.path.isdir(site), f"{site} is missing: the venv was not made by this Python")
    return site


def pyipmi_client():
    """tests/e2e/pyipmi_client.py with python-ipmi imported from the venv, in this process.

    Every test that runs python-ipmi forks this process once per client: under TCG a new Python
    process takes seconds to start and python-ipmi many more to import, over 9p, while a fork
    has it all already (the interpreter is the venv's own: Debian's python3, which made it)."""
    site = venv_site()
    if site not in sys.path:
        sys.path.append(site)
    import pyipmi_client
    return pyipmi_client


class Forked:
    """fn(*args) run in a forked process; result() is its return value (a JSON value)."""

    def __init__(self, fn, *args, ready=False):
        self.r, w = os.pipe()
        rr, self.rw = os.pipe() if ready else (None, None)
        self.ready_r = rr
        self.pid = os.fork()
        if self.pid == 0:  # pragma: child
            os.close(self.r)
            try:
                kw = {"ready": lambda: os.write(self.rw, b"r")} if ready else {}
                out = {"ok": fn(*args, **kw)}
            except BaseException as e:  # noqa: B036 - reported to the parent
                out = {"error": f"{type(e).__name__}: {e}\n{traceback.format_exc()}"}
            os.write(w, json.dumps(out).encode())
            os._exit(0)
        os.close(w)
        if ready:
            os.close(self.rw)

    def wait_ready(self, timeout):
        lib.true(select.select([self.ready_r], [], [], timeout)[0], "python-ipmi client ready")
        lib.eq(os.read(self.ready_r, 1), b"r", "python-ipmi client ready")

    def result(self, timeout):
        deadline = time.monotonic() + timeout
        data = b""
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([self.r], [], [], left)[0]:
                    raise AssertionError(f"python-ipmi client still running after {timeout} s")
                chunk = os.read(self.r, 65536)
                if not chunk:
                    break
                data += chunk
        finally:
            self.close()
        out = json.loads(data or b"{}")
        lib.true("ok" in out, f"python-ipmi client failed: {out.get('error', 'no result')}")
        return out["ok"]

    def close(self):
        if self.pid:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            os.waitpid(self.pid, 0)
            self.pid = 0
        lib.closing(self.r, *([self.ready_r] if self.ready_r is not None else []))


def pyipmi(name, *args, limit=120):
    """pyipmi_client.<name>(*args) in a forked process: its result."""
    return Forked(getattr(pyipmi_client(), name), *args).result(limit)


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
