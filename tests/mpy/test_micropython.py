"""The dual-runtime tests of firmware/ and protocol/, run a second time under real MicroPython.

Each test here is one test function of a dual-runtime file, run in a process of MicroPython's
unix port (tests/mpy/runner.py); a failure shows the MicroPython traceback.
"""

from __future__ import annotations

import pytest

from tests.mpy.runner import REPO, dual_files, list_test_functions, run_file

_CASES = [
    pytest.param(path, name, id=f"micropython:{path.relative_to(REPO).as_posix()}::{name}")
    for path in dual_files()
    for name in list_test_functions(path)
]
_RESULTS: dict = {}


@pytest.mark.parametrize(("path", "name"), _CASES)
def test_under_micropython(path, name):
    if path not in _RESULTS:
        _RESULTS[path] = run_file(path)
    outcome = _RESULTS[path][name]
    if not outcome.ok:
        pytest.fail(f"under MicroPython:\n{outcome.trace}", pytrace=False)
