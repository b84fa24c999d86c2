"""The hardware layer as seen from inside MicroPython: every call goes back to the host.

Runs INSIDE the WASI MicroPython VM (sim/runtime_mpy.py). Each HAL part forwards its
calls through `host.call("hw", ...)` to the simulator's real hardware objects
(sim/hardware.py), so the world has one state whichever runtime runs the core. Bytes
travel as hex; a breath sample as a dict. The clock is the exception: it cannot move
during one command, so each command carries the monotonic and wall time and the clock
answers from them (set_now still goes to the host).
"""

import json
from binascii import hexlify, unhexlify

import host

from firmware import hal
from firmware.ramflash import PowerCut


class HostError(Exception):
    pass


def call(part, method, *args):
    reply = json.loads(host.call("hw", json.dumps({"args": [part, method, list(args)]})))
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
    def set(self, closed):
        call("relay", "set", bool(closed))


class GuestAlarm(hal.Alarm):
    def set(self, on):
        call("alarm", "set", bool(on))


class GuestDisplay(hal.Display):
    def show(self, line1, line2):
        call("display", "show", line1, line2)

    def leds(self, green, red):
        call("display", "leds", bool(green), bool(red))


class GuestKeypad(hal.Keypad):
    def read(self):
        return call("keypad", "read")


class GuestSensor(hal.BreathSensor):
    def take(self):
        raw = call("sensor", "take")
        if raw is None:
            return None
        return hal.BreathSample(raw[0], raw[1], raw[2], raw[3])

    def connected(self):
        return call("sensor", "connected")

    def purge(self):
        call("sensor", "purge")


class GuestIgnition(hal.Ignition):
    def on(self):
        return call("ignition", "on")


class GuestSupply(hal.Supply):
    def millivolts(self):
        return call("supply", "millivolts")


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
    def read(self):
        return unhexlify(call("serial", "read"))

    def write(self, data):
        if data:
            call("serial", "write", _hex(data))


class GuestRandom(hal.Random):
    def bits(self, n):
        return call("random", "bits", n)

    def bytes(self, n):
        return unhexlify(call("random", "bytes", n))


def build(board="sim-micropython"):
    return hal.Hardware(
        clock=GuestClock(),
        relay=GuestRelay(),
        alarm=GuestAlarm(),
        display=GuestDisplay(),
        keypad=GuestKeypad(),
        sensor=GuestSensor(),
        ignition=GuestIgnition(),
        supply=GuestSupply(),
        storage=GuestStorage(),
        serial=GuestSerial(),
        random=GuestRandom(),
        board=board,
    )
