"""Keyless refusals, counted in RAM and summed up in the event log at a bounded rate.

A refused token or keypad code needs no key to send, so none may cost a log record of its
own (a flood would fill the log and recall the unit for `log_full`). Each source ("token",
"code") keeps, in RAM only, how many were refused since its last summary record and the
last NACK code and reason. A summary record is due:
- at once for the first refusal after a quiet spell;
- otherwise when the source's gap since its last record has passed (the core's timer
  writes it then, so the count of a burst is never left behind).
The gap starts at one minute and doubles (up to a day) while refusals keep coming within
a gap of the last record's due time, and drops back to a minute after a quiet spell. So a
source writes at most one record a minute, and a flood kept up for days writes about one a
day. A power cut loses the counts not yet written (they are refusals: nothing changed).
"""

MINUTE = 60
LONGEST_GAP = 86400
SOURCES = ("token", "code")


class Refusals:
    def __init__(self):
        # source: [count, last NACK code, last reason, next due (run s) or None, gap (s)]
        self.by_source = {}
        for source in SOURCES:
            self.by_source[source] = [0, 0, "", None, MINUTE]

    def note(self, source, code, detail, run):
        """Count one refusal; True if its summary record is due now."""
        entry = self.by_source[source]
        entry[0] += 1
        entry[1] = code
        entry[2] = detail
        return entry[3] is None or run >= entry[3]

    def pending(self, source):
        """(count, last code, last reason) not yet written."""
        entry = self.by_source[source]
        return entry[0], entry[1], entry[2]

    def due(self, run):
        """Sources whose summary record is due at run second `run`."""
        out = []
        for source in SOURCES:
            entry = self.by_source[source]
            if entry[0] and (entry[3] is None or run >= entry[3]):
                out.append(source)
        return out

    def take(self, source, run):
        """(count, code, reason) for the record being written now; the next one waits a gap."""
        entry = self.by_source[source]
        out = (entry[0], entry[1], entry[2])
        entry[0] = 0
        last = entry[3]
        gap = entry[4]
        if last is not None and run < last + gap:  # they kept coming: the next one waits longer
            gap = gap * 2 if gap * 2 < LONGEST_GAP else LONGEST_GAP
        else:
            gap = MINUTE
        entry[3] = run + gap
        entry[4] = gap
        return out

    def postpone(self, source, run):
        """No room for the record now: keep the count, try again after a gap."""
        entry = self.by_source[source]
        entry[3] = run + entry[4]

    def next_due(self):
        """Run second of the next summary due (None if nothing is counted)."""
        soonest = None
        for source in SOURCES:
            entry = self.by_source[source]
            if entry[0] and entry[3] is not None and (soonest is None or entry[3] < soonest):
                soonest = entry[3]
        return soonest
