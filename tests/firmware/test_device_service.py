"""The service interval and the service visit (both runtimes): the notice before the due
date, the recall it starts, and a visit that clears a recall or a lockout."""

from firmware.config import Config
from protocol import messages
from tests.firmware.device_rig import DAY, Rig


def _violation(rig):  # one retest refused: a violation
    rig.start(0)
    rig.until_session("retest_due", 3600)
    rig.keys("*")
    assert rig.session == "violation"
    rig.ignition(False)


def _causes(rig):
    return messages.bits_to_names(rig.device.causes, messages.CAUSES)


def test_the_service_interval_runs_into_a_recall_then_a_lockout():
    rig = Rig()
    rig.advance(52 * DAY)
    assert rig.screen.text == "LCI-777 READY"  # 8 days left: no notice yet
    rig.advance(DAY + 1)
    assert rig.screen.text == "SERVICE IN 7 DAYS"
    rig.advance(7 * DAY)
    assert rig.compliance == "early_service_recall" and _causes(rig) == ["service_due", "calibration_due"]
    rig.advance(7 * DAY)
    assert rig.compliance == "lockout"


def test_a_service_visit_clears_the_recall_and_sets_the_next_date():
    rig = Rig(config=Config(violation_threshold=0))
    _violation(rig)
    assert rig.compliance == "early_service_recall"
    rig.service()
    assert rig.compliance == "service" and rig.screen.text == "SERVICE MODE TECHNICIAN"
    rig.close_service(days=30)
    assert rig.compliance == "normal" and rig.device.causes == 0 and rig.device.violations == 0
    assert rig.device.service_due[0] == rig.clock.wall + 30 * DAY
    kinds = rig.kinds()
    assert "service_open" in kinds and "service_summary" in kinds and "service_close" in kinds


def test_a_lockout_is_lifted_by_a_service_visit():
    rig = Rig(config=Config(violation_threshold=0, recall_s=60))
    _violation(rig)
    rig.advance(61)
    assert rig.compliance == "lockout"
    rig.service()
    rig.close_service()
    assert rig.compliance == "normal"
    assert rig.start(0) == "engine_enabled"


def test_a_recall_running_out_while_driving_never_cuts_the_engine():
    rig = Rig(config=Config(violation_threshold=0, recall_s=1200))
    _violation(rig)
    rig.start(0)
    rig.advance(1300)  # retests passed or not, the engine stays enabled
    assert rig.compliance == "lockout" and rig.relay.on
    rig.ignition(False)
    rig.ignition(True)
    assert rig.session == "ignition_off" and not rig.relay.on
