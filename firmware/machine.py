"""The tiny engine that runs the declarative transition table (firmware/transitions_table.py).

A Machine holds one state of one machine ("compliance" or "session"). fire(trigger)
takes the first row whose machine, source and trigger match and whose guard holds
(`guards[name](device)`), moves to the row's destination and reports the change to
`on_change(machine, old_state, row, cause)`. A trigger with no matching row changes
nothing and returns None. require(operation) raises the table's refusal (REFUSALS) for
an operation the current state does not allow, so the table alone decides what can
happen and what the refusal says; flags() are the current state's FLAGS.
"""

from firmware.transitions_table import GUARD, MACHINE, MACHINES, REFUSALS, SOURCE, TRIGGER
from protocol.endpoint import Refused


class Machine:
    def __init__(self, name, rows, state, guards, on_change, device=None):
        self.name = name
        self.state = state
        self.rows = [row for row in rows if row[MACHINE] == name]
        self.guards = guards  # name -> function(device) (a callable(name) is also taken)
        self.device = device
        self.on_change = on_change
        spec = MACHINES.get(name)
        self.states = spec[0] if spec else ()
        self.flag_table = spec[2] if spec else ()

    def _holds(self, guard):
        guards = self.guards
        if isinstance(guards, dict):
            return guards[guard](self.device)
        return guards(guard)

    def row_for(self, trigger):
        """The row `trigger` would take from the current state, or None."""
        for row in self.rows:
            if row[TRIGGER] == trigger and row[SOURCE] == self.state:
                if row[GUARD] is None or self._holds(row[GUARD]):
                    return row
        return None

    def fire(self, trigger, cause=None):
        """Take the transition for `trigger`; the row taken, or None if none applies.

        `cause` names the specific reason when the row's cause is generic (a recall
        names which of protocol.messages.CAUSES started it)."""
        row = self.row_for(trigger)
        if row is not None:
            old = self.state
            self.state = row[3]
            self.on_change(self, old, row, cause or row[5])
        return row

    def can(self, trigger):
        return self.row_for(trigger) is not None

    def flags(self, state=None):
        """The FLAGS of `state` (default: the current state)."""
        return self.flag_table[self.states.index(self.state if state is None else state)]

    def refusal(self, operation):
        """(code, detail) of the table's refusal of `operation` in the current state, or None."""
        state = self.state
        for entry in REFUSALS:
            if entry[0] != self.name or entry[1] != operation:
                continue
            states = entry[2]
            if states is None:
                for row in self.rows:
                    if row[TRIGGER] == operation and row[SOURCE] == state:
                        return None
                return entry[3], entry[4]
            if state in states:
                return entry[3], entry[4]
        return None

    def require(self, operation, detail=None):
        """Raise Refused with the table's code if the current state refuses `operation`."""
        refused = self.refusal(operation)
        if refused is not None:
            raise Refused(refused[0], refused[1] if detail is None else detail)
