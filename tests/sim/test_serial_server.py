"""lci-sim's serial endpoints: a real pty and a real TCP socket, opened by real serial tools.

The server runs in a thread on the wall clock; the tests block on I/O (never sleep).
"""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import threading

import pytest

from host_tools.link import Link, SerialTransport
from protocol import framing, messages
from sim.line import Faults
from sim.serial_server import SerialServer
from sim.simulator import Simulator
from tests.sim.conftest import FAKE_CORE


@pytest.fixture
def served(tmp_path):
    sim = Simulator(seed=5, core=FAKE_CORE)
    server = SerialServer(sim, pty=True, tcp_port=0, link=str(tmp_path / "lci"))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.stop()
    thread.join(timeout=5)
    server.close()
    sim.close()


def _ping(url: str) -> None:
    link = Link(SerialTransport(url), timeout=2.0, retries=2)
    try:
        assert link.request(messages.PING, data=b"over the wire")["data"] == b"over the wire"
        assert link.hello()["serial"] == "FAKE-1"
    finally:
        link.close()


def test_host_link_opens_the_pty(served):
    assert served.pty_path.startswith("/dev/")
    _ping(served.pty_path)
    _ping(served.pty_path)  # closed and reopened: the server's side stays up


def test_host_link_opens_the_stable_symlink(served, tmp_path):
    assert os.path.realpath(tmp_path / "lci") == served.pty_path
    _ping(str(tmp_path / "lci"))


def test_host_link_opens_tcp(served):
    assert served.tcp_url.startswith("socket://127.0.0.1:")
    _ping(served.tcp_url)
    _ping(served.tcp_url)  # a second connection replaces the first


def test_endpoints_are_printed(served):
    lines = served.endpoints()
    assert any(line.startswith("pty: /dev/") for line in lines)
    assert any(line.startswith("tcp: socket://127.0.0.1:") for line in lines)


def test_faults_and_pacing_behind_tcp():
    sim = Simulator(seed=6, core=FAKE_CORE)
    server = SerialServer(sim, pty=False, tcp_port=0, baud=115200,
                          faults=Faults(3, corrupt=0.003), faults_to_device=Faults(4, drop=0.003))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        link = Link(SerialTransport(server.tcp_url), timeout=0.1, retries=40)
        for i in range(20):
            data = bytes([65 + i]) * 60
            assert link.request(messages.PING, data=data)["data"] == data
        link.close()
        assert server.to_host.faults.corrupted + server.to_device.faults.dropped > 0
    finally:
        server.stop()
        thread.join(timeout=5)
        server.close()
        sim.close()


# ---- miniterm ---------------------------------------------------------------------------------------
# bytes a terminal passes through unchanged in miniterm's console mode (no CR/LF translation,
# no flow control, not miniterm's own exit/menu keys, no IEXTEN specials, 7-bit)
_UNSAFE = {0x0A, 0x0D, 0x0F, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x19, 0x1A,
           0x1C, 0x1D, 0x7F}


def _typable_ping(marker: bytes) -> bytes:
    for pad in range(0, 40):
        for seq in range(1, 3000):
            wire = framing.encode(framing.Frame(messages.PING, marker + b"." * pad, seq=seq))
            if all(b < 0x7F and b not in _UNSAFE for b in wire):
                return wire
    raise AssertionError("no typable PING frame")


def _read_until(fd: int, needle: bytes, limit: int = 200) -> bytes:
    seen = b""
    for _ in range(limit):
        ready, _, _ = select.select([fd], [], [], 10)
        assert ready, f"miniterm went silent; so far: {seen!r}"
        try:
            seen += os.read(fd, 4096)
        except OSError:
            break
        if needle in seen:
            return seen
    raise AssertionError(f"{needle!r} never appeared in {seen!r}")


@pytest.mark.parametrize("endpoint", ["pty", "tcp"])
def test_miniterm_opens_talks_and_quits(served, endpoint):
    url = served.pty_path if endpoint == "pty" else served.tcp_url
    marker = b"LCI-PING-OK-" + endpoint.encode()
    controller, terminal = pty.openpty()
    env = dict(os.environ, PYTHONIOENCODING="latin-1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "serial.tools.miniterm", url, "115200", "--raw",
         "--encoding", "latin-1", "--eol", "LF"],
        stdin=terminal, stdout=terminal, stderr=terminal, env=env, close_fds=True,
    )
    os.close(terminal)
    try:
        _read_until(controller, b"Miniterm on")
        os.write(controller, _typable_ping(marker))  # typed at miniterm's console
        _read_until(controller, marker)  # the handset's PING reply, shown by miniterm
        os.write(controller, b"\x1d")  # Ctrl-]: quit
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(controller)


def test_the_micropython_core_behind_tcp():
    sim = Simulator(seed=8, runtime="micropython")
    server = SerialServer(sim, pty=False, tcp_port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        link = Link(SerialTransport(server.tcp_url), timeout=2.0)
        info = link.hello()
        assert info["board"] == "sim" and info["serial"] == ""  # a blank unit from the factory
        assert link.request(messages.PING, data=b"wasm")["data"] == b"wasm"
        link.close()
    finally:
        server.stop()
        thread.join(timeout=5)
        server.close()
        sim.close()


def test_virtual_time_follows_the_wall_clock_at_the_given_speed():
    wall = [100.0]
    sim = Simulator(seed=9, core=FAKE_CORE)
    server = SerialServer(sim, pty=False, tcp_port=None, speed=60, wall=lambda: wall[0])
    try:
        wall[0] += 2.5  # 2.5 wall seconds at 60x
        server.poll(0)
        assert sim.t_ms == 150_000
        sim.advance(3_600_000)  # someone jumps the world ahead (the handset's "+1 h")
        wall[0] += 1.0
        server.poll(0)
        assert sim.t_ms == 150_000 + 3_600_000 + 60_000
    finally:
        server.close()
        sim.close()


def _reply_to(conn, seq: int) -> framing.Frame:
    """Read from a raw socket until the frame answering `seq` arrives (socket timeout bounds it)."""
    decoder = framing.Decoder()
    while True:
        chunk = conn.recv(4096)
        assert chunk, "the server closed the connection"
        for frame in decoder.feed(chunk):
            if frame.is_response and frame.seq == seq:
                return frame


@pytest.mark.parametrize("runtime", ["cpython", "micropython"])
def test_a_new_tcp_connection_starts_with_a_fresh_decoder(runtime):
    import socket

    sim = Simulator(seed=8, runtime=runtime)
    server = SerialServer(sim, pty=False, tcp_port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host, port = server.tcp_url.removeprefix("socket://").split(":")
    try:
        ping = framing.encode(framing.Frame(messages.PING, b"first", 1))
        half = framing.encode(framing.Frame(messages.PING, b"abandoned", 2))[:9]
        with socket.create_connection((host, int(port)), timeout=10) as old:
            old.sendall(b"\x00" + ping + half)  # one write: the device reads both together
            assert _reply_to(old, 1).payload == b"first"
        # the new host sends its first frame without a leading delimiter
        with socket.create_connection((host, int(port)), timeout=10) as new:
            new.sendall(framing.encode(framing.Frame(messages.PING, b"second", 3)))
            reply = _reply_to(new, 3)
            assert reply.type == messages.PING | messages.REPLY and reply.payload == b"second"
    finally:
        server.stop()
        thread.join(timeout=5)
        server.close()
        sim.close()
