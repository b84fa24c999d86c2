"""The tiny engine that runs the declarative transition table (firmware/transitions_table.py).

A Machine holds one state of one machine ("compliance" or "session") and that machine's
rows as text. fire(trigger) takes the first row whose source and trigger match and whose
guard holds (`guards[name](device)`), moves to the row's destination and reports the
change to `on_change(machine, old_state, row, cause)` (row: the row's fields, see
transitions_table.row). A trigger with no matching row changes nothing and returns None.
require(operation) raises the table's refusal (REFUSALS) for an operation the current state
does not allow, so the table alone decides what can happen and what the refusal says;
flags() are the current state's FLAGS.
"""

from firmware.transitions_table import GUARD, MACHINES, REFUSALS, row
from protocol.endpoint import Refused


class Machine:
    def __init__(self, name, rows, state, guards, on_change, device=None):
        self.name = name
        self.state = state
        self.rows = rows  # the machine's rows, "source trigger dest guard cause by" each
        self.guards = guards  # name -> function(device) (a callable(name) is also taken)
        self.device = device
        self.on_change = on_change
        spec = MACHINES.get(name)
        self.states = spec[0] if spec else ()
        self.flag_table = spec[2] if spec else ()
        if isinstance(guards, dict):  # a guard the table names and no function decides fails here
            for text in rows:
                guard = row(name, text)[GUARD]
                if guard is not None and guard not in guards:
                    raise ValueError("%s guard %s has no function" % (name, guard))

    def _holds(self, guard):
        guards = self.guards
        if isinstance(guards, dict):
            return guards[guard](self.device)
        return guards(guard)

    def row_for(self, trigger):
        """The row `trigger` would take from the current state, or None."""
        prefix = "%s %s " % (self.state, trigger)
        for text in self.rows:
            if text.startswith(prefix):
                found = row(self.name, text)
                if found[GUARD] is None or self._holds(found[GUARD]):
                    return found
        return None

    def fire(self, trigger, cause=None):
        """Take the transition for `trigger`; the row taken, or None if none applies.

        `cause` names the specific reason when the row's cause is generic (a recall
        names which of protocol.messages.CAUSES started it)."""
        found = self.row_for(trigger)
        if found is not None:
            old = self.state
            self.state = found[3]
            self.on_change(self, old, found, cause or found[5])
        return found

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
                prefix = "%s %s " % (state, operation)
                for text in self.rows:
                    if text.startswith(prefix):
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
