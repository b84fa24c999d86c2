"""The transition table loads into `transitions` as it is, and that reference model agrees
with the device's own engine on every row (CPython only: `transitions` is a host library)."""

import pytest

transitions = pytest.importorskip("transitions")

from firmware.machine import Machine  # noqa: E402
from firmware.transitions_table import (  # noqa: E402
    CAUSE,
    DEST,
    GUARD,
    MACHINE,
    MACHINES,
    SOURCE,
    TABLE,
    TRIGGER,
    rows,
)

ROWS = rows()  # every row of the table, as field lists


class Model:
    """Guards as plain flags, so both engines can be asked the same question."""

    def __init__(self, true_guards):
        self.true = set(true_guards)

    def __getattr__(self, name):
        if name.startswith("is_"):
            return lambda *a, **k: name[3:] in self.true
        raise AttributeError(name)


def reference_machine(name, model, state):
    states = MACHINES[name][0]
    rows = [
        {
            "trigger": row[TRIGGER],
            "source": row[SOURCE],
            "dest": row[DEST],
            "conditions": ["is_" + row[GUARD]] if row[GUARD] else [],
        }
        for row in ROWS
        if row[MACHINE] == name
    ]
    return transitions.Machine(
        model=model,
        states=list(states),
        transitions=rows,
        initial=state,
        auto_transitions=False,
        ignore_invalid_triggers=True,
    )


def _guard_sets(row):
    """The guard assignments under which a row is worth comparing: this row's guard true and
    the earlier guards of the same (source, trigger) each way."""
    earlier = [r[GUARD] for r in ROWS if r[:3] == row[:3] and r[GUARD] and ROWS.index(r) < ROWS.index(row)]
    base = {row[GUARD]} if row[GUARD] else set()
    yield base
    for guard in earlier:
        yield base | {guard}


@pytest.mark.parametrize("row", ROWS, ids=lambda r: "%s:%s-%s->%s" % (r[MACHINE], r[SOURCE], r[TRIGGER], r[DEST]))
def test_reference_model_agrees_with_the_engine(row):
    for guards in _guard_sets(row):
        model = Model(guards)
        reference_machine(row[MACHINE], model, row[SOURCE])
        getattr(model, row[TRIGGER])()
        engine = Machine(row[MACHINE], TABLE[row[MACHINE]], row[SOURCE], lambda g, guards=guards: g in guards, lambda *a: None)
        engine.fire(row[TRIGGER])
        assert model.state == engine.state, (row, guards)


def test_every_machine_loads_with_all_its_rows():
    for name in MACHINES:
        model = Model(())
        machine = reference_machine(name, model, MACHINES[name][1])
        triggers = {row[TRIGGER] for row in ROWS if row[MACHINE] == name}
        assert triggers <= set(machine.events), name
        assert set(machine.states) == set(MACHINES[name][0])


def test_causes_are_names_a_diagram_can_show():
    for row in ROWS:
        assert row[CAUSE].replace("_", "").isalpha(), row
