"""The driving session: ignition, breath samples, refusals and tampers, the session
machine's guards and its entry actions.

GUARDS maps each session guard of the transition table to its condition; `_enter_<state>`
runs when the session machine enters that state (dispatched by name from
firmware/device.py). Functions take the Device.
"""

from firmware import breath
from firmware import eventlog as ev
from firmware.compliance import add_cause
from firmware.hal import BreathSample
from firmware.lifts import TAMPER, VIOLATIONS
from firmware.transitions_table import (
    ALARM,
    ENGINE,
    IDLE,
    RELAY,
    RETEST,
    SERVICE,
    START_TEST,
    STARTS,
    TESTING,
)
from protocol import errors, messages
from protocol.endpoint import Refused


def starts_allowed(d, records=0):
    """Compliance lets the vehicle start and the log can record a breath test after
    `records` more records (a start test is asked for only if the log still takes it
    after the transition's own record: every start test is recorded)."""
    return bool(d.provisioned and d.compliance.flags() & STARTS and d.log.accepting(ev.TEST_PASS, records))


def test_recordable(d):
    """A pending start test whose record no longer fits the log (an abort, a refusal or
    another record took the last room) ends: no test is asked for that leaves no trace."""
    if d.session.flags() & START_TEST and not d.log.accepting(ev.TEST_PASS):
        d.session.fire("blocked")


def ignition(d, on):
    """The ignition was switched on or off."""
    on = bool(on)
    if on == d.ignition_on:
        return
    d.ignition_on = on
    session = d.session
    if on:
        d._log(ev.START_ATTEMPT)
        row = session.fire("ignition_on")
        if row is None and session.flags() & IDLE:
            d._log(ev.START_BLOCKED, detail=d.compliance.state)
        elif row is not None and session.flags() & ENGINE:
            d._log(ev.FREE_RESTART)
    else:
        session.fire("ignition_off")


def take_breath(d, sample):
    """A finished breath sample (hal.BreathSample) from the sensor."""
    flags = d.session.flags()
    if not flags & TESTING:
        if d.compliance.flags() & SERVICE:
            d.cal_sample = sample  # dry gas for the calibration steps
        return
    run = d.tb.run()
    config = d.config
    result, brac, reason = breath.evaluate(sample, config, d.gain, run < d.purge_until)
    if not d.hw.sensor.connected():
        result, brac, reason = breath.ABORT, 0, "sensor"  # a reading from a cut cable is no test
    if reason != "purging":
        d.hw.sensor.purge()
        d.purge_until = run + config.purge_s
    retest = not flags & START_TEST
    if result == breath.ABORT:
        d._log(ev.RETEST_ABORT if retest else ev.TEST_ABORT, detail=reason)
        if retest:
            d.session.fire("sample_abort")
        d.last_abort = reason
    elif result == breath.PASS:
        may_start = retest or starts_allowed(d)  # decided before the record takes room
        d._log(ev.RETEST_PASS if retest else ev.TEST_PASS, brac)
        if not may_start:
            d.session.fire("blocked")  # a pass never starts a vehicle that may not start
        else:
            d.session.fire("sample_pass")
    else:
        d._log(ev.RETEST_FAIL if retest else ev.TEST_FAIL, brac)
        if not retest:
            d.fails.append(run)
            d.fails = d.fails[-config.fails_for_long :]
        d.session.fire("sample_fail")
    d._emit(messages.EV_TEST, "%s %d %s" % (result, brac, reason))


def refuse(d):
    """The driver refuses the pending test (CANCEL)."""
    flags = d.session.flags()
    if flags & START_TEST:
        d._log(ev.TEST_REFUSED)
    elif flags & TESTING:
        d._log(ev.RETEST_REFUSED)
        d.session.fire("refuse")


def tamper(d, kind):
    """A tamper detected (eventlog.TAMPER_* kinds): logged, and a recall cause."""
    d._log(ev.TAMPER, value=kind)
    add_cause(d, TAMPER, "kind %d" % kind)


def _random_between(d, low, high):
    if high <= low:
        return low
    span = high - low + 1
    return low + d.hw.random.bits(24) % span


# ---- guards ---------------------------------------------------------------------------
def _start_allowed(d):
    """Compliance lets the vehicle start and the log takes the test."""
    return starts_allowed(d, 1)


def _free_restart(d):
    """Within the free-restart time of a stall, starts allowed."""
    return d.stall_at is not None and d.tb.run() - d.stall_at <= d.config.free_restart_s and starts_allowed(d)


def _long_lockout(d):
    """This fail makes fails_for_long within fails_window_s."""
    since = d.tb.run() - d.config.fails_window_s
    recent = 0
    for at in d.fails:
        if at >= since:
            recent += 1
    return recent >= d.config.fails_for_long


def _retry_allowed(d):
    """A temporary lockout ends with the ignition on and starts allowed."""
    return d.ignition_on and starts_allowed(d, 1)


GUARDS = {
    "start_allowed": _start_allowed,
    "free_restart": _free_restart,
    "long_lockout": _long_lockout,
    "retry_allowed": _retry_allowed,
}


# ---- entry actions ----------------------------------------------------------------------
def _enter_engine_enabled(d, old, cause):
    config = d.config
    run = d.tb.run()
    was = d.session.flags(old)
    if was & RETEST:
        d.retest_at = run + _random_between(d, config.retest_next_min_s, config.retest_next_max_s)
    else:
        d.retest_at = run + _random_between(d, config.retest_first_min_s, config.retest_first_max_s)
    d.retest_end = None
    d.running = True
    if was & START_TEST:
        d._log(ev.ENGINE_START, detail=cause)


def _enter_retest_due(d, old, cause):
    d.retest_at = None
    d.retest_end = d.tb.run() + d.config.retest_window_s
    d._log(ev.RETEST_DUE, value=d.config.retest_window_s)


def _enter_violation(d, old, cause):
    d.retest_end = None
    d.violations += 1
    d._log(ev.VIOLATION, value=d.violations, detail=cause)
    if d.violations > d.config.violation_threshold:
        add_cause(d, VIOLATIONS, "%d violations" % d.violations)


def _enter_temporary_lockout(d, old, cause):
    if d.hold is None:
        config = d.config
        seconds = config.temp_lockout_long_s if cause == "repeated_fails" else config.temp_lockout_s
        d.hold = d.tb.after(seconds)
        d._log(ev.TEMP_LOCKOUT, value=seconds, detail=cause)


def _enter_ignition_off(d, old, cause):
    was = d.session.flags(old)
    d.retest_at = None
    d.retest_end = None
    # a free restart only after a plain stop of an enabled engine
    d.stall_at = d.tb.run() if was & ENGINE else None
    if was & RELAY:
        d.running = False
        d._log(ev.ENGINE_STOP, detail=cause)
    if was & ALARM:
        d._log(ev.VIOLATION_END)


def bench_sample(d, brac, volume_ml, temperature_dc):
    """The sample of a bench blow of a true BrAC: through the hardware's own sensor model when
    it has one (the simulator's fuel cell: drift, temperature, noise), else the sensor
    assumed as calibrated."""
    if not 0 <= brac <= breath.BRAC_MAX or not 0 <= volume_ml <= 20000 or not -500 <= temperature_dc <= 1500:
        raise Refused(errors.BAD_ARGUMENT, "blow out of range")
    sample = getattr(d.hw, "bench_sample", None)
    if sample is not None:
        return sample(brac, volume_ml, temperature_dc)
    fuel_cell = (brac * breath.GAIN_ONE + d.gain // 2) // d.gain
    return BreathSample(volume_ml, temperature_dc, fuel_cell)
