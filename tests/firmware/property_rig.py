"""The bench of the device property walk (tests/firmware/test_device_properties.py), CPython only.

What it owns:
- `WatchedDevice`: the real firmware.device.Device that also notes, in the rig's `seen`
  list, each boot (BOOT), the compliance state each boot read back from flash
  (`Restored`) and every transition as it is taken (`Seen`), with what could be observed
  at that moment (the other machine's state, the recall causes, the clocks, whether an
  unlock window is open-ended, whether the recall deadline had passed, whether the log
  had room for a breath-test record); a boot that a
  power cut stops half way is noted too;
- `PropertyRig`: tests/firmware/device_rig.py's Rig (virtual clock, RAM flash that can
  lose power, the authority double) built with a WatchedDevice, installed under a work
  order that expires like a real one, with power cuts at a chosen write unit, also while
  booting;
- the walk's actions, one small class each, with a readable repr (hypothesis prints them
  in a minimal failing sequence) and `run(rig)`, which does the thing and returns
  "ok" or "refused <NACK code>". Each action also says what it is entitled to do:
  `compliance_triggers` / `session_triggers` (the table triggers it may fire),
  `lifts_lockout` (the triggers by which it may end a lockout when it was accepted) and
  `clears_causes` (it may remove recall causes).

Tokens are minted like the back office's and the technician's (valid from an hour before
the device's clock — STATUS `now`, the clock tokens are judged by — to a day after it), so the replay records behave as in the field: the
rig's own helpers mint tokens that never expire, which would raise the replay floor to
the end of time once 32 of them were used.

Nothing here judges the device; the invariants are in the test module.
"""

from firmware import eventlog, hal
from firmware.device import Device
from firmware.handler import Handler
from firmware.ramflash import PowerCut
from protocol import messages
from protocol.coretime import HOUR
from protocol.endpoint import Refused
from tests.firmware.authority_double import AuthorityDouble, answer, mint
from tests.firmware.device_rig import DAY, Clock, Lcg, Out, Rig, Screen, Sensor, directive_args

VIN = "1HGCM82633A004352"

# compliance states in which a vehicle may start (a lockout, a unit not
# installed and an open technician session do not)
ALLOWS_START = ("normal", "early_service_recall", "code_unlock")
RELAY_CLOSED = ("engine_enabled", "retest_due", "retest_in_progress", "violation")

# triggers that only the device's own timers (Device.step) fire
TIMED_COMPLIANCE = ("expire", "window_end")
TIMED_SESSION = ("ignition_on", "retest", "timeout", "lockout_end")
# triggers any input may fire: a new recall cause (a log nearly full, a violation, a tamper)
# and the session's answer to starts becoming forbidden
ANY_COMPLIANCE = ("recall",)
ANY_SESSION = ("blocked",)


def judged_now(device):
    """The wall clock the device measures deadlines and judges tokens by (STATUS `now`: never
    behind its high-water mark), read without moving the mark."""
    tb = device.tb
    saved = dict(tb.__dict__)
    try:
        return tb.deadline_wall()
    finally:
        tb.__dict__.clear()
        tb.__dict__.update(saved)


class Seen:
    """One transition as the device took it, and what was observable at that moment."""

    def __init__(self, device, machine, old, row, cause):
        self.machine = machine  # "compliance" or "session"
        self.old = old
        self.row = row
        self.new = row[3]
        self.trigger = row[2]
        self.cause = cause
        self.compliance = device.compliance.state  # for a compliance row: already the new state
        self.session = device.session.state
        self.causes = device.causes
        self.log_room = device.log.accepting(eventlog.TEST_PASS)  # a breath test could be logged
        # ... and still after this transition's own record (a test asked for now is recordable)
        self.test_room = device.log.accepting(eventlog.TEST_PASS, 1)
        self.open_ended = device.unlock_until is None
        deadline = device.recall_deadline
        self.recall_passed = deadline is not None and device.tb.left(deadline) == 0
        self.boot_s = device.hw.clock.monotonic_ms() // 1000  # seconds since this boot (rig clock)
        self.wall = device.hw.clock.now()
        self.run = device.tb.run()  # the device's run clock (carried across boots)
        self.judged = judged_now(device)  # the wall clock deadlines are measured by

    def text(self):
        return "%s>%s %s" % (self.old, self.new, self.cause)

    def __repr__(self):
        return "<%s %s by %s>" % (self.machine, self.text(), self.trigger)


BOOT = "boot"  # in PropertyRig.seen: a Device is being built (a boot begins)


class Restored:
    """In PropertyRig.seen: the compliance state a boot read back from flash."""

    def __init__(self, compliance):
        self.compliance = compliance

    def __repr__(self):
        return "<restored %s>" % self.compliance


class WatchedDevice(Device):
    """A Device that notes its boot, what it restored and every transition in `seen`."""

    def __init__(self, seen, *args, **kwargs):
        self.seen = seen
        self.booting = True
        seen.append(BOOT)
        Device.__init__(self, *args, **kwargs)
        self.booting = False

    def _restore(self, saved):
        Device._restore(self, saved)
        if self.booting:
            self.seen.append(Restored(self.compliance.state))

    def _changed(self, machine, old, row, cause):
        self.seen.append(Seen(self, machine.name, old, row, cause))
        Device._changed(self, machine, old, row, cause)


class PropertyRig(Rig):
    def __init__(self, seed=1, log_segments=0):
        self.seen = []  # BOOT, Restored and Seen entries, in order, across boots
        Rig.__init__(self, seed=seed, log_segments=log_segments, install=False)
        self.last_token = None  # the bytes of the last token the device accepted (for replays)
        WorkOrder("installation").run(self)

    def build(self):
        """Rig.build with a WatchedDevice (Rig.build names firmware.device.Device itself)."""
        self.relay = Out()
        self.alarm = Out()
        self.screen = Screen()
        self.sensor = Sensor()
        self.hw = hal.Hardware(
            clock=self.clock,
            relay=self.relay,
            alarm=self.alarm,
            display=self.screen,
            sensor=self.sensor,
            storage=self.flash,
            random=Lcg(self.seed),
            board="test",
        )
        self.hw.serial.write = self._wrote
        self.hw.caps = self.caps
        log = None
        if self.log_segments:
            log = eventlog.EventLog(self.flash, records_per_segment=4, max_segments=self.log_segments, reserve=4)
        self.device = WatchedDevice(self.seen, self.hw, self.config, make_authority=AuthorityDouble, log=log)
        Handler(self.device)  # the protocol side, wired as firmware/main.py does
        self.device.step(self.clock.ms)

    def reboot(self, off_s=0, cut=None):
        """Power off for off_s seconds, then boot; with `cut`, the power goes again after
        that many write units of the boot, and the unit boots once more."""
        if cut is None:
            Rig.reboot(self, off_s)
            return
        self.flash.power_on()
        self.flash.cut_after(cut)
        self.clock = Clock(self.clock.wall + off_s)
        try:
            self.build()
        except PowerCut:
            pass
        Rig.reboot(self, 0)

    def judged_now(self):
        return judged_now(self.device)

    def apply(self, action, args=None, key="root", bound=False, **kw):
        """Mint a token valid around the device's clock and apply it; "ok" or raises Refused."""
        wall = self.judged_now()
        kw.setdefault("issued", wall - HOUR)
        kw.setdefault("expires", wall + DAY)
        args = directive_args(self.device, action, args)
        data = mint(action, args, key=key, nonce=self.nonce() if bound else None, **kw)
        self.device.apply_token(data, self.nonce())
        self.last_token = data
        return "ok"

    def records_since(self, index):
        log = self.device.log
        out = []
        start = max(index, log.first)
        while start < log.head:
            page = log.records(start, log.head - start, messages.LOG_PAGE_BUDGET)
            if not page:
                break
            out.extend(page)
            start += len(page)
        return out


def _outcome(run):
    try:
        run()
    except Refused as refusal:
        return "refused %d" % refusal.code
    return "ok"


# ---- actions ----------------------------------------------------------------------------------
class Action:
    compliance_triggers = ()
    session_triggers = ()
    lifts_lockout = ()  # triggers by which this action, when accepted, may end a lockout
    clears_causes = False
    timed = False  # runs the device's timers (Device.step)
    stops_engine = False  # may open the relay (the driver switches the engine off)

    def __repr__(self):
        fields = ", ".join("%s=%r" % item for item in sorted(vars(self).items()))
        return "%s(%s)" % (type(self).__name__, fields)

    def allowed_triggers(self, machine):
        if machine == "compliance":
            extra = TIMED_COMPLIANCE if self.timed else ()
            return ANY_COMPLIANCE + extra + self.compliance_triggers
        extra = TIMED_SESSION if self.timed else ()
        return ANY_SESSION + extra + self.session_triggers


class Ignition(Action):
    def __init__(self, on):
        self.on = on
        self.session_triggers = ("ignition_on",) if on else ("ignition_off",)
        self.stops_engine = not on

    def run(self, rig):
        rig.device.ignition(self.on, rig.clock.ms)
        return "ok"


# (volume mL, temperature 0.1 C, complete) of each kind of blow
BLOWS = {
    "sober": (1800, 345, True),
    "drunk": (1800, 345, True),
    "low_volume": (900, 345, True),
    "too_hot": (1800, 480, True),
    "too_cold": (1800, 200, True),
    "stopped_early": (1800, 345, False),
}


class Blow(Action):
    session_triggers = ("sample_pass", "sample_fail", "sample_abort")

    def __init__(self, kind, brac):
        self.kind = kind
        self.brac = brac  # true BrAC, 0.0001 g/210L (the sensor assumed calibrated)

    def run(self, rig):
        volume, temperature, complete = BLOWS[self.kind]
        device = rig.device
        if complete:
            device.bench_blow(self.brac, volume, temperature)
        else:
            fuel_cell = (self.brac * 10000 + device.gain // 2) // device.gain
            device.breath(hal.BreathSample(volume, temperature, fuel_cell, False), rig.clock.ms)
        return "ok"


class Refuse(Action):
    session_triggers = ("refuse",)

    def __init__(self, by_key):
        self.by_key = by_key  # '*' on the keypad, or the refuse event

    def run(self, rig):
        if self.by_key:
            rig.keys("*")
        else:
            rig.device.refuse(rig.clock.ms)
        return "ok"


class Tamper(Action):
    def __init__(self, kind):
        self.kind = kind

    def run(self, rig):
        rig.device.tamper(self.kind, rig.clock.ms)
        return "ok"


class SensorCable(Action):
    """The breath sensor's cable pulled or plugged back, then one step (the poll)."""

    timed = True

    def __init__(self, attached):
        self.attached = attached

    def run(self, rig):
        rig.sensor.attached = self.attached
        rig.device.step(rig.clock.ms)
        return "ok"


class Advance(Action):
    timed = True

    def __init__(self, seconds):
        self.seconds = seconds

    def run(self, rig):
        rig.advance(self.seconds)
        return "ok"


class AdvancePast(Action):
    """Let time run to one second past a deadline the device has now (or one second)."""

    timed = True

    def __init__(self, what):
        self.what = what  # recall, unlock, hold, retest, service, calibration, code_wait, next

    def seconds(self, device):
        tb = device.tb
        pick = {
            "recall": device.recall_deadline,
            "unlock": device.unlock_until,
            "hold": device.hold,
            "service": device.service_due,
            "calibration": device.calibration_due,
            "code_wait": device.codes.wait,
        }
        if self.what == "retest":
            if device.retest_end is not None:
                return device.retest_left() + 1
            if device.retest_at is not None:
                return max(0, device.retest_at - tb.run()) + 1
            return 1
        if self.what == "next":
            at = device.next_deadline(False)
            return 1 if at is None else max(0, at - tb.mono_ms) // 1000 + 1
        deadline = pick[self.what]
        return 1 if deadline is None else tb.left(deadline) + 1

    def run(self, rig):
        rig.advance(min(self.seconds(rig.device), 120 * DAY))
        return "ok"


class Billing(Action):
    """A signed billing directive from the back office."""

    def __init__(self, directive, days=7, cause="unpaid_balance"):
        self.directive = directive  # recall, lockout, clear
        self.days = days
        self.cause = cause
        self.compliance_triggers = {"recall": ("recall",), "lockout": ("lockout",), "clear": ("clear",)}[directive]
        self.lifts_lockout = ("clear",) if directive == "clear" else ()
        self.clears_causes = directive == "clear"

    def run(self, rig):
        args = {"cause": self.cause}
        if self.directive == "recall":
            args["days"] = self.days
        return _outcome(lambda: rig.apply(self.directive, args, key="billing"))


class Unlock(Action):
    """A technician's signed unlock token: for `seconds`, or for good (0)."""

    compliance_triggers = ("unlock_token",)
    lifts_lockout = ("unlock_token",)

    def __init__(self, seconds):
        self.seconds = seconds

    def run(self, rig):
        return _outcome(lambda: rig.apply("unlock", {"seconds": self.seconds}, key="tech"))


class Code(Action):
    """A keypad code: 'A' (unlock) or 'B' (clear) shows a request, then digits and '#':
    the provider's right answer, or a wrong one."""

    def __init__(self, action, right):
        self.action = action  # "unlock" or "clear"
        self.right = right
        trigger = "unlock_code" if action == "unlock" else "clear"
        self.compliance_triggers = (trigger,) if right else ()
        self.lifts_lockout = (trigger,) if right else ()
        self.clears_causes = right and action == "clear"

    def run(self, rig):
        rig.keys("A" if self.action == "unlock" else "B")
        pending = rig.device.codes.pending
        digits = "13579246"
        if pending is not None and self.right and pending["action"] == self.action:
            seq = rig.device.directive_seq if self.action == "clear" else None
            digits = answer(pending["request"], self.action, seq=seq)
            if digits == "13579246":
                digits = "24681357"
        rig.keys(digits + "#")
        return "ok"


class Keys(Action):
    """Keys pressed at random (a code that is not the provider's answer, a cancel, noise)."""

    session_triggers = ("refuse",)

    def __init__(self, text):
        self.text = text

    def run(self, rig):
        rig.keys(self.text)
        return "ok"


class ServiceOpen(Action):
    compliance_triggers = ("service_open",)
    lifts_lockout = ("service_open",)

    def run(self, rig):
        return _outcome(lambda: rig.apply("service", {}, key="tech", bound=True))


class ServiceClose(Action):
    compliance_triggers = ("service_close",)
    clears_causes = True

    def __init__(self, days, downloaded):
        self.days = days
        self.downloaded = downloaded  # the technician downloaded the whole log

    def run(self, rig):
        args = {
            "next_service": rig.clock.wall + self.days * DAY,
            "downloaded": rig.device.log.head if self.downloaded else 0,
        }
        return _outcome(lambda: rig.apply("service_close", args, key="tech", bound=True))


CAL_STEPS = {
    "as_found": messages.CAL_AS_FOUND,
    "adjust": messages.CAL_ADJUST,
    "check": messages.CAL_CHECK,
    "finish": messages.CAL_FINISH,
}


class Calibrate(Action):
    """One calibration step against dry gas of `reference`; the sensor reads it off by `drift_pct`."""

    def __init__(self, step, reference, drift_pct):
        self.step = step
        self.reference = reference
        self.drift_pct = drift_pct
        self.clears_causes = step == "finish"
        self.compliance_triggers = ("clear",) if step == "finish" else ()

    def run(self, rig):
        fuel_cell = self.reference * (100 + self.drift_pct) // 100
        rig.sensor.ready = hal.BreathSample(1800, 345, fuel_cell)
        result = _outcome(lambda: rig.device.calibrate(CAL_STEPS[self.step], self.reference))
        rig.sensor.ready = None  # a sample the step did not take is not left for a breath test
        return result


class SetTime(Action):
    """A technician's set-time token moving the wall clock by `delta` seconds."""

    def __init__(self, delta):
        self.delta = delta

    def run(self, rig):
        new = max(0, rig.clock.wall + self.delta)
        return _outcome(lambda: rig.apply("set_time", {"time": new}, key="tech", bound=True))


class WorkOrder(Action):
    def __init__(self, order):
        self.order = order
        if order == "installation":
            # causes carried over start a recall again, or the lockout their deadline set
            self.compliance_triggers = ("install", "recall", "lockout")
        elif order != "vehicle_switch":
            self.compliance_triggers = ("remove",)
            self.lifts_lockout = ("remove",)
        self.clears_causes = False  # a work order lifts no cause (firmware/lifts.py)

    def run(self, rig):
        args = {"order": self.order, "id": "WO-%d" % rig.clock.wall, "vehicle": VIN}
        return _outcome(lambda: rig.apply("work_order", args, key="office"))


class Forged(Action):
    """A token that must be refused: a bad signature, another unit's serial, expired, not yet
    valid, signed by a key without the scope, or a replay of the last token accepted."""

    def __init__(self, flaw, action):
        self.flaw = flaw
        self.action = action

    def run(self, rig):
        device = rig.device
        if self.flaw == "replay":
            if rig.last_token is None:
                return "ok"
            data = rig.last_token
            return _outcome(lambda: device.apply_token(data, rig.nonce()))
        args = {
            "unlock": {"seconds": 0},
            "clear": {"cause": "unpaid_balance"},
            "service": {},
            "work_order": {"order": "removal", "id": "WO-X", "vehicle": VIN},
        }[self.action]
        key = {"unlock": "tech", "clear": "billing", "service": "tech", "work_order": "office"}[self.action]
        # expired / not yet valid by the clock the device judges tokens by: after the wall
        # clock was set back, that clock is ahead of the wall clock
        wall = rig.judged_now()
        kw = {"issued": wall - HOUR, "expires": wall + DAY, "key": key}
        if self.flaw == "bad_signature":
            kw["sig"] = "forged"
        elif self.flaw == "other_serial":
            kw["serial"] = "LCI-9999"
        elif self.flaw == "expired":
            kw["issued"], kw["expires"] = wall - 2 * DAY, wall - DAY
        elif self.flaw == "not_yet_valid":
            kw["issued"], kw["expires"] = wall + HOUR, wall + DAY
        elif self.flaw == "out_of_scope":
            kw["key"] = "billing" if self.action == "work_order" else "office"
        if self.action == "service":
            kw["nonce"] = rig.nonce()
        data = mint(self.action, args, **kw)
        return _outcome(lambda: device.apply_token(data, rig.nonce()))


class Reboot(Action):
    """The power goes for off_s seconds (the wall clock runs on); with `cut`, it goes again
    after that many write units of the boot. The ignition is off afterwards."""

    timed = True  # the boot's first step runs the timers
    session_triggers = ("restore_lockout",)
    stops_engine = True

    def __init__(self, off_s, cut=None):
        self.off_s = off_s
        self.cut = cut

    def run(self, rig):
        rig.reboot(self.off_s, self.cut)
        return "ok"


class CutDuring(Action):
    """The power goes after `units` write units of `action` (or right after it, if it
    writes less), then the unit boots again."""

    stops_engine = True

    def __init__(self, action, units):
        self.action = action
        self.units = units
        self.compliance_triggers = action.compliance_triggers
        self.session_triggers = action.session_triggers
        self.lifts_lockout = action.lifts_lockout
        self.clears_causes = action.clears_causes
        self.timed = action.timed

    def run(self, rig):
        rig.flash.cut_after(self.units)
        try:
            outcome = self.action.run(rig)
        except PowerCut:
            outcome = "cut"
        rig.reboot(0)
        return outcome
