"""Type-check the MicroPython core (firmware/, protocol/) against MicroPython's own stubs.

mypy runs with micropython-stdlib-stubs as its typeshed and micropython-rp2-stubs on its
path, so a CPython-only module or API used in the core (dataclasses, bytes.fromhex,
hmac, ...) is an error here even though CPython would run it. A CPython-only fast path
must be guarded (try/except ImportError) and marked `# type: ignore[import-not-found]`.

    python -m host_tools.dev.corecheck [paths...]
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

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


def main(argv: list[str] | None = None) -> int:
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
