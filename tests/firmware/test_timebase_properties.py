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
