"""The simulated handset's flash kept in a folder on disk, so that killing the simulator is a
power pull.

`DiskFlash` is firmware/ramflash.RamFlash (the byte-granular flash model) with every change
mirrored into `folder` before the operation returns: a write replaces the file (truncated
first, as the model says the old contents are gone from the first moment), an append adds
its bytes at the end, rename is os.replace (atomic), remove unlinks. One file per flash file,
its name percent-encoded. A SIGKILL therefore leaves on disk exactly what the handset had
durably written; the next start on the same folder boots from it. (Nothing is fsynced: a
killed process loses nothing the kernel already has; a host power failure is not simulated.)

`arm_kill(N)` makes the kill land inside a flash operation, deterministically: N more
units (a byte written, one rename or remove) happen, the unit after that does not, the disk
is left as RamFlash tears it (the rest of a torn write filled with the erased byte), and the
process sends itself SIGKILL.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from urllib.parse import quote, unquote

from firmware.ramflash import PowerCut, RamFlash


class DiskFlash(RamFlash):
    def __init__(self, folder: str | Path, *, fill: int | None = 0xFF):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        files = {}
        for path in sorted(self.folder.iterdir()):
            if path.is_file() and not path.name.startswith("."):
                files[unquote(path.name)] = path.read_bytes()
        super().__init__(files, fill)
        self.restored = len(files)  # flash files found in the folder at start
        self._kill_left: int | None = None

    def arm_kill(self, n_units: int) -> None:
        """After `n_units` more units, SIGKILL this process inside the next one."""
        if n_units < 0:
            raise ValueError("arm_kill needs n >= 0")
        self._kill_left = n_units

    def _path(self, name: str) -> Path:
        return self.folder / quote(name, safe="")

    # -- the kill -----------------------------------------------------------------------------
    def _take(self, wanted):
        if self._kill_left is not None and not self.dead and self.budget < 0:
            if wanted > self._kill_left:
                self.budget = self._kill_left  # the model tears this operation here
                self._kill_left = -1
            else:
                self._kill_left -= wanted
        return super()._take(wanted)

    def _torn(self) -> None:
        if self._kill_left == -1:  # the armed kill landed: the disk holds the torn state
            os.kill(os.getpid(), signal.SIGKILL)

    # -- hal.Storage, mirrored -----------------------------------------------------------------
    def write(self, name, data):
        try:
            super().write(name, data)
        except PowerCut:
            if name in self.files:
                self._path(name).write_bytes(bytes(self.files[name]))
            self._torn()
            raise
        self._path(name).write_bytes(bytes(self.files[name]))

    def append(self, name, data):
        held = self.files.get(name)
        before = len(held) if held is not None else 0
        try:
            super().append(name, data)
        except PowerCut:
            self._mirror_tail(name, before)
            self._torn()
            raise
        self._mirror_tail(name, before)

    def _mirror_tail(self, name: str, before: int) -> None:
        buf = self.files.get(name)
        if buf is None:
            return
        path = self._path(name)
        if not path.exists() or path.stat().st_size != before:
            path.write_bytes(bytes(buf))  # out of step (never expected): write it whole
            return
        with path.open("ab") as f:
            f.write(bytes(buf[before:]))

    def rename(self, old, new):
        try:
            super().rename(old, new)
        except PowerCut:
            self._torn()
            raise
        os.replace(self._path(old), self._path(new))

    def remove(self, name):
        try:
            super().remove(name)
        except PowerCut:
            self._torn()
            raise
        self._path(name).unlink()

    def clone(self):
        """An in-memory copy (the folder stays this object's)."""
        return RamFlash(self.files, self.fill)
