"""The loop that runs INSIDE MicroPython for `lci-sim --runtime micropython`.

The host (sim/runtime_mpy.py) starts `micropython -m sim.guest_main` on the unix port with
the repository on MICROPYPATH and speaks to it in JSON lines over stdin/stdout: the first
line gives the core factory, configuration, identity, board and capabilities; then each
line is a command, executed with the same DeviceDriver as the CPython runtime and answered
with one {"result": ...} line. Hardware calls go to the host as they happen
(sim/guest_hal.py: a {"hw": ...} line, the answer read back from stdin). A command
{"op": "exit"}, or the end of stdin, ends the process. The VM's own GC runs as on a board.
"""

import gc
import json
import sys

from sim import guest_hal
from sim.device_driver import DeviceDriver


def _factory(path):
    module_name, attr = path.split(":")
    module = __import__(module_name, None, None, [attr])
    return getattr(module, attr)


class Loop:
    def __init__(self, start):
        self.world = guest_hal.World()
        self.hw = guest_hal.build(self.world, start["board"], start["caps"])
        self.driver = DeviceDriver(self.hw, _factory(start["core"]), start["config"], start["identity"])

    def execute(self, command):
        args = command.get("args") or {}
        clock = self.hw.clock
        if "now" in args:
            clock.mono = args["now"]
        if "wall" in args:
            clock.wall = args["wall"]
        if command["op"] == "gc":
            gc.collect()
            return {"heap_free": gc.mem_free(), "heap_used": gc.mem_alloc()}
        world = self.world
        world.begin(args.get("in"))
        result = self.driver.execute(command["op"], args)
        result["out"] = world.out
        world.out = []
        return result


def main():
    line = sys.stdin.readline()
    if not line:
        return
    loop = Loop(json.loads(line))
    guest_hal.send({"ready": True})
    while True:
        line = sys.stdin.readline()
        if not line:
            return
        command = json.loads(line)
        if command["op"] == "exit":
            return
        guest_hal.send({"result": loop.execute(command)})


main()
