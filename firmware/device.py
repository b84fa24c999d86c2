"""The LCI-777 device core: its behaviour, driven by a clock and by events, through the HAL only.

`Device(hw, config, authority)` owns the two state machines (compliance and driving
session, rows in firmware/transitions_table.py), the breath-test policy, recalls and
lockouts by the device's own clock, keypad codes and signed tokens (through the
Authority), calibration, the event log and the power-safe state. It does no I/O of its
own: everything goes through `hw` (firmware/hal.py).

Driving it:
- `step(now_ms=None)`: advance to monotonic time now_ms (read from hw.clock when None),
  poll the HAL inputs, run the timers, update relay / alarm / display, serve the link;
- events, for a simulator or a board's interrupts: `ignition(on)`, `key(char)`,
  `breath(sample)`, `receive(bytes)`, `refuse()`, `tamper(kind)`;
- `next_deadline()`: the monotonic ms at which something will next happen by itself
  (None if nothing is scheduled), so a simulator can jump straight there.

Every transition is logged with its cause; every change that must survive a power cut is
saved atomically (firmware/persist.py) before the call returns. Deadlines are dual (see
firmware/timebase.py): setting the wall clock back never extends one.
"""

from binascii import hexlify, unhexlify

from firmware import breath, display_texts
from firmware import eventlog as ev
from firmware.calibration import Calibration
from firmware.config import DAY, Config
from firmware.eventlog import EventLog
from firmware.hal import BreathSample
from firmware.handler import Handler
from firmware.keypad import normalize
from firmware.lifts import (
    CALIBRATION_DUE,
    CALIBRATION_FAILED,
    LOG_FULL,
    SERVICE_DUE,
    TAMPER,
    UNPAID,
    VIOLATIONS,
    lifted_by_action,
    lifted_by_signer,
)
from firmware.machine import Machine
from firmware.override import CODE_ACTIONS, MAX_DIGITS, Codes
from firmware.persist import StateFile
from firmware.refusals import Refusals
from firmware.timebase import TimeBase
from firmware.transitions_table import DEST, MACHINES, ROWS
from protocol import errors, messages
from protocol.endpoint import Refused

FIRMWARE_VERSION = "0.1.0"

# recall causes: bits of STATUS.causes, in protocol.messages.CAUSES order (firmware/lifts.py,
# with the table of which scope may lift which)
CLEARED_BY_SERVICE = SERVICE_DUE | CALIBRATION_DUE | VIOLATIONS | TAMPER | LOG_FULL

RELAY_CLOSED = ("engine_enabled", "retest_due", "retest_in_progress", "violation")
# compliance states in which the vehicle may not start: a lockout, a unit not installed, and
# an open technician session (the handset is on the bench: the engine waits for the close)
NO_STARTS = ("lockout", "removed", "service")
WORK_ORDERS = ("installation", "removal", "exchange", "vehicle_switch", "handset_exchange")
TESTING = ("test_requested", "retest_due", "retest_in_progress")
LOCKED = ("lockout", "code_unlock")  # one lockout episode, overridden or not
DIRECTIVES = ("recall", "lockout", "clear")


def _cause_names(mask):
    out = []
    bit = 1
    while bit <= mask:
        if mask & bit:
            out.append(cause_name(bit))
        bit <<= 1
    return ",".join(out)


def cause_name(bit):
    i = 0
    while bit > 1:
        bit >>= 1
        i += 1
    return messages.CAUSES[i]


def _int_arg(args, name, low, high):
    value = args.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or value < low or value > high:
        raise Refused(errors.BAD_ARGUMENT, "%s must be an integer in %d..%d" % (name, low, high))
    return value


def _text_arg(args, name, longest=64):
    value = args.get(name, "")
    if not isinstance(value, str) or len(value) > longest:
        raise Refused(errors.BAD_ARGUMENT, "%s must be text of at most %d characters" % (name, longest))
    return value


class Device:
    def __init__(self, hw, config=None, authority=None, make_authority=None, log=None):
        self.hw = hw
        self.config = config or Config()
        self.authority = authority
        self.make_authority = make_authority
        self.tb = TimeBase(hw.clock)
        self.state_file = StateFile(hw.storage, "state")
        self.provision_file = StateFile(hw.storage, "provision")
        self.log = log or EventLog(hw.storage)
        self.on_event = None  # callable(kind, detail): the link sends EVENT frames
        # identity
        self.provisioned = False
        self.serial = ""
        # compliance
        self.compliance = Machine("compliance", ROWS, MACHINES["compliance"][1], self._guard, self._changed)
        self.causes = 0
        self.recall_deadline = None  # [wall, run] of the lockout a recall runs into
        self.unlock_until = None  # [wall, run] end of a code/token unlock; None = for good
        self.service_due = None
        self.calibration_due = None
        self.violations = 0
        self.gain = breath.GAIN_ONE
        self.calibrated_at = 0
        self.vehicle = ""
        self.codes = Codes(self.config)
        self.refusals = Refusals()  # keyless refusals counted in RAM (firmware/refusals.py)
        self._frames_dropped = 0  # the link's count of malformed frames already noted
        # replay records: the ids of tokens applied and their expiries, and a floor. A token
        # whose id is recorded, or whose expiry is at or below the floor, is a replay. A record
        # leaves only by raising the floor to its expiry (when it has expired, or to make room),
        # so a dropped record can never be replayed, not even with the clock set back.
        self.used_ids = []  # bytes, newest last
        self.used_expiry = []  # the expiry of each id (core seconds)
        self.replay_floor = 0
        # ids of session-bound tokens applied in the live USB session, kept for the session's
        # life (the records above may drop them for room; the floor does not cover them)
        self.session_ids = []
        # billing directives' order: the highest directive number applied (a recall or a
        # lockout's own, or the one a clear answered); older directives are SUPERSEDED
        self.directive_seq = 0
        self._scopes = None  # the scopes of the token being applied (None: the root)
        self.cal = None  # a Calibration in progress (service mode)
        self.cal_sample = None  # the last sample the sensor gave in service mode
        # driving session
        self.session = Machine("session", ROWS, MACHINES["session"][1], self._guard, self._changed)
        self.hold = None  # [wall, run] end of a temporary lockout
        self.fails = []  # run seconds of recent failed start tests
        self.retest_at = None  # run second the next retest is due
        self.retest_end = None  # run second the retest window closes
        self.stall_at = None  # run second the engine stopped (free restart), None = none
        self.purge_until = 0
        self.last_abort = ""
        self.running = False  # the engine was enabled (a power loss then is a tamper)
        # inputs and outputs as last seen / set
        self.ignition_on = False
        self._polled_ignition = False
        self._sensor_ok = True
        self._outputs = None
        self._screen = ("", "")
        self._screen_tick = 0
        self._dirty = False
        self._saved_run = 0
        self.reboot_requested = False  # a bench power cut was asked for (the simulator does it)
        self.link = Handler(self)  # the protocol side; it sets self.on_event
        self._boot()

    # ---- boot and persistence -------------------------------------------------------------
    def _boot(self):
        tb = self.tb
        found = self.provision_file.load()
        if found:
            self.provisioned = True
            self.serial = found["serial"]
            if self.authority is None:
                self.authority = self._build_authority(
                    self.serial, unhexlify(found["root"]), unhexlify(found["secret"])
                )
        saved = self.state_file.load()
        crashed = False
        if saved:
            self._restore(saved)
            tb.run_base = saved.get("run", 0)
            tb.high = saved.get("hw")
            crashed = saved.get("on", False)
        self._saved_run = tb.run()
        tb.deadline_wall()  # the wall time passed while off enters the high-water mark
        self._log(ev.BOOT, value=tb.run(), detail=FIRMWARE_VERSION)
        if crashed:
            self.running = False
            self._log(ev.POWER_LOSS, detail="power lost with the engine enabled")
            self.tamper(ev.TAMPER_POWER_LOST_RUNNING)
        if self.hold is not None:
            self.session.fire("restore_lockout")
        self._dirty = True
        self._commit()

    def _build_authority(self, serial, root_key, secret):
        maker = self.make_authority
        if maker is None:
            try:
                from firmware.authority import Authority

                maker = Authority
            except ImportError:
                return None
        try:
            return maker(serial, root_key, secret)  # the Authority's own settings are its defaults
        except (ValueError, TypeError):
            return None  # a key the Authority refuses: PROVISION says so, boot goes on without

    def _state(self):
        used = []
        for i in range(len(self.used_ids)):
            used.append([hexlify(self.used_ids[i]).decode(), self.used_expiry[i]])
        return {
            "c": self.compliance.state,
            "cz": self.causes,
            "rd": self.recall_deadline,
            "ul": self.unlock_until,
            "sd": self.service_due,
            "cd": self.calibration_due,
            "v": self.violations,
            "g": self.gain,
            "ca": self.calibrated_at,
            "veh": self.vehicle,
            "k": self.codes.state(),
            "u": used,
            "rf": self.replay_floor,
            "ds": self.directive_seq,
            "h": self.hold,
            "f": self.fails,
            "on": self.running,
            "run": self.tb.run(),
            "hw": self.tb.high,
        }

    def _restore(self, saved):
        state = saved.get("c", "removed")
        if state in MACHINES["compliance"][0]:
            self.compliance.state = state
        self.causes = saved.get("cz", 0)
        self.recall_deadline = saved.get("rd")
        self.unlock_until = saved.get("ul")
        self.service_due = saved.get("sd")
        self.calibration_due = saved.get("cd")
        self.violations = saved.get("v", 0)
        self.gain = saved.get("g", breath.GAIN_ONE)
        self.calibrated_at = saved.get("ca", 0)
        self.vehicle = saved.get("veh", "")
        self.codes.restore(saved.get("k", {}))
        self.used_ids = []
        self.used_expiry = []
        for entry in saved.get("u", []):
            self.used_ids.append(unhexlify(entry[0]))
            self.used_expiry.append(entry[1])
        self.replay_floor = saved.get("rf", 0)
        self.directive_seq = saved.get("ds", 0)
        self.hold = saved.get("h")
        self.fails = saved.get("f", [])
        self.running = saved.get("on", False)

    def _commit(self):
        """Save the state if it changed (or the run clock is due to be saved)."""
        run = self.tb.run()
        if self._dirty or run - self._saved_run >= self.config.run_save_s:
            self.state_file.save(self._state())
            self._dirty = False
            self._saved_run = run

    def _apply(self, change, *args):
        """Run `change(*args)` all or nothing: a Refused or a failed save restores the state."""
        before = self._state()
        session = self.session.state
        try:
            result = change(*args)
            self._test_recordable()
            self._dirty = True
            self._commit()
        except Refused:
            self._rollback(before, session)
            raise
        except OSError as exc:
            self._rollback(before, session)
            raise Refused(errors.STORAGE_FAILURE, str(exc))
        self._outputs_update()
        return result

    def _rollback(self, before, session):
        self._restore(before)
        self.session.state = session
        self._dirty = False

    # ---- logging and events ---------------------------------------------------------------
    def _log(self, kind, brac=None, value=0, detail=""):
        return self.log.append(
            self.tb.wall(), kind, brac, self.compliance.state, self.session.state, value, detail
        )

    def _emit(self, kind, detail=""):
        if self.on_event is not None:
            self.on_event(kind, detail)

    # ---- the state machines ----------------------------------------------------------------
    def _guard(self, name):
        if name == "start_allowed":
            return self.starts_allowed(1)
        if name == "free_restart":
            return (
                self.stall_at is not None
                and self.tb.run() - self.stall_at <= self.config.free_restart_s
                and self.starts_allowed()
            )
        if name == "long_lockout":
            since = self.tb.run() - self.config.fails_window_s
            recent = 0
            for at in self.fails:
                if at >= since:
                    recent += 1
            return recent >= self.config.fails_for_long
        if name == "ignition_on":
            return self.ignition_on
        if name == "retry_allowed":  # a temporary lockout ends with the ignition on
            return self.ignition_on and self.starts_allowed(1)
        if name == "for_good":
            return self.unlock_until is None
        if name == "causes_left":
            return self.causes != 0
        if name == "recall_expired":
            return self.causes != 0 and self.recall_deadline is not None and self.tb.left(self.recall_deadline) == 0
        raise ValueError("unknown guard %s" % name)

    def _changed(self, machine, old, row, cause):
        new = row[DEST]
        kind = ev.COMPLIANCE_CHANGE if machine is self.compliance else ev.SESSION_CHANGE
        self._log(kind, detail="%s>%s %s" % (old, new, cause))
        self._dirty = True
        if machine is self.compliance:
            self._enter_compliance(old, new)
        else:
            self._enter_session(old, new, cause)
        self._emit(messages.EV_STATE, "%s %s>%s %s" % (machine.name, old, new, cause))

    def _enter_compliance(self, old, new):
        if new == "early_service_recall" and self.recall_deadline is None:
            self.recall_deadline = self.tb.after(self.config.recall_s)
        elif new == "normal" or (new == "removed" and not self.causes):
            self.recall_deadline = None
            self.unlock_until = None
        elif new == "lockout" or new == "removed":
            self.unlock_until = None  # a removed unit keeps its causes and their deadline
        if old in LOCKED and new not in LOCKED:
            self.codes.pending = None  # a request code lives only as long as its lockout
        if old == "service":
            self.cal = None
            self.cal_sample = None
        if new in NO_STARTS and self.session.state == "test_requested":
            self.session.fire("blocked")

    def _enter_session(self, old, new, cause):
        run = self.tb.run()
        config = self.config
        self.last_abort = ""
        if new == "engine_enabled":
            if old == "ignition_off" or old == "test_requested":
                self.retest_at = run + self._random_between(config.retest_first_min_s, config.retest_first_max_s)
            else:
                self.retest_at = run + self._random_between(config.retest_next_min_s, config.retest_next_max_s)
            self.retest_end = None
            self.running = True
            if old == "test_requested":
                self._log(ev.ENGINE_START, detail=cause)
        elif new == "retest_due":
            self.retest_at = None
            self.retest_end = run + config.retest_window_s
            self._log(ev.RETEST_DUE, value=config.retest_window_s)
        elif new == "violation":
            self.retest_end = None
            self.violations += 1
            self._log(ev.VIOLATION, value=self.violations, detail=cause)
            if self.violations > config.violation_threshold:
                self.add_cause(VIOLATIONS, "%d violations" % self.violations)
        elif new == "temporary_lockout":
            if self.hold is None:
                seconds = config.temp_lockout_long_s if cause == "repeated_fails" else config.temp_lockout_s
                self.hold = self.tb.after(seconds)
                self._log(ev.TEMP_LOCKOUT, value=seconds, detail=cause)
        elif new == "ignition_off":
            self.retest_at = None
            self.retest_end = None
            # a free restart only after a plain stop of an enabled engine
            self.stall_at = run if old == "engine_enabled" else None
            if old in RELAY_CLOSED:
                self.running = False
                self._log(ev.ENGINE_STOP, detail=cause)
            if old == "violation":
                self._log(ev.VIOLATION_END)

    def _random_between(self, low, high):
        if high <= low:
            return low
        span = high - low + 1
        return low + self.hw.random.bits(24) % span

    # ---- compliance rules -----------------------------------------------------------------
    def starts_allowed(self, records=0):
        """Compliance lets the vehicle start and the log can record a breath test after
        `records` more records (a start test is asked for only if the log still takes it
        after the transition's own record: every start test is recorded)."""
        return (
            self.provisioned
            and self.compliance.state not in NO_STARTS
            and self.log.accepting(ev.TEST_PASS, records)
        )

    def _test_recordable(self):
        """A pending start test whose record no longer fits the log (an abort, a refusal or
        another record took the last room) ends: no test is asked for that leaves no trace."""
        if self.session.state == "test_requested" and not self.log.accepting(ev.TEST_PASS):
            self.session.fire("blocked")

    def add_cause(self, bit, detail=""):
        """Record a recall cause; a new cause starts a recall (or a new one after a
        for-good unlock). Its deadline never moves later."""
        if self.causes & bit or self.compliance.state == "removed":
            return
        if bit == TAMPER and not self.config.tamper_recall:
            return
        self.causes |= bit
        self._dirty = True
        self._log(ev.CAUSE_SET, value=bit, detail=cause_name(bit) + (" " + detail if detail else ""))
        self.compliance.fire("recall", cause_name(bit))

    def clear_causes(self, mask, why):
        cleared = self.causes & mask
        if not cleared:
            return
        self.causes &= ~mask
        self._dirty = True
        if cleared & UNPAID:
            self.codes.pending = None  # a clear ends every pending code request
        self._log(ev.CAUSE_CLEAR, value=cleared, detail=why)
        if not self.causes:
            self.recall_deadline = None
            self.compliance.fire("clear")

    def recall_left(self):
        return self.tb.left(self.recall_deadline) if self.recall_deadline else 0

    def override_left(self):
        """Seconds left of a code/token unlock; None for an unlock for good."""
        if self.unlock_until is None:
            return None
        return self.tb.left(self.unlock_until)

    def service_left(self):
        return self.tb.left(self.service_due) if self.service_due else 0x7FFFFFFF

    def hold_left(self):
        return self.tb.left(self.hold) if self.hold else 0

    def retest_left(self):
        if self.retest_end is None:
            return 0
        left = self.retest_end - self.tb.run()
        return left if left > 0 else 0

    # ---- driving ---------------------------------------------------------------------------
    def ignition(self, on, now_ms=None):
        """The ignition was switched on or off."""
        self.tb.tick(now_ms)
        on = bool(on)
        if on == self.ignition_on:
            return
        self.ignition_on = on
        session = self.session
        if on:
            self._log(ev.START_ATTEMPT)
            row = session.fire("ignition_on")
            if row is None and session.state == "ignition_off":
                self._log(ev.START_BLOCKED, detail=self.compliance.state)
            elif row is not None and row[DEST] == "engine_enabled":
                self._log(ev.FREE_RESTART)
        else:
            session.fire("ignition_off")
        self._settle()

    def breath(self, sample, now_ms=None):
        """A finished breath sample (hal.BreathSample) from the sensor."""
        self.tb.tick(now_ms)
        state = self.session.state
        if state not in TESTING:
            if self.compliance.state == "service":
                self.cal_sample = sample  # dry gas for the calibration steps
            return
        run = self.tb.run()
        config = self.config
        result, brac, reason = breath.evaluate(sample, config, self.gain, run < self.purge_until)
        if not self.hw.sensor.connected():
            result, brac, reason = breath.ABORT, 0, "sensor"  # a reading from a cut cable is no test
        if reason != "purging":
            self.hw.sensor.purge()
            self.purge_until = run + config.purge_s
        retest = state != "test_requested"
        if result == breath.ABORT:
            self._log(ev.RETEST_ABORT if retest else ev.TEST_ABORT, detail=reason)
            if retest:
                self.session.fire("sample_abort")
            self.last_abort = reason
        elif result == breath.PASS:
            may_start = retest or self.starts_allowed()  # decided before the record takes room
            self._log(ev.RETEST_PASS if retest else ev.TEST_PASS, brac)
            if not may_start:
                self.session.fire("blocked")  # a pass never starts a vehicle that may not start
            else:
                self.session.fire("sample_pass")
        else:
            self._log(ev.RETEST_FAIL if retest else ev.TEST_FAIL, brac)
            if not retest:
                self.fails.append(run)
                self.fails = self.fails[-config.fails_for_long :]
            self.session.fire("sample_fail")
        self._emit(messages.EV_TEST, "%s %d %s" % (result, brac, reason))
        self._settle()

    def refuse(self, now_ms=None):
        """The driver refuses the pending test (CANCEL)."""
        self.tb.tick(now_ms)
        state = self.session.state
        if state == "test_requested":
            self._log(ev.TEST_REFUSED)
        elif state in TESTING:
            self._log(ev.RETEST_REFUSED)
            self.session.fire("refuse")
        self._settle()

    def tamper(self, kind, now_ms=None):
        """A tamper detected (eventlog.TAMPER_* kinds): logged, and a recall cause."""
        self.tb.tick(now_ms)
        self._log(ev.TAMPER, value=kind)
        self.add_cause(TAMPER, "kind %d" % kind)
        self._settle()

    # ---- keypad ----------------------------------------------------------------------------
    def key(self, char, now_ms=None):
        """A key pressed on the handset: 'A' request an unlock code, 'B' a clear code,
        digits then '#' enter it, '*' cancel (or refuse a pending test)."""
        self.tb.tick(now_ms)
        codes = self.codes
        try:
            if char == "*":
                if codes.entry is not None or codes.showing:
                    codes.entry = None
                    codes.showing = False
                else:
                    self.refuse()
            elif char == "A" or char == "B":
                self.request_code(CODE_ACTIONS[0] if char == "A" else CODE_ACTIONS[1], True)
            elif "0" <= char <= "9" and len(char) == 1:
                if codes.pending is not None:
                    entry = codes.entry or ""
                    if len(entry) < MAX_DIGITS:
                        codes.entry = entry + char
            elif char == "#" and codes.entry:
                entry = codes.entry
                codes.entry = None
                self.enter_code(entry)
        except Refused:
            pass  # logged where refused; the screen shows the outcome
        self._settle()

    # ---- keypad codes ------------------------------------------------------------------------
    def _code_preconditions(self, action):
        if not self.provisioned or self.authority is None:
            raise Refused(errors.NOT_PROVISIONED)
        state = self.compliance.state
        if state == "removed":
            raise Refused(errors.REMOVED)
        if action == "unlock":
            if state != "lockout":
                raise Refused(errors.NOT_PERMITTED, "not locked out")
            if self.codes.used >= self.config.overrides_per_service:
                raise Refused(errors.OVERRIDE_LIMIT, "%d per service interval" % self.config.overrides_per_service)
        elif action == "clear":
            if not self.causes & UNPAID:
                raise Refused(errors.NOT_PERMITTED, "no unpaid balance")
        else:
            raise Refused(errors.BAD_ARGUMENT, "no code for action %s" % action)

    def request_code(self, action, at_keypad=False):
        """Issue a request code for `action` (shown on the handset); the request string.

        A request made on the handset's keypad (at_keypad) replaces a pending one: the
        client is at the handset. One over the link (CODE_REQUEST) does not replace a
        pending request that can still be answered: NOT_PERMITTED, nothing changes."""
        return self._apply(self._request_code, action, at_keypad)

    def _request_code(self, action, at_keypad):
        self._code_preconditions(action)
        pending = self.codes.pending
        if at_keypad and pending is not None and self.codes.repeat(action, self.tb):
            self.codes.showing = True
            return pending["request"]
        if not at_keypad and self.codes.live(self.tb):
            raise Refused(errors.NOT_PERMITTED, "a request is pending on the handset: cancel it there or let it expire")
        nonce = self.hw.random.bytes(8)
        request = self.authority.request_code(action, self.codes.counter + 1, nonce)
        self.codes.new_request(action, request, self.tb, at_keypad)
        self._log(ev.CODE_REQUEST, value=self.codes.counter, detail="%s %s" % (action, request))
        return request

    def enter_code(self, code):
        """Check a keypad code against the pending request; (action, until wall time or 0)."""
        digits = normalize(code)
        try:
            if not digits or len(digits) > MAX_DIGITS:
                raise Refused(errors.BAD_ARGUMENT, "a code is 1..%d digits" % MAX_DIGITS)
            action, until = self._apply(self._enter_code, digits)
            if action is None:
                raise Refused(errors.BAD_CODE, "wait %d s" % until if until else "")
        except Refused as refusal:
            self._refused("code", refusal)
            raise
        return action, until

    def _enter_code(self, code):
        codes = self.codes
        tb = self.tb
        if codes.pending is None and codes.spent is not None:
            spent = codes.spent
            if self.authority.check_code(spent[1], code, spent[0], spent[2] if len(spent) > 2 else None):
                raise Refused(errors.CODE_USED)
        pending = codes.check_usable(tb)
        action = pending["action"]
        self._code_preconditions(action)
        # a clear code answers one lockout: the directive number of the one in force
        seq = self.directive_seq if action == "clear" else None
        if not self.authority.check_code(pending["request"], code, action, seq):
            return None, codes.wrong_code(tb)  # counted and saved; enter_code refuses
        until = 0
        if action == "unlock":
            seconds = codes.override_seconds(tb)
            if seconds <= 0:
                raise Refused(errors.CODE_EXPIRED)
            codes.accepted()
            codes.used += 1
            self.unlock_until = tb.after(seconds)
            until = self.unlock_until[0]
            self.compliance.fire("unlock_code")
            self._log(ev.UNLOCK_START, value=seconds, detail="keypad code")
        else:
            codes.accepted(seq)
            self.clear_causes(UNPAID, "keypad code")
        self._log(ev.CODE_ACCEPTED, detail=action)
        return action, until

    # ---- signed tokens ----------------------------------------------------------------------
    def apply_token(self, token, session_nonce=None):
        """Verify and apply a signed token; (action, detail). Refused: nothing changed."""
        if not self.provisioned or self.authority is None:
            raise Refused(errors.NOT_PROVISIONED)
        try:
            # validity (the token's window, its delegation's expiry) is judged by the clock
            # deadlines read: never behind the high-water mark, so a clock set back (set-time,
            # an RTC that lost its time, a reboot) revives no expired token or delegation
            applied = self.used_ids + self.session_ids if self.session_ids else self.used_ids
            grant = self.authority.check_token(token, self.tb.deadline_wall(), session_nonce, applied)
            return self._apply(self._grant, grant)
        except Refused as refusal:
            if refusal.code != errors.ALREADY_APPLIED:  # recorded when it was applied
                self._refused("token", refusal)
            raise

    def _refused(self, source, refusal):
        """A refused token or code: counted; summarized in the log at a bounded rate."""
        if self.refusals.note(source, refusal.code, refusal.detail, self.tb.run()):
            self._summarize(source)

    def _summarize(self, source):
        """The REFUSALS record of `source`, unless it would take the log to its log_full
        threshold (keyless input never recalls the unit): then the count waits in RAM."""
        run = self.tb.run()
        if self.log.free_pct(1) <= self.config.log_full_pct:
            self.refusals.postpone(source, run)
            return
        count, code, detail = self.refusals.take(source, run)
        self._log(ev.REFUSALS, value=count, detail="%s 0x%02x %s" % (source, code, detail))

    def new_session(self):
        """A new USB session (HELLO): the tokens bound to the last one are worthless now."""
        self.session_ids = []

    def _record_use(self, token_id, expires, session_bound=False):
        """Remember an applied token until the floor passes its expiry (see __init__); a
        session-bound one also for the rest of its session."""
        if session_bound:
            self.session_ids.append(token_id)
        self.used_ids.append(token_id)
        self.used_expiry.append(expires)
        # expired records stay a while (replay_keep_expired_s) so the floor stays well behind
        # the clock: a clock corrected backwards by less than that still accepts new tokens
        horizon = self.tb.wall() - self.config.replay_keep_expired_s
        keep = self.config.used_tokens_kept
        i = 0
        while i < len(self.used_ids):
            if self.used_expiry[i] < horizon:  # long expired: the floor now covers it
                self._drop_use(i)
            else:
                i += 1
        while len(self.used_ids) > keep:  # room: drop the one expiring first
            soonest = 0
            for j in range(1, len(self.used_expiry)):
                if self.used_expiry[j] < self.used_expiry[soonest]:
                    soonest = j
            self._drop_use(soonest)

    def _drop_use(self, i):
        if self.used_expiry[i] > self.replay_floor:
            self.replay_floor = self.used_expiry[i]
        self.used_ids.pop(i)
        self.used_expiry.pop(i)

    def _grant(self, grant):
        action = grant.action
        args = grant.args if isinstance(grant.args, dict) else {}
        state = self.compliance.state
        if state == "removed" and action not in ("work_order", "set_time"):
            raise Refused(errors.WORK_ORDER_REQUIRED, "a removed unit returns only by an installation work order")
        if "order" in args and action != "work_order":
            raise Refused(errors.WORK_ORDER_REQUIRED, "orders come only in a work_order token")
        apply = getattr(self, "_grant_" + action, None)
        if apply is None:
            raise Refused(errors.NOT_SUPPORTED, "action %s" % action)
        # a token bound to this USB session cannot be replayed in another one (its HELLO
        # nonce is gone), so only unbound tokens (directives, work orders) meet the floor:
        # long-lived directives evicted for room never block a technician's session tokens
        bound = getattr(grant, "session_bound", False)
        if not bound and grant.expires <= self.replay_floor:
            raise Refused(errors.REPLAYED, "older than the replay records kept")
        if bound and len(self.session_ids) >= 2 * self.config.used_tokens_kept:
            raise Refused(errors.NOT_PERMITTED, "too many tokens in this session: start a new one")
        self._scopes = getattr(grant, "scopes", None)
        detail = apply(args)
        self._record_use(grant.token_id, grant.expires, bound)
        self._log(ev.TOKEN_ACCEPTED, detail="%s %s %s" % (action, grant.key_id, detail))
        return action, detail

    def _grant_unlock(self, args):
        seconds = _int_arg(args, "seconds", 0, 400 * DAY)
        if self.compliance.state != "lockout":
            raise Refused(errors.NOT_PERMITTED, "not locked out")
        if seconds:
            # an override for a window: the causes stay, and it uses the service interval's
            # override allowance like a keypad override
            codes = self.codes
            if codes.used >= self.config.overrides_per_service:
                raise Refused(errors.OVERRIDE_LIMIT, "%d per service interval" % self.config.overrides_per_service)
            codes.used += 1
        else:
            # for good: it ends the lockout of every cause in force, so the signer's scopes
            # must lift each of them (firmware/lifts.py)
            kept = self.causes & ~lifted_by_signer(self._scopes)
            if kept:
                raise Refused(errors.OUT_OF_SCOPE, "an unlock for good lifts %s: not this key's scopes" % _cause_names(kept))
        self.unlock_until = self.tb.after(seconds) if seconds else None
        if not seconds:
            self.recall_deadline = None  # forgiven for good: a new cause starts a fresh recall
        self.compliance.fire("unlock_token")
        self._log(ev.UNLOCK_START, value=seconds, detail="token")
        return "for good" if not seconds else "%d s" % seconds

    def _grant_service(self, args):
        if self.compliance.state == "service":
            raise Refused(errors.NOT_PERMITTED, "service session already open")
        self.compliance.fire("service_open")
        self._log(ev.SERVICE_OPEN)
        return "service session open"

    def _grant_service_close(self, args):
        if self.compliance.state != "service":
            raise Refused(errors.NOT_IN_SERVICE)
        now = self.tb.wall()
        next_service = _int_arg(args, "next_service", now + 1, now + 400 * DAY)
        downloaded = args.get("downloaded")
        if downloaded is not None:
            _int_arg(args, "downloaded", 0, self.log.head)
        cal = self.cal
        if cal is not None and cal.last != "as_found":
            self._cal_failed("calibration not finished")
        if downloaded is not None and downloaded > self.log.mark:  # the log the technician verified
            self.log.mark_downloaded(downloaded)
            self._log(ev.LOG_DOWNLOADED, value=downloaded)
        self.service_due = self.tb.after(next_service - now)
        self.violations = 0
        self.codes.service_reset()
        cleared = self.causes & CLEARED_BY_SERVICE & lifted_by_action("service_close")
        if cleared:
            self.causes &= ~cleared
            self._log(ev.CAUSE_CLEAR, value=cleared, detail="service")
        if not self.causes:
            self.recall_deadline = None
        self._log(ev.SERVICE_SUMMARY, value=self.causes, detail="next service %d" % next_service)
        self._log(ev.SERVICE_CLOSE)
        self.compliance.fire("service_close")
        return "next service %d" % next_service

    def _grant_set_time(self, args):
        new = _int_arg(args, "time", 0, 0xFFFFFFFF)
        old = self.tb.wall()
        self.tb.deadline_wall()  # record the high-water mark before the clock moves
        self.hw.clock.set_now(new)
        self.tb.deadline_wall()
        self._log(ev.CLOCK_CHANGE, value=new - old, detail="%d>%d" % (old, new))
        return "clock %d" % new

    def _unpaid_arg(self, args):
        if args.get("cause") != "unpaid_balance":
            raise Refused(errors.BAD_ARGUMENT, "the only directive cause is unpaid_balance")

    def _directive_seq(self, args, clear):
        """The directive's number, checked against the order (SPEC 9.4): a recall or lockout
        must be newer than every directive applied; a clear answers the lockout in force or
        a newer one (never an older one, never one already cleared)."""
        seq = _int_arg(args, "seq", 0, 0xFFFFFFFF)
        last = self.directive_seq
        if seq < last:
            raise Refused(errors.SUPERSEDED, "directive %d is older than the last applied (%d)" % (seq, last))
        if seq == last and not (clear and self.causes & UNPAID):
            what = "the balance of lockout %d is cleared" if clear else "directive %d was applied"
            raise Refused(errors.SUPERSEDED, (what + " already") % seq)
        return seq

    def _grant_recall(self, args):
        self._unpaid_arg(args)
        self.directive_seq = self._directive_seq(args, False)
        days = _int_arg(args, "days", 0, 90)
        new = self.tb.after(days * DAY)
        current = self.recall_deadline
        if current is None or self.compliance.state == "normal":
            self.recall_deadline = new
        else:  # a directive never extends a running countdown
            self.recall_deadline = [min(current[0], new[0]), min(current[1], new[1])]
        self.add_cause(UNPAID, "directive")
        return "recall %d days" % days

    def _grant_lockout(self, args):
        self._unpaid_arg(args)
        self.directive_seq = self._directive_seq(args, False)
        self.causes |= UNPAID
        self._log(ev.CAUSE_SET, value=UNPAID, detail="unpaid_balance lockout directive")
        # the recall's time is up: whatever comes next (a service close, a code window's end)
        # falls back into the lockout, never into a fresh recall countdown (the terms: locked
        # out until serviced AND the balance is cleared)
        self.recall_deadline = self.tb.after(0)
        if self.compliance.state != "service":
            self.compliance.fire("lockout", "unpaid_balance")
        return "lockout"

    def _grant_clear(self, args):
        self._unpaid_arg(args)
        self.directive_seq = self._directive_seq(args, True)
        self.clear_causes(UNPAID & lifted_by_action("clear"), "directive")
        return "cleared"

    def _grant_work_order(self, args):
        order = args.get("order")
        if order not in WORK_ORDERS:
            raise Refused(errors.BAD_ARGUMENT, "unknown work order %r" % order)
        order_id = _text_arg(args, "id")
        vehicle = _text_arg(args, "vehicle")
        installed = self.compliance.state != "removed"
        if (order == "installation") == installed:
            raise Refused(errors.WORK_ORDER_MISMATCH, "%s while %s" % (order, self.compliance.state))
        if order != "installation" and self.session.state != "ignition_off":
            raise Refused(errors.NOT_PERMITTED, "turn the ignition off first")
        self._log(ev.WORK_ORDER, detail="%s %s %s" % (order, order_id, vehicle))
        # a work order lifts no cause (firmware/lifts.py): removal and installation carry
        # every cause, and its recall deadline, over
        if order == "installation":
            self.vehicle = vehicle
            self.service_due = self.tb.after(self.config.service_interval_s)
            if self.calibration_due is None:
                self.calibration_due = self.tb.after(self.config.calibration_interval_s)
            carried = self.recall_deadline
            self.compliance.fire("install")
            if self.causes:
                self.recall_deadline = carried
                expired = carried is not None and self.tb.left(carried) == 0
                self.compliance.fire("lockout" if expired else "recall", "causes carried over")
        elif order == "vehicle_switch":
            self.vehicle = vehicle
            self.stall_at = None
        else:
            self.compliance.fire("remove")
        return "%s %s" % (order, order_id)

    # ---- calibration ------------------------------------------------------------------------
    def calibrate(self, step, reference):
        """One CALIBRATE step in service mode; (measured, passed, detail)."""
        if self.compliance.state != "service":
            raise Refused(errors.NOT_IN_SERVICE)
        result = self._apply(self._calibrate, step, reference)
        self.cal_sample = None  # used up by the step that succeeded
        return result

    def _take_gas(self):
        """The raw reading of the dry gas; the sample is kept until a step succeeds."""
        if self.cal_sample is None:
            self.cal_sample = self.hw.sensor.take()
        sample = self.cal_sample
        return None if sample is None else sample.fuel_cell

    def _calibrate(self, step, reference):
        cal = self.cal
        if step == messages.CAL_AS_FOUND:
            if cal is not None and cal.last != "as_found":
                raise Refused(errors.CAL_SEQUENCE, "finish the calibration in progress")
            cal = Calibration(self.config, self.gain)
            measured, ok = cal.as_found(reference, self._take_gas())
            self.cal = cal
            self._log(ev.CAL_AS_FOUND, measured, reference, "within" if ok else "outside")
            return measured, ok, "as found"
        if cal is None:
            raise Refused(errors.CAL_SEQUENCE, "start with the as-found step")
        if step == messages.CAL_ADJUST:
            measured, ok = cal.adjust(reference, self._take_gas())
            self._log(ev.CAL_ADJUST, measured, cal.gain, "gain %d>%d" % (cal.old_gain, cal.gain))
            return measured, ok, "gain %d" % cal.gain
        if step == messages.CAL_CHECK:
            measured, ok = cal.check(reference, self._take_gas(), self.tb.run())
            self._log(ev.CAL_CHECK, measured, reference, "%s %d/%d" % ("ok" if ok else "out", cal.streak, self.config.cal_checks))
            return measured, ok, "check %d/%d" % (cal.streak, self.config.cal_checks)
        if step == messages.CAL_FINISH:
            self.cal = None
            if cal.passed():
                self.gain = cal.gain
                self.calibrated_at = self.tb.wall()
                self.calibration_due = self.tb.after(self.config.calibration_interval_s)
                self._log(ev.CAL_PASS, cal.as_found_brac, cal.gain)
                self.clear_causes(CALIBRATION_DUE | CALIBRATION_FAILED, "calibration passed")
                return 0, True, "calibration passed"
            self._cal_failed("%d/%d checks" % (cal.streak, self.config.cal_checks))
            return 0, False, "calibration failed: needs service"
        raise Refused(errors.BAD_ARGUMENT, "unknown step %d" % step)

    def _cal_failed(self, why):
        self.cal = None
        self._log(ev.CAL_FAIL, detail=why)
        self.add_cause(CALIBRATION_FAILED, why)

    # ---- provisioning ------------------------------------------------------------------------
    def provision(self, serial, root_key, secret):
        """Factory mode, once: the serial, the provider's root key and the keypad secret."""
        if self.provisioned:
            raise Refused(errors.ALREADY_PROVISIONED)
        if not 1 <= len(serial) <= 32:
            raise Refused(errors.BAD_ARGUMENT, "serial must be 1..32 characters")
        for ch in serial:
            if not ("0" <= ch <= "9" or "A" <= ch <= "Z" or "a" <= ch <= "z" or ch in "-_."):
                raise Refused(errors.BAD_ARGUMENT, "serial may hold letters, digits and - _ .")
        if len(root_key) != 32 or len(secret) != 32:
            raise Refused(errors.BAD_ARGUMENT, "keys are 32 bytes")
        authority = self.authority or self._build_authority(serial, root_key, secret)
        if authority is None:
            raise Refused(errors.BAD_ARGUMENT, "the root key or the secret is not usable")
        try:
            self.provision_file.save(
                {"serial": serial, "root": hexlify(root_key).decode(), "secret": hexlify(secret).decode()}
            )
        except OSError as exc:
            raise Refused(errors.STORAGE_FAILURE, str(exc))
        self.authority = authority
        self.provisioned = True
        self.serial = serial
        self._log(ev.PROVISIONED, detail=serial)
        self._outputs_update()
        return serial

    # ---- the loop ------------------------------------------------------------------------------
    def receive(self, data, now_ms=None):
        """Bytes from the serial line."""
        self.tb.tick(now_ms)
        link = self.link
        link.receive(data)
        dropped = link.dropped()
        if dropped < self._frames_dropped:  # the link's decoder was replaced: count anew
            self._frames_dropped = 0
        if dropped > self._frames_dropped:
            new = dropped - self._frames_dropped
            self._frames_dropped = dropped
            if self.refusals.note("frame", 0, "malformed frames dropped", self.tb.run(), new):
                self._summarize("frame")
        self._settle()

    def step(self, now_ms=None):
        """Advance to `now_ms`, read the HAL inputs, run the timers, set the outputs."""
        tb = self.tb
        tb.tick(now_ms)
        hw = self.hw
        # deadlines first: a recall that ran out while the board was off (or since the last
        # step) is a lockout before any input of this step counts
        self._timers()
        on = bool(hw.ignition.on())
        turned_on = False
        if on != self._polled_ignition:
            self._polled_ignition = on
            turned_on = on
            self.ignition(on)
        while True:
            char = hw.keypad.read()
            if char is None:
                break
            self.key(char)
        sample = hw.sensor.take()
        # a sample that finished before the start test was asked for (by the ignition
        # turning on in this step, or before a boot) is no test: only a fresh pass closes
        # the relay
        if sample is not None and not turned_on:
            self.breath(sample)
        data = hw.serial.read()
        if data:
            self.receive(data)
        self._timers()
        self._settle()
        self.link.poll()

    def _timers(self):
        tb = self.tb
        run = tb.run()
        compliance = self.compliance
        state = compliance.state
        if state == "early_service_recall" and tb.left(self.recall_deadline) == 0:
            compliance.fire("expire")
        elif state == "code_unlock" and self.unlock_until is not None and tb.left(self.unlock_until) == 0:
            self._log(ev.UNLOCK_END)
            compliance.fire("window_end")
        if self.provisioned and compliance.state != "removed":
            if self.service_due and tb.left(self.service_due) == 0:
                self.add_cause(SERVICE_DUE)
            if self.calibration_due and tb.left(self.calibration_due) == 0:
                self.add_cause(CALIBRATION_DUE)
            connected = self.hw.sensor.connected()
            if connected != self._sensor_ok:
                self._sensor_ok = connected
                if connected:
                    self._log(ev.TAMPER_CLEAR, value=ev.TAMPER_SENSOR_DISCONNECTED)
                else:
                    self.tamper(ev.TAMPER_SENSOR_DISCONNECTED)
        session = self.session
        state = session.state
        if state == "temporary_lockout":
            if self.hold is None or tb.left(self.hold) == 0:
                self.hold = None
                session.fire("lockout_end")
        elif state == "engine_enabled" and self.retest_at is not None and run >= self.retest_at:
            session.fire("retest")
        elif state == "retest_due" or state == "retest_in_progress":
            if self.retest_end is None:
                self.retest_end = run + self.config.retest_window_s
            elif run >= self.retest_end:
                self._log(ev.RETEST_MISSED)
                session.fire("timeout")
        if self.ignition_on and session.state == "ignition_off" and session.can("ignition_on"):
            session.fire("ignition_on")
        for source in self.refusals.due(run):
            self._summarize(source)

    def _settle(self):
        """After any input: the log's space, persist what changed, drive the outputs."""
        if self.provisioned and self.compliance.state != "removed":
            free = self.log.free_pct()
            if free <= self.config.log_full_pct:
                self.add_cause(LOG_FULL, "%d%% free" % free)
        self._test_recordable()
        self._commit()
        self._outputs_update()

    def _outputs_update(self):
        hw = self.hw
        session = self.session.state
        relay = session in RELAY_CLOSED
        alarm = session == "violation"
        red = alarm or session == "temporary_lockout" or self.compliance.state in NO_STARTS
        outputs = (relay, alarm, relay and not alarm, red)
        old = self._outputs
        if outputs != old:
            self._outputs = outputs
            if old is None or old[0] != relay:
                hw.relay.set(relay)
            if old is None or old[1] != alarm:
                hw.alarm.set(alarm)
                if old is not None:
                    self._emit(messages.EV_ALARM, "on" if alarm else "off")
            hw.display.leds(outputs[2], red)
        screen = display_texts.screen(self)
        self._screen_tick = screen[2]
        lines = (screen[0], screen[1])
        if lines != self._screen:
            self._screen = lines
            hw.display.show(lines[0], lines[1])
            self._emit(messages.EV_DISPLAY, "%s|%s" % lines)

    def bench_blow(self, brac, volume_ml, temperature_dc):
        """A bench blow of a true BrAC: through the hardware's own sensor model when it has
        one (the simulator's fuel cell: drift, temperature, noise), else the sensor assumed
        as calibrated."""
        if not 0 <= brac <= breath.BRAC_MAX or not 0 <= volume_ml <= 20000 or not -500 <= temperature_dc <= 1500:
            raise Refused(errors.BAD_ARGUMENT, "blow out of range")
        bench_sample = getattr(self.hw, "bench_sample", None)
        if bench_sample is not None:
            sample = bench_sample(brac, volume_ml, temperature_dc)
        else:
            fuel_cell = (brac * breath.GAIN_ONE + self.gain // 2) // self.gain
            sample = BreathSample(volume_ml, temperature_dc, fuel_cell)
        self.breath(sample)

    # ---- for the simulator and STATUS ------------------------------------------------------
    def next_deadline(self, screen=True):
        """Monotonic ms of the next thing that happens by itself (a deadline, a retest, a
        countdown on the screen changing), or None when nothing is scheduled. With
        screen=False countdowns on the screen are left out (they change no state)."""
        tb = self.tb
        run = tb.run()
        compliance = self.compliance.state
        session = self.session.state
        waits = []
        # deadlines that change a state when they pass (at 0 the next step takes them)
        pending = None
        if compliance == "early_service_recall":
            pending = self.recall_deadline
        elif compliance == "code_unlock":
            pending = self.unlock_until
        if pending is not None:
            waits.append(tb.left(pending))
        if session == "temporary_lockout" and self.hold is not None:
            waits.append(tb.left(self.hold))
        at = None
        if session == "engine_enabled":
            at = self.retest_at
        elif session == "retest_due" or session == "retest_in_progress":
            at = self.retest_end
        if at is not None:
            waits.append(at - run)
        at = self.refusals.next_due()
        if at is not None:
            waits.append(at - run if at > run else 0)
        # dates still ahead (once passed, their cause is set)
        dates = [self.codes.wait]
        if compliance != "removed":
            dates.append(self.service_due)
            dates.append(self.calibration_due)
        for deadline in dates:
            if deadline is not None:
                left = tb.left(deadline)
                if left > 0:
                    waits.append(left)
        if screen and self._screen_tick:
            waits.append(self._screen_tick)
        if not waits:
            return None
        wait = min(waits)
        frac = (tb.mono_ms - tb.boot_ms) % 1000
        ms = wait * 1000 - frac if wait > 0 else 0
        return tb.mono_ms + (ms if ms > 0 else 1)

    def firmware_version(self):
        return FIRMWARE_VERSION

    def config_json(self):
        return self.config.wire_json()

    def status(self):
        tb = self.tb
        now = tb.deadline_wall()  # the clock tokens and deadlines are judged by
        state = self.compliance.state
        deadline = None
        if state == "early_service_recall":
            deadline = self.recall_deadline
        elif state == "code_unlock":
            deadline = self.unlock_until
        left = tb.left(deadline) if deadline else 0
        override = self.override_left() if state == "code_unlock" else 0
        return {
            "compliance": messages.COMPLIANCE_STATES.index(state),
            "session": messages.SESSION_STATES.index(self.session.state),
            "causes": self.causes,
            "now": now,
            "deadline": now + left if deadline else 0,
            "deadline_left": left,
            "service_due": self._due(self.service_due),
            "calibration_due": self._due(self.calibration_due),
            "hold_left": self.hold_left(),
            "override_left": override or 0,
            "violations": min(self.violations, 255),
            "relay": 1 if self.session.state in RELAY_CLOSED else 0,
            "alarm": 1 if self.session.state == "violation" else 0,
            "log_count": self.log.count,
            "log_free_pct": self.log.free_pct(),
            "line1": self._screen[0],
            "line2": self._screen[1],
        }

    def _due(self, deadline):
        if deadline is None:
            return 0
        due = min(deadline[0], self.tb.wall() + deadline[1] - self.tb.run())
        return due if due > 0 else 0
