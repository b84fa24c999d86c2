"""Rolling retests while driving: timing, pass, missed, refused, failed, abort, and the
violation alarm that never cuts the engine (both runtimes)."""

from firmware import eventlog
from tests.firmware.device_rig import Rig


def _driving(seed=1):
    rig = Rig(seed=seed)
    assert rig.start(0) == "engine_enabled"
    return rig


def test_retests_come_at_random_times_in_their_windows():
    firsts = []
    for seed in (1, 2, 3):
        rig = _driving(seed)
        first = rig.until_session("retest_due", 3600)
        assert 300 <= first <= 900, first
        firsts.append(first)
        rig.advance(20)
        rig.blow(0)
        assert rig.session == "engine_enabled"
        later = rig.until_session("retest_due", 3600)
        assert 900 <= later <= 2700, later
    assert len(set(firsts)) > 1  # random (from hw.random), not fixed


def test_a_passed_retest_keeps_driving():
    rig = _driving()
    rig.until_session("retest_due", 3600)
    assert rig.screen.text == "RETEST - BLOW 6 MIN LEFT"
    rig.advance(60)
    assert rig.screen.text == "RETEST - BLOW 5 MIN LEFT"
    rig.blow(100)
    assert rig.session == "engine_enabled" and rig.relay.on and not rig.alarm.on
    assert [r["brac"] for r in rig.records() if r["kind"] == eventlog.RETEST_PASS] == [100]


def _assert_violation(rig, cause):
    assert rig.session == "violation", rig.session
    assert rig.alarm.on and rig.relay.on  # horn and lights; the engine keeps running
    assert rig.screen.text == "RETEST VIOLATION TURN ENGINE OFF"
    assert rig.device.violations == 1
    assert [r["detail"] for r in rig.records() if r["kind"] == eventlog.VIOLATION] == [cause]


def test_a_missed_retest_is_a_violation():
    rig = _driving()
    rig.until_session("retest_due", 3600)
    rig.advance(359)
    assert rig.session == "retest_due"
    rig.advance(1)
    _assert_violation(rig, "retest_missed")
    assert "retest_missed" in rig.kinds()


def test_a_refused_retest_is_a_violation():
    rig = _driving()
    rig.until_session("retest_due", 3600)
    rig.keys("*")  # CANCEL
    _assert_violation(rig, "retest_refused")


def test_a_failed_retest_is_a_violation():
    rig = _driving()
    rig.until_session("retest_due", 3600)
    rig.blow(350)
    _assert_violation(rig, "retest_failed")
    assert [r["brac"] for r in rig.records() if r["kind"] == eventlog.RETEST_FAIL] == [350]


def test_an_aborted_retest_keeps_the_window_running():
    rig = _driving()
    rig.until_session("retest_due", 3600)
    rig.advance(60)
    rig.blow(0, volume=500)
    assert rig.session == "retest_in_progress"
    assert rig.screen.text == "RETEST - AGAIN 5 MIN LEFT"
    rig.advance(299)
    rig.blow(0, volume=500)
    assert rig.session == "retest_in_progress"
    rig.advance(1)  # the 6 minutes are counted from the request, not from the abort
    _assert_violation(rig, "retest_missed")


def test_the_alarm_lasts_until_the_ignition_is_off_and_never_cuts_the_engine():
    rig = _driving()
    rig.until_session("retest_due", 3600)
    rig.advance(360)
    assert rig.session == "violation"
    rig.advance(3 * 3600)  # hours of driving in violation: still alarm, still running
    assert rig.session == "violation" and rig.alarm.on and rig.relay.on
    assert False not in rig.relay.values[rig.relay.values.index(True):]  # never opened while driving
    rig.ignition(False)
    assert rig.session == "ignition_off" and not rig.alarm.on and not rig.relay.on
    assert "violation_end" in rig.kinds()
    rig.ignition(True)
    assert rig.session == "test_requested"  # no free restart after a violation


def test_stopping_during_a_retest_is_logged_and_needs_a_new_test():
    rig = _driving()
    rig.until_session("retest_due", 3600)
    rig.ignition(False)
    assert rig.session == "ignition_off" and rig.device.violations == 0
    assert "retest_due>ignition_off ignition_off_in_retest" in rig.transitions()
