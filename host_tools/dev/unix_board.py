"""The firmware bundle on MicroPython's unix port, behind a pty and/or a TCP port.

    python -m host_tools.dev.unix_board [--flash IMG | --state DIR] [--heap 256K] [--rate 1]
                                    [--romfs] [--tcp PORT] [--bundle build/mpy]

This owns one thing: a unix "board" a serial tool can reach. The bundle is the one
`make firmware` compiled, laid out as `make flash` sends it to a unix board
(host_tools/dev/flash.plan): as files on MICROPYPATH, or (--romfs) as a ROMFS image built by
mpremote's romfs writer and mounted with vfs.VfsRom at /rom, as rp2 and esp32 mount theirs.
The process is `micropython -X heapsize=N` running firmware.main; its stdin/stdout are
pipes this module bridges to the pty master and to the one TCP client (a new connection
replaces the last, as on a USB port). The bridge outlives the process: power_cut() is a
SIGKILL and a restart on the same storage, and a host's open pty or socket stays connected
to the new process, as a USB-serial cable stays plugged in.

The state lives in a littlefs2 image (firmware/boards/filedisk.py) or a host folder; the
clock runs `rate` times fast (LCI_CLOCK_RATE, read by firmware/boards/unix.py) and is kept
through power cuts like a battery-backed RTC (LCI_RTC, a file in the board's work folder).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import tty
from pathlib import Path

from host_tools.dev import flash

REPO = Path(__file__).resolve().parents[2]
DEFAULT_HEAP = 256 * 1024
# mounts the ROMFS image as rp2/esp32 do at boot (/rom, /rom/lib on sys.path), then runs the
# loop; the image is read into the heap (the unix port has no flash to map it from), so
# heap figures subtract its size
ROM_BOOT = (
    "import sys, vfs\n"
    "f = open({image!r}, 'rb')\n"
    "vfs.mount(vfs.VfsRom(f.read()), '/rom')\n"
    "f.close()\n"
    "del f\n"
    "sys.path[:0] = ['/rom', '/rom/lib']\n"
    "import firmware.main\n"
    "firmware.main.main()\n"
)


class BoardError(Exception):
    pass


def micropython() -> str:
    local = Path(sys.executable).parent / "micropython"
    found = str(local) if local.exists() else shutil.which("micropython")
    if not found:
        raise BoardError("the MicroPython unix port is not installed (run `make setup`)")
    return found


def parse_size(text: str) -> int:
    """`256K`, `1M` or a byte count, as `micropython -X heapsize=` takes it."""
    text = text.strip().upper()
    scale = {"K": 1024, "M": 1024 * 1024}.get(text[-1:], 1)
    try:
        value = int(text[:-1] if scale > 1 else text) * scale
    except ValueError:
        raise BoardError(f"not a size: {text!r} (e.g. 131072, 128K, 1M)") from None
    if value <= 0:
        raise BoardError(f"the heap must be > 0 bytes: {text!r}")
    return value


def stage(bundle: Path, dest: Path, board: str = "unix") -> Path:
    """Lay the board's bundle out under dest/lib as `make flash` would; return dest."""
    try:
        return flash.stage(bundle, dest, board)
    except flash.FlashError as exc:
        raise BoardError(str(exc)) from None


def romfs_image(staged: Path, out: Path) -> Path:
    """The staged tree as a ROMFS image, by mpremote's writer (what `romfs deploy` sends)."""
    import contextlib
    import io

    from mpremote.romfs import make_romfs

    with contextlib.redirect_stdout(io.StringIO()):  # the writer prints the tree it packs
        out.write_bytes(make_romfs(str(staged), mpy_cross=False))
    return out


class UnixBoard:
    def __init__(
        self,
        bundle: Path,
        *,
        flash_image: Path | None = None,
        state: Path | None = None,
        heap: int = DEFAULT_HEAP,
        rate: int = 1,
        romfs: bool = False,
        pty: bool = True,
        tcp_port: int | None = None,
        log: Path | None = None,
    ):
        self.heap = heap
        self.rate = rate
        self.work = Path(tempfile.mkdtemp(prefix="lci-unix-"))
        try:
            self.staged = stage(bundle, self.work / "rom")
            self.image = romfs_image(self.staged, self.work / "bundle.romfs") if romfs else None
        except BaseException:
            shutil.rmtree(self.work, ignore_errors=True)
            raise
        self.flash_image = flash_image
        self.state = state
        self.log_path = log or self.work / "stderr.log"
        self.process: subprocess.Popen | None = None
        self.boots = 0
        self._lock = threading.Lock()
        self._master = self._slave = None
        self.pty_path: str | None = None
        self._listener: socket.socket | None = None
        self._client: socket.socket | None = None
        self.tcp_url: str | None = None
        self._wake_r, self._wake_w = os.pipe()
        self._running = True
        if pty:
            self._master, self._slave = os.openpty()
            tty.setraw(self._slave)  # no echo, no line discipline before a tool opens it
            self.pty_path = os.ttyname(self._slave)
        if tcp_port is not None:
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(("127.0.0.1", tcp_port))
            listener.listen(1)
            self._listener = listener
            self.tcp_url = f"socket://127.0.0.1:{listener.getsockname()[1]}"
        self._start()
        self._thread = threading.Thread(target=self._bridge, daemon=True, name="lci-unix-bridge")
        self._thread.start()

    # -- the process -------------------------------------------------------------------------------
    @property
    def heapsize(self) -> int:
        """-X heapsize: the firmware's heap, plus the ROMFS image (flash on a board, RAM here)."""
        return self.heap + (self.image.stat().st_size if self.image is not None else 0)

    def command(self) -> list[str]:
        cmd = [micropython(), "-X", f"heapsize={self.heapsize}"]
        if self.image is not None:
            return [*cmd, "-c", ROM_BOOT.format(image=str(self.image))]
        return [*cmd, "-m", "firmware.main"]

    def environment(self) -> dict:
        env = dict(os.environ)
        env["MICROPYPATH"] = "" if self.image is not None else str(self.staged / "lib")
        env["LCI_CLOCK_RATE"] = str(self.rate)
        env["LCI_RTC"] = str(self.work / "rtc")  # a battery-backed clock: it runs on through a cut
        env.pop("LCI_FLASH", None)
        env.pop("LCI_STATE", None)
        if self.flash_image is not None:
            env["LCI_FLASH"] = str(self.flash_image)
        elif self.state is not None:
            env["LCI_STATE"] = str(self.state)
        return env

    def _start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                env=self.environment(), cwd=self.work, bufsize=0,
            )
        self.boots += 1
        os.write(self._wake_w, b"s")

    def power_cut(self) -> None:
        """SIGKILL the running firmware wherever it is, then boot it again on the same storage."""
        with self._lock:
            self._kill()
            self._start()

    def _kill(self) -> None:
        """SIGKILL the process. Its pipes stay open: the bridge closes them when it moves on to the
        next process (closed here, their descriptors could be given to the next process's pipes
        while the bridge is about to read or write the old ones, and it would block on them)."""
        process = self.process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait()

    @staticmethod
    def _close_pipes(process: subprocess.Popen | None) -> None:
        if process is not None:
            for pipe in (process.stdin, process.stdout):
                with contextlib.suppress(OSError):
                    if pipe is not None:
                        pipe.close()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stderr_tail(self, lines: int = 8) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join([line for line in text.splitlines() if not line.startswith("[")][-lines:])

    # -- the bridge ----------------------------------------------------------------------------------
    def _to_device(self, data: bytes) -> None:
        process = self.process
        if process is None or process.stdin is None:
            return
        with contextlib.suppress(OSError, ValueError):
            process.stdin.write(data)

    def _to_host(self, data: bytes) -> None:
        if self._client is not None:
            try:
                self._client.sendall(data)
            except OSError:
                self._drop_client()
            return
        if self._master is not None:
            view = memoryview(data)
            while view:
                try:
                    view = view[os.write(self._master, view):]
                except OSError:
                    return  # no reader: the bytes are lost, as on an unplugged port

    def _drop_client(self) -> None:
        if self._client is not None:
            with contextlib.suppress(OSError):
                self._client.close()
            self._client = None

    def _bridge(self) -> None:
        """The one thread that reads and writes the process's pipes, and closes them."""
        served = None  # the process whose pipes this thread last used
        while self._running:
            with self._lock:
                process = self.process
            if process is not served:
                self._close_pipes(served)  # a power cut's victim: nothing more comes from it
                served = process
            out = process.stdout if process is not None and process.stdout and not process.stdout.closed else None
            readers = [r for r in (self._master, self._listener, self._client, out) if r is not None]
            try:
                ready, _, _ = select.select([*readers, self._wake_r], [], [], 1.0)
            except (OSError, ValueError):
                continue  # a pipe that ended under us: look again
            for item in ready:
                if item == self._wake_r:
                    os.read(self._wake_r, 64)
                elif item is self._listener:
                    conn, _ = self._listener.accept()
                    self._drop_client()
                    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    self._client = conn
                elif item is self._client:
                    try:
                        chunk = self._client.recv(4096)
                    except OSError:
                        chunk = b""
                    if chunk:
                        self._to_device(chunk)
                    else:
                        self._drop_client()
                elif item == self._master:
                    try:
                        chunk = os.read(self._master, 4096)
                    except OSError:
                        continue
                    self._to_device(chunk)
                elif item is out:
                    try:
                        chunk = os.read(out.fileno(), 65536)
                    except (OSError, ValueError):
                        chunk = b""
                    if chunk:
                        self._to_host(chunk)
                    else:
                        with self._lock:  # the process ended (a cut, or a crash)
                            if self.process is process:
                                with contextlib.suppress(OSError):
                                    out.close()

    def endpoints(self) -> list[str]:
        return [url for url in (self.pty_path, self.tcp_url) if url]

    def close(self) -> None:
        self._running = False
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")
        self._thread.join(timeout=5)
        with self._lock:
            self._kill()
            self._close_pipes(self.process)
        self._drop_client()
        if self._listener is not None:
            self._listener.close()
        for fd in (self._master, self._slave, self._wake_r, self._wake_w):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        shutil.rmtree(self.work, ignore_errors=True)

    def __enter__(self) -> UnixBoard:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, default=REPO / "build" / "mpy")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--flash", type=Path, help="littlefs2 image file for the state (created if missing)")
    where.add_argument("--state", type=Path, help="host folder for the state files")
    parser.add_argument("--heap", default="256K", help="the firmware's heap (-X heapsize, plus the "
                        "image's size with --romfs; default 256K)")
    parser.add_argument("--rate", type=int, default=1, help="device seconds per wall second")
    parser.add_argument("--romfs", action="store_true", help="mount the bundle as a ROMFS image")
    parser.add_argument("--tcp", type=int, help="also serve on this TCP port (0: any free port)")
    args = parser.parse_args(argv)
    try:
        heap = parse_size(args.heap)
        if args.rate < 1:
            raise BoardError("--rate must be >= 1")
        board = UnixBoard(args.bundle, flash_image=args.flash, state=args.state or Path("lci-state"),
                          heap=heap, rate=args.rate, romfs=args.romfs, tcp_port=args.tcp)
    except (BoardError, OSError) as exc:
        print(f"unix_board: {exc}", file=sys.stderr)
        return 1
    for url in board.endpoints():
        print(("pty: " if url.startswith("/") else "tcp: ") + url, flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    try:
        while not done.wait(1.0):
            pass
    except KeyboardInterrupt:
        pass
    board.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
