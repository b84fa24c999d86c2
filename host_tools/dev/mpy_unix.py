"""Run a piece of MicroPython source on the real VM: MicroPython's unix port, in a child process.

    run_source(source, heap_bytes=..., path=[...]) -> GuestResult(exit_code, stdout, stderr)

This module owns one thing: a fresh `micropython -X heapsize=N -c SOURCE` with the given
folders on MICROPYPATH (the repository by default, so `import firmware.x` finds the
sources; a staged .mpy bundle first when the caller wants what a board runs), its exit
status, stdout and stderr. The VM collects garbage as on a board; `heap_bytes` is its
whole GC heap. Used by the benchmarks that time or weigh the core under MicroPython.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from host_tools.dev.unix_board import micropython

REPO = Path(__file__).resolve().parents[2]
DEFAULT_HEAP = 1024 * 1024


class MicroPythonError(RuntimeError):
    """The MicroPython VM could not run (not installed, timed out)."""


@dataclass(frozen=True)
class GuestResult:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


def run_source(
    source: str,
    *,
    heap_bytes: int = DEFAULT_HEAP,
    path: Sequence[str | Path] = (REPO,),
    timeout_s: float | None = 600.0,
) -> GuestResult:
    """Run `source` in a fresh unix-port VM with `path` on MICROPYPATH."""
    env = dict(os.environ, MICROPYPATH=":".join(str(p) for p in path))
    try:
        result = subprocess.run(
            [micropython(), "-X", f"heapsize={heap_bytes}", "-c", source],
            env=env, cwd=tempfile.gettempdir(), capture_output=True, timeout=timeout_s,
        )
    except subprocess.TimeoutExpired:
        raise MicroPythonError(f"MicroPython timed out after {timeout_s} s") from None
    return GuestResult(result.returncode, result.stdout.decode("utf-8", "replace"),
                       result.stderr.decode("utf-8", "replace"))
