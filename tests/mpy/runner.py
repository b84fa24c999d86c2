"""Runs the dual-runtime test files of firmware/ and protocol/ under real MicroPython.

A dual-runtime test file is a `test_*.py` of tests/protocol/ or tests/firmware/ declared
`dual` in tests/mpy/runtimes.toml (host_tools/dev/testfiles.py; the core check fails on a
file declared neither way): plain functions named test_* with plain asserts. CPython's
pytest collects them as usual; this runner runs each file once more in its own process of
MicroPython's unix port (`micropython -X heapsize=HEAP`, the real GC), and reports per
function. The core comes from the .mpy bundle `make firmware` builds (compiled once per
session into a temporary folder), the tests' own helpers from the repository's sources.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from host_tools.dev import flash, mpybuild, testfiles, unix_board

REPO = Path(__file__).resolve().parents[2]
GUEST = (Path(__file__).parent / "guest.py").read_text()
# a board's budget on the 64-bit port, with room for compiling the test file and its
# helpers from source (a board never compiles: it gets .mpy)
HEAP = 512 * 1024
TIMEOUT_S = 300
_BUNDLE: list[Path] = []


@dataclass
class Outcome:
    ok: bool
    trace: str


def list_test_functions(path: Path) -> list[str]:
    """Names of the test_* functions of a test file."""
    tree = ast.parse(path.read_text(), str(path))
    return [
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")
    ]


def dual_files() -> list[Path]:
    """The test files declared dual in tests/mpy/runtimes.toml."""
    return testfiles.dual_files(REPO)


def bundle_lib() -> Path:
    """The core as .mpy, laid out as `make flash` sends it to the unix board, plus the core's
    host-only modules the tests use (signing tokens), built once."""
    if not _BUNDLE:
        work = Path(tempfile.mkdtemp(prefix="lci-mpy-tests-"))
        report = mpybuild.build(work / "mpy")
        if report["failures"]:
            raise RuntimeError("mpy-cross failed: " + "; ".join(report["failures"]))
        lib = unix_board.stage(work / "mpy", work / "board") / "lib"
        for name in flash.HOST_ONLY:
            shutil.copyfile(work / "mpy" / f"{name}.mpy", lib / f"{name}.mpy")
        _BUNDLE.append(lib)
    return _BUNDLE[0]


def run_file(path: Path, heap: int = HEAP) -> dict[str, Outcome]:
    """Run every test function of one file in a fresh VM; a VM crash fails the rest."""
    names = list_test_functions(path)
    source = f"MODULE_NAME = {path.stem!r}\nTEST_NAMES = {names!r}\n" + GUEST
    env = dict(os.environ, MICROPYPATH=":".join([str(bundle_lib()), str(REPO), str(path.parent)]))
    try:
        result = subprocess.run([unix_board.micropython(), "-X", f"heapsize={heap}", "-c", source],
                                cwd=bundle_lib(), env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
        stdout, stderr, code = result.stdout, result.stderr, result.returncode
    except subprocess.TimeoutExpired as exc:
        stdout = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        stderr, code = f"timed out after {TIMEOUT_S} s", -1
    outcomes: dict[str, Outcome] = {}
    for line in stdout.splitlines():
        if line.startswith("@@RESULT "):
            record = json.loads(line[len("@@RESULT ") :])
            outcomes[record["name"]] = Outcome(record["ok"], record.get("trace", ""))
    if "@@DONE" not in stdout:
        why = f"MicroPython exited with {code} before finishing {path.name}:\n"
        why += stderr or stdout[-2000:]
        for name in names:
            outcomes.setdefault(name, Outcome(False, why))
    return outcomes
