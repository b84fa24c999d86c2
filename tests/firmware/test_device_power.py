"""Power cuts (both runtimes): pulling the battery never clears a lockout, a temporary
lockout or a recall; a power loss with the engine enabled is a tamper; and after a cut at
any write offset (while the device locks itself out, in a temporary lockout, while
driving) the board boots with the ignition on and a sober sample ready into exactly the
state it had committed, and its first loop never closes the relay.

This file cuts at a sample of offsets; test_device_power_offsets.py (CPython) cuts at
every one."""

import sys

from firmware import eventlog
from firmware.device import Device
from firmware.ramflash import PowerCut
from protocol import errors, messages
from protocol.endpoint import Refused
from tests.firmware.authority_double import mint
from tests.firmware.device_rig import DAY, SOBER, Rig


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


# ---- a cut at write offsets, then what the board does next ---------------------------------
# After every cut the board boots with the ignition ON and a sober sample ready in the sensor
# (what its first loop polls). Checked right after boot (before any step): the restored
# compliance state and driving session are those of the last state the core committed
# before the cut (or of the one being committed), and the relay has not been set; then after
# the first loop: the relay was never closed (only a fresh passing test closes it, never a
# restored state or a sample blown before the test was asked for), and what the scenario
# requires of that first loop (a recall that ran out is a lockout before any input counts).


class Truth:
    """What the core held in memory when a commit returned: the state a reboot must restore."""

    def __init__(self, units, device):
        self.units = units
        self.compliance = device.compliance.state
        self.hold = device.hold is not None
        self.running = device.running

    def restored(self):
        """(compliance, session) right after a boot from this state."""
        compliance = self.compliance
        if self.running and compliance == "normal":
            compliance = "early_service_recall"  # power lost with the engine enabled: a tamper
        return compliance, "temporary_lockout" if self.hold else "ignition_off"


class Scenario:
    """A prepared flash, a sequence run on it, and when the board reboots after a cut."""

    def __init__(self, prepare, sequence, off_s, first_loop):
        self.prepare = prepare
        self.sequence = sequence
        self.off_s = off_s
        self.first_loop = first_loop  # check(rig) after the first loop, or None
        self.snapshot = None

    def ready(self):
        if self.snapshot is None:
            rig = self.prepare()
            self.snapshot = (rig.flash.clone(), rig.clock.wall, Truth(0, rig.device))
        return self.snapshot

    def probe(self):
        """Run the sequence uncut: its units and the truth after every commit."""
        flash, wall, first = self.ready()
        flash = flash.clone()
        truths = [first]
        original = Device._commit

        def commit(device):
            original(device)
            truths.append(Truth(flash.units, device))

        Device._commit = commit
        try:
            self.sequence(flash, wall)
        finally:
            Device._commit = original
        return flash.units, truths

    def cut(self, offset, truths):
        """Cut the power after `offset` units, reboot with the ignition on and a sober sample
        ready, and check the boot and the first loop."""
        flash, wall, first = self.ready()
        flash = flash.clone()
        flash.cut_after(offset)
        try:
            self.sequence(flash, wall)
        except PowerCut:
            pass
        flash.power_on()
        allowed = []
        for truth in truths:  # the last commit done by the cut, and the one in flight
            if truth.units <= offset:
                allowed = [truth.restored()]
            else:
                allowed.append(truth.restored())
                break
        rig = Rig(flash=flash, wall=wall + self.off_s, provision=False, install=False, key_on=True, ready=SOBER)
        where = "cut after %d units" % offset
        assert rig.at_boot[:2] in allowed, (where, rig.at_boot, allowed)
        assert True not in rig.at_boot[2], where  # the boot itself never closes the relay
        assert True not in rig.relay.values, (where, rig.relay.values)  # nor closed by the first loop
        if self.first_loop is not None:
            self.first_loop(rig, where)
        return rig


def _lockout_prepare():
    """A unit whose unpaid-balance recall runs out in 10 s."""
    rig = Rig()
    rig.token("recall", {"cause": "unpaid_balance", "days": 1}, key="billing")
    rig.advance(DAY - 10)
    return rig


def _lockout_sequence(flash, wall):
    """Boot, let the recall run out, try to start, ask for a code, wait."""
    rig = Rig(flash=flash, wall=wall, provision=False, install=False)
    rig.advance(20)
    rig.ignition(True)
    rig.keys("A")
    rig.ignition(False)
    rig.advance(600)
    return rig


def _still_locked_out(rig, where):
    assert rig.compliance == "lockout" and rig.session == "ignition_off", (where, rig.compliance, rig.session)


def _failed_test_prepare():
    rig = Rig()
    rig.advance(60)
    return rig


def _failed_test_sequence(flash, wall):
    """A failed start test (a temporary lockout of 300 s), the key cycled while it runs."""
    rig = Rig(flash=flash, wall=wall, provision=False, install=False)
    rig.start(400)
    rig.ignition(False)
    rig.advance(30)
    rig.ignition(True)
    rig.ignition(False)
    return rig


def _driving_sequence(flash, wall):
    """A start test passed, the engine enabled, a drive, the ignition off."""
    rig = Rig(flash=flash, wall=wall, provision=False, install=False)
    rig.start(0)
    rig.advance(120)
    rig.ignition(False)
    return rig


LOCKOUT = Scenario(_lockout_prepare, _lockout_sequence, 700, _still_locked_out)
FAILED_TEST = Scenario(_failed_test_prepare, _failed_test_sequence, 60, None)
DRIVING = Scenario(_failed_test_prepare, _driving_sequence, 10, None)
SCENARIOS = (LOCKOUT, FAILED_TEST, DRIVING)


def every_cut(scenario, part=0, parts=1, stride=1):
    """Cut `scenario` at offsets part, part + parts ... (every `stride`-th of them)."""
    total, truths = scenario.probe()
    assert total > 100  # the sequence writes log records and state files
    offsets = list(range(part, total, parts * stride))
    if part == 0:
        offsets.append(total - 1)
    for offset in offsets:
        scenario.cut(offset, truths)
    return total


def _stride():
    return 40 if sys.implementation.name == "micropython" else 20


def test_a_cut_while_the_recall_runs_out_boots_locked_out_with_the_relay_open():
    every_cut(LOCKOUT, stride=_stride())


def test_a_cut_in_a_temporary_lockout_boots_into_it_with_the_relay_open():
    every_cut(FAILED_TEST, stride=_stride())


def test_a_cut_while_driving_never_boots_with_the_relay_closed():
    every_cut(DRIVING, stride=_stride())


def test_a_sample_ready_at_boot_is_no_start_test():
    # the ignition on and a sober sample waiting as the board boots: the sample was blown
    # before the start test was asked for; the relay stays open until a fresh one passes
    rig = Rig()
    rig.key_on = True
    rig.ready = SOBER
    rig.reboot(off_s=5)
    assert rig.session == "test_requested" and True not in rig.relay.values
    rig.advance(rig.config.purge_s)
    rig.blow(0)
    assert rig.session == "engine_enabled" and rig.relay.on


# ---- a token applied while the power goes: its record and its effect go together ------------
def _acceptances(rig, start):
    return [r["detail"] for r in rig.records(start) if r["kind"] == eventlog.TOKEN_ACCEPTED]


def token_cut_after(offset):
    """A billing recall applied with the power cut after `offset` flash units, the reboot, and
    the same token sent again (as a data link resends a directive it had no answer for). The
    log holds the token's acceptance exactly when the state holds its directive, and after the
    resend, exactly once. The units the uncut apply took, or None if the cut landed in it."""
    rig = Rig()
    seq = rig.device.directive_seq + 1
    token = mint("recall", {"cause": "unpaid_balance", "days": 7, "seq": seq}, key="billing")
    start = rig.device.log.head
    before = rig.flash.units
    rig.flash.cut_after(offset)
    try:
        rig.device.apply_token(token, rig.nonce())
        units = rig.flash.units - before
    except PowerCut:
        units = None
    rig.reboot(off_s=5)
    where = "cut after %d units" % offset
    applied = rig.device.directive_seq == seq
    assert len(_acceptances(rig, start)) == (1 if applied else 0), (where, applied, rig.kinds()[-6:])
    try:
        rig.device.apply_token(token, rig.nonce())
    except Refused as refusal:
        assert applied and refusal.code == errors.ALREADY_APPLIED, (where, refusal.code)
    assert rig.device.directive_seq == seq and rig.compliance == "early_service_recall", where
    assert len(_acceptances(rig, start)) == 1, (where, rig.kinds()[-6:])
    return units


def every_token_cut(stride=1, part=0, parts=1):
    """token_cut_after() at offsets part, part + parts ... (every `stride`-th) of the apply."""
    offset = part
    total = None
    while total is None or offset < total:
        units = token_cut_after(offset)
        if units is not None:
            total = units  # the cut landed after the apply: it took this many units
        offset += parts * stride
    return total


def test_a_cut_while_a_token_is_applied_leaves_its_record_only_with_its_effect():
    assert every_token_cut(stride=_stride()) > 10
