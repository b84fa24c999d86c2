"""The service-mode calibration procedure, one step at a time.

    AS_FOUND  the reading of the dry-gas reference under the current calibration is
              recorded before anything is adjusted;
    ADJUST    the gain is set so that the reference reads true (repeatable);
    CHECK     the reference is read again under the new gain; `cal_checks` consecutive
              checks within tolerance (+-cal_tolerance, or +-cal_tolerance_pct of the
              reference), each no more than `cal_check_gap_s` after the previous one, pass;
    FINISH    passes if the checks passed, otherwise fails.

Every reference must be in cal_ref_min..cal_ref_max (0.030-0.050 g/210L). A step out of
order, a reference out of range or an unusable reading raises Refused before anything
changes. The new gain only takes effect when FINISH passes; the device logs every step
and, on a fail, keeps the old gain and needs service (cause calibration_failed).

`Calibration` is one procedure in progress; `calibrate(d, step, reference)` runs one
CALIBRATE step of the Device's open service visit, all or nothing.
"""

from firmware import eventlog as ev
from firmware.breath import GAIN_ONE, scale
from firmware.compliance import add_cause, clear_causes
from firmware.lifts import CALIBRATION_DUE, CALIBRATION_FAILED
from protocol import errors, messages
from protocol.endpoint import Refused

GAIN_MIN = GAIN_ONE // 8  # a fuel cell that far off is broken, not drifted
GAIN_MAX = GAIN_ONE * 8


class Calibration:
    def __init__(self, config, gain):
        self.config = config
        self.old_gain = gain
        self.gain = gain
        self.last = None  # last step done: "as_found", "adjust", "check"
        self.as_found_brac = None
        self.streak = 0  # consecutive checks within tolerance
        self.last_pass = 0  # run-clock second of the last check within tolerance

    def _reference(self, reference):
        config = self.config
        if reference < config.cal_ref_min or reference > config.cal_ref_max:
            raise Refused(
                errors.REFERENCE_OUT_OF_RANGE,
                "reference %d outside %d..%d" % (reference, config.cal_ref_min, config.cal_ref_max),
            )

    @staticmethod
    def _raw(raw):
        if raw is None:
            raise Refused(errors.CAL_UNSTABLE, "no sample: apply the dry gas, then repeat the step")
        if raw <= 0:
            raise Refused(errors.CAL_UNSTABLE, "no sensor response")
        return raw

    def within(self, reference, measured):
        diff = measured - reference
        return -self.config.cal_tolerance_for(reference) <= diff <= self.config.cal_tolerance_for(reference)

    def as_found(self, reference, raw):
        """(measured, within tolerance) of the reference before any adjustment."""
        if self.last is not None:
            raise Refused(errors.CAL_SEQUENCE, "as-found is the first step")
        self._reference(reference)
        measured = scale(self._raw(raw), self.gain)
        self.as_found_brac = measured
        self.last = "as_found"
        return measured, self.within(reference, measured)

    def adjust(self, reference, raw):
        """(measured under the new gain, True); the gain makes `raw` read `reference`."""
        if self.last is None:
            raise Refused(errors.CAL_SEQUENCE, "record the as-found reading first")
        self._reference(reference)
        raw = self._raw(raw)
        gain = (reference * GAIN_ONE + raw // 2) // raw
        if gain < GAIN_MIN or gain > GAIN_MAX:
            raise Refused(errors.CAL_UNSTABLE, "sensor response out of the adjustable range")
        self.gain = gain
        self.streak = 0
        self.last = "adjust"
        return scale(raw, gain), True

    def check(self, reference, raw, now):
        """(measured, within tolerance); counts consecutive checks within tolerance."""
        if self.last not in ("adjust", "check"):
            raise Refused(errors.CAL_SEQUENCE, "adjust before checking")
        self._reference(reference)
        measured = scale(self._raw(raw), self.gain)
        ok = self.within(reference, measured)
        if not ok:
            self.streak = 0
        elif self.streak and now - self.last_pass > self.config.cal_check_gap_s:
            self.streak = 1  # too long since the last good check: this one starts afresh
            self.last_pass = now
        else:
            self.streak += 1
            self.last_pass = now
        self.last = "check"
        return measured, ok

    def passed(self):
        return self.streak >= self.config.cal_checks


# ---- the device's calibration steps ---------------------------------------------------------
def calibrate(d, step, reference):
    """One CALIBRATE step in service mode; (measured, passed, detail)."""
    d.compliance.require("calibrate")
    result = d._apply(_step, d, step, reference)
    d.cal_sample = None  # used up by the step that succeeded
    return result


def _take_gas(d):
    """The raw reading of the dry gas; the sample is kept until a step succeeds."""
    if d.cal_sample is None:
        d.cal_sample = d.hw.sensor.take()
    sample = d.cal_sample
    return None if sample is None else sample.fuel_cell


def _step(d, step, reference):
    cal = d.cal
    config = d.config
    if step == messages.CAL_AS_FOUND:
        if cal is not None and cal.last != "as_found":
            raise Refused(errors.CAL_SEQUENCE, "finish the calibration in progress")
        cal = Calibration(config, d.gain)
        measured, ok = cal.as_found(reference, _take_gas(d))
        d.cal = cal
        d._log(ev.CAL_AS_FOUND, measured, reference, "within" if ok else "outside")
        return measured, ok, "as found"
    if cal is None:
        raise Refused(errors.CAL_SEQUENCE, "start with the as-found step")
    if step == messages.CAL_ADJUST:
        measured, ok = cal.adjust(reference, _take_gas(d))
        d._log(ev.CAL_ADJUST, measured, cal.gain, "gain %d>%d" % (cal.old_gain, cal.gain))
        return measured, ok, "gain %d" % cal.gain
    if step == messages.CAL_CHECK:
        measured, ok = cal.check(reference, _take_gas(d), d.tb.run())
        d._log(ev.CAL_CHECK, measured, reference, "%s %d/%d" % ("ok" if ok else "out", cal.streak, config.cal_checks))
        return measured, ok, "check %d/%d" % (cal.streak, config.cal_checks)
    if step == messages.CAL_FINISH:
        d.cal = None
        if cal.passed():
            d.gain = cal.gain
            d.calibrated_at = d.tb.wall()
            d.calibration_due = d.tb.after(config.calibration_interval_s)
            d._log(ev.CAL_PASS, cal.as_found_brac, cal.gain)
            clear_causes(d, CALIBRATION_DUE | CALIBRATION_FAILED, "calibration passed")
            return 0, True, "calibration passed"
        cal_failed(d, "%d/%d checks" % (cal.streak, config.cal_checks))
        return 0, False, "calibration failed: needs service"
    raise Refused(errors.BAD_ARGUMENT, "unknown step %d" % step)


def cal_failed(d, why):
    d.cal = None
    d._log(ev.CAL_FAIL, detail=why)
    add_cause(d, CALIBRATION_FAILED, why)
