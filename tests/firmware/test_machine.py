"""The table engine, and a walk over EVERY row of the transition table (both runtimes).

For each row the device is put in the row's source state with the row's guard true and
the guards of earlier rows for the same (machine, source, trigger) false; firing the
trigger must take exactly that row, land in its destination, and log the transition
with its cause."""

from firmware import eventlog
from firmware.device import UNPAID
from firmware.machine import Machine
from firmware.transitions_table import (
    BY,
    CAUSE,
    DEST,
    GUARD,
    MACHINE,
    MACHINES,
    SOURCE,
    TRIGGER,
    rows,
)
from protocol import messages
from tests.firmware.device_rig import Rig

ROWS = rows()  # every row of the table, as field lists


def test_states_are_the_protocol_names():
    assert MACHINES["compliance"][0] == messages.COMPLIANCE_STATES
    assert MACHINES["session"][0] == messages.SESSION_STATES


def test_rows_are_well_formed_data():
    seen = []
    for row in ROWS:
        assert len(row) == 7, row
        states = MACHINES[row[MACHINE]][0]
        assert row[SOURCE] in states and row[DEST] in states, row
        assert isinstance(row[TRIGGER], str) and isinstance(row[CAUSE], str), row
        assert row[GUARD] is None or isinstance(row[GUARD], str), row
        key = (row[MACHINE], row[SOURCE], row[TRIGGER], row[GUARD])
        assert key not in seen, "duplicate row %r" % (row,)
        seen.append(key)


def test_every_state_is_reachable_and_left():
    for name in MACHINES:
        states, initial = MACHINES[name][0], MACHINES[name][1]
        for state in states:
            into = [r for r in ROWS if r[MACHINE] == name and r[DEST] == state and r[SOURCE] != state]
            out = [r for r in ROWS if r[MACHINE] == name and r[SOURCE] == state and r[DEST] != state]
            assert into or state == initial, "%s.%s is unreachable" % (name, state)
            assert out, "%s.%s is a dead end" % (name, state)


def test_engine_takes_first_row_whose_guard_holds():
    rows = (
        "a go b never guarded input",
        "a go c - plain input",
        "b go x - not_from_a input",
    )
    changes = []
    machine = Machine("m", rows, "a", lambda g: False, lambda m, old, row, cause: changes.append((old, row[DEST], cause)))
    assert machine.can("go")
    row = machine.fire("go", "why")
    assert row == ["m", "a", "go", "c", None, "plain", "input"] and machine.state == "c"
    assert changes == [("a", "c", "why")]
    assert machine.fire("go") is None and machine.state == "c"  # no row from c
    assert len(changes) == 1


def test_a_guard_without_its_function_fails_when_the_machine_is_built():
    rows = ("a go b known because input", "a go c unknown because input")
    try:
        Machine("m", rows, "a", {"known": lambda d: True}, lambda *a: None)
        raise AssertionError("a machine was built with a guard nobody decides")
    except ValueError as exc:
        assert "unknown" in str(exc)


def test_engine_uses_the_row_cause_by_default():
    rows = ("a go b yes because input",)
    got = []
    machine = Machine("m", rows, "a", lambda g: g == "yes", lambda m, old, row, cause: got.append(cause))
    machine.fire("go")
    assert got == ["because"] and machine.state == "b"


def _set_guard(rig, guard, value):
    device = rig.device
    tb = device.tb
    if guard == "free_restart":
        device.stall_at = tb.run() if value else None
    elif guard == "start_allowed":
        assert value  # every start_allowed row is reached with starts allowed
    elif guard == "long_lockout":
        device.fails = [tb.run()] * rig.config.fails_for_long if value else []
    elif guard == "retry_allowed":
        device.ignition_on = True  # compliance allows starts in the walk: ignition decides
        if not value:
            device.ignition_on = False
    elif guard == "for_good":
        device.unlock_until = None if value else tb.after(3600)
    elif guard == "recall_expired":
        device.causes = UNPAID
        device.recall_deadline = tb.after(0 if value else 3600)
    elif guard == "causes_left":
        device.causes = UNPAID if value else 0
    else:
        raise AssertionError("no setup for guard %s" % guard)


def _prepare(rig, row):
    device = rig.device
    machine = device.compliance if row[MACHINE] == "compliance" else device.session
    # starts are allowed unless the row is about blocking them
    device.compliance.state = "normal"
    device.session.state = "ignition_off"
    machine.state = row[SOURCE]
    for earlier in ROWS:
        if earlier == row:
            break
        if earlier[:3] == row[:3] and earlier[GUARD] is not None:
            _set_guard(rig, earlier[GUARD], False)
    if row[GUARD] is not None:
        _set_guard(rig, row[GUARD], True)
    return machine


def _walk(first, last):
    """Walk rows first..last-1 (each row on a fresh device)."""
    walked = 0
    for row in ROWS[first:last]:
        rig = Rig(install=False)  # _prepare sets the states itself
        machine = _prepare(rig, row)
        before = rig.device.log.count
        taken = machine.fire(row[TRIGGER])
        assert taken == row, "row %r: took %r" % (row, taken)
        assert machine.state == row[DEST], row
        kind = eventlog.COMPLIANCE_CHANGE if row[MACHINE] == "compliance" else eventlog.SESSION_CHANGE
        wanted = "%s>%s %s" % (row[SOURCE], row[DEST], row[CAUSE])
        logged = [r["detail"] for r in rig.records()[before:] if r["kind"] == kind]
        assert wanted in logged, (row, logged)
        rig.device.step(rig.clock.ms)  # the device carries on from there without failing
        walked += 1
    return walked


def test_walk_every_row():
    assert _walk(0, len(ROWS)) == len(ROWS)


def _row_of(kind, detail):
    """The table row a logged transition ("old>new cause") took; None if no row matches."""
    machine = "compliance" if kind == eventlog.COMPLIANCE_CHANGE else "session"
    move, cause = detail.split(" ", 1)
    old, new = move.split(">")
    generic = None  # a recall or directive row logs the specific cause it was fired with
    for row in ROWS:
        if row[MACHINE] == machine and row[SOURCE] == old and row[DEST] == new:
            if row[CAUSE] == cause:
                return row
            if row[CAUSE] in ("recall", "directive") and generic is None:
                generic = row
    return generic


def _drive_every_trigger():
    """Drive one unit through its public interface (ignition, breath, keys, tokens, codes,
    the clock, a reboot) so that every trigger of the table fires; the rows taken."""
    rig = Rig()  # installed by a work-order token: install
    rig.start()  # ignition_on (start_allowed), sample_pass
    rig.until_session("retest_due")  # retest (timer)
    rig.blow(volume=100)  # sample_abort
    rig.until_session("violation")  # timeout (timer)
    rig.ignition(False)  # ignition_off
    rig.start(brac=500)  # sample_fail
    rig.until_session("test_requested", 1200)  # lockout_end with the ignition on (retry_allowed)
    rig.ignition(False)
    rig.start()
    rig.ignition(False)
    rig.ignition(True)  # ignition_on (free_restart)
    rig.until_session("retest_due")
    rig.keys("*")  # refuse
    rig.ignition(False)
    rig.token("recall", {"cause": "unpaid_balance", "days": 1})  # recall
    rig.until_compliance("lockout", 2 * 86400)  # expire (timer)
    rig.code("unlock")  # unlock_code
    rig.until_compliance("lockout", 5 * 3600)  # window_end (timer)
    rig.token("unlock", {"seconds": 0})  # unlock_token
    rig.token("lockout", {"cause": "unpaid_balance"})  # lockout
    rig.token("clear", {"cause": "unpaid_balance"})  # clear
    rig.ignition(True)
    rig.advance(rig.config.purge_s)
    rig.token("lockout", {"cause": "unpaid_balance"})  # blocked: the pending start test ends
    rig.ignition(False)
    rig.token("clear", {"cause": "unpaid_balance"})
    rig.service()  # service_open
    rig.close_service()  # service_close
    rig.start(brac=500)
    rig.ignition(False)
    rig.reboot()  # restore_lockout (boot)
    rig.until_session("ignition_off", 1200)
    rig.work_order("removal")  # remove
    taken = []
    for record in rig.records():
        if record["kind"] in (eventlog.COMPLIANCE_CHANGE, eventlog.SESSION_CHANGE):
            row = _row_of(record["kind"], record["detail"])
            assert row is not None, "a transition no row allows: %s" % record["detail"]
            taken.append(row)
    return taken


def test_every_trigger_is_fired_by_the_device():
    taken = _drive_every_trigger()
    fired = [row[TRIGGER] for row in taken]
    missing = [row[TRIGGER] for row in ROWS if row[TRIGGER] not in fired]
    assert not missing, "never fired through the device: %s" % ",".join(missing)


def test_every_guard_has_a_function_and_decides_a_row():
    from firmware import compliance, driving

    for row in ROWS:
        if row[GUARD] is not None:
            guards = compliance.GUARDS if row[MACHINE] == "compliance" else driving.GUARDS
            assert row[GUARD] in guards, "guard %s has no function" % row[GUARD]
    taken = _drive_every_trigger()
    guarded = [row[GUARD] for row in taken if row[GUARD] is not None]
    for name in ("start_allowed", "free_restart", "retry_allowed"):
        assert name in guarded, "guard %s never decided a row" % name


def test_rows_say_what_fires_them():
    kinds = ("timer", "input", "token", "code", "service", "cause", "boot")
    for row in ROWS:
        for by in row[BY].split("|"):
            assert by in kinds, row


def test_the_table_refuses_with_its_code():
    from firmware.transitions_table import REFUSALS
    from protocol import errors
    from protocol.endpoint import Refused

    rig = Rig()  # normal
    machine = rig.device.compliance
    assert machine.refusal("service_open") is None
    assert machine.refusal("service_close")[0] == errors.NOT_IN_SERVICE
    assert machine.refusal("unlock_token")[0] == errors.NOT_PERMITTED
    try:
        machine.require("calibrate")
        raise AssertionError("calibrate allowed outside service")
    except Refused as refused:
        assert refused.code == errors.NOT_IN_SERVICE
    for entry in REFUSALS:
        assert entry[0] in MACHINES and isinstance(entry[3], int), entry
