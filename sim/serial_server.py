"""Serve a simulated handset as a serial device: a pty and/or a TCP socket, in real time.

Any serial tool connects as to a real USB device: the pty's path is printed (and a
stable symlink made with `link`), the TCP endpoint is `socket://127.0.0.1:PORT` for
pyserial. Behind a real file descriptor time is the wall clock: the virtual clock follows
it (times `speed`), the core steps at its deadlines, and `select` waits for the next
deadline or the next byte — no busy loop, no fixed tick. Optional line-rate pacing
(`baud`) and seeded faults (sim/line.py) sit on the cable in both directions; a cable pull
(sim/cable.py) loses the reply to a chosen request and drops the connection.

One host at a time, as on a USB port: a new TCP connection replaces the last, and the
handset sees a newly opened line (what the last host left in flight is dropped and the
core's frame decoder starts fresh, so half a frame of the old connection cannot spoil the
first frame of the new one). The pty
stays open on our side, so a tool may close and reopen it. Output written while no host
listens is lost (a real USB CDC port drops it too).

`SerialServer.poll(timeout)` is one turn of the loop (the handset calls it from its own
event loop); `serve_forever()` loops until `stop()`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import socket
import time
import tty
from pathlib import Path

from protocol.framing import Decoder
from sim.cable import CablePull
from sim.line import Faults, Line
from sim.simulator import Simulator

MAX_WAIT_S = 0.5


class ServerError(Exception):
    """An endpoint cannot be opened (port in use, link path not writable ...)."""


class SerialServer:
    def __init__(
        self,
        sim: Simulator,
        *,
        pty: bool = True,
        tcp_port: int | None = None,
        link: str | None = None,
        baud: int = 0,
        faults: Faults | None = None,
        faults_to_device: Faults | None = None,
        pull: CablePull | None = None,
        speed: float = 1.0,
        wall=time.monotonic,
        trace=None,
    ):
        if speed <= 0:
            raise ServerError("speed must be > 0")
        self.sim = sim
        self.speed = speed
        self.wall = wall
        self.to_device = Line(baud, faults_to_device)
        self.to_host = Line(baud, faults)
        self.pull = pull
        self.pty_path: str | None = None
        self.link: str | None = None
        self.tcp_url: str | None = None
        self._master = self._slave = None
        self._listener: socket.socket | None = None
        self._client: socket.socket | None = None
        self._running = False
        self.lost_bytes = 0
        self.clients = 0
        # trace(direction, frame): every whole frame the handset reads ("<") and writes (">")
        self.trace = trace
        self._heard, self._said = Decoder(), Decoder()
        self._wake_r, self._wake_w = os.pipe()  # stop() wakes a waiting select
        os.set_blocking(self._wake_r, False)
        self._rebase()
        sim.serial_sinks.append(self._from_device)
        try:
            if pty:
                self._open_pty(link)
            if tcp_port is not None:
                self._open_tcp(tcp_port)
        except OSError as exc:
            self.close()
            raise ServerError(f"cannot open the serial endpoint: {exc}") from None

    # -- endpoints -----------------------------------------------------------------------------------
    def _open_pty(self, link: str | None) -> None:
        master, slave = os.openpty()
        tty.setraw(slave)
        os.set_blocking(master, False)
        self._master, self._slave = master, slave
        self.pty_path = os.ttyname(slave)
        if link:
            path = Path(link)
            if path.is_symlink() or path.exists():
                if not path.is_symlink():
                    raise OSError(f"{link} exists and is not a symlink")
                path.unlink()
            path.symlink_to(self.pty_path)
            self.link = str(path)

    def _open_tcp(self, port: int) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen(1)
        listener.setblocking(False)
        self._listener = listener
        self.tcp_url = f"socket://127.0.0.1:{listener.getsockname()[1]}"

    def endpoints(self) -> list[str]:
        out = []
        if self.pty_path:
            out.append(f"pty: {self.pty_path}" + (f" (link {self.link})" if self.link else ""))
        if self.tcp_url:
            out.append(f"tcp: {self.tcp_url}")
        return out

    # -- time ------------------------------------------------------------------------------------------
    def _rebase(self) -> None:
        """Tie the virtual clock's present to the wall clock's present."""
        self._base_wall = self.wall()
        self._base_ms = self.sim.t_ms
        self._seen_ms = self.sim.t_ms

    def virtual_now_ms(self) -> int:
        jump = self.sim.t_ms - self._seen_ms
        if jump > 0:  # someone moved the world ahead (the handset's "+1 h"): shift with it
            self._base_ms += jump
            self._seen_ms = self.sim.t_ms
        ms = self._base_ms + round((self.wall() - self._base_wall) * 1000 * self.speed)
        return max(ms, self.sim.t_ms)

    def _wall_us(self) -> int:
        return int(self.wall() * 1_000_000)

    # -- bytes -------------------------------------------------------------------------------------------
    def _from_device(self, data: bytes) -> None:
        self._traced(">", self._said, data)
        self.to_host.send(data, self._wall_us())

    def _traced(self, direction: str, decoder: Decoder, data: bytes) -> None:
        if self.trace is not None and data:
            for frame in decoder.feed(data):
                self.trace(direction, frame)

    def _write_host(self, data: bytes) -> None:
        if self._client is not None:
            try:
                self._client.sendall(data)
            except OSError:
                self._drop_client()
                self.lost_bytes += len(data)
            return
        if self._master is not None:
            try:
                written = os.write(self._master, data)
                self.lost_bytes += len(data) - written
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EIO):
                    raise
                self.lost_bytes += len(data)
            return
        self.lost_bytes += len(data)

    def _drop_client(self) -> None:
        if self._client is not None:
            with contextlib.suppress(OSError):
                self._client.close()
            self._client = None

    def _accept(self) -> None:
        assert self._listener is not None
        try:
            conn, _ = self._listener.accept()
        except BlockingIOError:
            return
        self._drop_client()
        if self.pull is not None:
            self.pull.reset()
        conn.setblocking(False)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._client = conn
        self.clients += 1
        # a new host: nothing of the last connection reaches either side any more
        self.lost_bytes += self.to_host.pending()
        self.to_device.clear()
        self.to_host.clear()
        self._heard.reset()
        self._said.reset()
        self.sim.line_reset()

    # -- the loop ---------------------------------------------------------------------------------------------
    def poll(self, timeout: float = MAX_WAIT_S) -> None:
        """Bring the world up to now, move bytes, then wait up to `timeout` for something."""
        self.sim.run_until(self.virtual_now_ms())
        self._seen_ms = self.sim.t_ms
        now_us = self._wall_us()
        data = self.to_device.due(now_us)
        if data:
            pull = self.pull is not None and self.pull.due(data)
            if pull and self.pull.before:  # out before the handset read it: never arrives
                self.lost_bytes += len(data)
                self._drop_client()
                data = b""
            self._traced("<", self._heard, data)
            self.sim.serial_in(data)
            if pull:  # the handset did what it read; its answer never reaches the host
                self.lost_bytes += self.to_host.pending()
                self.to_host.clear()
                self._drop_client()
        data = self.to_host.due(now_us)
        if data:
            self._write_host(data)
        wait = self._wait_s(timeout)
        readers = [fd for fd in (self._master, self._listener, self._client) if fd is not None]
        ready, _, _ = select.select(readers + [self._wake_r], [], [], wait)
        for item in ready:
            if item == self._wake_r:
                with contextlib.suppress(OSError):
                    os.read(self._wake_r, 64)
            elif item is self._listener:
                self._accept()
            elif item is self._client:
                try:
                    chunk = self._client.recv(4096)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    chunk = b""
                if not chunk:
                    self._drop_client()
                    continue
                self.to_device.send(chunk, self._wall_us())
            elif item == self._master:
                try:
                    chunk = os.read(self._master, 4096)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:  # EIO: no process has the slave open (we do, so rare)
                    continue
                self.to_device.send(chunk, self._wall_us())

    def _wait_s(self, timeout: float) -> float:
        wait = timeout
        deadline = self.sim.next_deadline_ms()
        if deadline is not None:
            wait = min(wait, max(0.0, (deadline - self.virtual_now_ms()) / 1000 / self.speed))
        now_us = self._wall_us()
        for line in (self.to_device, self.to_host):
            due = line.next_due_us()
            if due is not None:
                wait = min(wait, max(0.0, (due - now_us) / 1_000_000))
        return wait

    def serve_forever(self, tick=None) -> None:
        """Loop until stop(); `tick()` (optional) runs after every turn (the modem's dialer)."""
        self._running = True
        while self._running:
            self.poll()
            if tick is not None:
                tick()

    def stop(self) -> None:
        self._running = False
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")

    def close(self) -> None:
        self._running = False
        with contextlib.suppress(ValueError):
            self.sim.serial_sinks.remove(self._from_device)
        self._drop_client()
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        for fd in (self._master, self._slave, self._wake_r, self._wake_w):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._master = self._slave = self._wake_r = self._wake_w = None
        if self.link:
            with contextlib.suppress(OSError):
                Path(self.link).unlink()
            self.link = None

    def __enter__(self) -> SerialServer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
