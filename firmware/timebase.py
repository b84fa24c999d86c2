"""The device's two clocks and its deadlines, so that setting the clock back extends nothing.

- wall: seconds on the core's epoch from the HAL clock (changed only by an authorized
  set-time);
- run: accumulated running seconds, from the monotonic millisecond counter, carried
  across reboots by the saved state (a power cut loses at most `run_save_s` of it).

A stamp or a deadline is a [wall, run] pair. A deadline has passed when EITHER clock has
reached it; the time since a stamp is the larger of the two; so moving the wall clock
back never lengthens a wait, and moving it forward (authorized) shortens it.

Deadlines read the wall clock through a high-water mark (`high`: the latest wall time
seen, carried forward by run time): time that passed by the wall clock alone (the device
powered off) stays counted when the wall clock is later moved back. The mark is a pair
read at one instant: the wall clock and the monotonic counter are read together (the run
clock steps to the counter first), so time that moved both clocks is counted once however
the reads fall between the core's steps.
"""


class TimeBase:
    def __init__(self, clock, run_base=0):
        self.clock = clock
        self.run_base = run_base
        self.boot_ms = clock.monotonic_ms()
        self.mono_ms = self.boot_ms
        self.high = None  # [wall, run]: the latest wall time seen, and the run time then

    def tick(self, now_ms=None):
        """Advance to monotonic time `now_ms` (read from the HAL when None); never back."""
        if now_ms is None:
            now_ms = self.clock.monotonic_ms()
        if now_ms > self.mono_ms:
            self.mono_ms = now_ms

    def wall(self):
        return self.clock.now()

    def run(self):
        return self.run_base + (self.mono_ms - self.boot_ms) // 1000

    def deadline_wall(self):
        """The wall time deadlines are measured by: never behind the high-water mark."""
        self.tick()  # the run clock at the instant the wall clock is read: one pair
        now = self.clock.now()
        run = self.run()
        high = self.high
        if high is not None:
            floor = high[0] + (run - high[1])
            if floor > now:
                return floor
        self.high = [now, run]
        return now

    def stamp(self):
        return [self.deadline_wall(), self.run()]

    def after(self, seconds):
        return [self.deadline_wall() + seconds, self.run() + seconds]

    def left(self, deadline):
        """Seconds until `deadline` (0 once either clock has passed it)."""
        left = min(deadline[0] - self.deadline_wall(), deadline[1] - self.run())
        return left if left > 0 else 0

    def since(self, stamp):
        return max(self.deadline_wall() - stamp[0], self.run() - stamp[1])

    def ms_until(self, deadline):
        """Monotonic ms until `deadline` by the run clock alone (the wall clock only
        moves by itself at the same pace, or jumps by an authorized set-time)."""
        left = self.left(deadline)
        if left <= 0:
            return 0
        return left * 1000 - (self.mono_ms - self.boot_ms) % 1000
