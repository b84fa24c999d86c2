"""The core check's structure rules: every core test file declares its runtimes, dual files
stay plain, no import cycle, and no runtime host code imports firmware/. Each rule is broken on purpose in a copy of the project and
the check must go red with one line naming what broke."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from host_tools.dev import corecheck, imports, testfiles

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("firmware", "protocol", "host_tools", "provider", "sim")


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """The project's packages and the core's tests, copied (sources only)."""
    keep = shutil.ignore_patterns("__pycache__", "*.pyc", "node_modules")
    for folder in (*PACKAGES, "tests/firmware", "tests/protocol", "tests/mpy"):
        shutil.copytree(REPO / folder, tmp_path / folder, ignore=keep)
    shutil.copy(REPO / "tests" / "__init__.py", tmp_path / "tests" / "__init__.py")
    return tmp_path


def _check(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "host_tools.dev.corecheck", "--structure-only"],
                          cwd=root, capture_output=True, text=True, timeout=120)


def test_the_project_passes():
    assert corecheck.structure_problems(REPO) == []


def test_every_core_test_file_is_accounted_for():
    declared = testfiles.declared(REPO)
    present = {p.relative_to(REPO).as_posix() for folder in testfiles.CORE_TEST_DIRS
               for p in (REPO / folder).glob("test_*.py")}
    assert set(declared) == present
    assert set(declared.values()) == {"dual", "cpython"}
    for name, runtime in declared.items():
        assert (runtime == "dual") == (not testfiles.host_only_imports(REPO / name)), name


def test_the_check_goes_red_on_each_broken_rule(copy: Path):
    assert _check(copy).returncode == 0
    (copy / "tests/firmware/test_new_topic.py").write_text("def test_x():\n    assert True\n")
    with open(copy / "tests/firmware/test_eventlog.py", "a") as handle:
        handle.write("\nimport pytest  # noqa: E402, F401\n")
    with open(copy / "protocol/logrecord.py", "a") as handle:
        handle.write("\n\ndef _late():\n    from firmware import eventlog  # noqa: F401\n")
    with open(copy / "host_tools/codes.py", "a") as handle:
        handle.write("\nfrom firmware import keypad  # noqa: E402, F401\n")
    result = _check(copy)
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert "corecheck: import cycle: firmware.eventlog <-> protocol.logrecord" in lines
    assert any(line.startswith("corecheck: tests/firmware/test_new_topic.py: not declared") for line in lines)
    assert any(line.startswith("corecheck: tests/firmware/test_eventlog.py: declared dual but imports pytest")
               for line in lines)
    assert ("corecheck: host_tools.codes imports firmware.keypad: runtime host code shares protocol/ "
            "with the device, not firmware/") in lines
    assert len(lines) == 4


def test_declarations_that_name_no_file_or_no_runtime_are_red(copy: Path):
    table = copy / testfiles.DECLARATIONS
    table.write_text(table.read_text() + '"tests/firmware/test_gone.py" = "dual"\n')
    assert testfiles.problems(copy) == [
        "tests/firmware/test_gone.py: declared in tests/mpy/runtimes.toml but there is no such file"]
    table.write_text(table.read_text().replace('"tests/firmware/test_gone.py" = "dual"\n', "")
                     .replace('"tests/firmware/test_eventlog.py" = "dual"', '"tests/firmware/test_eventlog.py" = "both"'))
    assert any("runtime 'both'" in line for line in testfiles.problems(copy))


def test_a_deferred_import_still_makes_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert imports.cycles(graph) == [["a", "b", "c"]]
    assert imports.cycles({"a": {"b"}, "b": set()}) == []
