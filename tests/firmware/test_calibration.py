"""The calibration procedure, alone and in a service visit (both runtimes)."""

from firmware import eventlog
from firmware.breath import GAIN_ONE
from firmware.calibration import Calibration
from firmware.config import Config
from firmware.hal import BreathSample
from protocol import errors, messages
from protocol.endpoint import Refused
from tests.dualtest import raises
from tests.firmware.device_rig import Rig

CONFIG = Config()


def refused(fn, *args):
    """The NACK code `fn(*args)` is refused with."""
    return raises(Refused, fn, *args).code


def test_as_found_is_recorded_before_any_adjustment():
    cal = Calibration(CONFIG, GAIN_ONE)
    measured, ok = cal.as_found(400, 340)  # the sensor drifted 15 % low
    assert (measured, ok) == (340, False) and cal.as_found_brac == 340 and cal.gain == GAIN_ONE
    measured, ok = cal.adjust(400, 340)
    assert measured == 400 and cal.gain == 11765 and cal.as_found_brac == 340


def test_two_consecutive_checks_within_tolerance_pass():
    cal = Calibration(CONFIG, GAIN_ONE)
    cal.as_found(400, 340)
    cal.adjust(400, 340)
    assert cal.check(400, 350, 0) == (412, True) and not cal.passed()
    assert cal.check(400, 380, 60) == (447, True) and cal.passed()


def test_a_check_out_of_tolerance_restarts_the_count():
    cal = Calibration(CONFIG, GAIN_ONE)
    cal.as_found(400, 400)
    cal.adjust(400, 400)
    cal.check(400, 400, 0)
    assert cal.check(400, 460, 10) == (460, False) and cal.streak == 0
    cal.check(400, 400, 20)
    assert not cal.passed()
    cal.check(400, 449, 30)
    assert cal.passed()


def test_checks_more_than_five_minutes_apart_are_not_consecutive():
    cal = Calibration(CONFIG, GAIN_ONE)
    cal.as_found(400, 400)
    cal.adjust(400, 400)
    cal.check(400, 400, 0)
    cal.check(400, 400, 301)  # 5 min 1 s later: starts afresh
    assert cal.streak == 1 and not cal.passed()
    cal.check(400, 400, 601)
    assert cal.passed()


def test_percentage_tolerance():
    cal = Calibration(Config(cal_tolerance_pct=10), GAIN_ONE)
    cal.as_found(300, 300)
    cal.adjust(300, 300)
    assert cal.check(300, 331, 0)[1] is False  # 10 % of 0.030 is 0.003
    assert cal.check(300, 329, 1)[1] is True


def test_references_and_order_are_checked_before_anything_changes():
    cal = Calibration(CONFIG, GAIN_ONE)
    assert refused(cal.as_found, 299, 300) == errors.REFERENCE_OUT_OF_RANGE
    assert refused(cal.as_found, 501, 300) == errors.REFERENCE_OUT_OF_RANGE
    assert cal.last is None
    assert refused(cal.adjust, 400, 400) == errors.CAL_SEQUENCE
    assert refused(cal.check, 400, 400, 0) == errors.CAL_SEQUENCE
    assert refused(cal.as_found, 400, None) == errors.CAL_UNSTABLE
    assert cal.last is None and cal.as_found_brac is None
    cal.as_found(400, 400)
    assert refused(cal.as_found, 400, 400) == errors.CAL_SEQUENCE
    assert refused(cal.adjust, 400, 20) == errors.CAL_UNSTABLE  # a dead cell is not adjusted
    assert cal.gain == GAIN_ONE


def _gas(rig, raw):
    rig.sensor.ready = BreathSample(1000, 200, raw)


def _step(rig, step, reference, raw):
    _gas(rig, raw)
    return rig.device.calibrate(step, reference)


def test_a_passing_calibration_sets_the_gain_and_the_next_due_date():
    rig = Rig()
    rig.advance(50 * 86400)
    rig.service()
    assert _step(rig, messages.CAL_AS_FOUND, 400, 340) == (340, False, "as found")
    assert _step(rig, messages.CAL_ADJUST, 400, 350)[0] == 400
    assert _step(rig, messages.CAL_CHECK, 400, 352)[1]
    assert _step(rig, messages.CAL_CHECK, 400, 347)[1]
    measured, passed, detail = rig.device.calibrate(messages.CAL_FINISH, 400)
    assert passed and detail == "calibration passed"
    assert rig.device.gain == 11429
    assert rig.device.calibration_due[0] == rig.clock.wall + 60 * 86400
    kinds = rig.kinds()
    assert kinds.index("cal_as_found") < kinds.index("cal_adjust") < kinds.index("cal_check") < kinds.index("cal_pass")
    rig.close_service()
    assert rig.compliance == "normal" and not rig.device.causes
    # a blow reading 350 raw now reads 0.040 g/210L
    assert rig.start(175) == "temporary_lockout"


def test_a_failed_calibration_keeps_the_old_gain_and_needs_service():
    rig = Rig()
    rig.service()
    _step(rig, messages.CAL_AS_FOUND, 400, 350)
    _step(rig, messages.CAL_ADJUST, 400, 350)
    assert not _step(rig, messages.CAL_CHECK, 400, 300)[1]  # unstable cell
    assert not _step(rig, messages.CAL_CHECK, 400, 420)[1]
    measured, passed, detail = rig.device.calibrate(messages.CAL_FINISH, 400)
    assert not passed and "failed" in detail
    assert rig.device.gain == GAIN_ONE
    assert "cal_fail" in rig.kinds()
    rig.close_service()
    assert rig.compliance == "early_service_recall"
    assert messages.bits_to_names(rig.device.causes, messages.CAUSES) == ["calibration_failed"]
    assert rig.screen.text == "SERVICE DUE 7 DAYS"


def test_closing_the_visit_mid_calibration_is_a_failed_calibration():
    rig = Rig()
    rig.service()
    _step(rig, messages.CAL_AS_FOUND, 400, 400)
    _step(rig, messages.CAL_ADJUST, 400, 380)
    rig.close_service()
    assert rig.device.gain == GAIN_ONE and rig.compliance == "early_service_recall"
    assert [r for r in rig.records() if r["kind"] == eventlog.CAL_FAIL]


def test_calibration_needs_a_service_session_and_order():
    rig = Rig()
    assert refused(rig.device.calibrate, messages.CAL_AS_FOUND, 400) == errors.NOT_IN_SERVICE
    rig.service()
    assert refused(rig.device.calibrate, messages.CAL_CHECK, 400) == errors.CAL_SEQUENCE
    assert refused(rig.device.calibrate, messages.CAL_AS_FOUND, 400) == errors.CAL_UNSTABLE  # no gas
    _gas(rig, 400)
    assert refused(rig.device.calibrate, messages.CAL_AS_FOUND, 600) == errors.REFERENCE_OUT_OF_RANGE
    assert rig.device.cal is None
    assert refused(rig.device.calibrate, 9, 400) == errors.CAL_SEQUENCE
    assert rig.device.calibrate(messages.CAL_AS_FOUND, 400)[0] == 400  # the gas was kept for the retry


def test_calibration_due_date_is_a_recall_cause():
    rig = Rig(config=Config(calibration_interval_s=10 * 86400, service_interval_s=60 * 86400))
    rig.advance(10 * 86400 + 1)
    assert rig.compliance == "early_service_recall"
    assert messages.bits_to_names(rig.device.causes, messages.CAUSES) == ["calibration_due"]
