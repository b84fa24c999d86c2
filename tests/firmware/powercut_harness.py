"""The every-offset power-cut harness for the event log and state files (test helper, no tests).

A Layout is an event-log geometry, the flash it starts from (`base`) and a script of what
the device does (`run`: appends, state saves, download marks). every_cut() runs the script
once whole on a RamFlash to count its units and note what each step commits, then again
for every n from 0 to that count on a fresh copy with the power cut after n units; after
each cut the device "reboots" (fresh objects on the wrecked flash) and `check` runs.
check_log() / check_state() are the checks; cut_the_repair() cuts again at every unit of
the reboot's own tail repair. Used by tests/firmware/test_powercut.py and test_eventlog.py.
"""

import gc
import sys

from firmware import eventlog as E
from firmware import persist
from firmware.ramflash import PowerCut, RamFlash

MICROPYTHON = sys.implementation.name == "micropython"
# The MicroPython test VM has a ~1 MB heap and must never collect garbage (a collection
# there frees memory still in use): REDUCED runs smaller scenarios, still at every offset.
# Given a heap that holds the full runs (`micropython -X heapsize=64M`), they run in full.
REDUCED = MICROPYTHON and gc.mem_free() < 60000000
T0 = 100000


class Layout:
    """An event-log geometry and a script of what the device does on it."""

    def __init__(self, n, segments, reserve, base_records, base_mark, states, script):
        self.n = n
        self.segments = segments
        self.reserve = reserve
        self.base_records = base_records
        self.base_mark = base_mark
        self.states = states
        self.script = script

    def open(self, flash):
        return E.EventLog(flash, records_per_segment=self.n, max_segments=self.segments,
                          reserve=self.reserve)

    def base(self, fill=None):
        """The flash before the scenario: some records, a download mark, the first state."""
        flash = RamFlash(fill=fill)
        log = self.open(flash)
        for i in range(self.base_records):
            log.append(T0 - 10 + i, E.BOOT, compliance="normal", session="ignition_off")
        if self.base_mark:
            log.mark_downloaded(self.base_mark)
        persist.StateFile(flash, "state").save(self.states[0])
        return flash

    def run(self, flash, done):
        """The scenario: each step that returns is noted in `done`."""
        log = self.open(flash)
        state = persist.StateFile(flash, "state")
        state.load()
        for step in self.script:
            if step[0] == "rec":
                log.append(T0 + len(done), step[1], brac=len(done) * 37, compliance="normal",
                           session="engine_enabled", value=len(done), detail=step[2])
                done.append(("head", log.head, log.head_hash))
            elif step[0] == "mark":
                log.mark_downloaded(step[1])
                done.append(("mark", step[1]))
            else:
                state.save(self.states[step[1]])
                done.append(("state", step[1]))


def full_script():
    """Records 3..13 (rollover at 4, 8, 12; segment 0 dropped at 12 after the download
    mark 4), four state saves, then an ordinary record refused: LOG_FULL from the reserve."""
    script = []
    saves = 0
    for i in range(11):
        kind = E.TEST_FAIL if i % 3 == 0 else E.RETEST_PASS
        script.append(("rec", kind, "t%d" % i))
        if i == 3:
            script.append(("mark", 4))
        if i in (1, 5, 8, 10):
            saves += 1
            script.append(("state", saves))
    script.append(("rec", E.ENGINE_START, ""))
    return script


STATES = [
    {"compliance": "normal", "violations": 0},
    {"compliance": "lockout", "causes": ["violations"], "violations": 4, "deadline": T0},
    {"compliance": "lockout", "causes": ["violations", "tamper"], "violations": 5,
     "deadline": T0, "note": "a longer body than before " * 3},
    {"compliance": "lockout", "causes": ["tamper"], "violations": 0},
    {"compliance": "normal"},  # cleared at a service visit
]
FULL = Layout(4, 3, 2, 3, 0, STATES, full_script())
# The MicroPython size of the story (see the module docstring): segments of 2 records,
# mark 2 already set; record 3 fills segment 1 (after record 2), record 4 starts segment 2
# and drops segment 0. State saves and the download mark are StateFile saves, cut at every
# offset under MicroPython by the state-save tests below.
SMALL = Layout(2, 2, 0, 3, 2, [{"compliance": "lockout"}],
               [("rec", E.TEST_FAIL, ""), ("rec", E.RETEST_PASS, "")])
DAY = SMALL if REDUCED else FULL


def probe(base, scenario):
    flash = base.clone()
    done = []
    scenario(flash, done)
    return flash.units, done


def expected_hashes(layout, base, done):
    hashes = {}
    log = layout.open(base.clone())
    for offset, rec in enumerate(log.records(log.first, log.count, 1 << 30)):
        hashes[log.first + offset] = E.record_hash(rec)
    for fact in done:
        if fact[0] == "head":
            hashes[fact[1] - 1] = fact[2]
    return hashes


def committed(done, base_head, base_mark):
    head, mark, state = base_head, base_mark, 0
    for fact in done:
        if fact[0] == "head":
            head = fact[1]
        elif fact[0] == "mark":
            mark = fact[1]
        elif fact[0] == "state":
            state = fact[1]
    return head, mark, state


def check_log(layout, flash, done, expected, base_head, where):
    head, mark, _ = committed(done, base_head, layout.base_mark)
    log = layout.open(flash)
    assert log.head in (head, head + 1), where
    assert log.mark >= mark, where
    assert log.first <= log.mark or log.first == 0, where  # only downloaded segments go
    recs = log.records(log.first, log.count, 1 << 30)
    assert len(recs) == log.count, where
    for offset in range(len(recs)):
        assert E.record_hash(recs[offset]) == expected[log.first + offset], where
    anchor = E.GENESIS if log.first == 0 else expected[log.first - 1]
    assert E.verify_chain(recs, anchor, log.first, log.head_hash) is None, where
    # the log goes on after the reboot, and that survives one more reboot
    index = log.append(T0 + 999, E.POWER_LOSS, compliance="lockout", session="ignition_off")
    assert index is not None, where
    again = layout.open(flash)
    assert (again.head, again.head_hash) == (log.head, log.head_hash), where
    assert again.first in (log.first, log.first + layout.n), where  # an append may drop one
    if REDUCED:
        return  # the heap budget (see the module docstring): head and hash agree, enough
    anchor = E.GENESIS if again.first == 0 else expected[again.first - 1]
    recs = again.records(again.first, again.count, 1 << 30)
    assert E.verify_chain(recs, anchor, again.first, again.head_hash) is None, where


def check_state(states, flash, done, where):
    _, _, k = committed(done, 0, 0)
    loaded = persist.StateFile(flash, "state").load()
    allowed = [states[k]] + ([states[k + 1]] if k + 1 < len(states) else [])
    assert loaded in allowed, where
    # loading finished any interrupted save: a second load agrees and leaves one file
    assert persist.StateFile(flash, "state").load() == loaded, where
    assert flash.size("state.new") == -1, where


def every_cut(layout, base, check, nested=None):
    total, probe_done = probe(base, layout.run)
    expected = expected_hashes(layout, base, probe_done)
    base_head = layout.open(base.clone()).head
    for n in range(total + 1):
        flash = base.clone()
        flash.cut_after(n)
        done = []
        try:
            layout.run(flash, done)
        except PowerCut:
            pass
        flash.power_on()
        if nested is not None and nested(n, done):
            cut_the_repair(layout, flash, done, expected, base_head, n)
        check(flash, done, expected, base_head, "cut after %d units" % n)
    return total


def cut_the_repair(layout, wreck, done, expected, base_head, n):
    """Cut again at every unit of the reboot's own repair writes, then reboot once more."""
    probe = wreck.clone()
    layout.open(probe)
    for m in range(probe.units):
        flash = wreck.clone()
        flash.cut_after(m)
        try:
            layout.open(flash)
        except PowerCut:
            pass
        flash.power_on()
        check_log(layout, flash, done, expected, base_head,
                   "cut after %d, then %d in the repair" % (n, m))
