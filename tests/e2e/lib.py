# SPDX-License-Identifier: GPL-2.0
"""Helpers shared by the e2e tests: module loading, sysfs, and assertions with messages."""

import os
import platform

REPO = None
KDIR = None
# The QEMU machine the guest runs on (runner.py --machine), or None for the x86 test guest.
MACHINE = None
_loaded = []


def configure(repo, kdir, machine=None):
    global REPO, KDIR, MACHINE
    REPO, KDIR, MACHINE = repo, kdir, machine


def machines(*names):
    """Restricts a test to the guests of these machines: elsewhere it is not collected."""
    def mark(fn):
        fn.machines = names
        return fn
    return mark


def guest_main_args():
    """Parses the --repo/--kdir arguments init.sh gives guest programs, and configures."""
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("--repo", required=True)
    ap.add_argument("--kdir", required=True)
    args = ap.parse_args()
    configure(args.repo, args.kdir)
    return args


def module_path(name):
    """Path of a module: ours at the repo top or under tests/, the patched ipmi_ipmb
    (scripts/ipmi-ipmb.sh), or one of the kernel build. Never the kernel's own ipmi_ipmb:
    its use-after-free (tests/kernel/ipmi_ipmb-use-after-free.patch) fails the run under
    KASAN whenever the responder answers before its transmit thread runs again."""
    patched = os.path.join(REPO, "build", "ipmi-ipmb", f"{name}.ko")
    for p in (os.path.join(REPO, f"{name}.ko"),
              os.path.join(REPO, "tests", "vbus", f"{name}.ko"),
              patched,
              os.path.join(KDIR, "drivers", "char", "ipmi", f"{name}.ko")):
        if os.path.exists(p) and not (name == "ipmi_ipmb" and p != patched):
            return p
    if name == "ipmi_ipmb":
        raise FileNotFoundError("the patched ipmi_ipmb is not built (make ipmi-ipmb)")
    raise FileNotFoundError(f"module {name} is not built")


def loaded(name):
    return os.path.isdir(f"/sys/module/{name.replace('-', '_')}")


_libc = None


def _syscall(nr, *args):
    """A raw system call; returns (result, errno). No exec: spawning kmod over 9p is slow."""
    global _libc
    import ctypes
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
        _libc.syscall.restype = ctypes.c_long
    ret = _libc.syscall(ctypes.c_long(nr), *args)
    return ret, ctypes.get_errno()


# (finit_module, delete_module): arch/x86/entry/syscalls/syscall_64.tbl and
# arch/arm/tools/syscall.tbl (EABI).
_MODULE_SYSCALLS = {"x86_64": (313, 176), "armv7l": (379, 129)}
SYS_FINIT_MODULE, SYS_DELETE_MODULE = _MODULE_SYSCALLS.get(platform.machine(), (None, None))
O_NONBLOCK = 0o4000


class ModuleResult:
    """What rmmod(8) would report: a return code and a message."""

    def __init__(self, ret, err):
        self.returncode = 0 if ret == 0 else 1
        self.stderr = "" if ret == 0 else os.strerror(err)


def insmod(name, *params):
    import ctypes
    if SYS_FINIT_MODULE is None:
        raise AssertionError(f"no module syscall numbers for {platform.machine()}")
    fd = os.open(module_path(name), os.O_RDONLY)
    try:
        ret, err = _syscall(SYS_FINIT_MODULE, ctypes.c_int(fd),
                            ctypes.c_char_p(" ".join(params).encode()), ctypes.c_int(0))
    finally:
        os.close(fd)
    if ret != 0:
        raise AssertionError(f"insmod {name} failed: {os.strerror(err)}")
    _loaded.append(name)


def rmmod(name, check=True):
    """Unloads `name` like rmmod(8): refuses (EBUSY/EAGAIN) while the module is in use."""
    import ctypes
    ret, err = _syscall(SYS_DELETE_MODULE, ctypes.c_char_p(name.encode()),
                        ctypes.c_uint(O_NONBLOCK))
    r = ModuleResult(ret, err)
    if check and r.returncode != 0:
        raise AssertionError(f"rmmod {name} failed: {r.stderr}")
    if name in _loaded and r.returncode == 0:
        _loaded.remove(name)
    return r


def _unload_modules():
    """Unloads what the test loaded, newest first; a module that will not go is an error."""
    errors = []
    while _loaded:
        name = _loaded.pop()
        if loaded(name):
            r = rmmod(name, check=False)
            if r.returncode != 0:
                errors.append(f"rmmod {name}: {r.stderr}")
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


# ---------------------------------------------------------------------------------------------
# IPMB frames, the virtual bus and instances of the drivers on it.

import ctypes
import errno
import fcntl
import glob
import select
import signal
import time

I2C_RDWR = 0x0707
I2C_M_RD = 0x0001
OWN_SLAVE = 0x1000


def csum(data):
    return (-sum(data)) & 0xFF


def frame(dest, netfn, src, seq, cmd, body=b"", dest_lun=0, src_lun=0):
    """An IPMB frame, destination address first, both checksums computed."""
    hdr = bytes([dest, (netfn << 2) | dest_lun])
    rest = bytes([src, (seq << 2) | src_lun, cmd]) + bytes(body)
    return hdr + bytes([csum(hdr)]) + rest + bytes([csum(rest)])


def with_len(f):
    """The read()/write() buffer layout of /dev/ipmb-N: a length byte, then the frame."""
    return bytes([len(f)]) + f


def parse(buf):
    """A read() buffer ([len][frame]) as a dict; `data` is the body between cmd and cs2."""
    f = bytes(buf[1:])
    true(len(f) >= 7 and buf[0] == len(f), f"read() buffer {bytes(buf).hex()}")
    return dict(dest=f[0], netfn=f[1] >> 2, dest_lun=f[1] & 3, src=f[3], seq=f[4] >> 2,
                src_lun=f[4] & 3, cmd=f[5], data=f[6:-1], raw=bytes(buf))


def answer(req, body):
    """The response frame to a parsed request, with `body` (cc first) after cmd."""
    return frame(req["src"], req["netfn"] | 1, req["dest"], req["seq"], req["cmd"], body,
                 dest_lun=req["src_lun"], src_lun=req["dest_lun"])


def adapters():
    """Maps the names of the virtual bus adapters to their numbers."""
    out = {}
    for d in glob.glob("/sys/bus/i2c/devices/i2c-*"):
        name = read(os.path.join(d, "name"))
        if name.startswith("ipmb-vbus-"):
            out[int(name.rsplit("-", 1)[1])] = int(d.rsplit("-", 1)[1])
    return out


def vbus(count=2, **params):
    """Loads the virtual bus with `count` adapters on one wire; returns their numbers."""
    insmod("i2c_vbus", f"nr_adapters={count}", *[f"{k}={v}" for k, v in params.items()])
    ad = adapters()
    eq(len(ad), count, "vbus adapters")
    return [ad[i] for i in range(count)]


# The test bus's load source (tests/vbus/load.rs).
VBUS_LOAD = "/sys/kernel/debug/i2c_vbus_load"


def load_stats():
    """The load source's statistics: counts, lists, and hist_<kind> as {bucket: count}."""
    out = {}
    with open(f"{VBUS_LOAD}/stats") as f:
        for line in f:
            k, *v = line.split()
            if k.startswith("hist_"):
                out[k] = {int(b): int(n) for b, n in (x.split(":") for x in v)}
            else:
                out[k] = [int(x) for x in v] if len(v) > 1 else int(v[0])
    return out


def vbus_param(name, value):
    with open(f"/sys/module/i2c_vbus/parameters/{name}", "w") as f:
        f.write(str(value))


class Instance:
    """An ipmb-dev client on adapter `nr` at 8-bit address `addr`, bound to `driver`.

    With new=False the client already exists (the device tree made it): it is not created
    here nor deleted by cleanup(), and driver=None leaves its binding as it is.
    """

    def __init__(self, nr, addr, driver="ipmb", new=True):
        self.nr, self.addr = nr, addr
        self.client = f"{nr}-{OWN_SLAVE | (addr >> 1):04x}"
        self.path = f"/sys/bus/i2c/devices/{self.client}"
        if new:
            with open(f"/sys/bus/i2c/devices/i2c-{nr}/new_device", "w") as f:
                f.write(f"ipmb-dev 0x{OWN_SLAVE | (addr >> 1):x}")
            _instances.append(self)
        if driver:
            self.rebind(driver)

    def driver(self):
        link = os.path.join(self.path, "driver")
        return os.path.basename(os.readlink(link)) if os.path.islink(link) else None

    def rebind(self, driver):
        cur = self.driver()
        if cur == driver:
            return
        if cur:
            with open(f"/sys/bus/i2c/drivers/{cur}/unbind", "w") as f:
                f.write(self.client)
        with open(f"/sys/bus/i2c/drivers/{driver}/bind", "w") as f:
            f.write(self.client)
        eq(self.driver(), driver, f"driver of {self.client}")

    def unbind(self):
        """Unbinds the client from its driver through sysfs, as an administrator would."""
        with open(f"/sys/bus/i2c/drivers/{self.driver()}/unbind", "w") as f:
            f.write(self.client)

    @property
    def dev(self):
        return f"/dev/ipmb-{self.nr}"

    def open(self, flags=os.O_RDWR):
        return os.open(self.dev, flags)

    def counters(self):
        d = os.path.join(self.path, "statistics")
        return {n: int(read(os.path.join(d, n))) for n in os.listdir(d)}

    def delete(self):
        if self in _instances:
            _instances.remove(self)
        with open(f"/sys/bus/i2c/devices/i2c-{self.nr}/delete_device", "w") as f:
            f.write(f"0x{OWN_SLAVE | (self.addr >> 1):x}")


_instances = []

# The two nodes most tests and the demo use: a BMC and a satellite controller.
BMC, SAT = 0x20, 0x72


def two_nodes(*params):
    """Loads the bus and ipmb.ko (with `params`); BMC at 0x20 and satellite at 0x72 on it."""
    a0, a1 = vbus(2)
    insmod("ipmb", *params)
    return Instance(a0, BMC), Instance(a1, SAT)


class I2cMsg(ctypes.Structure):
    _fields_ = [("addr", ctypes.c_uint16), ("flags", ctypes.c_uint16),
                ("len", ctypes.c_uint16), ("buf", ctypes.c_void_p)]


class I2cRdwr(ctypes.Structure):
    _fields_ = [("msgs", ctypes.POINTER(I2cMsg)), ("nmsgs", ctypes.c_uint32)]


def i2c_xfer(nr, msgs):
    """Raw master transfer on adapter `nr` through i2c-dev.

    `msgs` is a list of (addr7, bytes) for writes or (addr7, int count) for reads; returns the
    data of the read messages. Raises OSError with the adapter's errno.
    """
    arr = (I2cMsg * len(msgs))()
    bufs = []
    for i, (addr, data) in enumerate(msgs):
        if isinstance(data, int):
            b = ctypes.create_string_buffer(data)
            arr[i] = I2cMsg(addr, I2C_M_RD, data, ctypes.cast(b, ctypes.c_void_p))
        else:
            b = ctypes.create_string_buffer(bytes(data), len(data))
            arr[i] = I2cMsg(addr, 0, len(data), ctypes.cast(b, ctypes.c_void_p))
        bufs.append(b)
    fd = os.open(f"/dev/i2c-{nr}", os.O_RDWR)
    try:
        fcntl.ioctl(fd, I2C_RDWR, I2cRdwr(arr, len(msgs)))
    finally:
        os.close(fd)
    return [bytes(b.raw) for (a, d), b in zip(msgs, bufs) if isinstance(d, int)]


def send_raw(nr, f):
    """Puts frame `f` (destination address first) on the wire from adapter `nr`."""
    i2c_xfer(nr, [(f[0] >> 1, f[1:])])


def wait_for(fn, what, timeout=3.0):
    """Calls fn every 10 ms until it returns a true value, which it returns."""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def poll_for(fd, events, timeout_ms):
    """poll() on one file: the events it reports within timeout_ms (0 if none)."""
    p = select.poll()
    p.register(fd, events)
    return dict(p.poll(timeout_ms)).get(fd, 0)


def read_wait(fd, timeout_ms=3000):
    """read() on a non-blocking file, after poll() reports EPOLLIN."""
    true(poll_for(fd, select.POLLIN, timeout_ms) & select.POLLIN,
         f"EPOLLIN within {timeout_ms} ms")
    return os.read(fd, 256)


def queued_frames(fd):
    """Every frame read() has now, without waiting (fd is O_NONBLOCK)."""
    out = []
    while True:
        try:
            out.append(os.read(fd, 256))
        except BlockingIOError:
            return out


def closing(*fds):
    """Closes files, ignoring the ones already closed."""
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass


def raises(err, fn, *args):
    try:
        fn(*args)
    except OSError as e:
        eq(errno.errorcode.get(e.errno), errno.errorcode[err], f"errno of {fn.__name__}")
        return
    raise AssertionError(f"{fn.__name__} did not fail with {errno.errorcode[err]}")


def cleanup():
    """Deletes the instances a test created, then unloads its modules."""
    errors = []
    while _instances:
        inst = _instances.pop()
        try:
            inst.delete()
        except OSError as e:
            errors.append(f"delete {inst.client}: {e}")
    try:
        _unload_modules()
    except AssertionError as e:
        errors.append(str(e))
    if errors:
        raise AssertionError("; ".join(errors))


def run_sample(argv, what):
    """Runs a program of samples/ (a demo step): shows its command line, output and status."""
    import subprocess
    print(f"$ {' '.join(argv)}        # {what}", flush=True)
    argv = [os.path.join(REPO, "samples", argv[0])] + argv[1:]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    for line in (p.stdout + p.stderr).splitlines():
        print(f"  {line}", flush=True)
    print(f"  (exit status {p.returncode})", flush=True)
    return p.returncode


class Workers:
    """`count` forked processes, each running `fn(p, wfd, go)`: its number, the write end of
    its report pipe, and the read end of the start pipe (one byte each on start()).

    `fn` must end the child with os._exit. Use as a context manager: leaving it kills and
    reaps the children still running and closes the pipes.
    """

    def __init__(self, count, fn):
        self.go_r, self.go_w = os.pipe()
        self.children = []
        for p in range(count):
            r, w = os.pipe()
            pid = os.fork()
            if pid == 0:
                os.close(r)
                fn(p, w, self.go_r)
            os.close(w)
            self.children.append((pid, r))

    def start(self):
        os.write(self.go_w, b"x" * len(self.children))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for pid, r in self.children:
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except (ChildProcessError, ProcessLookupError):
                pass
            closing(r)
        self.children = []
        closing(self.go_r, self.go_w)
