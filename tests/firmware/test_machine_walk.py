"""The rest of the walk over every row of the transition table (both runtimes): rows 26..end.

Split from test_machine.py so that each file fits the WASI MicroPython heap without a
collection (see tests/firmware/device_rig.py)."""

from firmware.transitions_table import ROWS
from tests.firmware.test_machine import CHUNK, _walk


def test_walk_rows_26_to_38():
    assert _walk(2 * CHUNK, 3 * CHUNK) == CHUNK


def test_walk_rows_39_to_the_end():
    assert _walk(3 * CHUNK, len(ROWS)) == len(ROWS) - 3 * CHUNK
