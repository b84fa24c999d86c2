"""The LCI-777 state machines as data: the transitions, what fires them, what each state
allows, and the refusal code of an operation a state does not allow.

TABLE: per machine, its rows in order, each one string "source trigger dest guard cause by"
(one string object per row is all a board holds in RAM of the table); row() gives a row's
fields as [machine, source, trigger, dest, guard, cause, by] (MACHINE, SOURCE ... BY index
them) and rows() every row so:
- machine: "compliance" or "session" (two concerns, kept apart);
- guard: None ("-" in the text), or the name of a condition (GUARDS in firmware/compliance.py
  and firmware/driving.py; an unknown name fails when the Machine is built); rows are tried
  in order, the first whose guard holds is taken;
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

# The rows of each machine, one string each: "source trigger dest guard cause by" (guard "-":
# none). Text costs a board one string object per row, the text staying in flash; row()
# splits a row into its fields when it is taken, rows() lists every row for host tools.
TABLE = {
    "compliance": (
        "normal recall early_service_recall - recall cause",
        "code_unlock recall early_service_recall for_good recall cause",
        "early_service_recall expire lockout - recall_expired timer",
        "normal lockout lockout - directive token",
        "early_service_recall lockout lockout - directive token",
        "code_unlock lockout lockout - directive token",
        "lockout unlock_code code_unlock - keypad_code code",
        "lockout unlock_token code_unlock - token token",
        "code_unlock window_end lockout - override_ended timer",
        "early_service_recall clear normal - causes_cleared token|code",
        "lockout clear normal - causes_cleared token|code",
        "code_unlock clear normal - causes_cleared token|code",
        "normal service_open service - technician token",
        "early_service_recall service_open service - technician token",
        "lockout service_open service - technician token",
        "code_unlock service_open service - technician token",
        "service service_close lockout recall_expired service_closed token",
        "service service_close early_service_recall causes_left service_closed token",
        "service service_close normal - service_closed token",
        "removed install normal - work_order token",
        "normal remove removed - work_order token",
        "early_service_recall remove removed - work_order token",
        "lockout remove removed - work_order token",
        "code_unlock remove removed - work_order token",
        "service remove removed - work_order token",
    ),
    "session": (
        "ignition_off ignition_on engine_enabled free_restart free_restart input",
        "ignition_off ignition_on test_requested start_allowed ignition_on input|timer",
        "ignition_off restore_lockout temporary_lockout - power_restored boot",
        "test_requested sample_pass engine_enabled - test_passed input",
        "test_requested sample_fail temporary_lockout long_lockout repeated_fails input",
        "test_requested sample_fail temporary_lockout - test_failed input",
        "test_requested ignition_off ignition_off - ignition_off input",
        "test_requested blocked ignition_off - starts_blocked cause|input",
        "temporary_lockout lockout_end test_requested retry_allowed lockout_ended timer",
        "temporary_lockout lockout_end ignition_off - lockout_ended timer",
        "engine_enabled ignition_off ignition_off - ignition_off input",
        "engine_enabled retest retest_due - retest_scheduled timer",
        "retest_due sample_pass engine_enabled - retest_passed input",
        "retest_due sample_fail violation - retest_failed input",
        "retest_due sample_abort retest_in_progress - sample_aborted input",
        "retest_due timeout violation - retest_missed timer",
        "retest_due refuse violation - retest_refused input",
        "retest_due ignition_off ignition_off - ignition_off_in_retest input",
        "retest_in_progress sample_pass engine_enabled - retest_passed input",
        "retest_in_progress sample_fail violation - retest_failed input",
        "retest_in_progress timeout violation - retest_missed timer",
        "retest_in_progress refuse violation - retest_refused input",
        "retest_in_progress ignition_off ignition_off - ignition_off_in_retest input",
        "violation ignition_off ignition_off - ignition_off input",
    ),
}


def row(machine, text):
    """[machine, source, trigger, dest, guard, cause, by] of one row's text (guard None if none)."""
    fields = [machine] + text.split()
    if fields[GUARD] == "-":
        fields[GUARD] = None
    return fields


def rows():
    """Every row of both machines, in table order, as field lists."""
    return [row(machine, text) for machine in TABLE for text in TABLE[machine]]


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
