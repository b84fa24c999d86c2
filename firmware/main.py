"""Boot and run: build the board's Hardware, the Device on it, and loop for ever.

    import firmware.main; firmware.main.main()    (main.py on a board, written by `make flash`)
    micropython -X heapsize=256K -m firmware.main  (the unix port: see docs/board.md)

The board is chosen by sys.platform (rp2, esp32, else unix). The loop steps the device,
then sleeps until its next deadline or the board's poll interval, whichever is sooner
(20 ms where keys and switches are scanned; a board whose inputs wake its pause, the unix
port, says how long it may sleep with poll_ms()).
A fault inside a step is counted and the loop goes on: a bug must never leave the relay
in a wrong state for good, and the next step recomputes every output from the state.
"""

import sys

from firmware.config import Config
from firmware.device import Device
from firmware.handler import Handler

POLL_MS = 20


def board():
    """The board module for this platform."""
    if sys.platform == "rp2":
        from firmware.boards import rp2 as module
    elif sys.platform == "esp32":
        from firmware.boards import esp32 as module
    else:
        from firmware.boards import unix as module
    return module


class Runner:
    def __init__(self, hw, pause, config=None, make_authority=None, poll_ms=POLL_MS):
        self.hw = hw
        self.pause = pause
        self.poll_ms = poll_ms
        self.device = Device(hw, config or Config(), make_authority=make_authority)
        Handler(self.device)  # the protocol on the board's serial line
        self.faults = 0

    def once(self):
        device = self.device
        try:
            device.step()
        except Exception:  # noqa: BLE001 - the loop must survive any fault
            self.faults += 1
        deadline = device.next_deadline()
        wait = self.poll_ms
        if deadline is not None:
            wait = min(wait, max(0, deadline - self.hw.clock.monotonic_ms()))
        self.pause(wait)

    def run(self, loops=None):
        n = 0
        while loops is None or n < loops:
            self.once()
            n += 1


def main():
    module = board()
    hw = module.build()
    poll = getattr(module, "poll_ms", None)
    Runner(hw, module.pause, poll_ms=poll() if poll else POLL_MS).run()


if __name__ == "__main__":
    main()
