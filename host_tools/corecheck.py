"""Type-check the MicroPython core (firmware/, protocol/) against MicroPython's own stubs.

mypy runs with micropython-stdlib-stubs as its typeshed and micropython-rp2-stubs on its
path, so a CPython-only module or API used in the core (dataclasses, bytes.fromhex,
hmac, ...) is an error here even though CPython would run it. A CPython-only fast path
must be guarded (try/except ImportError) and marked `# type: ignore[import-not-found]`.

It also fails on a state compared by name outside the transition table and its engine
(`state_name_comparisons`): the rest of the core asks a machine for its flags, its rows
and its refusals (firmware/transitions_table.py), never `state == "lockout"`.

    python -m host_tools.corecheck [paths...]
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CORE = ["firmware", "protocol"]


def _prepare(build: Path) -> tuple[Path, Path]:
    site = Path(sysconfig.get_paths()["purelib"])
    stdlib = site / "stdlib"
    if not (stdlib / "VERSIONS").is_file():
        sys.exit("corecheck: micropython-stdlib-stubs is not installed (run `make setup`)")
    typeshed = build / "typeshed"
    stubs = build / "mpstubs"
    for folder in (typeshed, stubs):
        folder.mkdir(parents=True, exist_ok=True)
    for name, target in (("stdlib", stdlib), ("stubs", site / "stubs")):
        link = typeshed / name
        if not link.exists():
            link.symlink_to(target, target_is_directory=True)
    record = next(site.glob("micropython_rp2_stubs-*.dist-info")) / "RECORD"
    for line in record.read_text().splitlines():
        name = line.split(",", 1)[0]
        top = name.split("/", 1)[0]
        if (name.endswith(".pyi") and "/" not in name) or top in ("rp2",):
            target = stubs / top
            if not target.exists():
                target.symlink_to(site / top)
    return typeshed, stubs


def _config(stubs: Path) -> Path:
    """A mypy config that ignores errors inside the MicroPython stubs themselves (some of
    them do not type-check): our code is checked against them, they are not checked."""
    modules = sorted(p.name.removesuffix(".pyi") for p in stubs.iterdir())
    path = stubs.parent / "mypy.ini"
    path.write_text("[mypy]\n\n[mypy-" + ",".join(f"{m},{m}.*" for m in modules) + "]\nignore_errors = True\n")
    return path


# the table and the engine that runs it are where states are named
STATE_ENGINE = ("firmware/transitions_table.py", "firmware/machine.py")


def _state_names() -> set[str]:
    sys.path.insert(0, str(REPO))
    from protocol.messages import COMPLIANCE_STATES, SESSION_STATES

    return set(COMPLIANCE_STATES) | set(SESSION_STATES)


def _named_states(node: ast.expr, names: set[str]) -> list[str]:
    """The state names a comparison operand spells out: a string, or a tuple/list/set of them."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in names:
        return [node.value]
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return [n for item in node.elts for n in _named_states(item, names)]
    return []


def state_name_comparisons(root: Path = REPO) -> list[str]:
    """`path:line: state` for every comparison (==, !=, in, not in) of a state name, or of
    a module constant holding state names, in firmware/ outside the table and its engine."""
    names = _state_names()
    found = []
    for path in sorted((root / "firmware").rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        if rel in STATE_ENGINE:
            continue
        tree = ast.parse(path.read_text(), rel)
        constants = {}
        for node in tree.body:  # NAME = ("lockout", ...): a constant of state names
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                spelled = _named_states(node.value, names)
                if spelled and not isinstance(node.value, ast.Constant):
                    constants[node.targets[0].id] = spelled
        for node in ast.walk(tree):
            if not isinstance(node, ast.Compare):
                continue
            for operand in (node.left, *node.comparators):
                spelled = _named_states(operand, names)
                if isinstance(operand, ast.Name) and operand.id in constants:
                    spelled = constants[operand.id]
                for name in spelled:
                    found.append(f"{rel}:{node.lineno}: state {name!r} compared by name")
    return found


def main(argv: list[str] | None = None) -> int:
    compared = state_name_comparisons()
    for line in compared:
        print(line, file=sys.stderr)
    if compared:
        print("corecheck: ask the machine (flags, rows, refusals) instead of comparing state names",
              file=sys.stderr)
        return 1
    paths = (argv if argv is not None else sys.argv[1:]) or CORE
    typeshed, stubs = _prepare(REPO / "build" / "corecheck")
    env = dict(os.environ, MYPYPATH=str(stubs))
    cmd = [
        sys.executable,
        "-m",
        "mypy",
        "--custom-typeshed-dir",
        str(typeshed),
        "--no-site-packages",
        "--python-version",
        "3.11",
        "--check-untyped-defs",
        "--config-file",
        str(_config(stubs)),
        "--pretty",
        "--cache-dir",
        str(REPO / "build" / "corecheck" / "cache"),
        *paths,
    ]
    result = subprocess.run(cmd, cwd=REPO, env=env)
    if result.returncode == 0:
        print("corecheck: firmware/ and protocol/ type-check against the MicroPython stubs")
    return result.returncode


if __name__ == "__main__":
    raise SystemExit(main())
