"""TimeBase under any interleaving of clock advances, reads and ticks (CPython, hypothesis).

A deadline made with `after(s)` never passes before `s` seconds of true time (less the
clocks' whole-second resolution), however the reads of the wall clock fall between the
core's ticks, and the wall clock set back never delays it; once `s` seconds have passed,
it has passed at the next tick."""

from hypothesis import given, settings
from hypothesis import strategies as st

from firmware.timebase import TimeBase


class Clock:
    def __init__(self):
        self.wall = 200000000
        self.ms = 0

    def now(self):
        return self.wall

    def monotonic_ms(self):
        return self.ms

    def set_now(self, seconds):
        self.wall = seconds

    def advance_ms(self, ms):
        before = self.ms // 1000
        self.ms += ms
        self.wall += self.ms // 1000 - before


STEP = st.one_of(
    st.tuples(st.just("advance"), st.integers(1, 3 * 86400 * 1000)),
    st.tuples(st.just("read"), st.just(0)),
    st.tuples(st.just("tick"), st.just(0)),
    st.tuples(st.just("deadline"), st.integers(0, 90 * 86400)),
    st.tuples(st.just("set_back"), st.integers(1, 60 * 86400)),
)


@settings(max_examples=400, deadline=None)
@given(st.integers(0, 999), st.lists(STEP, max_size=60))
def test_no_deadline_passes_early_or_more_than_one_tick_late(start_ms, steps):
    clock = Clock()
    clock.ms = start_ms
    tb = TimeBase(clock)
    deadlines = []  # (deadline, seconds, monotonic ms when made)
    for op, arg in steps:
        if op == "advance":
            clock.advance_ms(arg)
        elif op == "tick":
            tb.tick(clock.ms)
        elif op == "deadline":
            tb.tick(clock.ms)
            deadlines.append((tb.after(arg), arg, clock.ms))
        elif op == "set_back":
            tb.deadline_wall()  # as the core's set-time: the mark is read before the move
            clock.set_now(clock.wall - arg)
            tb.deadline_wall()
        for deadline, seconds, made in deadlines:
            left = tb.left(deadline)  # a read: status, a timer, the screen
            elapsed = clock.ms - made
            if left == 0:
                assert elapsed > seconds * 1000 - 1000, (seconds, elapsed)
            if op == "tick" and elapsed >= seconds * 1000:
                assert left == 0, (seconds, elapsed, left)


DEVICE_STEP = st.one_of(
    st.tuples(st.just("advance"), st.integers(1, 2 * 86400 * 1000)),
    st.tuples(st.just("read"), st.just(0)),
    st.tuples(st.just("tick"), st.just(0)),
    st.tuples(st.just("set_back"), st.integers(1, 30 * 86400)),
)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 7), st.lists(DEVICE_STEP, max_size=25))
def test_a_recall_never_locks_out_early_whatever_reads_fall_between_steps(days, steps):
    # the device: a billing recall of `days`; the clock advances, STATUS and the next
    # deadline are read, the core steps, the clock is set back (authorized), in any order
    from tests.firmware.device_rig import Rig

    rig = Rig()
    rig.token("recall", {"cause": "unpaid_balance", "days": days}, key="billing")
    made = rig.clock.ms
    for op, arg in steps:
        if op == "advance":
            rig.clock.advance_ms(arg)
        elif op == "read":
            rig.device.status()
            rig.device.next_deadline()
        elif op == "tick":
            rig.device.step(rig.clock.ms)
        else:
            rig.token("set_time", {"time": rig.clock.wall - arg}, nonce=rig.nonce())
        elapsed = rig.clock.ms - made
        if rig.compliance == "lockout":
            assert elapsed > days * 86400 * 1000 - 1000, (days, elapsed)
        elif op == "tick":
            assert elapsed < days * 86400 * 1000, (days, elapsed, rig.compliance)
