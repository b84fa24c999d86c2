"""Runs the dual-runtime test files of firmware/ and protocol/ under real MicroPython.

A dual-runtime test file is a `test_*.py` in tests/protocol/ or tests/firmware/ that does
not import pytest or hypothesis: plain functions named test_* with plain asserts. CPython's
pytest collects them as usual; this runner runs each file once more in a fresh WASI
MicroPython VM (repository mounted read-only at /repo) and reports per function.
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass
from pathlib import Path

from host_tools.mpy_wasi import run_source

REPO = Path(__file__).resolve().parents[2]
DUAL_DIRS = ("tests/protocol", "tests/firmware")
GUEST = (Path(__file__).parent / "guest.py").read_text()
HOST_ONLY_IMPORTS = {"pytest", "hypothesis"}


@dataclass
class Outcome:
    ok: bool
    trace: str


def list_test_functions(path: Path) -> list[str] | None:
    """Names of test_* functions in a dual-runtime file, or None if the file is CPython-only."""
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name.split(".")[0] for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module.split(".")[0]]
        if HOST_ONLY_IMPORTS.intersection(names):
            return None
    return [
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")
    ]


def dual_files() -> list[Path]:
    files = []
    for folder in DUAL_DIRS:
        for path in sorted((REPO / folder).glob("test_*.py")):
            if list_test_functions(path):
                files.append(path)
    return files


def run_file(path: Path) -> dict[str, Outcome]:
    """Run every test function of one file in a fresh VM; a VM crash fails the rest."""
    names = list_test_functions(path) or []
    guest_dir = "/repo/" + path.parent.relative_to(REPO).as_posix()
    source = (
        f"MODULE_DIR = {guest_dir!r}\nMODULE_NAME = {path.stem!r}\nTEST_NAMES = {names!r}\n"
        + GUEST
    )
    result = run_source(source, mounts={"/repo": REPO})
    outcomes: dict[str, Outcome] = {}
    for line in result.stdout.splitlines():
        if line.startswith("@@RESULT "):
            record = json.loads(line[len("@@RESULT ") :])
            outcomes[record["name"]] = Outcome(record["ok"], record.get("trace", ""))
    if "@@DONE" not in result.stdout:
        why = f"MicroPython exited with {result.exit_code} before finishing {path.name}:\n"
        why += result.stderr or result.stdout[-2000:]
        for name in names:
            outcomes.setdefault(name, Outcome(False, why))
    return outcomes
