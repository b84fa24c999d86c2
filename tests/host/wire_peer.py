"""A protocol peer behind a real pty or TCP socket, for the host link tests.

It runs protocol/endpoint.py (the device's wire rules) with the endpoint tests'
recording handler in a thread, so tests/host can exercise host_tools/link.py over the
same kinds of endpoints a real device or the simulator offers. An optional seeded fault
filter corrupts or drops bytes on the way to the host.
"""

from __future__ import annotations

import os
import random
import select
import socket
import threading

from protocol.endpoint import Endpoint
from tests.protocol.recorder import RecordingHandler


class Faults:
    def __init__(self, seed: int, drop: float = 0.0, corrupt: float = 0.0):
        self.rng = random.Random(seed)
        self.drop = drop
        self.corrupt = corrupt

    def __call__(self, data: bytes) -> bytes:
        out = bytearray()
        for byte in data:
            roll = self.rng.random()
            if roll < self.drop:
                continue
            if roll < self.drop + self.corrupt:
                byte ^= 1 << self.rng.randrange(8)
            out.append(byte)
        return bytes(out)


class Peer:
    def __init__(self, handler: RecordingHandler | None = None, faults: Faults | None = None):
        self.handler = handler or RecordingHandler()
        self.faults = faults
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.url = ""

    def _serve(self, read, write, ready) -> None:
        def send(data: bytes) -> None:
            write(self.faults(data) if self.faults else data)

        endpoint = Endpoint(self.handler, send)
        while not self._stop.is_set():
            if ready(0.02):
                data = read()
                if not data:
                    break
                endpoint.receive(data)
            endpoint.poll()

    # -- pty
    def start_pty(self) -> Peer:
        master, slave = os.openpty()
        self._fds = (master, slave)
        self.url = os.ttyname(slave)

        def ready(t):
            return bool(select.select([master], [], [], t)[0])

        self._thread = threading.Thread(
            target=self._serve,
            args=(lambda: os.read(master, 4096), lambda d: os.write(master, d), ready),
            daemon=True,
        )
        self._thread.start()
        return self

    # -- TCP
    def start_tcp(self) -> Peer:
        server = socket.socket()
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        self._server = server
        self.url = f"socket://127.0.0.1:{server.getsockname()[1]}"

        def run():
            conn, _ = server.accept()
            self._conn = conn

            def ready(t):
                return bool(select.select([conn], [], [], t)[0])

            self._serve(lambda: conn.recv(4096), conn.sendall, ready)
            conn.close()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=2)
        for fd in getattr(self, "_fds", ()):
            os.close(fd)
        if hasattr(self, "_server"):
            self._server.close()
