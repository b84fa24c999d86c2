"""A power cut at EVERY write offset of the power-cut scenarios, each followed by a boot
with the ignition on and a sober sample ready (CPython only: one reboot per unit written is
too much for the MicroPython test heap; the dual-runtime file test_device_power.py runs a
sample of the same offsets under both runtimes and says what is checked)."""

import pytest

from tests.firmware.test_device_power import SCENARIOS, every_cut, every_token_cut

PARTS = 3


@pytest.mark.parametrize("part", range(PARTS))
@pytest.mark.parametrize("scenario", range(len(SCENARIOS)), ids=["lockout", "failed_test", "driving"])
def test_a_cut_at_every_write_offset_boots_into_the_committed_state_with_the_relay_open(scenario, part):
    every_cut(SCENARIOS[scenario], part, PARTS)


@pytest.mark.parametrize("part", range(PARTS))
def test_a_cut_at_every_write_offset_of_a_token_leaves_its_record_only_with_its_effect(part):
    every_token_cut(part=part, parts=PARTS)
