"""The simulator's virtual clock: integer milliseconds that move only when told to.

One `VirtualClock` is the time of the whole simulated world. It never sleeps and never
reads the host's clock: the simulator moves it straight to the next thing that happens
(a device deadline, a scripted step). It implements `firmware.hal.Clock` for the device:

- `monotonic_ms()` counts from the device's last boot (a power cut restarts it at 0);
- `now()` is the device's wall clock in core seconds (since 2020-01-01T00:00:00Z): it keeps
  running through a power cut (the handset's RTC lives on the vehicle battery) and moves
  only when the core sets it after an authorized set-time.

`world_s()` is the true time of the simulated world in core seconds (what the back office
and a technician's laptop would say): `set_now` on the device never changes it.

The file is MicroPython-compatible (no CPython-only features): it is pure integer arithmetic.
"""

from firmware import hal


class VirtualClock(hal.Clock):
    def __init__(self, start_s=0):
        """`start_s`: the world's (and the device's) wall time at t=0, in core seconds."""
        self.t_ms = 0  # simulation time since the simulator started; never goes back
        self.start_s = start_s
        self.boot_ms = 0  # t_ms of the device's last boot
        self._wall_offset_ms = start_s * 1000  # device wall clock = t_ms + offset

    # -- hal.Clock -----------------------------------------------------------------------
    def now(self):
        return (self.t_ms + self._wall_offset_ms) // 1000

    def monotonic_ms(self):
        return self.t_ms - self.boot_ms

    def set_now(self, seconds):
        self._wall_offset_ms = seconds * 1000 - self.t_ms

    # -- the simulator's side ------------------------------------------------------------
    def world_s(self):
        """True wall time of the simulated world, core seconds (set_now does not move it)."""
        return self.start_s + self.t_ms // 1000

    def advance_to(self, t_ms):
        if t_ms < self.t_ms:
            raise ValueError(f"the virtual clock cannot go back ({t_ms} < {self.t_ms})")
        self.t_ms = t_ms

    def advance(self, ms):
        self.advance_to(self.t_ms + ms)

    def reboot(self):
        """The device powers up now: its monotonic counter restarts at 0."""
        self.boot_ms = self.t_ms

    def to_monotonic(self, t_ms):
        return t_ms - self.boot_ms

    def from_monotonic(self, mono_ms):
        return mono_ms + self.boot_ms

    @property
    def wall_skew_s(self):
        """Device wall clock minus world time, seconds (0 unless someone set the clock)."""
        return (self._wall_offset_ms - self.start_s * 1000) // 1000
