"""The loop that runs INSIDE MicroPython for `lci-sim --runtime micropython`.

The host (sim/runtime_mpy.py) prepends CORE, CONFIG, IDENTITY, BOARD and CAPS and runs this
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

# The WASI build's garbage collector frees the frame of a running function whose frame
# is over 11 words (MicroPython puts it on the heap, held only by a wasm local): a
# collection in the middle of the core corrupts it (memory faults, a local turning into
# another object). So automatic collection is OFF; the loop below collects at module
# level, where no function is running and everything alive hangs off module globals,
# and the host gives the VM a heap large enough for the heaviest command's garbage.
# gc.mem_free() scans the whole heap (tens of ms on 64 MB), so the loop estimates the
# garbage instead: each host call leaves its result buffer (RESULT_CAP), a command a few
# KB, a serial command possibly a token's Ed25519 check (measured ~2.3 MB).
GARBAGE_BUDGET = 32 * 1024 * 1024
PER_HOST_CALL = 33 * 1024
PER_COMMAND = 16 * 1024
PER_SERIAL = 4 * 1024 * 1024


def _factory(path):
    module_name, attr = path.split(":")
    module = __import__(module_name, None, None, [attr])
    return getattr(module, attr)


class Loop:
    def __init__(self, core, config, identity, board, caps):
        self.world = guest_hal.World()
        self.hw = guest_hal.build(self.world, board, caps)
        self.driver = DeviceDriver(self.hw, _factory(core), config, identity)
        self.result = None
        self.running = True

    def serve_one(self):
        """Hand over the last result, take the next command and execute it."""
        reply = json.loads(host.call("next", json.dumps({"args": [self.result]})))
        self.result = None
        if not reply["ok"]:
            raise RuntimeError(reply["error"])
        self.command = reply["value"]

    def execute(self):
        command = self.command
        op = command["op"]
        if op == "exit":
            self.running = False
            return
        args = command.get("args") or {}
        clock = self.hw.clock
        if "now" in args:
            clock.mono = args["now"]
        if "wall" in args:
            clock.wall = args["wall"]
        if op == "gc":
            self.result = {"heap_free": gc.mem_free(), "heap_used": gc.mem_alloc()}
            return
        world = self.world
        world.begin(args.get("in"))
        result = self.driver.execute(op, args)
        result["out"] = world.out
        world.out = []
        self.result = result


gc.disable()
LOOP = Loop(CORE, CONFIG, IDENTITY, BOARD, CAPS)  # noqa: F821 — prepended by the host
GARBAGE = 0
while LOOP.running:
    LOOP.serve_one()
    GARBAGE += PER_COMMAND + guest_hal.CALLS[0] * PER_HOST_CALL
    guest_hal.CALLS[0] = 0
    if LOOP.command["op"] == "serial":
        GARBAGE += PER_SERIAL
    if GARBAGE > GARBAGE_BUDGET:
        gc.collect()
        GARBAGE = 0
    LOOP.execute()
