# SPDX-License-Identifier: GPL-2.0
"""python-ipmi (interface `ipmbdev`) driven the way a user drives it.

A command line for the Python of the pinned python-ipmi venv (scripts/setup.sh clients,
recorded in $IPMB_CACHE/env-clients); test_pyipmi.py calls the same functions in processes it
forks (tests/e2e/clients.py). Each command prints one JSON line on stdout:

  device-id DEV OWN TARGET        one get_device_id(): its decoded fields
  loop DEV OWN TARGET COUNT       COUNT get_device_id() one after the other: how many were
                                  answered, how many timed out, and the seconds it took
  respond DEV OWN COUNT TIMEOUT   answers Get Device ID (NetFn App, cmd 0x01) with a MessageRouter
                                  handler until COUNT were answered or TIMEOUT seconds passed
                                  ("ready" is printed first, once the device is open)

Addresses are 8-bit IPMB addresses in C notation (0x20). A client still running after
$PYIPMI_CLIENT_LIMIT seconds, when set, prints every thread's stack on stderr and exits; with
$PYIPMI_CLIENT_DEBUG set, python-ipmi logs every frame it sends and receives on stderr.
"""

import faulthandler
import json
import logging
import os
import sys
import threading
import time

import pyipmi
import pyipmi.interfaces
from pyipmi.errors import IpmiTimeoutError
from pyipmi.interfaces.router import MessageRouter
from pyipmi.msgs import create_message
from pyipmi.msgs.constants import CMDID_GET_DEVICE_ID, NETFN_APP

# What `respond` answers: the identity samples/ipmb-responder reports, but device ID 0x44 so a
# test can tell the two responders apart.
RESPONDER_ID = {"device_id": 0x44, "revision": 2, "fw": (3, 0x45), "manufacturer_id": 0x0002A2,
                "product_id": 0x0102}


def connect(dev, own, target):
    intf = pyipmi.interfaces.create_interface("ipmbdev", slave_address=own, port=dev)
    ipmi = pyipmi.create_connection(intf)
    ipmi.target = pyipmi.Target(ipmb_address=target)
    return ipmi


def fields(d):
    return {
        "device_id": d.device_id,
        "revision": d.revision,
        "available": bool(d.available),
        "fw_revision": str(d.fw_revision),
        "ipmi_version": str(d.ipmi_version),
        "manufacturer_id": d.manufacturer_id,
        "product_id": d.product_id,
    }


def device_id(dev, own, target):
    with connect(dev, own, target) as ipmi:
        return fields(ipmi.get_device_id())


def loop(dev, own, target, count):
    answered = timeouts = 0
    start = time.monotonic()
    with connect(dev, own, target) as ipmi:
        for _ in range(count):
            try:
                ipmi.get_device_id()
                answered += 1
            except IpmiTimeoutError:
                timeouts += 1
    return {"answered": answered, "timeouts": timeouts,
            "seconds": round(time.monotonic() - start, 2)}


def respond(dev, own, count, timeout, ready=None):
    """`ready` is called once the device is open (the command line prints "ready")."""
    done = threading.Semaphore(0)

    def get_device_id(req):
        rsp = create_message(NETFN_APP + 1, CMDID_GET_DEVICE_ID, None)
        rsp.completion_code = 0
        rsp.device_id = RESPONDER_ID["device_id"]
        rsp.device_revision.device_revision = RESPONDER_ID["revision"]
        rsp.device_revision.provides_device_sdrs = 0
        rsp.firmware_revision.major = RESPONDER_ID["fw"][0]
        rsp.firmware_revision.device_available = 0
        rsp.firmware_revision.minor = RESPONDER_ID["fw"][1]
        rsp.ipmi_version = 0x02
        rsp.manufacturer_id = RESPONDER_ID["manufacturer_id"]
        rsp.product_id = RESPONDER_ID["product_id"]
        done.release()
        return rsp

    router = MessageRouter()
    router.register_handler(NETFN_APP, CMDID_GET_DEVICE_ID, get_device_id)
    intf = pyipmi.interfaces.create_interface("ipmbdev", slave_address=own, port=dev,
                                              router=router)
    intf.open()
    if ready:
        ready()
    answered = 0
    deadline = time.monotonic() + timeout
    try:
        while answered < count and done.acquire(timeout=max(0.0, deadline - time.monotonic())):
            answered += 1
        # The last response is written by the router's worker after the handler returns.
        time.sleep(0.2)
    finally:
        intf.close()
        router.close()
    return {"answered": answered}


def main(argv):
    # A client that hangs prints where each thread is, and exits.
    if os.environ.get("PYIPMI_CLIENT_LIMIT"):
        faulthandler.dump_traceback_later(int(os.environ["PYIPMI_CLIENT_LIMIT"]), exit=True)
    if os.environ.get("PYIPMI_CLIENT_DEBUG"):
        logging.basicConfig(level=logging.DEBUG, stream=sys.stderr,
                            format="%(relativeCreated)d %(threadName)s %(name)s: %(message)s")
    cmd, args = argv[1], argv[2:]
    num = [int(a, 0) for a in args[1:]]
    if cmd == "device-id":
        out = device_id(args[0], *num)
    elif cmd == "loop":
        out = loop(args[0], *num)
    elif cmd == "respond":
        out = respond(args[0], *num, ready=lambda: print(json.dumps({"ready": True}), flush=True))
    else:
        sys.exit(f"unknown command {cmd}")
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main(sys.argv)
