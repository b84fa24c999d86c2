"""HIL targets: a handset reached only through the serial protocol, whatever it runs on.

- `sim`: `lci-sim serve` (the core on CPython) on a pty, at 600 virtual seconds per second;
- `unix`: the bundle `make firmware` builds, on MicroPython's unix port (host_tools/dev/unix_board.py)
  behind a pty: state on a littlefs2 image, the clock 600 times fast, a power cut = SIGKILL
  and a restart on the same image;
- `mpy`: `lci-sim serve --runtime micropython` (the simulator with its core on the unix port;
  not in the default list: the `unix` target runs the real bundle);
- anything else: a device path or pyserial URL of a board provisioned with the keys in
  --hil-keys (or factory-fresh: the suite provisions it once).

The tests hold provider keys (the real host code) and bring the handset to a known state
through authorized commands only, as a bench technician would: a billing `clear`, a service
session opened and closed, ignition off. Capabilities decide what can run: driving needs the
`bench` inputs, a power cut needs a target that can cut it (the unix target; the simulator's
`power_cut` over the wire), waiting out timers needs a fast clock (sim and unix).
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from host_tools import keys, tokens
from host_tools.dev import mpybuild, unix_board
from host_tools.device_client import DeviceClient
from protocol import messages
from protocol import tokens as token_format

REPO = Path(__file__).resolve().parents[2]
SPEED = 600  # virtual seconds per wall second on simulated targets
FREE_RESTART_S = 120  # the default configuration's free restart after a stall
# the unix target's heap beyond its ROMFS image (which a board keeps in flash): a board's
# budget on the 64-bit port; bench/firmware.py finds the smallest that passes the whole story
UNIX_HEAP = int(os.environ.get("LCI_HIL_UNIX_HEAP", "0")) or 256 * 1024
UNIX_ROMFS = os.environ.get("LCI_HIL_UNIX_FILES", "") == ""  # the bundle as ROMFS, as rp2/esp32 get it
SIMULATED = ("sim", "mpy", "unix")


class TargetError(Exception):
    pass


class Target:
    def __init__(self, name: str, key_dir: Path, *, board_keys: Path | None = None):
        self.name = name
        self.key_dir = board_keys or key_dir
        if board_keys is None:
            keys.keygen(key_dir)
        self.root = keys.load_root_key(self.key_dir / keys.ROOT_KEY_FILE)
        self.master = keys.load_master_secret(self.key_dir / keys.MASTER_SECRET_FILE)
        self.process: subprocess.Popen | None = None
        self.board: unix_board.UnixBoard | None = None
        self.simulated = name in SIMULATED
        self.fast_clock = self.simulated
        self._tmp: tempfile.TemporaryDirectory | None = None
        if name == "unix":
            self.url = self._unix(romfs=UNIX_ROMFS)
        elif self.simulated:
            self.url = self._serve("micropython" if name == "mpy" else "cpython")
        else:
            self.url = name
        try:
            with self.client() as client:
                info = client.hello()
                if "factory" in info["capabilities"]:
                    fields = keys.provision_fields("LCI7-HIL0001", self.root.public_key, self.master)
                    client.provision(**fields)
                    info = client.hello()
        except BaseException:
            self.stop()  # a target that cannot start leaves no process behind
            raise
        self.serial = info["serial"]
        self.directives = tokens.DirectiveOrder()  # numbers this run's billing directives
        self.caps = set(info["capabilities"])

    @property
    def can_cut_power(self) -> bool:
        return self.board is not None or "power_cut" in self.caps

    def power_cut(self, client: DeviceClient) -> None:
        """Cut the handset's power now; it boots again on the same storage."""
        if self.board is not None:
            self.board.power_cut()
        else:
            client.link.request(messages.BENCH, retries=0, input=messages.BENCH_POWER_CUT, a=1, b=0, c=0)

    def _unix(self, *, romfs: bool = False) -> str:
        self._tmp = tempfile.TemporaryDirectory(prefix="lci-hil-unix-")
        work = Path(self._tmp.name)
        report = mpybuild.build(work / "mpy")  # what `make firmware` builds
        if report["failures"]:
            raise TargetError("mpy-cross failed: " + "; ".join(report["failures"]))
        self.board = unix_board.UnixBoard(work / "mpy", flash_image=work / "flash.img", heap=UNIX_HEAP,
                                          rate=SPEED, romfs=romfs, log=work / "stderr.log")
        assert self.board.pty_path is not None
        return self.board.pty_path

    def _serve(self, runtime: str) -> str:
        cmd = [sys.executable, "-m", "sim.cli", "serve", "--keys", str(self.key_dir), "--installed",
               "--quiet", "--speed", str(SPEED), "--runtime", runtime, "--serial", "LCI7-HIL0001"]
        self.process = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        assert self.process.stdout is not None
        line = b""
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.process.stdout], [], [], 1.0)
            if ready:
                line = self.process.stdout.readline()
                if line.startswith(b"pty: "):
                    return line.split()[1].decode()
                if not line:
                    break
        err = self.process.stderr.read().decode() if self.process.stderr else ""
        self.stop()
        raise TargetError(f"lci-sim serve did not start: {line!r} {err}")

    def stop(self) -> None:
        if self.board is not None:
            self.board.close()
            self.board = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
            self.process = None

    # -- talking to it
    def client(self) -> DeviceClient:
        return DeviceClient.open(self.url, timeout=0.5, retries=6)

    def mint(self, client: DeviceClient, action: str, args: dict, *, ttl: int = 900, **kw) -> bytes:
        now = client.status()["now"]
        if action in token_format.SESSION_BOUND:
            kw.setdefault("session_nonce", client.session_nonce)
        if action in tokens.DIRECTIVES and "seq" not in args:  # the directive order (SPEC 9.4)
            args = {**args, "seq": self.directives.seq(self.serial, action)}
        return tokens.mint(self.root, self.serial, action, args, now=now, ttl=ttl, **kw)

    def apply(self, client: DeviceClient, action: str, args: dict, **kw) -> dict:
        return client.submit_token(self.mint(client, action, args, **kw))

    def wait_for(self, client: DeviceClient, predicate, *, virtual_s: int, what: str) -> dict:
        """Poll STATUS until `predicate(status)`; give up after `virtual_s` of device time."""
        started = client.status()["now"]
        while True:
            status = client.status()
            if predicate(status):
                return status
            if status["now"] - started > virtual_s:
                raise AssertionError(f"{what}: not within {virtual_s} s of device time; last {status}")
            # a live handset's clock runs by itself: wait on the line for its next event
            client.link.wait_event(0.1)

    def new_service_interval(self, client: DeviceClient) -> None:
        """A service visit: open and close a session (resets the one-override allowance)."""
        if client.status()["compliance"] != "service":
            self.apply(client, "service", {})
        self.apply(client, "service_close", {"next_service": client.status()["now"] + 60 * 86400, "downloaded": 0})

    def known_state(self, client: DeviceClient) -> dict:
        """Installed, no recall or lockout causes, ignition off, out of any session."""
        status = client.status()
        if "bench" in self.caps and status["session"] != "ignition_off":
            client.bench(messages.BENCH_IGNITION, 0)
            # past the free-restart window after a stall, so the next start needs a test
            off_at = client.status()["now"]
            self.wait_for(client, lambda s: s["now"] > off_at + FREE_RESTART_S,
                          virtual_s=FREE_RESTART_S + 60, what="free-restart window")
        if status["compliance"] == "removed":
            self.apply(client, "work_order", {"order": "installation", "id": "WO-HIL", "vehicle": "BENCH"})
        if "unpaid_balance" in client.status()["causes"]:
            self.apply(client, "clear", {"cause": "unpaid_balance"})
        status = client.status()
        if status["compliance"] != "normal" or status["causes"] or status["violations"]:
            if status["compliance"] != "service":
                self.apply(client, "service", {})
            now = client.status()["now"]
            self.apply(client, "service_close", {"next_service": now + 60 * 86400, "downloaded": 0})
        status = client.status()
        assert status["compliance"] == "normal", status
        return status


def from_option(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def env_keys() -> Path | None:
    value = os.environ.get("LCI_HIL_KEYS")
    return Path(value) if value else None
