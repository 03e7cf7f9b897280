# SPDX-License-Identifier: GPL-2.0
"""Python mirror of include/uapi/linux/ipmb.h (ABI version 4), for the e2e tests.

Struct layouts are explicit little-endian `struct` formats whose sizes are checked against the
header's; ioctl numbers are computed as the C _IOR/_IOW/_IOWR macros compute them. Wrappers
take a file descriptor of /dev/ipmb-N, raise OSError as the ioctl fails, and return dicts keyed
by the C field names.
"""

import fcntl
import struct

ABI_VERSION = 4
IOC_MAGIC = 0xBB
MAX_DATA = 240
RETRIES_DEFAULT = 0xFF
MAX_RETRIES = 15
MAX_TIMEOUT_MS = 60000

MSG_BROADCAST = 0x01
MSG_SYNTHESIZED = 0x02

KIND_RESPONSE = 1
KIND_REQUEST = 2

CC_TIMEOUT = 0xC3
CC_BUS_ERROR = 0x82
CC_TOO_LONG = 0xC8

CMD_DEFAULT = 0x01

# struct ipmb_info
INFO_FIELDS = ("abi_version", "adapter", "own_addr", "smbus_block_write", "max_frame_len",
               "queue_len", "tx_retries", "req_timeout_ms", "req_retries", "seq_count",
               "seq_expiry_ms", "max_clients", "inbox_len", "max_registrations")
INFO_FMT = "<IIBBHIIIIIIIII4I"
INFO_SIZE = 64

# struct ipmb_stats
STATS_FIELDS = ("rx_frames", "rx_short", "rx_too_long", "rx_bad_cs1", "rx_bad_cs2",
                "rx_bad_addr", "rx_overflow", "tx_frames", "tx_errors", "tx_retries",
                "tx_invalid", "req_sent", "req_retries", "req_timeouts", "req_bus_errors",
                "req_aborted", "rsp_matched", "rsp_late", "rsp_duplicate", "rx_routed",
                "rx_route_overflow", "rx_broadcast", "tx_broadcast", "rx_queued",
                "req_inflight", "rsp_to_writer", "rsp_writer_gone", "rsp_writer_full",
                "tx_unnoted")
STATS_FMT = "<29Q3Q"
STATS_SIZE = 256

# struct ipmb_msg
MSG_FIELDS = ("id", "timeout_ms", "data_len", "retries", "flags", "kind", "addr", "netfn",
              "lun", "own_lun", "seq", "cmd", "cc")
MSG_FMT = f"<QIHBBBBBBBBBB4I{MAX_DATA}s"
MSG_SIZE = 280

# struct ipmb_cmd
CMD_FMT = "<BBBB"
CMD_SIZE = 4

for _fmt, _size in ((INFO_FMT, INFO_SIZE), (STATS_FMT, STATS_SIZE), (MSG_FMT, MSG_SIZE),
                    (CMD_FMT, CMD_SIZE)):
    if struct.calcsize(_fmt) != _size:
        raise AssertionError(f"struct {_fmt}: {struct.calcsize(_fmt)} bytes, header says {_size}")

# asm-generic/ioctl.h
IOC_NONE, IOC_WRITE, IOC_READ = 0, 1, 2


def ioc(direction, nr, size, magic=IOC_MAGIC):
    return (direction << 30) | (size << 16) | (magic << 8) | nr


def ior(nr, size):
    return ioc(IOC_READ, nr, size)


def iow(nr, size):
    return ioc(IOC_WRITE, nr, size)


def iowr(nr, size):
    return ioc(IOC_READ | IOC_WRITE, nr, size)


IOC_INFO = ior(0x00, INFO_SIZE)
IOC_STATS = ior(0x01, STATS_SIZE)
IOC_REQUEST = iowr(0x02, MSG_SIZE)
IOC_SUBMIT = iowr(0x03, MSG_SIZE)
IOC_RECEIVE = ior(0x04, MSG_SIZE)
IOC_REGISTER = iow(0x05, CMD_SIZE)
IOC_UNREGISTER = iow(0x06, CMD_SIZE)
IOC_RESPOND = iow(0x07, MSG_SIZE)

# The values the C header gives (x86_64), as a cross-check of the computation above.
_EXPECTED = {"IOC_INFO": 0x8040BB00, "IOC_STATS": 0x8100BB01, "IOC_REQUEST": 0xC118BB02,
             "IOC_SUBMIT": 0xC118BB03, "IOC_RECEIVE": 0x8118BB04, "IOC_REGISTER": 0x4004BB05,
             "IOC_UNREGISTER": 0x4004BB06, "IOC_RESPOND": 0x4118BB07}
for _name, _val in _EXPECTED.items():
    if globals()[_name] != _val:
        raise AssertionError(f"{_name} = {globals()[_name]:#x}, expected {_val:#x}")


# ---------------------------------------------------------------------------------------------
# Packing.

def pack_info(**fields):
    vals = [fields.get(n, 0) for n in INFO_FIELDS] + list(fields.get("reserved", (0,) * 4))
    return struct.pack(INFO_FMT, *vals)


def unpack_info(buf):
    vals = struct.unpack(INFO_FMT, bytes(buf))
    d = dict(zip(INFO_FIELDS, vals))
    d["reserved"] = vals[len(INFO_FIELDS):]
    return d


def unpack_stats(buf):
    vals = struct.unpack(STATS_FMT, bytes(buf))
    d = dict(zip(STATS_FIELDS, vals))
    d["reserved"] = vals[len(STATS_FIELDS):]
    return d


def pack_msg(msg=None, **fields):
    """Packs a struct ipmb_msg from a dict (as the unpackers return) and/or keywords.

    `data` is bytes; `data_len` defaults to len(data) but may be given to lie about it;
    `reserved` (4 integers) defaults to zeroes.
    """
    m = dict(msg or {})
    m.update(fields)
    data = bytes(m.get("data", b""))
    if len(data) > MAX_DATA:
        raise ValueError("data longer than IPMB_MAX_DATA")
    data_len = m["data_len"] if "data_len" in m else len(data)
    vals = [m.get(n, 0) for n in MSG_FIELDS]
    vals[MSG_FIELDS.index("data_len")] = data_len
    reserved = tuple(m.get("reserved", (0,) * 4))
    return struct.pack(MSG_FMT, *vals, *reserved, data.ljust(MAX_DATA, b"\0"))


def unpack_msg(buf):
    vals = struct.unpack(MSG_FMT, bytes(buf))
    d = dict(zip(MSG_FIELDS, vals))
    d["reserved"] = vals[len(MSG_FIELDS):-1]
    d["data"] = vals[-1][:min(d["data_len"], MAX_DATA)]
    return d


def pack_cmd(netfn, cmd, reserved=0, flags=0):
    return struct.pack(CMD_FMT, netfn, cmd, flags, reserved)


# ---------------------------------------------------------------------------------------------
# Wrappers.

def info(fd):
    return unpack_info(fcntl.ioctl(fd, IOC_INFO, bytes(INFO_SIZE)))


def stats(fd):
    return unpack_stats(fcntl.ioctl(fd, IOC_STATS, bytes(STATS_SIZE)))


def _msg_ioctl(fd, code, buf):
    b = bytearray(buf)
    fcntl.ioctl(fd, code, b, True)
    return unpack_msg(b)


def request_msg(addr, netfn, cmd, data=b"", lun=0, own_lun=0, timeout_ms=0,
                retries=RETRIES_DEFAULT, flags=0, **extra):
    """The bytes of a struct ipmb_msg for REQUEST/SUBMIT (extra: other fields, data_len...)."""
    fields = dict(addr=addr, netfn=netfn, cmd=cmd, data=data, lun=lun, own_lun=own_lun,
                  timeout_ms=timeout_ms, retries=retries, flags=flags)
    fields.update(extra)
    if "data_len" not in extra:
        fields["data_len"] = len(data)
    return pack_msg(**fields)


def request(fd, addr, netfn, cmd, data=b"", lun=0, own_lun=0, timeout_ms=0,
            retries=RETRIES_DEFAULT, flags=0, **extra):
    """IPMB_IOC_REQUEST: sends and waits; returns the response as a dict (cc, data, seq...)."""
    return _msg_ioctl(fd, IOC_REQUEST, request_msg(addr, netfn, cmd, data, lun, own_lun,
                                                   timeout_ms, retries, flags, **extra))


def submit(fd, addr, netfn, cmd, data=b"", lun=0, own_lun=0, timeout_ms=0,
           retries=RETRIES_DEFAULT, flags=0, **extra):
    """IPMB_IOC_SUBMIT: returns (id, seq) at once."""
    m = _msg_ioctl(fd, IOC_SUBMIT, request_msg(addr, netfn, cmd, data, lun, own_lun,
                                               timeout_ms, retries, flags, **extra))
    return m["id"], m["seq"]


def receive(fd):
    """IPMB_IOC_RECEIVE: the next message for this file (blocks unless O_NONBLOCK)."""
    return _msg_ioctl(fd, IOC_RECEIVE, bytes(MSG_SIZE))


def register(fd, netfn, cmd, reserved=0, flags=0):
    fcntl.ioctl(fd, IOC_REGISTER, pack_cmd(netfn, cmd, reserved, flags))


def unregister(fd, netfn, cmd, reserved=0, flags=0):
    fcntl.ioctl(fd, IOC_UNREGISTER, pack_cmd(netfn, cmd, reserved, flags))


def register_default(fd):
    """IPMB_IOC_REGISTER of the default route: every request no file registered by pair."""
    register(fd, 0, 0, flags=CMD_DEFAULT)


def unregister_default(fd):
    unregister(fd, 0, 0, flags=CMD_DEFAULT)


def respond(fd, msg, cc, data=b""):
    """IPMB_IOC_RESPOND: answers `msg` (a dict RECEIVE returned) with `cc` and `data`."""
    m = dict(msg)
    m.update(cc=cc, data=bytes(data), data_len=len(data))
    fcntl.ioctl(fd, IOC_RESPOND, pack_msg(m))
