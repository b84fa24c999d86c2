"""The MicroPython unix port as a board (also runs on CPython): stdin/stdout are the serial line.

No physical inputs: a unix "board" is a development unit driven over the protocol, so it
announces the bench capability and takes ignition, blows and keys as BENCH messages. The
display goes to stderr (stdout carries frames). Set by environment variables:

- LCI_FLASH=PATH: the state lives in a littlefs2 image file (firmware/boards/filedisk.py),
  the file system a Pico runs, mounted at /flash; LCI_FLASH_BLOCKS (256) sizes a new image;
- else LCI_STATE=FOLDER (default ./lci-state): the state files in a host folder;
- LCI_CLOCK_RATE=N (default 1): device seconds per wall second, so a test waits out a
  5-minute hold in half a second; the monotonic and the wall clock both run N times fast;
- LCI_RTC=PATH: a battery-backed real-time clock: the wall clock is kept in this host file
  (written at boot and at every set-time) and runs on, at the clock rate, while the process
  is down. Without it the wall clock starts from the host's time at every boot, as on a
  Pico without an RTC module.
"""

import os
import sys
import time

from firmware import hal
from firmware.boards.files import FolderStorage, UrandomRandom
from firmware.boards.stdio import StdioSerial
from protocol import messages
from protocol.coretime import EPOCH_UNIX

PORT_EPOCH_UNIX = 946684800 if time.gmtime(0)[0] == 2000 else 0
_ticks_us = getattr(time, "ticks_us", None)
_ticks_diff = getattr(time, "ticks_diff", None)


def _env_int(name, default):
    value = os.getenv(name)
    try:
        return int(value) if value else default
    except ValueError:
        sys.stderr.write("%s=%r is not an integer: using %d\n" % (name, value, default))
        return default


def _host_ms():
    return time.time_ns() // 1000000


class UnixClock(hal.Clock):
    def __init__(self, rate=1, rtc=None):
        self.rate = max(1, rate)
        self.us = 0  # wall microseconds since boot, summed tick by tick (ticks wrap; this never)
        self.last = self._tick()
        self.rtc = rtc
        self.base = int(time.time()) - (EPOCH_UNIX - PORT_EPOCH_UNIX)  # core seconds at boot
        kept = self._rtc_read()
        if kept is not None:
            self.base = (kept[0] + (_host_ms() - kept[1]) * self.rate) // 1000
        self._rtc_write(self.base * 1000)

    def _rtc_read(self):
        if not self.rtc:
            return None
        try:
            with open(self.rtc) as f:
                fields = f.read().split()
            return int(fields[0]), int(fields[1])
        except (OSError, ValueError, IndexError):
            return None  # no RTC yet, or a write cut short: start from the host's time

    def _rtc_write(self, core_ms):
        if self.rtc:
            with open(self.rtc, "w") as f:
                f.write("%d %d\n" % (core_ms, _host_ms()))

    @staticmethod
    def _tick():
        if _ticks_us is not None:
            return _ticks_us()
        return time.monotonic_ns() // 1000  # type: ignore[attr-defined]  # CPython

    def _elapsed_us(self):
        tick = self._tick()
        if _ticks_diff is not None:
            self.us += _ticks_diff(tick, self.last)
        else:
            self.us += tick - self.last
        self.last = tick
        return self.us

    def monotonic_ms(self):
        return self._elapsed_us() * self.rate // 1000

    def now(self):
        return self.base + self.monotonic_ms() // 1000

    def set_now(self, seconds):
        # the host's clock is not ours to set: move our own base instead
        mono = self.monotonic_ms()
        self.base = seconds - mono // 1000
        self._rtc_write(seconds * 1000 + mono % 1000)


class StderrDisplay(hal.Display):
    def show(self, line1, line2):
        sys.stderr.write("[%-16s|%-16s]\n" % (line1, line2))


_SERIAL = [None]  # type: list
_RATE = [1]


def storage():
    """The state's storage: a littlefs2 image ($LCI_FLASH) or a host folder ($LCI_STATE)."""
    image = os.getenv("LCI_FLASH")
    if image:
        from firmware.boards import filedisk

        return FolderStorage(filedisk.mount(image, _env_int("LCI_FLASH_BLOCKS", 256)) + "/lci")
    return FolderStorage(os.getenv("LCI_STATE") or "lci-state")


def build(folder=None):
    _RATE[0] = max(1, _env_int("LCI_CLOCK_RATE", 1))
    serial = StdioSerial()
    _SERIAL[0] = serial
    hw = hal.Hardware(
        clock=UnixClock(_RATE[0], os.getenv("LCI_RTC")),
        display=StderrDisplay(),
        storage=FolderStorage(folder) if folder else storage(),
        serial=serial,
        random=UrandomRandom(),
        board="unix",
    )
    hw.caps = messages.CAP_BENCH  # type: ignore[attr-defined]  # driven over the protocol
    return hw


# Nothing to scan between deadlines (inputs arrive on stdin, which wakes the pause):
# the loop may sleep up to a wall second, however fast the clock runs.
def poll_ms():
    return 1000 * _RATE[0]


def pause(ms):
    """Sleep `ms` of device time, or until a byte arrives on the serial line."""
    wall_ms = (ms + _RATE[0] - 1) // _RATE[0]
    serial = _SERIAL[0]
    if serial is not None:
        serial.wait(wall_ms)
    else:
        time.sleep(wall_ms / 1000)
