"""The MicroPython unix port (also runs on CPython): stdin/stdout are the serial line.

No physical inputs: a unix "board" is a development unit driven over the protocol, so it
announces the bench capability and takes ignition, blows and keys as BENCH messages. The
display goes to stderr (stdout carries frames), the state files to a folder
($LCI_STATE or ./lci-state), and the wall clock is time.time() on the core's epoch.
"""

import os
import sys
import time

from firmware import hal
from firmware.boards.files import FolderStorage, UrandomRandom
from firmware.boards.stdio import StdioSerial
from firmware.hal import EPOCH_UNIX
from protocol import messages

PORT_EPOCH_UNIX = 946684800 if time.gmtime(0)[0] == 2000 else 0
_ticks_ms = getattr(time, "ticks_ms", None)


class UnixClock(hal.Clock):
    def __init__(self):
        self.offset = EPOCH_UNIX - PORT_EPOCH_UNIX  # core = port time - offset
        self.start = self._ms()

    @staticmethod
    def _ms():
        if _ticks_ms is not None:
            return _ticks_ms()
        return int(time.monotonic() * 1000)  # type: ignore[attr-defined]  # CPython

    def now(self):
        return int(time.time()) - self.offset

    def monotonic_ms(self):
        return self._ms() - self.start

    def set_now(self, seconds):
        # the host's clock is not ours to set: keep an offset instead
        self.offset = int(time.time()) - seconds


class StderrDisplay(hal.Display):
    def show(self, line1, line2):
        sys.stderr.write("[%-16s|%-16s]\n" % (line1, line2))


def build(folder=None):
    folder = folder or os.getenv("LCI_STATE") or "lci-state"
    hw = hal.Hardware(
        clock=UnixClock(),
        display=StderrDisplay(),
        storage=FolderStorage(folder),
        serial=StdioSerial(),
        random=UrandomRandom(),
        board="unix",
    )
    hw.caps = messages.CAP_BENCH  # type: ignore[attr-defined]  # driven over the protocol
    return hw


def pause(ms):
    time.sleep(ms / 1000)
