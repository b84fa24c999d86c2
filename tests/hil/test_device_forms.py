"""`pytest tests/hil --device=PATH|URL --hil-keys DIR`: a board named by its device path or by a
pyserial URL, as docs/board.md tells a bench to run it.

Two factory-fresh unix boards (host_tools/dev/unix_board.py: the bundle on the MicroPython unix
port), one behind a pty and one behind TCP, stand in for a Pico on /dev/ttyACM0 and a board
behind a serial server; the suite runs in a child pytest against both, provisions each with
the keys in --hil-keys and talks to it only through the serial protocol.
"""

from __future__ import annotations

import subprocess
import sys

from host_tools import keys
from host_tools.dev import mpybuild, unix_board
from tests.hil.target import REPO

HEAP = 512 * 1024  # the bundle as files costs its code in RAM too


def test_a_device_path_and_a_socket_url_both_run_the_suite(tmp_path):
    report = mpybuild.build(tmp_path / "mpy")
    assert not report["failures"], report["failures"]
    keys.keygen(tmp_path / "keys")
    with unix_board.UnixBoard(tmp_path / "mpy", flash_image=tmp_path / "pty.img", heap=HEAP) as pty_board, \
            unix_board.UnixBoard(tmp_path / "mpy", flash_image=tmp_path / "tcp.img", heap=HEAP,
                                 pty=False, tcp_port=0) as tcp_board:
        assert pty_board.pty_path and tcp_board.tcp_url and tcp_board.tcp_url.startswith("socket://")
        devices = f"{pty_board.pty_path},{tcp_board.tcp_url}"
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/hil/test_story.py",
             f"--device={devices}", "--hil-keys", str(tmp_path / "keys"),
             "-k", "identity_and_status or token_unlock_and_the_replay_refused"],
            cwd=REPO, capture_output=True, text=True, timeout=300,
        )
    tail = result.stdout[-3000:] + result.stderr[-2000:]
    assert result.returncode == 0, tail
    assert "4 passed" in result.stdout, tail
