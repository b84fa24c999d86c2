"""Early service recall and lockout by the device's own clock (both runtimes): violations
over the threshold, the service interval, the countdown on the display, and what a
lockout stops (and does not stop)."""

from firmware import eventlog
from firmware.config import Config
from protocol import messages
from tests.firmware.device_rig import DAY, Rig


def _violation(rig):
    rig.start(0)
    rig.until_session("retest_due", 3600)
    rig.keys("*")
    assert rig.session == "violation"
    rig.ignition(False)


def _causes(rig):
    return messages.bits_to_names(rig.device.causes, messages.CAUSES)


def test_more_violations_than_the_threshold_start_a_recall_that_locks_out_by_itself():
    rig = Rig(config=Config(violation_threshold=2))
    for _ in range(2):
        _violation(rig)
    assert rig.compliance == "normal"  # at the threshold, not over it
    _violation(rig)
    assert rig.compliance == "early_service_recall" and _causes(rig) == ["violations"]
    assert rig.screen.text == "SERVICE DUE 7 DAYS"
    # no connection from here on: the device's own clock does the rest
    rig.advance(2 * DAY)
    assert rig.screen.text == "SERVICE DUE 5 DAYS"
    assert rig.start(0) == "engine_enabled"  # a recall still lets a passing driver start
    rig.ignition(False)
    rig.advance(4 * DAY)
    assert rig.screen.text == "LOCKOUT IN 24 H VIOLATIONS"  # the last day counts in hours ...
    rig.advance(3600)
    assert rig.screen.lines == ("LOCKOUT IN 23 H", "VIOLATIONS")
    rig.advance(22 * 3600 + 1800)
    assert rig.screen.text == "LOCKOUT IN 30 M VIOLATIONS"  # ... and the last hour in minutes
    rig.until_compliance("lockout", 3600)
    assert rig.screen.text == "LOCKOUT SERVICE REQUIRED"
    assert "early_service_recall>lockout recall_expired" in rig.transitions()


def test_a_lockout_stops_every_start():
    rig = Rig(config=Config(violation_threshold=0, recall_s=3600))
    _violation(rig)
    rig.advance(3601)
    assert rig.compliance == "lockout"
    rig.ignition(True)
    assert rig.session == "ignition_off" and not rig.relay.on
    rig.blow(0)
    assert rig.session == "ignition_off" and not rig.relay.on
    blocked = [r for r in rig.records() if r["kind"] == eventlog.START_BLOCKED]
    assert blocked and blocked[-1]["detail"] == "lockout"
