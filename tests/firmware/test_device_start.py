"""Start tests: pass, fail, temporary lockout and its escalation, aborts, purge, free restart (both runtimes)."""

from firmware import eventlog
from firmware.config import Config
from tests.firmware.device_rig import Rig


def test_a_passing_start_test_enables_the_engine():
    rig = Rig()
    rig.ignition(True)
    assert rig.session == "test_requested" and not rig.relay.on
    assert rig.screen.text == "PLEASE BLOW FOR START TEST"
    rig.advance(5)
    rig.blow(120)
    assert rig.session == "engine_enabled" and rig.relay.on
    assert rig.screen.text == "TEST PASSED DRIVE SAFELY" and rig.screen.green
    passes = [r for r in rig.records() if r["kind"] == eventlog.TEST_PASS]
    assert passes[-1]["brac"] == 120 and passes[-1]["compliance"] == "normal"
    rig.ignition(False)
    assert rig.session == "ignition_off" and not rig.relay.on


def test_a_failed_start_test_locks_for_five_minutes():
    rig = Rig()
    assert rig.start(300) == "temporary_lockout"
    assert not rig.relay.on and rig.screen.red
    assert rig.screen.text == "TEST FAILED WAIT 5 MIN"
    rig.ignition(False)
    rig.ignition(True)  # cycling the key changes nothing
    assert rig.session == "temporary_lockout"
    rig.advance(240)
    assert rig.session == "temporary_lockout" and rig.screen.text == "TEST FAILED WAIT 60 S"
    rig.advance(31)
    assert rig.screen.text == "TEST FAILED WAIT 30 S"
    rig.advance(30)
    assert rig.session == "test_requested"  # the ignition is on: a new test is due
    fail = [r for r in rig.records() if r["kind"] == eventlog.TEST_FAIL][-1]
    assert fail["brac"] == 300
    hold = [r for r in rig.records() if r["kind"] == eventlog.TEMP_LOCKOUT][-1]
    assert hold["value"] == 300 and hold["detail"] == "test_failed"


def test_the_lockout_ends_into_ignition_off_when_the_key_is_off():
    rig = Rig()
    rig.start(250)
    rig.ignition(False)
    rig.advance(301)
    assert rig.session == "ignition_off"


def test_three_fails_within_fifteen_minutes_lock_for_fifteen():
    rig = Rig()
    rig.ignition(True)
    holds = []
    for _ in range(3):
        rig.until_session("test_requested", 3600)
        rig.advance(5)
        rig.blow(400)
        holds.append(rig.device.hold_left())
    assert holds == [300, 300, 900]
    assert rig.screen.text == "TEST FAILED WAIT 15 MIN"
    assert [r for r in rig.records() if r["kind"] == eventlog.TEMP_LOCKOUT][-1]["detail"] == "repeated_fails"


def test_fails_spread_over_more_than_fifteen_minutes_do_not_escalate():
    rig = Rig()
    rig.start(400)
    rig.advance(600)
    rig.advance(5)
    rig.blow(400)
    rig.advance(600)
    rig.blow(400)  # third fail, but the first is 20 min old
    assert rig.device.hold_left() == 300


def test_an_abort_is_not_a_fail():
    rig = Rig()
    rig.ignition(True)
    rig.advance(5)
    rig.blow(900, volume=900)
    assert rig.session == "test_requested" and rig.screen.text == "BLOW AGAIN MORE AIR"
    rig.advance(5)
    rig.blow(900, temperature=200)
    assert rig.screen.text == "BLOW AGAIN BREATH TEMP"
    rig.advance(5)
    rig.blow(900, complete=False)
    assert rig.session == "test_requested" and rig.device.hold is None
    aborts = [r["detail"] for r in rig.records() if r["kind"] == eventlog.TEST_ABORT]
    assert aborts == ["low_volume", "temperature", "incomplete"]
    assert rig.sensor.purges == 3
    rig.advance(5)
    rig.blow(50)
    assert rig.session == "engine_enabled"


def test_a_blow_during_the_purge_is_refused_as_an_abort():
    rig = Rig(config=Config(purge_s=10))
    rig.ignition(True)
    rig.advance(10)
    rig.blow(900, volume=900)
    rig.advance(3)
    rig.blow(900)  # still purging: not judged, not a fail
    assert rig.session == "test_requested" and rig.screen.text == "BLOW AGAIN WAIT - PURGING"
    rig.advance(10)
    rig.blow(0)
    assert rig.session == "engine_enabled"


def test_free_restart_within_two_minutes_of_a_stall():
    rig = Rig()
    rig.start(0)
    rig.advance(60)
    rig.ignition(False)  # stall
    rig.advance(100)
    rig.ignition(True)
    assert rig.session == "engine_enabled" and rig.relay.on
    assert "free_restart" in rig.kinds()
    rig.ignition(False)
    rig.advance(121)
    rig.ignition(True)
    assert rig.session == "test_requested"


def test_no_free_restart_after_stopping_in_a_retest():
    rig = Rig()
    rig.start(0)
    rig.until_session("retest_due", 3600)
    rig.ignition(False)
    rig.advance(10)
    rig.ignition(True)
    assert rig.session == "test_requested"


def test_the_first_retest_is_scheduled_after_a_free_restart_too():
    rig = Rig()
    rig.start(0)
    rig.ignition(False)
    rig.ignition(True)
    assert rig.session == "engine_enabled"
    waited = rig.until_session("retest_due", 3600)
    assert 300 <= waited <= 900


def test_a_blow_with_the_sensor_cable_cut_is_an_abort():
    rig = Rig()
    rig.ignition(True)
    rig.advance(5)
    rig.sensor.attached = False
    rig.blow(900)
    assert rig.session == "test_requested" and rig.screen.text == "BLOW AGAIN SENSOR FAULT"
