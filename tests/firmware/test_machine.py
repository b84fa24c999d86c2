"""The table engine, and a walk over EVERY row of the transition table (both runtimes).

For each row the device is put in the row's source state with the row's guard true and
the guards of earlier rows for the same (machine, source, trigger) false; firing the
trigger must take exactly that row, land in its destination, and log the transition
with its cause."""

from firmware import eventlog
from firmware.device import UNPAID
from firmware.machine import Machine
from firmware.transitions_table import CAUSE, DEST, GUARD, MACHINE, MACHINES, ROWS, SOURCE, TRIGGER
from protocol import messages
from tests.firmware.device_rig import Rig


def test_states_are_the_protocol_names():
    assert MACHINES["compliance"][0] == messages.COMPLIANCE_STATES
    assert MACHINES["session"][0] == messages.SESSION_STATES


def test_rows_are_well_formed_data():
    seen = []
    for row in ROWS:
        assert len(row) == 6, row
        states = MACHINES[row[MACHINE]][0]
        assert row[SOURCE] in states and row[DEST] in states, row
        assert isinstance(row[TRIGGER], str) and isinstance(row[CAUSE], str), row
        assert row[GUARD] is None or isinstance(row[GUARD], str), row
        key = (row[MACHINE], row[SOURCE], row[TRIGGER], row[GUARD])
        assert key not in seen, "duplicate row %r" % (row,)
        seen.append(key)


def test_every_state_is_reachable_and_left():
    for name in MACHINES:
        states, initial = MACHINES[name]
        for state in states:
            into = [r for r in ROWS if r[MACHINE] == name and r[DEST] == state and r[SOURCE] != state]
            out = [r for r in ROWS if r[MACHINE] == name and r[SOURCE] == state and r[DEST] != state]
            assert into or state == initial, "%s.%s is unreachable" % (name, state)
            assert out, "%s.%s is a dead end" % (name, state)


def test_engine_takes_first_row_whose_guard_holds():
    rows = (
        ("m", "a", "go", "b", "never", "guarded"),
        ("m", "a", "go", "c", None, "plain"),
        ("other", "a", "go", "x", None, "not mine"),
    )
    changes = []
    machine = Machine("m", rows, "a", lambda g: False, lambda m, old, row, cause: changes.append((old, row[DEST], cause)))
    assert machine.can("go")
    row = machine.fire("go", "why")
    assert row is rows[1] and machine.state == "c"
    assert changes == [("a", "c", "why")]
    assert machine.fire("go") is None and machine.state == "c"  # no row from c
    assert len(changes) == 1


def test_engine_uses_the_row_cause_by_default():
    rows = (("m", "a", "go", "b", "yes", "because"),)
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
    elif guard == "ignition_on":
        device.ignition_on = value
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
        if earlier is row:
            break
        if earlier[:3] == row[:3] and earlier[GUARD] is not None:
            _set_guard(rig, earlier[GUARD], False)
    if row[GUARD] is not None:
        _set_guard(rig, row[GUARD], True)
    return machine


def _walk(first, last):
    """Walk rows first..last-1 (a few per test: each row costs a fresh device)."""
    walked = 0
    for row in ROWS[first:last]:
        rig = Rig(install=False)  # _prepare sets the states itself
        machine = _prepare(rig, row)
        before = rig.device.log.count
        taken = machine.fire(row[TRIGGER])
        assert taken is row, "row %r: took %r" % (row, taken)
        assert machine.state == row[DEST], row
        kind = eventlog.COMPLIANCE_CHANGE if row[MACHINE] == "compliance" else eventlog.SESSION_CHANGE
        wanted = "%s>%s %s" % (row[SOURCE], row[DEST], row[CAUSE])
        logged = [r["detail"] for r in rig.records()[before:] if r["kind"] == kind]
        assert wanted in logged, (row, logged)
        rig.device.step(rig.clock.ms)  # the device carries on from there without failing
        walked += 1
    return walked


CHUNK = 13  # rows per test


def test_walk_rows_0_to_12():
    assert _walk(0, CHUNK) == CHUNK


def test_walk_rows_13_to_25():
    assert _walk(CHUNK, 2 * CHUNK) == CHUNK


def test_the_walks_cover_every_row():
    # rows 0..25 here, 26..end in test_machine_walk.py (one VM each: see device_rig.py)
    assert 2 * CHUNK < len(ROWS) <= 4 * CHUNK + 10


def _device_source():
    path = __file__
    for _ in range(3):
        path = path[: path.rfind("/")]
    with open(path + "/firmware/device.py") as f:
        return f.read()


def test_every_trigger_is_fired_by_the_device():
    source = _device_source()
    for row in ROWS:
        assert ('"%s"' % row[TRIGGER]) in source, "trigger %s is never fired" % row[TRIGGER]


def test_every_guard_is_evaluated_by_the_device():
    source = _device_source()
    for row in ROWS:
        if row[GUARD] is not None:
            assert ('"%s"' % row[GUARD]) in source, "guard %s is never evaluated" % row[GUARD]
