"""The tiny engine that runs the declarative transition table (firmware/transitions_table.py).

A Machine holds one state of one machine ("compliance" or "session"). fire(trigger)
takes the first row whose machine, source and trigger match and whose guard (a name,
asked of the `guard` callable) holds, moves to the row's destination and reports the
change to `on_change(machine, old_state, row, cause)`. A trigger with no matching row
changes nothing and returns None, so the table alone decides what can happen.
"""

from firmware.transitions_table import CAUSE, DEST, GUARD, MACHINE, SOURCE, TRIGGER


class Machine:
    def __init__(self, name, rows, state, guard, on_change):
        self.name = name
        self.state = state
        self.rows = [row for row in rows if row[MACHINE] == name]
        self.guard = guard
        self.on_change = on_change

    def row_for(self, trigger):
        """The row `trigger` would take from the current state, or None."""
        for row in self.rows:
            if row[TRIGGER] == trigger and row[SOURCE] == self.state:
                if row[GUARD] is None or self.guard(row[GUARD]):
                    return row
        return None

    def fire(self, trigger, cause=None):
        """Take the transition for `trigger`; the row taken, or None if none applies.

        `cause` names the specific reason when the row's cause is generic (a recall
        names which of protocol.messages.CAUSES started it)."""
        row = self.row_for(trigger)
        if row is not None:
            old = self.state
            self.state = row[DEST]
            self.on_change(self, old, row, cause or row[CAUSE])
        return row

    def can(self, trigger):
        return self.row_for(trigger) is not None
