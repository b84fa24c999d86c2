"""The serial line on the REPL's stdin/stdout (USB CDC on a Pico, the terminal on unix).

Bytes, never text: reads never block (select.poll with a zero timeout) and Ctrl-C is
disabled so a 0x03 inside a frame is data, not an interrupt. Used by firmware/boards/rp2.py
and unix.py; a board with a UART for the protocol uses machine.UART instead.

A read takes what the file descriptor holds, never more than `chunk`: under CPython with
os.read (whatever is there, in one call: a buffered stdin would keep bytes in its buffer
where poll cannot see them); under MicroPython, whose stdin is unbuffered, a byte at a time
while poll says more are waiting (its stream read blocks until the count is full).
"""

import sys

from firmware import hal

try:
    import select
except ImportError:  # pragma: no cover - every MicroPython port and CPython have it
    select = None  # type: ignore[assignment]

try:
    from os import read as _os_read  # CPython
except ImportError:
    _os_read = None  # type: ignore[assignment]  # MicroPython: no os.read


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
        self.fd = None
        if _os_read is not None:
            self.fd = stdin.fileno()
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

    def wait(self, ms):
        """Block up to `ms` wall milliseconds, or until a byte can be read."""
        if self.poll is not None:
            self.poll.poll(ms)

    def read(self):
        if not self._ready():
            return b""
        if self.fd is not None:
            return _os_read(self.fd, self.chunk)  # type: ignore[misc]
        out = bytearray()
        while len(out) < self.chunk:
            data = self.rx.read(1)
            if not data:
                break
            out.extend(data)
            if not self._ready():
                break
        return bytes(out)

    def write(self, data):
        self.tx.write(data)
        flush = getattr(self.tx, "flush", None)
        if flush is not None:
            flush()
