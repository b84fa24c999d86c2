"""Keyless refusals, counted in RAM and summed up in the event log at a bounded rate.

A refused token or keypad code needs no key to send, so none may cost a log record of its
own (a flood would fill the log and recall the unit for `log_full`). Each source ("token",
"code", and "frame" for frames the link dropped as malformed: no NACK code, 0) keeps, in
RAM only, how many were refused since its last summary record and the last NACK code and
reason. A summary record is due:
- at once for the first refusal after a quiet spell;
- otherwise when the source's gap since its last record has passed (the core's timer
  writes it then, so the count of a burst is never left behind).
The gap starts at one minute and doubles (up to a day) while refusals keep coming within
a gap of the last record's due time, and drops back to a minute after a quiet spell. So a
source writes at most one record a minute, and a flood kept up for days writes about one a
day. A power cut loses the counts not yet written (they are refusals: nothing changed).
"""

from protocol.coretime import DAY, MINUTE

LONGEST_GAP = DAY
SOURCES = ("token", "code", "frame")


class Refusals:
    def __init__(self):
        # per source, in SOURCES order: refusals counted since its last record, the last
        # NACK code and reason, the run second its next record may be written (-1: at
        # once, nothing written yet) and the gap after it
        self.counts = [0, 0, 0]
        self.codes = [0, 0, 0]
        self.details = ["", "", ""]
        self.due_at = [-1, -1, -1]
        self.gaps = [MINUTE, MINUTE, MINUTE]

    def note(self, source, code, detail, run, count=1):
        """Count `count` refusals; True if the summary record is due now."""
        i = SOURCES.index(source)
        self.counts[i] += count
        self.codes[i] = code
        self.details[i] = detail
        return run >= self.due_at[i]

    def pending(self, source):
        """(count, last code, last reason) not yet written."""
        i = SOURCES.index(source)
        return self.counts[i], self.codes[i], self.details[i]

    def due(self, run):
        """Sources whose summary record is due at run second `run`."""
        out = []
        for i in range(len(SOURCES)):
            if self.counts[i] and run >= self.due_at[i]:
                out.append(SOURCES[i])
        return out

    def take(self, source, run):
        """(count, code, reason) for the record being written now; the next one waits a gap."""
        i = SOURCES.index(source)
        out = (self.counts[i], self.codes[i], self.details[i])
        self.counts[i] = 0
        last = self.due_at[i]
        gap = self.gaps[i]
        if last >= 0 and run < last + gap:  # they kept coming: the next one waits longer
            gap = gap * 2 if gap * 2 < LONGEST_GAP else LONGEST_GAP
        else:
            gap = MINUTE
        self.due_at[i] = run + gap
        self.gaps[i] = gap
        return out

    def postpone(self, source, run):
        """No room for the record now: keep the count, try again after a gap."""
        i = SOURCES.index(source)
        self.due_at[i] = run + self.gaps[i]

    def next_due(self):
        """Run second of the next summary due (None if nothing is counted)."""
        soonest = None
        for i in range(len(SOURCES)):
            if self.counts[i] and (soonest is None or self.due_at[i] < soonest):
                soonest = self.due_at[i]
        return soonest
