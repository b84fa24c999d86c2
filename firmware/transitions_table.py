"""The LCI-777 state machines as data: the transitions, what fires them, what each state
allows, and the refusal code of an operation a state does not allow.

ROWS: [machine, source, trigger, dest, guard, cause, by] (lists: built by the module's code
from interned names, the rows cost a board ~5 KB less heap than the same rows as constant
tuples loaded from a .mpy file, measured on the unix port)
- machine: "compliance" or "session" (two concerns, kept apart);
- guard: None, or the name of a condition (GUARDS in firmware/guards.py; an unknown name
  fails at import); rows are tried in order, the first whose guard holds is taken;
- cause: the reason written to the event log with the transition ("recall" rows log
  the specific cause from protocol.messages.CAUSES instead);
- by: what fires the trigger: "timer" (a deadline of the device's own clock), "input"
  (ignition, breath sample, keypad CANCEL, tamper), "token" (a signed token), "code" (a
  keypad code), "service" (a step of an open service visit: calibration), "cause" (a
  recall cause set or cleared by any of those), "boot" (the power coming back). Several
  are joined by "|".

FLAGS: per machine, one bit mask per state (in the protocol's state order) saying what the
state allows; the device asks `machine.flags()` and never compares a state by name.

REFUSALS: (machine, operation, states, code, detail): an operation (a trigger or a token
action, "code", "calibrate", "work_order") asked for in one of `states` (None: every state
with no row for the trigger) is refused with the NACK `code` and changes nothing.

The device runs these with firmware/machine.py; host tools load the same rows into
`transitions` to draw the diagrams and docs/device.md's table. Pure data; the state names
are the protocol's.
"""

from protocol import errors
from protocol.messages import COMPLIANCE_STATES, SESSION_STATES

MACHINE, SOURCE, TRIGGER, DEST, GUARD, CAUSE, BY = 0, 1, 2, 3, 4, 5, 6

# compliance state flags
STARTS = 1  # the vehicle may start (after a passing test)
INSTALLED = 2  # the unit is installed in a vehicle
LOCKED = 4  # one lockout episode, overridden or not (a pending request code lives in it)
SERVICE = 8  # a technician session is open (calibration steps allowed)
RECALL = 16  # counting down to a lockout (the recall deadline)
WINDOW = 32  # an override window (the unlock deadline)
# session state flags
RELAY = 1  # the relay is closed: the engine may run
ALARM = 2  # horn and lights
TESTING = 4  # a breath sample is asked for
START_TEST = 8  # ... for a start
RETEST = 16  # ... a rolling retest (with its window)
HOLD = 32  # a temporary lockout (its hold deadline)
ENGINE = 64  # enabled after a test: the next retest is scheduled
IDLE = 128  # no session
AGAIN = 256  # the retest sample was aborted: blow again

# machine: (states in protocol order, initial state, flags per state) — the protocol's own
# state tuples, so the wire's state numbers and the machines can never disagree
MACHINES = {
    "compliance": (
        COMPLIANCE_STATES,
        "removed",  # a new unit is not installed until an installation work order
        # normal, early_service_recall, lockout, code_unlock, service, removed
        (STARTS | INSTALLED, STARTS | INSTALLED | RECALL, INSTALLED | LOCKED,
         STARTS | INSTALLED | LOCKED | WINDOW, INSTALLED | SERVICE, 0),
    ),
    "session": (
        SESSION_STATES,
        "ignition_off",
        # ignition_off, test_requested, temporary_lockout, engine_enabled, retest_due,
        # retest_in_progress, violation
        (IDLE, TESTING | START_TEST, HOLD, RELAY | ENGINE, RELAY | TESTING | RETEST,
         RELAY | TESTING | RETEST | AGAIN, RELAY | ALARM),
    ),
}

ROWS = (
    # ---- compliance -----------------------------------------------------------------
    ["compliance", "normal", "recall", "early_service_recall", None, "recall", "cause"],
    ["compliance", "code_unlock", "recall", "early_service_recall", "for_good", "recall", "cause"],
    ["compliance", "early_service_recall", "expire", "lockout", None, "recall_expired", "timer"],
    ["compliance", "normal", "lockout", "lockout", None, "directive", "token"],
    ["compliance", "early_service_recall", "lockout", "lockout", None, "directive", "token"],
    ["compliance", "code_unlock", "lockout", "lockout", None, "directive", "token"],
    ["compliance", "lockout", "unlock_code", "code_unlock", None, "keypad_code", "code"],
    ["compliance", "lockout", "unlock_token", "code_unlock", None, "token", "token"],
    ["compliance", "code_unlock", "window_end", "lockout", None, "override_ended", "timer"],
    ["compliance", "early_service_recall", "clear", "normal", None, "causes_cleared", "token|code"],
    ["compliance", "lockout", "clear", "normal", None, "causes_cleared", "token|code"],
    ["compliance", "code_unlock", "clear", "normal", None, "causes_cleared", "token|code"],
    ["compliance", "normal", "service_open", "service", None, "technician", "token"],
    ["compliance", "early_service_recall", "service_open", "service", None, "technician", "token"],
    ["compliance", "lockout", "service_open", "service", None, "technician", "token"],
    ["compliance", "code_unlock", "service_open", "service", None, "technician", "token"],
    ["compliance", "service", "service_close", "lockout", "recall_expired", "service_closed", "token"],
    ["compliance", "service", "service_close", "early_service_recall", "causes_left", "service_closed", "token"],
    ["compliance", "service", "service_close", "normal", None, "service_closed", "token"],
    ["compliance", "removed", "install", "normal", None, "work_order", "token"],
    ["compliance", "normal", "remove", "removed", None, "work_order", "token"],
    ["compliance", "early_service_recall", "remove", "removed", None, "work_order", "token"],
    ["compliance", "lockout", "remove", "removed", None, "work_order", "token"],
    ["compliance", "code_unlock", "remove", "removed", None, "work_order", "token"],
    ["compliance", "service", "remove", "removed", None, "work_order", "token"],
    # ---- driving session ------------------------------------------------------------
    ["session", "ignition_off", "ignition_on", "engine_enabled", "free_restart", "free_restart", "input"],
    ["session", "ignition_off", "ignition_on", "test_requested", "start_allowed", "ignition_on", "input|timer"],
    ["session", "ignition_off", "restore_lockout", "temporary_lockout", None, "power_restored", "boot"],
    ["session", "test_requested", "sample_pass", "engine_enabled", None, "test_passed", "input"],
    ["session", "test_requested", "sample_fail", "temporary_lockout", "long_lockout", "repeated_fails", "input"],
    ["session", "test_requested", "sample_fail", "temporary_lockout", None, "test_failed", "input"],
    ["session", "test_requested", "ignition_off", "ignition_off", None, "ignition_off", "input"],
    ["session", "test_requested", "blocked", "ignition_off", None, "starts_blocked", "cause|input"],
    ["session", "temporary_lockout", "lockout_end", "test_requested", "retry_allowed", "lockout_ended", "timer"],
    ["session", "temporary_lockout", "lockout_end", "ignition_off", None, "lockout_ended", "timer"],
    ["session", "engine_enabled", "ignition_off", "ignition_off", None, "ignition_off", "input"],
    ["session", "engine_enabled", "retest", "retest_due", None, "retest_scheduled", "timer"],
    ["session", "retest_due", "sample_pass", "engine_enabled", None, "retest_passed", "input"],
    ["session", "retest_due", "sample_fail", "violation", None, "retest_failed", "input"],
    ["session", "retest_due", "sample_abort", "retest_in_progress", None, "sample_aborted", "input"],
    ["session", "retest_due", "timeout", "violation", None, "retest_missed", "timer"],
    ["session", "retest_due", "refuse", "violation", None, "retest_refused", "input"],
    ["session", "retest_due", "ignition_off", "ignition_off", None, "ignition_off_in_retest", "input"],
    ["session", "retest_in_progress", "sample_pass", "engine_enabled", None, "retest_passed", "input"],
    ["session", "retest_in_progress", "sample_fail", "violation", None, "retest_failed", "input"],
    ["session", "retest_in_progress", "timeout", "violation", None, "retest_missed", "timer"],
    ["session", "retest_in_progress", "refuse", "violation", None, "retest_refused", "input"],
    ["session", "retest_in_progress", "ignition_off", "ignition_off", None, "ignition_off_in_retest", "input"],
    ["session", "violation", "ignition_off", "ignition_off", None, "ignition_off", "input"],
)

# Checked in this order: the first entry for the operation whose states hold the current
# state refuses it.
REFUSALS = (
    ("compliance", "token", ("removed",), errors.WORK_ORDER_REQUIRED,
     "a removed unit returns only by an installation work order"),
    ("compliance", "code", ("removed",), errors.REMOVED, ""),
    ("compliance", "unlock_code", None, errors.NOT_PERMITTED, "not locked out"),
    ("compliance", "unlock_token", None, errors.NOT_PERMITTED, "not locked out"),
    ("compliance", "service_open", ("service",), errors.NOT_PERMITTED, "service session already open"),
    ("compliance", "service_close", None, errors.NOT_IN_SERVICE, ""),
    ("compliance", "calibrate", ("normal", "early_service_recall", "lockout", "code_unlock", "removed"),
     errors.NOT_IN_SERVICE, ""),
    ("compliance", "install", None, errors.WORK_ORDER_MISMATCH, "installation while installed"),
    ("compliance", "remove", None, errors.WORK_ORDER_MISMATCH, "not installed"),
    ("session", "work_order", ("test_requested", "temporary_lockout", "engine_enabled", "retest_due",
                               "retest_in_progress", "violation"),
     errors.NOT_PERMITTED, "turn the ignition off first"),
)
