"""The serial line on the REPL's stdin/stdout (USB CDC on a Pico, the terminal on unix).

Bytes, never text: reads are non-blocking (select.poll with a zero timeout) and Ctrl-C is
disabled so a 0x03 inside a frame is data, not an interrupt. Used by firmware/boards/rp2.py
and unix.py; a board with a UART for the protocol uses machine.UART instead.
"""

import sys

from firmware import hal

try:
    import select
except ImportError:  # pragma: no cover - every MicroPython port and CPython have it
    select = None  # type: ignore[assignment]


def _disable_ctrl_c():
    try:
        import micropython

        micropython.kbd_intr(-1)
    except (ImportError, AttributeError):
        pass  # CPython: no REPL to protect


class StdioSerial(hal.SerialPort):
    def __init__(self, stdin=None, stdout=None, chunk=256):
        stdin = stdin or sys.stdin
        stdout = stdout or sys.stdout
        self.rx = getattr(stdin, "buffer", stdin)
        self.tx = getattr(stdout, "buffer", stdout)
        self.chunk = chunk
        self.poll = None
        if select is not None:
            self.poll = select.poll()
            self.poll.register(stdin, select.POLLIN)
        _disable_ctrl_c()

    def _ready(self):
        if self.poll is None:
            return False
        return bool(self.poll.poll(0))

    def read(self):
        out = b""
        while len(out) < self.chunk and self._ready():
            data = self.rx.read(1)
            if not data:
                break
            out += data
        return out

    def write(self, data):
        self.tx.write(data)
        flush = getattr(self.tx, "flush", None)
        if flush is not None:
            flush()
