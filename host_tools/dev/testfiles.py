"""The runtimes of the core's test files, as declared in tests/mpy/runtimes.toml.

    declared(root) -> {"tests/firmware/test_x.py": "dual" | "cpython", ...}
    dual_files(root) -> [Path, ...]      what tests/mpy/test_micropython.py runs under MicroPython
    problems(root) -> [str, ...]         one line per undeclared, missing or impure file

A dual file runs under real MicroPython too, so it may not import pytest or hypothesis; a
file of the core's test folders that is not declared would silently run on one runtime
only, so it is an error.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DECLARATIONS = "tests/mpy/runtimes.toml"
CORE_TEST_DIRS = ("tests/firmware", "tests/protocol")
RUNTIMES = ("dual", "cpython")
HOST_ONLY_IMPORTS = ("pytest", "hypothesis")


def declared(root: Path = REPO) -> dict[str, str]:
    with open(root / DECLARATIONS, "rb") as handle:
        return dict(tomllib.load(handle).get("files", {}))


def dual_files(root: Path = REPO) -> list[Path]:
    return [root / name for name, runtime in sorted(declared(root).items()) if runtime == "dual"]


def host_only_imports(path: Path) -> list[str]:
    """The CPython-only test libraries a file imports (anywhere in it)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name.split(".")[0] for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [node.module.split(".")[0]]
        found += [name for name in names if name in HOST_ONLY_IMPORTS]
    return sorted(set(found))


def problems(root: Path = REPO) -> list[str]:
    table = declared(root)
    out = []
    present = sorted(
        path.relative_to(root).as_posix()
        for folder in CORE_TEST_DIRS
        for path in (root / folder).glob("test_*.py")
    )
    for name in present:
        if name not in table:
            out.append(f"{name}: not declared dual or cpython in {DECLARATIONS}")
    for name, runtime in sorted(table.items()):
        path = root / name
        if runtime not in RUNTIMES:
            out.append(f"{name}: runtime {runtime!r} in {DECLARATIONS} is not one of {', '.join(RUNTIMES)}")
        elif not path.is_file():
            out.append(f"{name}: declared in {DECLARATIONS} but there is no such file")
        elif runtime == "dual" and host_only_imports(path):
            out.append(f"{name}: declared dual but imports {', '.join(host_only_imports(path))} "
                       "(MicroPython has neither): declare it cpython or drop the import")
    return out
