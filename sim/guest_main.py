"""The loop that runs INSIDE MicroPython for `lci-sim --runtime micropython`.

The host (sim/runtime_mpy.py) prepends CORE, CONFIG, IDENTITY and BOARD and runs this
source in a fresh VM with the repository mounted at /repo. The loop asks the host for
the next command with `host.call("next", last_result)` — the host blocks there until the
simulator has one — executes it with the same DeviceDriver as the CPython runtime and
hands back the result with the next call. Hardware calls go to the host as they happen
(sim/guest_hal.py). A command {"op": "exit"} ends the VM.
"""

import gc
import json
import sys

sys.path.insert(0, "/repo")

import host  # noqa: E402

from sim import guest_hal  # noqa: E402
from sim.device_driver import DeviceDriver  # noqa: E402


def _factory(path):
    module_name, attr = path.split(":")
    module = __import__(module_name, None, None, [attr])
    return getattr(module, attr)


def main(core, config, identity, board):
    hw = guest_hal.build(board)
    driver = DeviceDriver(hw, _factory(core), config, identity)
    result = None
    while True:
        reply = json.loads(host.call("next", json.dumps({"args": [result]})))
        if not reply["ok"]:
            raise RuntimeError(reply["error"])
        command = reply["value"]
        op = command["op"]
        if op == "exit":
            return
        args = command.get("args") or {}
        if "now" in args:
            hw.clock.mono = args["now"]
        if "wall" in args:
            hw.clock.wall = args["wall"]
        if op == "gc":
            gc.collect()
            result = {"heap_free": gc.mem_free(), "heap_used": gc.mem_alloc()}
            continue
        result = driver.execute(op, args)
        if op == "power_off":
            gc.collect()


main(CORE, CONFIG, IDENTITY, BOARD)  # noqa: F821 — prepended by the host
