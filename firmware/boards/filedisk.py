"""A block device over a file: the flash chip of the unix board, for littlefs2 (vfs.VfsLfs2).

FileDisk implements MicroPython's extended block protocol (readblocks / writeblocks with an
offset, ioctl for count, size and erase) over one image file, so the unix port runs the
file system a Pico runs, on a file a host tool can copy, inspect or cut short. Every block
write goes to the OS at once (no buffering of our own): a SIGKILL of the process lands
between two writes, as a power cut lands between two flash programs.

mount(path, blocks) mounts the image at /flash (formatting a new or blank image first) and
returns the mount point.
"""

try:
    from micropython import const
except ImportError:  # CPython: the value itself
    const = int  # type: ignore[misc, assignment]

import vfs

BLOCK = 4096
_IOCTL_COUNT = const(4)
_IOCTL_SIZE = const(5)
_IOCTL_ERASE = const(6)
MOUNT = "/flash"


class FileDisk:
    def __init__(self, path, blocks=256):
        try:
            self.f = open(path, "r+b")
        except OSError:
            self.f = open(path, "w+b")
            blank = b"\xff" * BLOCK
            for _ in range(blocks):
                self.f.write(blank)
            self.f.flush()
        self.f.seek(0, 2)
        self.blocks = self.f.tell() // BLOCK

    def readblocks(self, block, buf, offset=0):
        self.f.seek(block * BLOCK + offset)
        self.f.readinto(buf)

    def writeblocks(self, block, buf, offset=0):
        self.f.seek(block * BLOCK + offset)
        self.f.write(buf)
        self.f.flush()

    def ioctl(self, op, arg):
        if op == _IOCTL_COUNT:
            return self.blocks
        if op == _IOCTL_SIZE:
            return BLOCK
        if op == _IOCTL_ERASE:
            return 0  # littlefs rewrites whole blocks: nothing to erase on a file
        return 0


def mount(path, blocks=256):
    """Mount the littlefs2 image at `path` on /flash (formatting it if it holds none)."""
    disk = FileDisk(path, blocks)
    try:
        vfs.mount(vfs.VfsLfs2(disk), MOUNT)  # type: ignore[abstract, arg-type]  # block protocol
    except OSError:
        vfs.VfsLfs2.mkfs(disk)  # type: ignore[arg-type]
        vfs.mount(vfs.VfsLfs2(disk), MOUNT)  # type: ignore[abstract, arg-type]
    return MOUNT

