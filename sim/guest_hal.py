"""The hardware layer as seen from inside MicroPython: the host's parts, with few crossings.

Runs INSIDE MicroPython's unix port (sim/runtime_mpy.py, sim/guest_main.py). The world
cannot change while the core runs one command (the simulator waits for the result), so:

- inputs come with each command as a snapshot (ignition, supply, sensor connected, and
  how many keys, samples and serial bytes wait); the core reads them without a host call,
  and only taking a waiting key, sample or serial chunk goes to the host;
- outputs (relay, alarm, display, LEDs, serial bytes, purge) are queued in order and
  applied by the host when the command returns — indistinguishable from outside, since
  nobody looks at the hardware in the middle of a command;
- storage, the wall clock's set_now and the RNG go to the host at once (a write can be
  cut by the power; the RNG is the host's seeded stream shared with the CPython runtime).

Bytes cross as hex, a breath sample as a list. A host call is one JSON line on stdout,
{"hw": [part, method, args]}, answered by one line on stdin, {"ok": ..., "value"|"error"}.
"""

import json
import sys
from binascii import hexlify, unhexlify

from firmware import hal
from firmware.ramflash import PowerCut


class HostError(Exception):
    pass


def send(message):
    """One JSON line to the host."""
    sys.stdout.write(json.dumps(message) + "\n")


def call(part, method, *args):
    send({"hw": [part, method, list(args)]})
    line = sys.stdin.readline()
    if not line:
        raise HostError("the host went away")
    reply = json.loads(line)
    if reply["ok"]:
        return reply["value"]
    error = reply["error"]
    if error.startswith("PowerCut"):
        raise PowerCut(error)
    if error.startswith("OSError"):
        raise OSError(error)
    raise HostError(error)


def _hex(data):
    return hexlify(bytes(data)).decode()


class World:
    """This command's input snapshot and output queue."""

    def __init__(self):
        self.inputs = {"ign": False, "mv": 12600, "conn": True, "keys": 0, "samples": 0, "rx": 0}
        self.out = []

    def begin(self, inputs):
        if inputs:
            self.inputs = inputs
        self.out = []

    def emit(self, part, method, *args):
        self.out.append([part, method, list(args)])


class GuestClock(hal.Clock):
    def __init__(self):
        self.mono = 0
        self.wall = 0

    def now(self):
        return self.wall

    def monotonic_ms(self):
        return self.mono

    def set_now(self, seconds):
        call("clock", "set_now", seconds)
        self.wall = seconds


class GuestRelay(hal.Relay):
    def __init__(self, world):
        self.world = world

    def set(self, closed):
        self.world.emit("relay", "set", bool(closed))


class GuestAlarm(hal.Alarm):
    def __init__(self, world):
        self.world = world

    def set(self, on):
        self.world.emit("alarm", "set", bool(on))


class GuestDisplay(hal.Display):
    def __init__(self, world):
        self.world = world

    def show(self, line1, line2):
        self.world.emit("display", "show", line1, line2)

    def leds(self, green, red):
        self.world.emit("display", "leds", bool(green), bool(red))


class GuestKeypad(hal.Keypad):
    def __init__(self, world):
        self.world = world

    def read(self):
        inputs = self.world.inputs
        if inputs["keys"] <= 0:
            return None
        inputs["keys"] -= 1
        return call("keypad", "read")


class GuestSensor(hal.BreathSensor):
    def __init__(self, world):
        self.world = world

    def take(self):
        inputs = self.world.inputs
        if inputs["samples"] <= 0 or not inputs["conn"]:
            return None
        inputs["samples"] -= 1
        raw = call("sensor", "take")
        if raw is None:
            return None
        return hal.BreathSample(raw[0], raw[1], raw[2], raw[3])

    def connected(self):
        return self.world.inputs["conn"]

    def purge(self):
        self.world.emit("sensor", "purge")


class GuestIgnition(hal.Ignition):
    def __init__(self, world):
        self.world = world

    def on(self):
        return self.world.inputs["ign"]


class GuestSupply(hal.Supply):
    def __init__(self, world):
        self.world = world

    def millivolts(self):
        return self.world.inputs["mv"]


class GuestStorage(hal.Storage):
    def read(self, name):
        raw = call("storage", "read", name)
        return None if raw is None else unhexlify(raw)

    def write(self, name, data):
        call("storage", "write", name, _hex(data))

    def append(self, name, data):
        call("storage", "append", name, _hex(data))

    def rename(self, old, new):
        call("storage", "rename", old, new)

    def remove(self, name):
        call("storage", "remove", name)

    def size(self, name):
        return call("storage", "size", name)

    def names(self):
        return call("storage", "names")


class GuestSerial(hal.SerialPort):
    def __init__(self, world):
        self.world = world

    def read(self):
        inputs = self.world.inputs
        if inputs["rx"] <= 0:
            return b""
        inputs["rx"] = 0
        return unhexlify(call("serial", "read"))

    def write(self, data):
        if data:
            self.world.emit("serial", "write", _hex(data))


class GuestRandom(hal.Random):
    def bits(self, n):
        return call("random", "bits", n)

    def bytes(self, n):
        return unhexlify(call("random", "bytes", n))


class GuestHardware(hal.Hardware):
    def bench_sample(self, brac, volume_ml, temperature_dc):
        """A bench blow's sample from the host's simulated fuel cell (sim/hardware.py)."""
        raw = call("sensor", "bench_sample", brac, volume_ml, temperature_dc)
        return hal.BreathSample(raw[0], raw[1], raw[2], raw[3])


def build(world, board="sim", caps=0):
    hw = GuestHardware(
        clock=GuestClock(),
        relay=GuestRelay(world),
        alarm=GuestAlarm(world),
        display=GuestDisplay(world),
        keypad=GuestKeypad(world),
        sensor=GuestSensor(world),
        ignition=GuestIgnition(world),
        supply=GuestSupply(world),
        storage=GuestStorage(),
        serial=GuestSerial(world),
        random=GuestRandom(),
        board=board,
    )
    hw.caps = caps
    return hw
