"""The LCI-777 device core: its state, boot and persistence, driven by a clock and events.

`Device(hw, config, authority)` holds the two state machines (compliance and driving
session: the rows, flags and refusals in firmware/transitions_table.py, run by
firmware/machine.py) and the state that goes with them. It does no I/O of its own:
everything goes through `hw` (firmware/hal.py). Its behaviour lives in one module per role,
functions taking the device:

- firmware/compliance.py  recall causes, the compliance guards and entry actions;
- firmware/driving.py     ignition, breath tests, retests: the session guards and entries;
- firmware/override.py    keypad codes;
- firmware/grants.py      signed tokens' grants and their replay records (imported for them);
- firmware/calibration.py the service-mode calibration steps (imported for them);
- firmware/provisioning.py the keys given once, and the Authority built from them;
- firmware/persist.py     the persisted state as one table (FIELDS);
- firmware/loop.py        the step, the timers, the outputs, the next deadline.

The protocol side (firmware/handler.py's Handler) is wired by whoever builds the device
(firmware/main.py, the simulator): `Handler(device)` sets `device.link` and `on_event`.

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

from binascii import crc32, unhexlify

from firmware import breath, compliance, driving, loop, override
from firmware import eventlog as ev
from firmware.config import Config
from firmware.eventlog import EventLog
from firmware.lifts import UNPAID  # noqa: F401 (re-exported for tests and tools)
from firmware.machine import Machine
from firmware.persist import StateFile, device_state, restore_device
from firmware.refusals import Refusals
from firmware.timebase import TimeBase
from firmware.transitions_table import ALARM, DEST, MACHINES, RECALL, RELAY, TABLE, WINDOW
from firmware.unload import drop
from protocol import errors, messages
from protocol.endpoint import Refused

FIRMWARE_VERSION = "0.1.0"


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
        self.link = None  # the protocol Handler, set by Handler(device)
        # identity
        self.provisioned = False
        self.serial = ""
        # compliance (the persisted attributes: firmware/persist.py FIELDS)
        self.compliance = Machine("compliance", TABLE["compliance"], MACHINES["compliance"][1], compliance.GUARDS, self._changed, self)
        self.causes = 0
        self.recall_deadline = None  # [wall, run] of the lockout a recall runs into
        self.unlock_until = None  # [wall, run] end of a code/token unlock; None = for good
        self.service_due = None
        self.calibration_due = None
        self.violations = 0
        self.gain = breath.GAIN_ONE
        self.calibrated_at = 0
        self.vehicle = ""
        self.codes = override.Codes(self.config)
        self.refusals = Refusals()  # keyless refusals counted in RAM (firmware/refusals.py)
        self._frames_dropped = 0  # the link's count of malformed frames already noted
        # replay records (firmware/grants.py): ids applied, their expiries, and a floor
        self.used_ids = []  # bytes, newest last
        self.used_expiry = []  # the expiry of each id (core seconds)
        self.replay_floor = 0
        self.session_ids = []  # session-bound tokens of the live USB session
        # billing directives' order: the highest directive number applied (a recall or a
        # lockout's own, or the one a clear answered); older directives are SUPERSEDED
        self.directive_seq = 0
        self._scopes = None  # the scopes of the token being applied (None: the root)
        self._scope = None  # the scope its action belongs to
        self.cal = None  # a Calibration in progress (service mode)
        self.cal_sample = None  # the last sample the sensor gave in service mode
        # driving session
        self.session = Machine("session", TABLE["session"], MACHINES["session"][1], driving.GUARDS, self._changed, self)
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
        self.config_crc = None  # CRC-32 of the configuration the unit last booted with
        # while a change runs (_apply): the state from before it, and under "log" the log's
        # head once the change wrote a record (saved then); None between changes
        self.before = None
        self._boot()

    # ---- boot and persistence -------------------------------------------------------------
    def _boot(self):
        tb = self.tb
        found = self.provision_file.load()
        if found:
            self.provisioned = True
            self.serial = found["serial"]
            if self.authority is None:
                from firmware import provisioning

                self.authority = provisioning.build_authority(
                    self, self.serial, unhexlify(found["root"]), unhexlify(found["secret"])
                )
                drop("firmware.provisioning")
        saved = self.state_file.load()
        crashed = False
        if saved:
            self._restore(saved)
            tb.run_base = saved.get("run", 0)
            tb.high = saved.get("hw")
            crashed = saved.get("on", False)
        if saved and "log" in saved:  # a change the power cut before its state was saved
            self.log.truncate(saved["log"])
        self._saved_run = tb.run()
        tb.deadline_wall()  # the wall time passed while off enters the high-water mark
        self._log(ev.BOOT, value=tb.run(), detail=FIRMWARE_VERSION)
        # a configuration other than the last boot's (a new build, another jurisdiction)
        config = crc32(self.config.wire_json(4096)) & 0xFFFFFFFF
        if saved and self.config_crc is not None and self.config_crc != config:
            self._log(ev.CONFIG_CHANGE, value=config, detail="config %08x>%08x" % (self.config_crc, config))
        self.config_crc = config
        if crashed:
            self.running = False
            self._log(ev.POWER_LOSS, detail="power lost with the engine enabled")
            self.tamper(ev.TAMPER_POWER_LOST_RUNNING)
        if self.hold is not None:
            self.session.fire("restore_lockout")
        self._dirty = True
        self._commit()

    def _state(self):
        return device_state(self)

    def _restore(self, saved):
        restore_device(self, saved)

    def _commit(self):
        """Save the state if it changed (or the run clock is due to be saved)."""
        run = self.tb.run()
        if self._dirty or run - self._saved_run >= self.config.run_save_s:
            self.state_file.save(device_state(self))
            self._dirty = False
            self._saved_run = run

    def _apply(self, change, *args):
        """Run `change(*args)` all or nothing, its log records included: a refusal, a failed
        save or any other failure (MemoryError on a board) restores the state and drops the
        records the change wrote before it re-raises. Before the change's first record the
        state from before it is saved with the log's head (see _log): a power cut before the
        change's own save leaves that mark, and the boot drops the change's records, so no
        record outlives its change (a token whose effect a cut undid would be accepted
        again when resent, and logged twice)."""
        before = device_state(self)
        session = self.session.state
        self.before = before
        try:
            result = change(*args)
            driving.test_recordable(self)
            self._dirty = True
            self._commit()
        except Refused:
            self._rollback(before, session)
            raise
        except OSError as exc:
            self._rollback(before, session)
            raise Refused(errors.STORAGE_FAILURE, str(exc))
        except Exception:  # MemoryError and the like: nothing of the change stays in RAM either
            self._rollback(before, session)
            raise
        finally:
            self.before = None
        loop.outputs_update(self)
        return result

    def _rollback(self, before, session):
        start = self.before.get("log") if self.before else None
        self.before = None
        self._restore(before)
        self.session.state = session
        self._dirty = False
        if start is not None:  # the change's records go, then the state is saved without the mark
            self._dirty = True  # stays set if the storage fails here: the next commit clears the mark
            try:
                self.log.truncate(start)
                self._commit()
            except OSError:
                pass  # the refusal or failure being raised says what happened

    # ---- logging and events ---------------------------------------------------------------
    def _log(self, kind, brac=None, value=0, detail=""):
        before = self.before
        if before is not None and "log" not in before:  # a change's first record: mark it
            before["log"] = self.log.head
            self.state_file.save(before)
        return self.log.append(
            self.tb.wall(), kind, brac, self.compliance.state, self.session.state, value, detail
        )

    def _emit(self, kind, detail=""):
        if self.on_event is not None:
            self.on_event(kind, detail)

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

    # ---- the state machines ----------------------------------------------------------------
    def _changed(self, machine, old, row, cause):
        """A transition was taken: log it, run the new state's `_enter_<state>` action."""
        new = row[DEST]
        is_compliance = machine is self.compliance
        self._log(ev.COMPLIANCE_CHANGE if is_compliance else ev.SESSION_CHANGE, detail="%s>%s %s" % (old, new, cause))
        self._dirty = True
        if is_compliance:
            enter = getattr(compliance, "_enter_" + new, None)
            if enter is not None:
                enter(self, old)
            compliance.after_change(self, old)
        else:
            self.last_abort = ""
            enter = getattr(driving, "_enter_" + new, None)
            if enter is not None:
                enter(self, old, cause)
        self._emit(messages.EV_STATE, "%s %s>%s %s" % (machine.name, old, new, cause))

    # ---- rules asked by the handler, the display and tools ----------------------------------
    def starts_allowed(self, records=0):
        return driving.starts_allowed(self, records)

    def add_cause(self, bit, detail=""):
        compliance.add_cause(self, bit, detail)

    def clear_causes(self, mask, why):
        compliance.clear_causes(self, mask, why)

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

    # ---- events ----------------------------------------------------------------------------
    def ignition(self, on, now_ms=None):
        """The ignition was switched on or off."""
        self.tb.tick(now_ms)
        driving.ignition(self, on)
        loop.settle(self)

    def breath(self, sample, now_ms=None):
        """A finished breath sample (hal.BreathSample) from the sensor."""
        self.tb.tick(now_ms)
        driving.take_breath(self, sample)
        loop.settle(self)

    def refuse(self, now_ms=None):
        """The driver refuses the pending test (CANCEL)."""
        self.tb.tick(now_ms)
        driving.refuse(self)
        loop.settle(self)

    def tamper(self, kind, now_ms=None):
        """A tamper detected (eventlog.TAMPER_* kinds): logged, and a recall cause."""
        self.tb.tick(now_ms)
        driving.tamper(self, kind)
        loop.settle(self)

    def key(self, char, now_ms=None):
        """A key pressed on the handset (firmware/override.py)."""
        self.tb.tick(now_ms)
        override.key(self, char)
        loop.settle(self)

    def request_code(self, action, at_keypad=False):
        return override.request_code(self, action, at_keypad)

    def enter_code(self, code):
        return override.enter_code(self, code)

    def apply_token(self, token, session_nonce=None):
        """Verify and apply a signed token; (action, detail). Refused: nothing changed. The
        grant's code (firmware/grants.py) is imported after the check, for the grant."""
        if not self.provisioned or self.authority is None:
            raise Refused(errors.NOT_PROVISIONED)
        try:
            # validity (the token's window, its delegation's expiry) is judged by the clock
            # deadlines read: never behind the high-water mark, so a clock set back (set-time,
            # an RTC that lost its time, a reboot) revives no expired token or delegation
            applied = self.used_ids + self.session_ids if self.session_ids else self.used_ids
            grant = self.authority.check_token(token, self.tb.deadline_wall(), session_nonce, applied)
            from firmware import grants

            try:
                return self._apply(grants.apply, self, grant)
            finally:
                drop("firmware.grants")
        except Refused as refusal:
            if refusal.code != errors.ALREADY_APPLIED:  # recorded when it was applied
                self._refused("token", refusal)
            raise

    def new_session(self):
        """A new USB session (HELLO): the tokens bound to the last one are worthless now."""
        self.session_ids = []

    def calibrate(self, step, reference):
        """One CALIBRATE step (firmware/calibration.py, imported for the procedure and
        dropped when none is in progress)."""
        from firmware import calibration

        try:
            return calibration.calibrate(self, step, reference)
        finally:
            if self.cal is None:
                drop("firmware.calibration")

    def receive(self, data, now_ms=None):
        """Bytes from the serial line."""
        self.tb.tick(now_ms)
        loop.receive(self, data)
        loop.settle(self)

    def step(self, now_ms=None):
        """Advance to `now_ms`, read the HAL inputs, run the timers, set the outputs."""
        self.tb.tick(now_ms)
        loop.step(self)

    def next_deadline(self, screen=True):
        return loop.next_deadline(self, screen)

    # ---- provisioning ------------------------------------------------------------------------
    def provision(self, serial, root_key, secret):
        """Factory mode, once: the serial, the provider's root key and the keypad secret
        (firmware/provisioning.py, imported for it)."""
        from firmware import provisioning

        try:
            return provisioning.provision(self, serial, root_key, secret)
        finally:
            drop("firmware.provisioning")

    def bench_blow(self, brac, volume_ml, temperature_dc):
        """A bench blow of a true BrAC (firmware/driving.py's bench_sample)."""
        self.breath(driving.bench_sample(self, brac, volume_ml, temperature_dc))

    # ---- for the simulator and STATUS ------------------------------------------------------
    def firmware_version(self):
        return FIRMWARE_VERSION

    def config_json(self):
        return self.config.wire_json()

    def status(self):
        tb = self.tb
        now = tb.deadline_wall()  # the clock tokens and deadlines are judged by
        flags = self.compliance.flags()
        deadline = None
        if flags & RECALL:
            deadline = self.recall_deadline
        elif flags & WINDOW:
            deadline = self.unlock_until
        left = tb.left(deadline) if deadline else 0
        override = self.override_left() if flags & WINDOW else 0
        session = self.session.flags()
        return {
            "compliance": messages.COMPLIANCE_STATES.index(self.compliance.state),
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
            "relay": 1 if session & RELAY else 0,
            "alarm": 1 if session & ALARM else 0,
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
