"""A power cut at EVERY write offset while the device locks itself out (CPython only:
one reboot per byte written is too much for the MicroPython heap; the dual-runtime file
test_device_power.py runs a sample of the same offsets under both runtimes)."""

import pytest

from tests.firmware.test_device_power import cut_and_reboot, prepared, units_of_sequence


@pytest.mark.parametrize("part", range(4))
def test_a_cut_at_every_write_offset_never_clears_the_lockout(part):
    snapshot, wall = prepared()
    total = units_of_sequence(snapshot, wall)
    for offset in range(part, total, 4):
        assert cut_and_reboot(snapshot, wall, offset) == "lockout", offset
