"""Flash files and OS randomness, for every board that has a file system and os.urandom.

FolderStorage implements hal.Storage as named files in one folder: on a Pico or an ESP32
that is littlefs, whose rename is atomic (what firmware/persist.py's write-new-then-rename
relies on); on the unix port it is the host's file system. UrandomRandom is the board's
hardware RNG (or the host's) behind hal.Random.
"""

import os

from firmware import hal


class FolderStorage(hal.Storage):
    def __init__(self, folder):
        self.folder = folder
        try:
            os.mkdir(folder)
        except OSError:
            pass  # it exists

    def _path(self, name):
        return self.folder + "/" + name

    def read(self, name):
        try:
            with open(self._path(name), "rb") as f:
                return f.read()
        except OSError:
            return None

    def read_at(self, name, offset, size):
        try:
            with open(self._path(name), "rb") as f:
                f.seek(offset)
                return f.read(size)
        except OSError:
            return None

    def write(self, name, data):
        with open(self._path(name), "wb") as f:
            f.write(data)

    def append(self, name, data):
        with open(self._path(name), "ab") as f:
            f.write(data)

    def rename(self, old, new):
        os.rename(self._path(old), self._path(new))

    def remove(self, name):
        os.remove(self._path(name))

    def size(self, name):
        try:
            return os.stat(self._path(name))[6]
        except OSError:
            return -1

    def names(self):
        return sorted(os.listdir(self.folder))


class UrandomRandom(hal.Random):
    def bits(self, n):
        value = 0
        for byte in os.urandom((n + 7) // 8):
            value = (value << 8) | byte
        return value & ((1 << n) - 1)
