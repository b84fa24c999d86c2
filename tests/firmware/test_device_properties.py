"""Property tests of the device's state machines: hypothesis walks the real Device at random
(CPython only: hypothesis and `transitions` are host libraries).

The walk (tests/firmware/property_rig.py has the bench and the actions) drives one installed
unit through tests/firmware/device_rig.py's Rig and its authority double: the ignition on
and off; blows (sober, drunk, and aborts: too little air, too hot, too cold, stopped
early; failed start tests in a row, each after the temporary lockout); refusals (the
CANCEL key or the event); tampers and the sensor cable pulled or
plugged; time running from a second to two months, or to one second past a deadline the
unit has (recall, unlock window, temporary lockout, retest, service, calibration, keypad
back-off, the next thing scheduled); billing directives (recall, lockout, clear, and one
with a cause the device does not take; more recalls while a countdown runs); unlock tokens (a window, or for good); keypad
codes for an unlock or a clear (the provider's right answer, or a wrong one) and keys
pressed at random; service sessions opened and closed (with or without the log
downloaded); calibration steps against dry gas; set-time forward and back; work orders
(installation, removal, exchange, vehicle switch); tokens that must be refused (forged,
another unit's, expired, not yet valid, out of scope, replayed); reboots (with a power cut inside the boot, too); and power
cuts at any write unit inside any of those actions, followed by a boot.

Invariants, checked after every step:

Names and the table
 N1  The compliance and session states are names in protocol/messages.py
     COMPLIANCE_STATES / SESSION_STATES, and so is every state a transition names.
 N2  Every transition the device takes is a row of firmware/transitions_table.py, and the
     table loaded into `transitions` (the reference model: the same rows, guards evaluated
     by the oracles below, not by the device) takes the same trigger from the same state to
     the same state; the reference follows the device from step to step without a gap, and
     after every step both machines are where the reference is. Guard oracles:
     start_allowed / retry_allowed: compliance is normal, early_service_recall or
     code_unlock (no start in lockout, removed or an open service session), the log has
     room for a breath-test record after the transition's own record (docs/device.md:
     every start test is recorded) and, for retry_allowed, the ignition is on (the
     walk's own record);
     ignition_on: the walk's ignition; free_restart: the ignition is on, starts are allowed
     and the engine was stopped from engine_enabled at most free_restart_s ago in this boot
     (the walk's clock), with no vehicle switch since; for_good / causes_left /
     recall_expired: the unit's unlock window, causes and recall deadline as they were when
     the row was chosen; long_lockout: the walk's own count of failed start tests within
     fails_window_s (E7). A guard without an oracle fails the walk: the reference model must
     know every guard the table uses.
 N3  Each transition is one the step may cause: time-driven triggers (expire, window_end,
     retest, timeout, lockout_end, a start retried when the ignition is on) only when the
     device's timers ran; a sample only from a blow; ignition_off only from the ignition
     switched off; refuse only from a refusal; a service open/close, a lockout, an unlock,
     an install or a removal only from the matching accepted token or code. A recall and
     a blocked start test may follow from anything.
 N4  The event log records exactly the transitions taken, in order ("old>new cause"),
     whenever it refused nothing.

Engine and alarm
 E1  The relay is closed exactly in engine_enabled / retest_due / retest_in_progress /
     violation, and only while the ignition is on; the alarm is on exactly in violation.
 E2  The relay closes only on a transition into engine_enabled from test_requested or
     ignition_off, taken while compliance allows starts (never in lockout, removed or
     service); from test_requested only by a blow that was sober and whose test_pass is
     in the log; from ignition_off only as the free restart (N2's oracle).
 E3  No transition into test_requested or engine_enabled from ignition_off,
     temporary_lockout or test_requested while compliance forbids starts; none from
     ignition_off or temporary_lockout while the log has no room for a breath-test record
     (a test is asked for, or a free restart taken, only while its record still fits). A
     pass is judged before its record: the test_pass that takes the log's last room starts
     the engine (E2 asks for that record in the log).
 E4  The relay never opens but by the driver switching the ignition off (or the power
     going): a retest outcome (violation: alarm on) never stops the engine.
 E5  With the ignition off the session is ignition_off or temporary_lockout; a start test is
     pending (test_requested) only while compliance allows starts and the log has room for
     its record (every start test is recorded).
 E6  Liveness: the ignition switched on while starts are allowed (and the log still has
     room for the test after the start attempt's record) requests a test (or is the free
     restart); a sober blow in test_requested, with the sensor connected, not purging,
     while starts are allowed and the log has room for its record, enables the engine.

 E7  A failed start test holds the next one off for temp_lockout_s, or temp_lockout_long_s
     when it makes fails_for_long failed start tests within fails_window_s (counted by the
     walk from the fails it saw, by the device's run clock; the cause says which): the
     temporary lockout ends no earlier by either clock, survives reboots and power cuts
     (one that cuts the failing test's own write may lose it whole), and its deadline is
     never earlier than that.
Compliance
 C1  A lockout ends only by an accepted unlock code or token, a service session opened by
     a technician's token, a billing clear (or keypad clear code) that leaves no cause, or
     a removal work order; a removed unit comes back only by an installation work order.
 C2  Recall causes are bits of protocol/messages.py CAUSES; none disappears except by an
     action that clears causes (service close, billing clear, clear code, calibration
     finish, installation/removal work orders): never by time, driving, a refused token or
     a power cut.
 C3  early_service_recall and lockout always carry a cause; early_service_recall always
     has its deadline.
 C4  After the timers ran, nothing is left overdue: a recall, unlock window, temporary
     lockout or retest window whose time is up is either over or due at once (the next
     deadline is now: a cause added after the timers, in the same step, may start a
     recall whose deadline has already passed).
 C5  Calibration: the gain changes only with a passing calibration (CAL_PASS logged); a
     calibration finished without passing leaves the cause calibration_failed; a service
     session closed in the middle of a calibration leaves calibration_failed too.

Tokens
 T1  A refused token or code step changes nothing: compliance, session, causes, deadlines,
     and no transition is taken.
 T2  Forged, foreign, expired, premature, out-of-scope and replayed tokens are refused.

Time and power
 P1  A deadline (recall, unlock window, temporary lockout, service, calibration, keypad
     back-off) that is not replaced never gets further away: not by setting the clock
     back (nor forward, nor forward then back), not by anything else, in any compliance
     state (a removed unit keeps its calibration date); across a power cut at most by the
     run time the unit may lose (run_save_s, firmware/timebase.py) and never past its end
     by the wall clock as it read before the cut. A running recall countdown never gets
     longer, even when a directive replaces its deadline. (The walk reads deadlines
     without moving the TimeBase's wall-clock high-water mark.)
 P2  A power cut never clears a lockout or a recall cause: after the boot the compliance
     state is the one before the step or one the step passed through (a cut inside a write
     loses at most that write), and a lockout stays a lockout unless the step was one that
     may lift it.
 P3  The event log always verifies (firmware.eventlog.verify_chain over every record, from
     GENESIS or its first kept record, to its head hash); nothing committed is ever lost or
     rewritten (the record that was the head is still there with the same hash, also
     after a power cut), and a boot finds no damaged records.

Profiles: the default run is modest (100 walks of up to 40 steps); `@pytest.mark.soak`
runs 2000 walks of up to 120 steps (`make soak`).
"""

import pytest

transitions = pytest.importorskip("transitions")

from hypothesis import HealthCheck, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.stateful import (  # noqa: E402
    RuleBasedStateMachine,
    initialize,
    precondition,
    rule,
    run_state_machine_as_test,
)

from firmware import eventlog  # noqa: E402
from firmware.transitions_table import DEST, GUARD, MACHINE, MACHINES, SOURCE, TRIGGER, rows  # noqa: E402
from protocol import messages  # noqa: E402
from tests.firmware import property_rig as pr  # noqa: E402
from tests.firmware.device_rig import DAY  # noqa: E402

ROWS = rows()  # every row of the table, as field lists

HOUR = 3600
UNPAID = 1 << messages.CAUSES.index("unpaid_balance")
TESTING = ("test_requested", "retest_due", "retest_in_progress")
DRIVING_STATES = ("engine_enabled", "retest_due", "retest_in_progress")
ALL_CAUSES = (1 << len(messages.CAUSES)) - 1
CALIBRATION_FAILED = 1 << messages.CAUSES.index("calibration_failed")
STATE_NAMES = {"compliance": messages.COMPLIANCE_STATES, "session": messages.SESSION_STATES}
DEADLINES = ("recall_deadline", "unlock_until", "hold", "service_due", "calibration_due", "code_wait")
START_SOURCES = ("ignition_off", "temporary_lockout", "test_requested")
START_DESTS = ("test_requested", "engine_enabled")


# ---- the reference model: the table loaded into `transitions` ---------------------------------
class Reference:
    """One machine of the table in `transitions`; guards are asked of `oracle(name)`."""

    def __init__(self, name, state):
        self.name = name
        self.oracle = None
        rows = [
            {
                "trigger": row[TRIGGER],
                "source": row[SOURCE],
                "dest": row[DEST],
                "conditions": ["guard_" + row[GUARD]] if row[GUARD] else [],
            }
            for row in ROWS
            if row[MACHINE] == name
        ]
        self.machine = transitions.Machine(
            model=self,
            states=list(MACHINES[name][0]),
            transitions=rows,
            initial=state,
            auto_transitions=False,
            ignore_invalid_triggers=True,
        )

    def __getattr__(self, attr):
        if attr.startswith("guard_"):
            guard = attr[6:]
            return lambda *args, **kwargs: self.oracle(guard)
        raise AttributeError(attr)

    def put(self, state):
        self.machine.set_state(state, model=self)

    def take(self, trigger, oracle):
        self.oracle = oracle
        self.machine.events[trigger].trigger(self)
        return self.state


# ---- what is looked at before and after a step ----------------------------------------------------
class Snapshot:
    def __init__(self, rig):
        device = rig.device
        tb = device.tb
        log = device.log
        self.device = device
        self.compliance = device.compliance.state
        self.session = device.session.state
        self.causes = device.causes
        self.relay = rig.relay.on
        self.alarm = rig.alarm.on
        self.relay_values = len(rig.relay.values)
        self.gain = device.gain
        self.cal_open = device.cal is not None and device.cal.last != "as_found"
        self.purging = tb.run() < device.purge_until
        self.sensor = rig.sensor.attached
        self.log_room = log.accepting(eventlog.TEST_PASS)
        self.deadlines = {}
        for name in DEADLINES:
            pair = device.codes.wait if name == "code_wait" else getattr(device, name)
            if pair is None:
                self.deadlines[name] = None
            else:
                wall_left = pair[0] - tb.wall()
                run_left = pair[1] - tb.run()
                self.deadlines[name] = (list(pair), _quietly(device, tb.left, pair), wall_left, run_left)
        self.head = log.head
        self.head_hash = log.head_hash
        self.first = log.first
        self.refused = log.refused


def _quietly(device, read, *args):
    """read(*args) without leaving a trace in the device's TimeBase (reading a deadline
    moves its wall-clock high-water mark: the walk's looking must not change what it sees)."""
    tb = device.tb
    saved = dict(tb.__dict__)
    try:
        return read(*args)
    finally:
        tb.__dict__.clear()
        tb.__dict__.update(saved)


def _split(entries):
    """(the step's own transitions, [one list per boot]) from PropertyRig.seen."""
    own = []
    boots = []
    for entry in entries:
        if entry == pr.BOOT:
            boots.append([])
        elif boots:
            boots[-1].append(entry)
        else:
            own.append(entry)
    return own, boots


def _ordinary_room(log, most=64):
    """Records of ordinary kinds (a breath test's) the log still takes before its reserve
    (up to `most`)."""
    room = 0
    while room < most and log.accepting(eventlog.TEST_PASS, room):
        room += 1
    return room


def device_room(rig, extra):
    """The log would still take a breath-test record after `extra` more records."""
    return rig.device.log.accepting(eventlog.TEST_PASS, extra)


def _edges(values, start, before):
    """(closed, opened): whether values[start:] close or open the relay, from `before`."""
    closed = opened = False
    on = before
    for value in values[start:]:
        if value and not on:
            closed = True
        if on and not value:
            opened = True
        on = value
    return closed, opened


# ---- the walk -----------------------------------------------------------------------------------
SECONDS = st.one_of(
    st.integers(1, 120),
    st.integers(121, 2 * HOUR),
    st.integers(2 * HOUR, 3 * DAY),
    st.sampled_from([7 * DAY, 8 * DAY, 31 * DAY, 61 * DAY]),
)
BLOWS = st.one_of(
    st.builds(pr.Blow, st.just("sober"), st.integers(0, 199)),
    st.builds(pr.Blow, st.just("drunk"), st.integers(200, 1500)),
    st.builds(pr.Blow, st.sampled_from(["low_volume", "too_hot", "too_cold", "stopped_early"]), st.integers(0, 1500)),
)
DRIVING = st.one_of(
    st.builds(pr.Ignition, st.booleans()),
    BLOWS,
    st.builds(pr.Refuse, st.booleans()),
    st.builds(pr.Advance, st.integers(1, 20 * 60)),
)
TIME = st.one_of(
    st.builds(pr.Advance, SECONDS),
    st.builds(
        pr.AdvancePast,
        st.sampled_from(["recall", "unlock", "hold", "retest", "service", "calibration", "code_wait", "next"]),
    ),
    st.builds(pr.SetTime, st.one_of(st.integers(-20 * DAY, -1), st.integers(1, 20 * DAY))),
)
AUTHORITY = st.one_of(
    st.builds(pr.Billing, st.sampled_from(["recall", "lockout", "clear"]), st.integers(0, 14)),
    st.builds(pr.Billing, st.sampled_from(["recall", "lockout", "clear"]), st.just(7), st.just("late_fee")),
    st.builds(pr.Unlock, st.one_of(st.just(0), st.integers(60, 2 * DAY))),
    st.builds(pr.Code, st.sampled_from(["unlock", "clear"]), st.booleans()),
    st.builds(pr.Keys, st.text(alphabet="0123456789*#ABCD", min_size=1, max_size=12)),
    st.builds(
        pr.Forged,
        st.sampled_from(["bad_signature", "other_serial", "expired", "not_yet_valid", "out_of_scope", "replay"]),
        st.sampled_from(["unlock", "clear", "service", "work_order"]),
    ),
)
SERVICE = st.one_of(
    st.builds(pr.ServiceOpen),
    st.builds(pr.ServiceClose, st.integers(1, 90), st.booleans()),
    st.builds(
        pr.Calibrate,
        st.sampled_from(["as_found", "adjust", "check", "check", "finish"]),
        st.sampled_from([250, 300, 400, 500, 550]),
        st.sampled_from([-30, -5, 0, 5, 30]),
    ),
    st.builds(pr.WorkOrder, st.sampled_from(["installation", "removal", "exchange", "vehicle_switch"])),
)
TROUBLE = st.one_of(
    st.builds(pr.Tamper, st.integers(1, 4)),
    st.builds(pr.SensorCable, st.booleans()),
)


class DeviceWalk(RuleBasedStateMachine):
    @initialize(seed=st.integers(1, 1 << 20), log_segments=st.sampled_from([0, 0, 10, 16]))
    def install(self, seed, log_segments):
        self.rig = pr.PropertyRig(seed, log_segments)
        device = self.rig.device
        assert device.compliance.state == "normal", device.compliance.state
        self.rig.seen.clear()
        self.config = self.rig.config
        self.ignition = False
        self.stall = None  # boot second the engine last stopped from engine_enabled
        self.fails = []  # run seconds of the failed start tests (the walk's own record)
        self.hold_end = None  # [wall, run] the temporary lockout may end at, by the walk's count
        self.compliance_ref = Reference("compliance", device.compliance.state)
        self.session_ref = Reference("session", device.session.state)

    # -- rules
    @rule(action=DRIVING)
    def drive(self, action):
        self.step(action)

    # the driver's usual moves, taken when they mean something (whole steps each, each checked)
    @precondition(lambda self: self.rig.device.session.state == "ignition_off")
    @rule(blow=BLOWS)
    def start(self, blow):
        """Ignition on, wait out the purge, blow."""
        self.step(pr.Ignition(True))
        self.step(pr.Advance(self.config.purge_s))
        self.step(blow)

    @precondition(lambda self: self.rig.device.session.state in TESTING)
    @rule(blow=BLOWS)
    def blow(self, blow):
        self.step(blow)

    @precondition(lambda self: self.rig.device.session.state in DRIVING_STATES)
    @rule(answer=st.one_of(st.none(), BLOWS, st.builds(pr.Refuse, st.booleans())))
    def retest(self, answer):
        """Drive on to the next retest (or to the end of its window), then blow, refuse or not."""
        self.step(pr.AdvancePast("retest"))
        if answer is not None:
            self.step(answer)

    @precondition(lambda self: self.rig.device.session.state in pr.RELAY_CLOSED)
    @rule(wait=st.one_of(st.none(), st.integers(0, 240)))
    def stop(self, wait):
        """The driver switches off; with `wait`, on again that many seconds later (a stall)."""
        self.step(pr.Ignition(False))
        if wait is not None:
            if wait:
                self.step(pr.Advance(wait))
            self.step(pr.Ignition(True))

    @precondition(lambda self: self.rig.device.session.state == "temporary_lockout")
    @rule(blow=st.one_of(st.builds(pr.Blow, st.just("drunk"), st.integers(200, 1500)), BLOWS))
    def retry(self, blow):
        """Wait out a temporary lockout with the ignition on and blow again (failed start
        tests in a row: the long lockout)."""
        if not self.ignition:
            self.step(pr.Ignition(True))
        self.step(pr.AdvancePast("hold"))
        self.step(blow)

    @precondition(
        lambda self: self.rig.device.session.state == "test_requested" and _ordinary_room(self.rig.device.log, 13) <= 12
    )
    @rule(blow=BLOWS)
    def last_room(self, blow):
        """A small log nearly full with a start test pending: the driver refuses until one
        ordinary record is left, then blows (the pass that takes the last room)."""
        log = self.rig.device.log
        while self.rig.device.session.state == "test_requested" and _ordinary_room(log, 2) > 1:
            self.step(pr.Refuse(False))
        self.step(blow)

    @precondition(lambda self: self.rig.device.compliance.state == "early_service_recall")
    @rule(days=st.integers(0, 14))
    def dunning(self, days):
        """The back office sends another recall while a countdown runs (the next invoice)."""
        self.step(pr.Billing("recall", days))

    @precondition(lambda self: self.rig.device.compliance.state == "lockout" or self.rig.device.causes & UNPAID)
    @rule(code=st.builds(pr.Code, st.sampled_from(["unlock", "clear"]), st.booleans()))
    def keypad(self, code):
        self.step(code)

    @rule(action=TIME)
    def time_passes(self, action):
        self.step(action)

    @rule(action=st.one_of(AUTHORITY, SERVICE, TROUBLE))
    def authority(self, action):
        """The back office, a technician, a tamper: whatever is not the driver."""
        self.step(action)

    @rule(off_s=st.one_of(st.just(0), st.integers(1, 2 * DAY)), cut=st.one_of(st.none(), st.integers(0, 300)))
    def reboot(self, off_s, cut):
        self.step(pr.Reboot(off_s, cut))

    @rule(action=st.one_of(DRIVING, AUTHORITY, SERVICE, TROUBLE), units=st.integers(0, 600))
    def power_cut_during(self, action, units):
        self.step(pr.CutDuring(action, units))

    # -- one step and its checks
    def step(self, action):
        rig = self.rig
        before = Snapshot(rig)
        old_relay = rig.relay
        inner = action.action if isinstance(action, pr.CutDuring) else action
        self.switched_on = isinstance(inner, pr.Ignition) and inner.on and not self.ignition
        if isinstance(inner, pr.Ignition):
            self.ignition = inner.on
        self.pass_needed = False
        outcome = action.run(rig)
        device = rig.device
        rebooted = device is not before.device
        seen, boots = _split(rig.seen)
        boot = [t for segment in boots for t in segment if isinstance(t, pr.Seen)]
        after = Snapshot(rig)

        self.check_names(after, seen + boot)
        self.follow(action, outcome, before, seen, boots, after)
        self.check_log(before, after, seen, boot, action)
        self.check_outputs(action, before, after, old_relay, seen + boot)
        self.check_compliance(action, outcome, before, after, seen + boot)
        self.check_tokens(action, outcome, before, after, seen, rebooted)
        self.check_time(action, before, after, seen + boot, rebooted)
        self.check_calibration(action, outcome, before, after)
        self.check_hold_kept(action, after, seen, rebooted)
        rig.seen.clear()

    # N1
    def check_names(self, after, seen):
        assert after.compliance in messages.COMPLIANCE_STATES, after.compliance
        assert after.session in messages.SESSION_STATES, after.session
        for t in seen:
            names = STATE_NAMES[t.machine]
            assert t.old in names and t.new in names, t

    # N2, N3, E2 (start paths), E3, C1
    def follow(self, action, outcome, before, seen, boots, after):
        assert self.compliance_ref.state == before.compliance, (
            "compliance is %s, the reference model is in %s" % (before.compliance, self.compliance_ref.state)
        )
        self.take_all(action, outcome, seen)
        # each boot restores the state before the step or one the step (or an earlier boot
        # that the power cut stopped) passed through: a cut loses at most the write it hit
        possible = [before.compliance] + [t.new for t in seen if t.machine == "compliance"]
        for segment in boots:
            restored = [e.compliance for e in segment if isinstance(e, pr.Restored)]
            assert len(restored) == 1, "a boot read its state %d times" % len(restored)
            restored = restored[0]
            assert restored in possible, "the boot restored %s; before the power cut: %s" % (restored, possible)
            if before.compliance == "lockout" and not action.lifts_lockout:
                assert restored == "lockout", "a power cut turned a lockout into %s" % restored
            self.compliance_ref.put(restored)
            self.session_ref.put(MACHINES["session"][1])
            self.stall = None
            self.ignition = False  # the power went: the driver switches on again
            taken = [t for t in segment if isinstance(t, pr.Seen)]
            self.take_all(pr.Reboot(0), "ok", taken)
            possible += [t.new for t in taken if t.machine == "compliance"]
        assert self.compliance_ref.state == after.compliance, (
            "after %r compliance is %s; the reference model says %s" % (action, after.compliance, self.compliance_ref.state)
        )
        assert self.session_ref.state == after.session, (
            "after %r the session is %s; the reference model says %s" % (action, after.session, self.session_ref.state)
        )

    def take_all(self, action, outcome, seen):
        for t in seen:
            ref = self.compliance_ref if t.machine == "compliance" else self.session_ref
            assert ref.state == t.old, "%r left %s but the reference model was in %s" % (t, t.old, ref.state)
            assert t.trigger in action.allowed_triggers(t.machine), "%r may not fire %s (%r)" % (action, t.trigger, t)
            if t.old == "test_requested" and t.trigger == "sample_fail":
                self.fails = (self.fails + [t.run])[-self.config.fails_for_long :]
            got = ref.take(t.trigger, lambda guard, t=t: self.oracle(guard, t))
            assert got == t.new, "%r: the table in `transitions` goes to %s, the device went to %s" % (t, got, t.new)
            if t.machine == "compliance":
                self.check_lockout_exit(action, outcome, t)
            else:
                self.check_start(action, t)
                self.check_hold(t)
                if t.new == "ignition_off":
                    self.stall = t.boot_s if t.old == "engine_enabled" else None
        if isinstance(action, pr.WorkOrder) and action.order == "vehicle_switch" and outcome == "ok":
            self.stall = None

    def oracle(self, guard, t):
        allowed = t.compliance in pr.ALLOWS_START and t.log_room
        if guard == "start_allowed":
            return allowed and t.test_room
        if guard == "retry_allowed":
            return self.ignition and allowed and t.test_room
        if guard == "ignition_on":
            return self.ignition
        if guard == "free_restart":
            recent = self.stall is not None and t.boot_s - self.stall <= self.config.free_restart_s
            return self.ignition and allowed and recent
        if guard == "for_good":
            return t.open_ended
        if guard == "causes_left":
            return t.causes != 0
        if guard == "recall_expired":
            return t.causes != 0 and t.recall_passed
        if guard == "long_lockout":
            since = t.run - self.config.fails_window_s
            return len([at for at in self.fails if at >= since]) >= self.config.fails_for_long
        raise AssertionError("the reference model has no oracle for guard %r: teach test_device_properties.py" % guard)

    def check_start(self, action, t):
        if t.old in START_SOURCES and t.new in START_DESTS:
            assert t.compliance in pr.ALLOWS_START, "%r started while compliance was %s (%r)" % (action, t.compliance, t)
            if t.old != "test_requested":  # a pass is judged before its own record takes the room
                assert t.log_room, "%r started with no room in the log for its test (%r)" % (action, t)
        if t.new == "engine_enabled" and t.old == "test_requested":
            inner = action.action if isinstance(action, pr.CutDuring) else action
            assert isinstance(inner, pr.Blow) and inner.kind == "sober", "engine enabled without a passing test: %r" % action
            assert inner.brac < self.config.set_point
            self.pass_needed = True  # check_log: the step logged its test_pass

    # E7
    def check_hold(self, t):
        config = self.config
        if t.old == "test_requested" and t.new == "temporary_lockout":
            long = self.oracle("long_lockout", t)
            assert (t.cause == "repeated_fails") == long, "fail %d of %r in the window, cause %s" % (
                len(self.fails), self.fails, t.cause)
            seconds = config.temp_lockout_long_s if long else config.temp_lockout_s
            self.hold_end = [t.judged + seconds, t.run + seconds]
        elif t.old == "temporary_lockout":
            end = self.hold_end
            early = end is not None and t.judged < end[0] and t.run < end[1]
            assert not early, "a temporary lockout ended %d s early (%r)" % (min(end[0] - t.judged, end[1] - t.run), t)
            self.hold_end = None

    def check_hold_kept(self, action, after, seen, rebooted):
        device = self.rig.device
        if rebooted and [t for t in seen if t.trigger == "sample_fail" or t.new == "temporary_lockout"]:
            # the power went while the fail was being written: it may be lost, whole
            self.fails = list(device.fails)
            held = after.session == "temporary_lockout" and device.hold is not None
            self.hold_end = list(device.hold) if held else None
        end = self.hold_end
        if end is None or pr.judged_now(device) >= end[0] or device.tb.run() >= end[1]:
            return  # no temporary lockout, or its time is up (the next timers end it)
        assert after.session == "temporary_lockout", "%r: a temporary lockout with time left, session %s" % (
            action, after.session)
        hold = device.hold
        assert hold is not None and hold[0] >= end[0] and hold[1] >= end[1], "%r: the temporary lockout ends at %r, not %r" % (
            action, hold, end)

    def check_lockout_exit(self, action, outcome, t):
        if t.old == "lockout":
            accepted = outcome in ("ok", "cut")
            assert accepted and t.trigger in action.lifts_lockout, "%r ended a lockout (%r)" % (action, t)
            if t.trigger == "clear":
                assert t.causes == 0, "a clear left causes %d and ended the lockout" % t.causes
        if t.old == "removed":
            assert isinstance(action.action if isinstance(action, pr.CutDuring) else action, pr.WorkOrder)
            assert t.trigger == "install", t

    # N4, P3
    def check_log(self, before, after, seen, boot, action):
        rig = self.rig
        log = rig.device.log
        records = rig.records_since(0)
        assert len(records) == log.count, "the log holds %d records, says %d" % (len(records), log.count)
        prev = eventlog.GENESIS if log.first == 0 else None
        broken = eventlog.verify_chain(records, prev, log.first, log.head_hash)
        assert broken is None, "the event log does not verify: %r" % (broken,)
        for record in records:
            assert record[10] < len(messages.COMPLIANCE_STATES) or record[10] == eventlog.NO_STATE
            assert record[11] < len(messages.SESSION_STATES) or record[11] == eventlog.NO_STATE
        assert log.head >= before.head, "the log lost committed records: head %d < %d" % (log.head, before.head)
        if before.head and before.head - 1 >= log.first:
            kept = log.read(before.head - 1)
            assert kept is not None and eventlog.record_hash(kept) == before.head_hash, "a committed record changed"
        if self.pass_needed:
            kinds = [r[9] for r in rig.records_since(before.head)]
            assert eventlog.TEST_PASS in kinds, "%r started the engine; its test is not in the log" % action
        if after.device is not before.device:
            assert log.damaged == 0, "the boot found %d damaged records" % log.damaged
        cut = isinstance(action, pr.CutDuring) or getattr(action, "cut", None) is not None
        if not cut and after.refused == 0 and (after.device is not before.device or before.refused == 0):
            logged = []
            for record in rig.records_since(before.head):
                kind = record[9]
                if kind == eventlog.COMPLIANCE_CHANGE or kind == eventlog.SESSION_CHANGE:
                    logged.append(eventlog.decode_record(record)["detail"])
            taken = [t.text() for t in seen + boot]
            assert logged == taken, "the log says %r, the device took %r" % (logged, taken)

    # E1, E2, E4, E5, E6
    def check_outputs(self, action, before, after, old_relay, seen):
        rig = self.rig
        relay = after.session in pr.RELAY_CLOSED
        assert rig.relay.on == relay, "relay %s in session %s" % (rig.relay.on, after.session)
        assert rig.alarm.on == (after.session == "violation"), "alarm %s in session %s" % (rig.alarm.on, after.session)
        if rig.relay.on:
            assert self.ignition, "the relay is closed with the ignition off"
        if not self.ignition:
            assert after.session in ("ignition_off", "temporary_lockout"), "ignition off, session %s" % after.session
        if after.session == "test_requested":
            assert after.compliance in pr.ALLOWS_START, "%r: a start test pending in %s" % (action, after.compliance)
            assert after.log_room, "%r: a start test pending that the log has no room to record" % action
        closed, opened = _edges(old_relay.values, before.relay_values, before.relay)
        if rig.relay is not old_relay:
            closed_new, _ = _edges(rig.relay.values, 0, False)
            closed = closed or closed_new
        if closed:
            starts = [t for t in seen if t.new == "engine_enabled" and t.old in ("test_requested", "ignition_off")]
            assert starts, "%r closed the relay without a start (%r)" % (action, seen)
        if opened:
            assert action.stops_engine, "%r opened the relay while driving (%r)" % (action, seen)
        inner = action.action if isinstance(action, pr.CutDuring) else action
        if self.switched_on and action is inner:
            # (the start attempt's and the transition's own records may take the log's last
            # room for a test)
            if before.session == "ignition_off" and before.compliance in pr.ALLOWS_START and device_room(self.rig, 1):
                assert after.session in START_DESTS, "ignition on with starts allowed: %s" % after.session
        if isinstance(inner, pr.Blow) and inner is action and inner.kind == "sober" and before.session == "test_requested":
            if before.compliance in pr.ALLOWS_START and before.log_room and before.sensor and not before.purging:
                assert after.session == "engine_enabled", "a sober blow with starts allowed: %s" % after.session

    # C1 (state), C2, C3, C4
    def check_compliance(self, action, outcome, before, after, seen):
        device = self.rig.device
        assert after.causes & ~ALL_CAUSES == 0, "unknown cause bits %d" % after.causes
        if not action.clears_causes:
            lost = before.causes & ~after.causes
            assert not lost, "%r cleared causes %d" % (action, lost)
        if before.compliance == "lockout" and not action.lifts_lockout:
            assert after.compliance == "lockout", "%r turned a lockout into %s" % (action, after.compliance)
        if after.compliance in ("early_service_recall", "lockout"):
            assert after.causes, "%s without a cause" % after.compliance
        if after.compliance == "early_service_recall":
            assert device.recall_deadline is not None, "a recall without a deadline"
        if action.timed:
            # the timers ran: whatever is overdue (a cause the same step added after them may
            # start a recall whose time is already up) is due at once
            overdue = []
            if after.compliance == "early_service_recall" and _quietly(device, device.recall_left) == 0:
                overdue.append("a recall past its deadline")
            if after.compliance == "code_unlock" and device.unlock_until is not None and _quietly(device, device.override_left) == 0:
                overdue.append("an unlock window past its end")
            if after.session == "temporary_lockout" and _quietly(device, device.hold_left) == 0:
                overdue.append("a temporary lockout past its end")
            if after.session in ("retest_due", "retest_in_progress") and _quietly(device, device.retest_left) == 0:
                overdue.append("a retest past its window")
            if overdue:
                due = _quietly(device, device.next_deadline, False)
                assert due is not None and due <= device.tb.mono_ms + 1, "%s, not due (%r)" % (overdue, due)

    # T1, T2
    def check_tokens(self, action, outcome, before, after, seen, rebooted):
        inner = action.action if isinstance(action, pr.CutDuring) else action
        if isinstance(inner, pr.Forged):
            assert outcome.startswith("refused") or outcome == "cut", "%r was accepted" % action
        if outcome.startswith("refused"):
            assert not seen, "a refused %r took %r" % (action, seen)
            if rebooted:
                return  # the boot may take its own transitions (C2 and P2 cover it)
            assert (after.compliance, after.session, after.causes) == (before.compliance, before.session, before.causes)
            for name in DEADLINES:
                old, new = before.deadlines[name], after.deadlines[name]
                assert (old and old[0]) == (new and new[0]), "a refused %r changed %s" % (action, name)

    # P1
    def check_time(self, action, before, after, seen, rebooted):
        for name in DEADLINES:
            old, new = before.deadlines[name], after.deadlines[name]
            if old is None or new is None or old[0] != new[0]:
                continue
            _pair, left, wall_left, run_left = old
            if rebooted:
                bound = min(wall_left, run_left + self.config.run_save_s)
            else:
                bound = left
            assert new[1] <= max(bound, 0), "%r moved %s from %d s to %d s away" % (action, name, left, new[1])
        if before.compliance == after.compliance == "early_service_recall":
            if not [t for t in seen if t.machine == "compliance"]:
                old, new = before.deadlines["recall_deadline"], after.deadlines["recall_deadline"]
                bound = min(old[2], old[3] + self.config.run_save_s) if rebooted else old[1]
                assert new[1] <= max(bound, 0), "%r lengthened the recall from %d s to %d s" % (action, old[1], new[1])

    # C5
    def check_calibration(self, action, outcome, before, after):
        device = self.rig.device
        inner = action.action if isinstance(action, pr.CutDuring) else action
        if after.gain != before.gain:
            assert isinstance(inner, pr.Calibrate) and inner.step == "finish", "%r changed the gain" % action
            kinds = [r[9] for r in self.rig.records_since(before.head)]
            assert eventlog.CAL_PASS in kinds, "the gain changed without a passing calibration"
        if action is inner and isinstance(action, pr.Calibrate) and action.step == "finish" and outcome == "ok":
            if after.gain == before.gain:
                kinds = [r[9] for r in self.rig.records_since(before.head)]
                assert eventlog.CAL_PASS in kinds or after.causes & CALIBRATION_FAILED
        if action is inner and isinstance(action, pr.ServiceClose) and outcome == "ok" and before.cal_open:
            assert device.causes & CALIBRATION_FAILED, "a service closed mid-calibration without calibration_failed"


DEFAULT = settings(
    max_examples=100,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestDeviceWalk = DeviceWalk.TestCase
TestDeviceWalk.settings = DEFAULT


@pytest.mark.soak
def test_device_walk_soak():
    run_state_machine_as_test(
        DeviceWalk,
        settings=settings(
            DEFAULT,
            max_examples=2000,
            stateful_step_count=120,
        ),
    )


# ---- the walk's findings, replayed step by step through the same checks -------------------------
def test_walk_no_start_in_a_service_session():
    """Review finding: a service session let a locked-out vehicle start (E3, N2)."""
    walk = DeviceWalk()
    walk.install(seed=1, log_segments=0)
    walk.authority(pr.Billing("lockout"))
    walk.authority(pr.ServiceOpen())
    walk.start(pr.Blow("sober", 0))
    assert not walk.rig.relay.on


def test_walk_a_hold_ending_in_a_lockout_opens_no_test():
    """Review finding: a temporary lockout ending with the ignition on while compliance was
    lockout led to test_requested and a start (N2, E3)."""
    walk = DeviceWalk()
    walk.install(seed=1, log_segments=0)
    walk.authority(pr.Billing("recall", 7))
    walk.time_passes(pr.Advance(7 * DAY - 120))
    walk.start(pr.Blow("drunk", 500))
    walk.time_passes(pr.Advance(600))
    assert walk.rig.device.compliance.state == "lockout"
    walk.drive(pr.Blow("sober", 0))
    assert not walk.rig.relay.on


def test_walk_power_off_time_is_not_undone_by_setting_the_clock_back():
    """Walk finding (fixed by the TimeBase high-water mark): two days powered off, then the
    clock set back two days, gave the recall its two days back (P1)."""
    walk = DeviceWalk()
    walk.install(seed=1, log_segments=0)
    walk.authority(pr.Billing("recall", 7))
    walk.reboot(off_s=2 * DAY, cut=None)
    walk.time_passes(pr.SetTime(-2 * DAY))
    assert walk.rig.device.recall_left() <= 5 * DAY


def test_walk_a_clock_set_forward_then_back_gives_no_recall_time_back():
    """Walk finding: the TimeBase's wall-clock high-water mark moves only when something
    reads a deadline; with a start test pending nothing does (the screen shows the test),
    so a recall with 7 days left, the clock set forward 2 days (5 days left) and back again
    has 7 days left once more (P1: moving the clock back extended the recall deadline)."""
    walk = DeviceWalk()
    walk.install(seed=1, log_segments=0)
    walk.authority(pr.Billing("recall", 7))
    walk.drive(pr.Ignition(True))
    walk.time_passes(pr.SetTime(2 * DAY))
    walk.time_passes(pr.SetTime(-2 * DAY))
    assert walk.rig.device.recall_left() <= 5 * DAY


def test_walk_a_removed_unit_keeps_its_power_off_time():
    """Walk finding: a removed unit reads no deadline, so its wall-clock high-water mark is
    not moved at boot; three days powered off, then the clock set back three days, gives its
    calibration date (kept for the next installation) and service date three days back (P1)."""
    walk = DeviceWalk()
    walk.install(seed=1, log_segments=0)
    walk.authority(pr.WorkOrder("removal"))
    walk.reboot(off_s=3 * DAY, cut=None)
    walk.time_passes(pr.SetTime(-3 * DAY))
    device = walk.rig.device
    assert device.tb.left(device.calibration_due) <= 57 * DAY


def test_walk_a_pass_in_the_logs_last_room_starts_the_engine():
    """Walk finding: with the log one ordinary record short of its reserve, a sober start
    test takes the last room with its test_pass and must start the engine (E2, E6): the
    test is recorded, so nothing forbids the start. The unit: 10 segments of 4 records, a
    reserve of 4; refusals of the pending test (one test_refused record each) fill the log
    to that point."""
    walk = DeviceWalk()
    walk.install(seed=1, log_segments=10)
    walk.drive(pr.Ignition(True))
    log = walk.rig.device.log
    while _ordinary_room(log) > 1:
        walk.drive(pr.Refuse(False))
    assert walk.rig.device.session.state == "test_requested"
    head = log.head
    walk.drive(pr.Blow("sober", 0))
    kinds = [r[9] for r in walk.rig.records_since(head)]
    assert kinds[0] == eventlog.TEST_PASS, kinds
    assert log.full() and walk.rig.relay.on


def test_walk_tokens_are_judged_by_the_clock_the_device_keeps():
    """Soak finding (the walk's model, not the core): the walk minted its tokens around the
    raw wall clock; after the clock was set back two hours, a token "not yet valid" by that
    clock (valid from an hour ahead) was valid by the high-water clock the device judges
    tokens by (STATUS now, docs/security.md), was rightly accepted, and the walk called it a
    forgery that removed the unit (T2, N3). Tokens are now minted around STATUS now: a
    forged one stays forged and a genuine one is accepted after a clock set back."""
    walk = DeviceWalk()
    walk.install(seed=1, log_segments=0)
    walk.time_passes(pr.SetTime(-2 * HOUR))
    walk.authority(pr.Forged("not_yet_valid", "work_order"))
    assert walk.rig.device.compliance.state == "normal"
    walk.time_passes(pr.SetTime(-2 * DAY))
    walk.authority(pr.Billing("recall", 7))
    assert walk.rig.device.compliance.state == "early_service_recall"


def test_walk_no_start_test_that_the_log_cannot_record():
    """Walk finding (E5, N2): with the log three ordinary records short of its reserve, the
    ignition switched off and on again asked for a start test that the log could not
    record: the start attempt took one room, the transition into test_requested the last
    one, and the driver was asked to blow a test whose pass or fail would go unrecorded.
    Every start test is recorded: no test is asked for that the log cannot take."""
    walk = DeviceWalk()
    walk.install(seed=1, log_segments=10)
    walk.drive(pr.Ignition(True))
    log = walk.rig.device.log
    while _ordinary_room(log) > 3:
        walk.drive(pr.Refuse(False))
    walk.drive(pr.Ignition(False))
    walk.drive(pr.Ignition(True))
    assert walk.rig.device.session.state == "ignition_off"


def test_walk_an_abort_that_takes_the_last_room_ends_the_test():
    """Walk finding (E5): with one ordinary record left, an aborted start test (too little
    air) took it; the handset went on asking for a blow whose result could not be recorded.
    The test ends there (starts_blocked) and the engine stays off."""
    walk = DeviceWalk()
    walk.install(seed=1, log_segments=10)
    walk.drive(pr.Ignition(True))
    log = walk.rig.device.log
    while _ordinary_room(log) > 1:
        walk.drive(pr.Refuse(False))
    walk.drive(pr.Blow("low_volume", 0))
    assert walk.rig.device.session.state == "ignition_off" and not walk.rig.relay.on
    walk.drive(pr.Blow("sober", 0))
    assert not walk.rig.relay.on
