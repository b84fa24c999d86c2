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
"""

from firmware.breath import GAIN_ONE, scale
from protocol import errors
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
