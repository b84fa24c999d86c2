"""The LCI-777 state machines as data: one row per transition, nothing else.

Row: (machine, source, trigger, dest, guard, cause)
- machine: "compliance" or "session" (two concerns, kept apart);
- guard: None, or the name of a condition the device evaluates (rows are tried in
  order, the first whose guard holds is taken);
- cause: the reason written to the event log with the transition ("recall" rows log
  the specific cause from protocol.messages.CAUSES instead).

The device runs these rows with firmware/machine.py; host tools load the same rows into
`transitions` (states from MACHINES, rows as {trigger, source, dest, conditions}) to draw
diagrams and to serve as a reference model. Pure data; the state names are the protocol's.
"""

from protocol.messages import COMPLIANCE_STATES, SESSION_STATES

MACHINE, SOURCE, TRIGGER, DEST, GUARD, CAUSE = 0, 1, 2, 3, 4, 5

# machine: (states in protocol order, initial state) — the protocol's own state tuples, so
# the wire's state numbers and the machines can never disagree
MACHINES = {
    "compliance": (
        COMPLIANCE_STATES,
        "removed",  # a new unit is not installed until an installation work order
    ),
    "session": (SESSION_STATES, "ignition_off"),
}

# guards (evaluated by firmware/device.py):
#   for_good        the code_unlock has no end (an unlock token for good)
#   recall_expired  causes remain and their recall deadline has passed
#   causes_left     recall causes remain
#   free_restart    within the free-restart time of a stall, starts allowed
#   start_allowed   compliance lets the vehicle start (not lockout, not removed)
#   long_lockout    this fail makes fails_for_long within fails_window_s
#   ignition_on     the ignition is on
#   retry_allowed   the ignition is on and compliance lets the vehicle start
ROWS = (
    # ---- compliance -----------------------------------------------------------------
    ("compliance", "normal", "recall", "early_service_recall", None, "recall"),
    ("compliance", "code_unlock", "recall", "early_service_recall", "for_good", "recall"),
    ("compliance", "early_service_recall", "expire", "lockout", None, "recall_expired"),
    ("compliance", "normal", "lockout", "lockout", None, "directive"),
    ("compliance", "early_service_recall", "lockout", "lockout", None, "directive"),
    ("compliance", "code_unlock", "lockout", "lockout", None, "directive"),
    ("compliance", "lockout", "unlock_code", "code_unlock", None, "keypad_code"),
    ("compliance", "lockout", "unlock_token", "code_unlock", None, "token"),
    ("compliance", "code_unlock", "window_end", "lockout", None, "override_ended"),
    ("compliance", "early_service_recall", "clear", "normal", None, "causes_cleared"),
    ("compliance", "lockout", "clear", "normal", None, "causes_cleared"),
    ("compliance", "code_unlock", "clear", "normal", None, "causes_cleared"),
    ("compliance", "normal", "service_open", "service", None, "technician"),
    ("compliance", "early_service_recall", "service_open", "service", None, "technician"),
    ("compliance", "lockout", "service_open", "service", None, "technician"),
    ("compliance", "code_unlock", "service_open", "service", None, "technician"),
    ("compliance", "service", "service_close", "lockout", "recall_expired", "service_closed"),
    ("compliance", "service", "service_close", "early_service_recall", "causes_left", "service_closed"),
    ("compliance", "service", "service_close", "normal", None, "service_closed"),
    ("compliance", "removed", "install", "normal", None, "work_order"),
    ("compliance", "normal", "remove", "removed", None, "work_order"),
    ("compliance", "early_service_recall", "remove", "removed", None, "work_order"),
    ("compliance", "lockout", "remove", "removed", None, "work_order"),
    ("compliance", "code_unlock", "remove", "removed", None, "work_order"),
    ("compliance", "service", "remove", "removed", None, "work_order"),
    # ---- driving session ------------------------------------------------------------
    ("session", "ignition_off", "ignition_on", "engine_enabled", "free_restart", "free_restart"),
    ("session", "ignition_off", "ignition_on", "test_requested", "start_allowed", "ignition_on"),
    ("session", "ignition_off", "restore_lockout", "temporary_lockout", None, "power_restored"),
    ("session", "test_requested", "sample_pass", "engine_enabled", None, "test_passed"),
    ("session", "test_requested", "sample_fail", "temporary_lockout", "long_lockout", "repeated_fails"),
    ("session", "test_requested", "sample_fail", "temporary_lockout", None, "test_failed"),
    ("session", "test_requested", "ignition_off", "ignition_off", None, "ignition_off"),
    ("session", "test_requested", "blocked", "ignition_off", None, "starts_blocked"),
    ("session", "temporary_lockout", "lockout_end", "test_requested", "retry_allowed", "lockout_ended"),
    ("session", "temporary_lockout", "lockout_end", "ignition_off", None, "lockout_ended"),
    ("session", "engine_enabled", "ignition_off", "ignition_off", None, "ignition_off"),
    ("session", "engine_enabled", "retest", "retest_due", None, "retest_scheduled"),
    ("session", "retest_due", "sample_pass", "engine_enabled", None, "retest_passed"),
    ("session", "retest_due", "sample_fail", "violation", None, "retest_failed"),
    ("session", "retest_due", "sample_abort", "retest_in_progress", None, "sample_aborted"),
    ("session", "retest_due", "timeout", "violation", None, "retest_missed"),
    ("session", "retest_due", "refuse", "violation", None, "retest_refused"),
    ("session", "retest_due", "ignition_off", "ignition_off", None, "ignition_off_in_retest"),
    ("session", "retest_in_progress", "sample_pass", "engine_enabled", None, "retest_passed"),
    ("session", "retest_in_progress", "sample_fail", "violation", None, "retest_failed"),
    ("session", "retest_in_progress", "timeout", "violation", None, "retest_missed"),
    ("session", "retest_in_progress", "refuse", "violation", None, "retest_refused"),
    ("session", "retest_in_progress", "ignition_off", "ignition_off", None, "ignition_off_in_retest"),
    ("session", "violation", "ignition_off", "ignition_off", None, "ignition_off"),
)
