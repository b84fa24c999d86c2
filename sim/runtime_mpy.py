"""`--runtime micropython`: the core under real MicroPython, its hardware on this host.

A thread runs sim/guest_main.py in the WASI MicroPython VM (as host_tools/mpy_wasi does,
with a larger heap: see HEAP; repository mounted read-only at /repo). Two host functions connect it to the simulator:

- "next": the guest hands over the result of its last command and blocks here until the
  simulator sends the next one (a queue), so the VM runs only while the simulator waits
  for it — one thread of control at a time, no races;
- "hw": a hardware call (part, method, args) executed on the simulator's own hardware
  objects (sim/hardware.py): the same flash, keypad, sensor, serial port and seeded RNG
  the CPython runtime uses, so a scenario's timeline is the same under both runtimes.
  Each command carries the input snapshot and each result the queued outputs
  (relay, display, serial bytes ...), applied here in order (see sim/guest_hal.py).

Serial bytes therefore reach whatever endpoint the simulator serves (pty, TCP, in-process).
"""

from __future__ import annotations

import json
import queue
import threading
from pathlib import Path

from firmware import hal
from host_tools import mpy_wasi
from sim.runtime import RuntimeFailure

REPO = Path(__file__).resolve().parents[1]

# The guest's heap. The WASI build's garbage collector frees the frame of a running
# function whose frame is larger than 11 words (MicroPython puts those on the heap, held
# only by a wasm local the collector cannot see): any collection in the middle of the
# core corrupts it. So the guest never collects while the core runs (sim/guest_main.py),
# only between commands, and needs a heap that holds the garbage of the heaviest command
# (a pure-Python Ed25519 check of a token). The core's own heap budget on a board is
# measured by bench/firmware.py, not here.
HEAP = 64 * 1024 * 1024
# The guest allocates a result buffer of this size from its heap for every host call
# (mpy_wasi's default, 256 KB, would make each call 256 KB of garbage). Our largest
# answer is a log segment (32 records of <= 255 bytes, as hex): ~17 KB.
RESULT_CAP = 32 * 1024


def run_guest(source: str, host_functions: dict, heap: int = HEAP) -> mpy_wasi.GuestResult:
    """The guest loop in a fresh VM: host_tools.mpy_wasi.run_source with our heap and
    result buffer, the repository at /repo, and no time limit (the simulator drives it)."""
    return mpy_wasi.run_source(source, mounts={"/repo": REPO}, host_functions=host_functions,
                               timeout_s=None, heap_bytes=heap, result_cap=RESULT_CAP)


GUEST = (Path(__file__).parent / "guest_main.py").read_text()
_DONE = object()

# what the guest may call on the host's hardware, and how values cross the boundary
_HEX_IN = {("storage", "write"): 1, ("storage", "append"): 1}
_HEX_OUT = {("storage", "read"), ("serial", "read"), ("random", "bytes")}
_ALLOWED = {
    ("clock", "set_now"),
    ("keypad", "read"),
    ("sensor", "take"),
    ("sensor", "bench_sample"),
    ("storage", "read"),
    ("storage", "write"),
    ("storage", "append"),
    ("storage", "rename"),
    ("storage", "remove"),
    ("storage", "size"),
    ("storage", "names"),
    ("serial", "read"),
    ("random", "bits"),
    ("random", "bytes"),
}
# outputs the guest queues during a command and the host applies after it, in order
_OUTPUTS = {
    ("relay", "set"),
    ("alarm", "set"),
    ("display", "show"),
    ("display", "leds"),
    ("sensor", "purge"),
    ("serial", "write"),
}


class MicroPythonRuntime:
    name = "micropython"

    def __init__(self, hw: hal.Hardware, config: dict, identity: dict, core: str):
        self.hw = hw
        self.hw_calls = 0
        self._commands: queue.Queue = queue.Queue()
        self._results: queue.Queue = queue.Queue()
        self._first = True
        self.result = None
        prelude = (
            f"CORE = {core!r}\nCONFIG = {json.dumps(config)!r}\nIDENTITY = {json.dumps(identity)!r}\n"
            f"BOARD = {hw.board!r}\nCAPS = {getattr(hw, 'caps', 0)!r}\n"
            "import json as _j\nCONFIG = _j.loads(CONFIG)\nIDENTITY = _j.loads(IDENTITY)\n"
        )
        self._source = prelude + GUEST
        self._thread = threading.Thread(target=self._run, daemon=True, name="lci-sim-micropython")
        self._thread.start()

    # -- the VM thread ---------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            self.result = run_guest(self._source, {"next": self._next, "hw": self._hw})
        except Exception as exc:  # the VM could not even start
            self.result = exc
        finally:
            self._results.put(_DONE)

    def _next(self, result):
        if self._first:
            self._first = False
        else:
            self._results.put(result)
        return self._commands.get()

    def _hw(self, part: str, method: str, args: list):
        if (part, method) not in _ALLOWED:
            raise ValueError(f"the guest may not call {part}.{method}")
        self.hw_calls += 1
        key = (part, method)
        if key in _HEX_IN:
            i = _HEX_IN[key]
            args = list(args)
            args[i] = bytes.fromhex(args[i])
        value = getattr(getattr(self.hw, part), method)(*args)
        if key in _HEX_OUT:
            return None if value is None else bytes(value).hex()
        if key in (("sensor", "take"), ("sensor", "bench_sample")):
            if value is None:
                return None
            return [value.volume_ml, value.temperature_dc, value.fuel_cell, bool(value.complete)]
        return value

    # -- the simulator's side -----------------------------------------------------------------------
    def _inputs(self) -> dict:
        hw = self.hw
        return {
            "ign": bool(hw.ignition.on()),
            "mv": hw.supply.millivolts(),
            "conn": bool(hw.sensor.connected()),
            "keys": hw.keypad.pending(),
            "samples": hw.sensor.pending(),
            "rx": hw.serial.pending(),
        }

    def _apply_outputs(self, outputs: list) -> None:
        for part, method, args in outputs:
            if (part, method) not in _OUTPUTS:
                raise RuntimeFailure(f"the guest may not output {part}.{method}")
            if (part, method) == ("serial", "write"):
                args = [bytes.fromhex(args[0])]
            getattr(getattr(self.hw, part), method)(*args)

    def call(self, op: str, args: dict) -> dict:
        if not self._thread.is_alive() and self._results.empty():
            raise RuntimeFailure(self._why_dead())
        if op != "gc":
            args = dict(args, **{"in": self._inputs()})
        self._commands.put({"op": op, "args": args})
        result = self._results.get()
        if result is _DONE:
            raise RuntimeFailure(self._why_dead())
        self._apply_outputs(result.pop("out", ()))
        return result

    def _why_dead(self) -> str:
        result = self.result
        if isinstance(result, Exception):
            return f"MicroPython VM failed to start: {result}"
        if result is None:
            return "MicroPython VM is not running"
        tail = (result.stderr or result.stdout).strip().splitlines()[-6:]
        return f"MicroPython VM exited with {result.exit_code}: " + " / ".join(tail)

    def heap(self) -> dict:
        """Free and used heap inside the VM (after a collection)."""
        return self.call("gc", {})

    def power_off(self) -> None:
        self.call("power_off", {})

    def close(self) -> None:
        if self._thread.is_alive():
            self._commands.put({"op": "exit"})
            self._thread.join(timeout=10)
