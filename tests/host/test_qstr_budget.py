"""The core's interned names stay within the qstr pool a board holds after boot.

MicroPython interns every name and string constant of a module it loads, in pools that
never shrink and double in size: the unix port's sixth pool holds names up to 1,260 and the
seventh is a ~16 KB block that, opened in the middle of a token check on a fragmented heap,
raised the HIL story's heap need from 168 KB to 204 KB. This test loads every module the
unix board can ever import (the lazy token code, calibration, the log stream included) from
the ROMFS image `make flash` builds, on the real VM, and checks the count, with room for
the strings the device interns as it runs. Adding code costs names: keep the count below
the budget (docs/board.md, "Interned names are a budget").
"""

from __future__ import annotations

import re
from pathlib import Path

from host_tools.dev import mpybuild, unix_board
from host_tools.dev.mpy_unix import run_source

SIXTH_POOL_END = 1260  # the unix port's dynamic qstr pools: 6 of them hold 1,260 names
RUN_TIME_ROOM = 15  # names interned as the device runs (single characters, attribute names)
OTHER_BOARDS = ("firmware/boards/rp2", "firmware/boards/esp32")


def _modules(lib: Path) -> list[str]:
    names = []
    for path in sorted(lib.rglob("*.mpy")):
        rel = path.relative_to(lib).with_suffix("").as_posix()
        if rel.endswith("__init__") or rel.startswith(OTHER_BOARDS):
            continue
        names.append(rel.replace("/", "."))
    return names


def test_every_module_of_the_unix_board_fits_in_the_sixth_qstr_pool(tmp_path):
    report = mpybuild.build(tmp_path / "mpy")
    assert not report["failures"], report["failures"]
    staged = unix_board.stage(tmp_path / "mpy", tmp_path / "board")
    image = unix_board.romfs_image(staged, tmp_path / "bundle.romfs")
    modules = _modules(staged / "lib")
    assert "firmware.ed25519" in modules and "firmware.calibration" in modules
    source = f"""
import sys, vfs, micropython
_f = open({str(image)!r}, "rb")
vfs.mount(vfs.VfsRom(_f.read()), "/rom")
_f.close()
sys.path[:0] = ["/rom/lib"]
for _name in {modules!r}:
    __import__(_name)
micropython.qstr_info()
"""
    result = run_source(source, heap_bytes=2 * 1024 * 1024, path=[])
    assert result.ok, result.stderr
    found = re.search(r"n_pool=(\d+), n_qstr=(\d+)", result.stdout)
    assert found, result.stdout
    pools, names = int(found.group(1)), int(found.group(2))
    assert names <= SIXTH_POOL_END - RUN_TIME_ROOM, (
        f"{names} interned names with every module loaded (budget {SIXTH_POOL_END - RUN_TIME_ROOM}): "
        "the seventh qstr pool (~16 KB in one block) would open while the device runs")
    assert pools == 6
