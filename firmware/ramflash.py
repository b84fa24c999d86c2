"""A flash file store held in RAM that can lose power at any byte: the storage double.

RamFlash implements firmware.hal.Storage for the unit tests and the simulator. It owns one
thing: modelling what a power cut leaves on flash, at byte granularity.

- `write` replaces a file: the old contents are gone as soon as the write starts (worst
  case of a real file system), then the new bytes land one by one;
- `append` adds bytes one by one at the end;
- `rename` and `remove` are atomic (the HAL promises an atomic rename): each is one unit;
- `cut_after(n)` arms a cut: the next `n` units (a byte written, or one rename/remove) are
  done, the unit after that is not, and every operation from then on raises PowerCut until
  `power_on()` (the reboot). A write or append the cut lands in leaves its first bytes;
  with `fill` set (e.g. 0xFF, erased flash) the torn rest of that write is filled with
  that byte instead of being left out.
- `units` counts every unit done, so a test can size a scenario and then cut it at every
  offset; `clone()` copies the files for the next run.

Reading never consumes units and works while the power is cut (tests inspect the wreck).
"""

from firmware import hal


class PowerCut(Exception):
    """The power went: the operation did not (completely) happen."""


class RamFlash(hal.Storage):
    def __init__(self, files=None, fill=None):
        self.files = {}
        if files:
            for name in files:
                self.files[name] = bytearray(files[name])
        self.fill = fill
        self.units = 0
        self.budget = -1  # units left before the cut; -1 = no cut armed
        self.dead = False

    # -- power control ------------------------------------------------------------------
    def cut_after(self, n_units):
        """Let `n_units` more units happen, then cut the power."""
        if n_units < 0:
            raise ValueError("cut_after needs n >= 0")
        self.budget = n_units
        self.dead = False

    def power_on(self):
        """The reboot: the cut is over, the files are what the cut left."""
        self.budget = -1
        self.dead = False

    def clone(self):
        """An independent copy of the files (no cut armed, unit counter at 0)."""
        return RamFlash(self.files, self.fill)

    def _take(self, wanted):
        """How many of `wanted` units may happen now (the cut lands if fewer)."""
        if self.dead:
            raise PowerCut("power is off")
        if self.budget < 0:
            self.units += wanted
            return wanted
        got = wanted if wanted <= self.budget else self.budget
        self.budget -= got
        self.units += got
        if got < wanted:
            self.dead = True
        return got

    def _land(self, buf, data, got):
        """Put the `got` first bytes of `data` (and the fill, if torn) at the end of buf."""
        if got == len(data):
            buf.extend(data)
            return
        buf.extend(data[:got])
        if self.fill is not None:
            buf.extend(bytes([self.fill]) * (len(data) - got))
        raise PowerCut("power cut after %d of %d bytes" % (got, len(data)))

    # -- hal.Storage ----------------------------------------------------------------------
    def read(self, name):
        buf = self.files.get(name)
        return None if buf is None else bytes(buf)

    def read_at(self, name, offset, size):
        buf = self.files.get(name)
        return None if buf is None else bytes(buf[offset : offset + size])

    def write(self, name, data):
        if self.dead:
            raise PowerCut("power is off")
        buf = bytearray()
        self.files[name] = buf  # the old contents are gone from the first moment
        if not data:
            return
        self._land(buf, data, self._take(len(data)))

    def append(self, name, data):
        if self.dead:
            raise PowerCut("power is off")
        buf = self.files.get(name)
        if buf is None:
            buf = bytearray()
            self.files[name] = buf
        if not data:
            return
        self._land(buf, data, self._take(len(data)))

    def rename(self, old, new):
        if old not in self.files:
            raise OSError("no such file: %s" % old)
        if not self._take(1):
            raise PowerCut("power cut before rename")
        self.files[new] = self.files.pop(old)

    def remove(self, name):
        if name not in self.files:
            raise OSError("no such file: %s" % name)
        if not self._take(1):
            raise PowerCut("power cut before remove")
        del self.files[name]

    def size(self, name):
        buf = self.files.get(name)
        return -1 if buf is None else len(buf)

    def names(self):
        return sorted(self.files)

    def used_bytes(self):
        total = 0
        for name in self.files:
            total += len(self.files[name])
        return total
