"""Power cuts (both runtimes): pulling the battery never clears a lockout, a temporary
lockout or a recall; a power loss with the engine enabled is a tamper; and a cut at any
write offset while the device locks itself out still boots into the lockout.

This file cuts at a sample of offsets (the MicroPython heap allows a few dozen reboots);
test_device_power_offsets.py (CPython) cuts at every one."""

import sys

from firmware.ramflash import PowerCut
from protocol import messages
from tests.firmware.device_rig import DAY, Rig


def test_a_lockout_survives_pulling_the_battery():
    rig = Rig()
    rig.token("lockout", {"cause": "unpaid_balance"}, key="billing")
    rig.reboot(off_s=3600)
    assert rig.compliance == "lockout" and rig.start(0) == "ignition_off"


def test_a_temporary_lockout_survives_pulling_the_battery():
    rig = Rig()
    rig.start(400)
    rig.advance(60)
    rig.reboot(off_s=10)
    assert rig.session == "temporary_lockout"
    assert rig.device.hold_left() == 230
    rig.ignition(True)
    rig.advance(230)
    assert rig.session == "test_requested"


def test_a_recall_countdown_survives_pulling_the_battery():
    rig = Rig()
    rig.token("recall", {"cause": "unpaid_balance", "days": 7}, key="billing")
    rig.advance(DAY)
    rig.reboot(off_s=DAY)
    assert rig.compliance == "early_service_recall" and rig.device.recall_left() == 5 * DAY


def test_power_lost_with_the_engine_enabled_is_a_tamper():
    rig = Rig()
    rig.start(0)
    rig.reboot(off_s=5)
    assert rig.session == "ignition_off" and not rig.relay.on
    assert rig.compliance == "early_service_recall"
    assert messages.bits_to_names(rig.device.causes, messages.CAUSES) == ["tamper"]
    kinds = rig.kinds()
    assert "power_loss" in kinds and "tamper" in kinds


def test_a_clean_stop_then_a_power_loss_is_not_a_tamper():
    rig = Rig()
    rig.start(0)
    rig.ignition(False)
    rig.reboot(off_s=5)
    assert rig.compliance == "normal"


# ---- a cut at write offsets while the recall runs out -----------------------------------
def prepared():
    """A unit whose unpaid-balance recall runs out in 10 s: (flash snapshot, wall time)."""
    rig = Rig()
    rig.token("recall", {"cause": "unpaid_balance", "days": 1}, key="billing")
    rig.advance(DAY - 10)
    return rig.flash.clone(), rig.clock.wall


def sequence(flash, wall):
    """Boot from `flash`, let the recall run out, try to start, ask for a code, drive on."""
    rig = Rig(flash=flash, wall=wall, provision=False, install=False)
    rig.advance(20)
    rig.ignition(True)
    rig.keys("A")
    rig.ignition(False)
    rig.advance(600)
    return rig


def units_of_sequence(snapshot, wall):
    flash = snapshot.clone()
    rig = sequence(flash, wall)
    assert rig.compliance == "lockout"
    return flash.units


def cut_and_reboot(snapshot, wall, offset):
    """Cut the power after `offset` units of the sequence, reboot: the compliance state."""
    flash = snapshot.clone()
    flash.cut_after(offset)
    try:
        sequence(flash, wall)
    except PowerCut:
        pass
    flash.power_on()
    rig = Rig(flash=flash, wall=wall + 700, provision=False, install=False)
    rig.advance(1)
    return rig.compliance


def test_a_cut_at_sampled_write_offsets_never_clears_the_lockout():
    snapshot, wall = prepared()
    total = units_of_sequence(snapshot, wall)
    assert total > 500  # the sequence writes log records and state files
    stride = total // 6 if sys.implementation.name == "micropython" else total // 60
    offset = 0
    while offset < total:
        assert cut_and_reboot(snapshot, wall, offset) == "lockout", offset
        offset += stride
    assert cut_and_reboot(snapshot, wall, total - 1) == "lockout"
