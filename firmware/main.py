"""Boot and run: build the board's Hardware, the Device on it, and loop for ever.

    import firmware.main; firmware.main.main()    (main.py on a board, written by `make flash`)
    micropython -X heapsize=256K -m firmware.main  (the unix port: see docs/board.md)

The board is chosen by sys.platform (rp2, esp32, else unix). The loop steps the device,
then sleeps until its next deadline or the board's poll interval, whichever is sooner
(20 ms where keys and switches are scanned; a board whose inputs wake its pause, the unix
port, says how long it may sleep with poll_ms()).
A fault inside a step (an exception escaping it) is counted and the loop goes on: a bug
must never leave the relay in a wrong state for good, and the next step recomputes every
output from the state. Faults leave a trace: a FAULT record with the exception's type and
where it was raised (module:line), at most one a minute; its value counts the faults since
the last record (the ones in between are counted, not written).
"""

try:
    from micropython import const
except ImportError:  # CPython: the value itself
    const = int  # type: ignore[misc, assignment]

import gc
import sys

# A collection after every GC_EVERY bytes allocated, not only when the heap is exhausted:
# garbage is then reclaimed while it lies low in the heap, so what outlives an operation
# stays packed there and large blocks stay free above it (a token check's big-integer
# garbage would otherwise run the heap to its top first, and what outlives the check would
# land scattered through it). Set before the core's imports below, which it packs too.
GC_EVERY = 16384
if hasattr(gc, "threshold"):  # MicroPython
    gc.threshold(GC_EVERY)

from firmware.config import Config  # noqa: E402
from firmware.device import Device  # noqa: E402
from firmware.handler import Handler  # noqa: E402

POLL_MS = 20
_FAULT_GAP_MS = const(60000)  # at most one FAULT record a minute


def where(exc):
    """'module.py:line' of the innermost frame an exception was raised in ('?' if unknown):
    the printed traceback's last 'File "...", line N' line (both runtimes print that form)."""
    import io

    out = io.StringIO()
    if hasattr(sys, "print_exception"):
        sys.print_exception(exc, out)  # MicroPython
    else:
        import traceback  # type: ignore[import-not-found]  # CPython

        traceback.print_exception(type(exc), exc, exc.__traceback__, file=out)
    found = "?"
    for line in out.getvalue().split("\n"):
        line = line.strip()
        if line.startswith("File "):
            parts = line.split('"')
            if len(parts) > 2:
                found = "%s:%s" % (parts[1].split("/")[-1], parts[2].split("line ")[-1].split(",")[0])
    return found


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
        self.faults = 0  # faults since boot
        self.unwritten = 0  # faults not yet in a FAULT record
        self.last_fault = ""  # "Type module.py:line" of the latest fault
        self.fault_at = None  # monotonic ms of the last FAULT record

    def once(self):
        device = self.device
        try:
            device.step()
        except Exception as exc:  # noqa: BLE001 - the loop must survive any fault
            self.fault(exc)
        if self.unwritten:
            self.write_faults()  # the count of a burst, once its minute is up
        deadline = device.next_deadline()
        wait = self.poll_ms
        if deadline is not None:
            wait = min(wait, max(0, deadline - self.hw.clock.monotonic_ms()))
        self.pause(wait)

    def fault(self, exc):
        """Count a fault (an exception that escaped a step)."""
        self.faults += 1
        self.unwritten += 1
        self.last_fault = "%s %s" % (type(exc).__name__, where(exc))
        self.write_faults()

    def write_faults(self):
        """The FAULT record of the faults not yet written, unless one went out within a
        minute: value the count, detail the latest one's type and place."""
        now = self.hw.clock.monotonic_ms()
        if self.fault_at is not None and now - self.fault_at < _FAULT_GAP_MS:
            return
        try:
            from firmware import eventlog

            self.device._log(eventlog.FAULT, value=self.unwritten, detail=self.last_fault)
        except Exception:  # noqa: BLE001 - a log that cannot take it: counted, tried again later
            return
        self.fault_at = now
        self.unwritten = 0

    def shutdown(self):
        """A clean stop (the loop interrupted, e.g. Ctrl-C on the unix port or before a
        soft reset): a SHUTDOWN record and the state saved."""
        from firmware import eventlog

        device = self.device
        device._log(eventlog.SHUTDOWN, value=self.faults)
        device._dirty = True
        device._commit()

    def run(self, loops=None):
        n = 0
        try:
            while loops is None or n < loops:
                self.once()
                n += 1
        except KeyboardInterrupt:
            self.shutdown()
            raise


def main():
    module = board()
    hw = module.build()
    poll = getattr(module, "poll_ms", None)
    Runner(hw, module.pause, poll_ms=poll() if poll else POLL_MS).run()


if __name__ == "__main__":
    main()
