"""The core check: the structure rules of the project, then the core's types.

Structure (each a function returning one line per problem):
- import_cycles: no import cycle among firmware/, protocol/, host_tools/, provider/ and
  sim/ (host_tools/dev/imports.py);
- state_name_comparisons: no state compared by name in firmware/ outside the transition
  table and its engine: the rest of the core asks a machine for its flags, its rows and its
  refusals (firmware/transitions_table.py), never `state == "lockout"`;
- host_imports_firmware: no runtime host code (host_tools/ but host_tools/dev/, provider/)
  imports firmware/: what it shares with the device is protocol/'s;
- test_file_runtimes: every test file of the core's test folders declared dual or
  cpython in tests/mpy/runtimes.toml, and no dual file importing pytest or hypothesis
  (host_tools/dev/testfiles.py).

Types: firmware/ and protocol/ type-check against MicroPython's own stubs. mypy runs with micropython-stdlib-stubs as its typeshed and micropython-rp2-stubs on its
path, so a CPython-only module or API used in the core (dataclasses, bytes.fromhex,
hmac, ...) is an error here even though CPython would run it. A CPython-only fast path
must be guarded (try/except ImportError) and marked `# type: ignore[import-not-found]`.

    python -m host_tools.dev.corecheck [--structure-only] [paths...]

The MicroPython subset the core is held to is docs/architecture.md, "The MicroPython subset".
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

from host_tools.dev import imports, testfiles

REPO = Path(__file__).resolve().parents[2]
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


def import_cycles(root: Path = REPO) -> list[str]:
    """One line per import cycle among the project's packages."""
    return ["import cycle: " + " <-> ".join(group) for group in imports.cycles(imports.module_graph(root=root))]


RUNTIME_HOST = ("host_tools", "provider")
DEV_TOOLS = "host_tools.dev"


def host_imports_firmware(root: Path = REPO) -> list[str]:
    """One line per import of firmware/ by runtime host code."""
    out = []
    for module, targets in sorted(imports.module_graph(root=root).items()):
        if module.split(".")[0] not in RUNTIME_HOST or module.startswith(DEV_TOOLS):
            continue
        for target in sorted(targets):
            if target.split(".")[0] == "firmware":
                out.append(f"{module} imports {target}: runtime host code shares protocol/ with the device, "
                           "not firmware/")
    return out


def test_file_runtimes(root: Path = REPO) -> list[str]:
    """One line per core test file that is undeclared, missing, or dual but impure."""
    return testfiles.problems(root)


STRUCTURE_CHECKS = (state_name_comparisons, import_cycles, host_imports_firmware, test_file_runtimes)


def structure_problems(root: Path = REPO) -> list[str]:
    return [line for check in STRUCTURE_CHECKS for line in check(root)]


def type_check(paths: list[str]) -> int:
    """mypy over `paths` against the MicroPython stubs; its exit status."""
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


def main(argv: list[str] | None = None) -> int:
    args = list(argv if argv is not None else sys.argv[1:])
    structure_only = "--structure-only" in args
    paths = [arg for arg in args if arg != "--structure-only"] or CORE
    problems = structure_problems(REPO)
    for line in problems:
        print(f"corecheck: {line}", file=sys.stderr)
    if not problems:
        print("corecheck: no state compared by name outside the table; no import cycles; no runtime "
              "host code imports firmware/; every core test file declares its runtimes")
    status = 1 if problems else 0
    if not structure_only:
        status = type_check(paths) or status
    return status


if __name__ == "__main__":
    raise SystemExit(main())
