"""The simulated LCI-777: every part of firmware/hal.py, with a world side the simulator drives.

Each class implements one HAL part for the device and offers the simulator (scenario
runner, handset, fleet) the other side of it: the driver blows, turns the key, presses
keypad keys; a technician applies dry gas; the supply sags or is cut. The parts keep the
state the device last set (relay, alarm, display, LEDs) so the simulator can show it.

Randomness is seeded and host-side only: the sensor's noise and the device's RNG come
from separate streams of one seed, so under either runtime (CPython, or MicroPython
calling back into these objects) the same scenario gives the same numbers.

Storage is `firmware.ramflash.RamFlash` (a flash that can lose power at any byte).
"""

from __future__ import annotations

import random as _random
from collections import deque

from firmware import hal
from firmware.ramflash import RamFlash
from protocol.messages import CAP_BENCH, CAP_POWER_CUT
from sim.clock import VirtualClock

DAY_MS = 86_400_000

# A breath of a sober, ordinary driver: enough air, at breath temperature.
DEFAULT_VOLUME_ML = 1800
DEFAULT_BREATH_DC = 345
DRY_GAS_VOLUME_ML = 2000
DRY_GAS_DC = 340  # the dry-gas bench fixture warms the gas to breath temperature

BROWNOUT_MV = 7000  # below this the handset resets (the core never sees a half-powered CPU)


def seeded(seed: int | str, stream: str) -> _random.Random:
    """One named random stream of a seed (stable across Python versions and runs)."""
    return _random.Random(f"lci-sim:{seed}:{stream}")


class FuelCellSensor(hal.BreathSensor):
    """A fuel-cell breath sensor: counts proportional to BrAC, with noise, drift and temperature.

    At the factory a count is one BrAC unit under the nominal gain (GAIN_ONE). Then:
    - sensitivity falls by `drift_ppm_per_day` per day of the cell's age; the device's own
      dry-gas calibration compensates it (a new gain), so what a driver sees is the drift
      since the last calibration — a unit not recalibrated reads low, as real cells do;
    - the ambient temperature moves sensitivity by `temp_ppm_per_dc` per 0.1 degC away
      from 20.0 degC (fuel cells read low in the cold);
    - each reading gets Gaussian noise of `noise_units` (one sigma, in BrAC units),
      but never a negative count.
    The device scales counts by its own calibration gain; `replace_cell()` models a new
    fuel cell (a handset exchange): age 0 again.
    """

    def __init__(
        self,
        clock: VirtualClock,
        rng: _random.Random,
        *,
        noise_units: float = 1.5,
        drift_ppm_per_day: int = 150,
        temp_ppm_per_dc: int = 300,
        ambient_dc: int = 200,
    ):
        self.clock = clock
        self.rng = rng
        self.noise_units = noise_units
        self.drift_ppm_per_day = drift_ppm_per_day
        self.temp_ppm_per_dc = temp_ppm_per_dc
        self.ambient_dc = ambient_dc
        self.cell_born_ms = clock.t_ms
        self.is_connected = True
        self.purges = 0
        self.samples_taken = 0
        self._ready: deque[hal.BreathSample] = deque()

    # -- the physics --------------------------------------------------------------------
    def sensitivity_ppm(self) -> int:
        days = (self.clock.t_ms - self.cell_born_ms) / DAY_MS
        drift = self.drift_ppm_per_day * days
        temperature = self.temp_ppm_per_dc * (self.ambient_dc - 200)
        return max(0, int(1_000_000 - drift + temperature))

    def counts_for(self, brac: int) -> int:
        """A raw reading of `brac` now (consumes noise from the seeded stream)."""
        mean = brac * self.sensitivity_ppm() / 1_000_000
        noise = self.rng.gauss(0.0, self.noise_units) if self.noise_units else 0.0
        return max(0, int(round(mean + noise)))

    # -- the world's side ------------------------------------------------------------------
    def blow(
        self,
        brac: int,
        volume_ml: int = DEFAULT_VOLUME_ML,
        temperature_dc: int = DEFAULT_BREATH_DC,
        complete: bool = True,
    ) -> hal.BreathSample:
        """The driver blows a breath of true BrAC `brac`: one sample becomes ready."""
        sample = hal.BreathSample(volume_ml, temperature_dc, self.counts_for(brac), complete)
        self._ready.append(sample)
        return sample

    def apply_gas(self, brac: int) -> hal.BreathSample:
        """A technician applies a dry-gas reference of `brac` (calibration, accuracy check)."""
        return self.blow(brac, DRY_GAS_VOLUME_ML, DRY_GAS_DC, True)

    def bench_sample(self, brac: int, volume_ml: int, temperature_dc: int) -> hal.BreathSample:
        """The reading of a BENCH BLOW of true BrAC `brac`, through this cell as it is now
        (drift since the last calibration, ambient temperature, noise), handed straight to
        the core instead of being queued: the core asks for it while it handles the BENCH
        request. A cell that is not wired up gives no response (0 counts)."""
        counts = self.counts_for(brac) if self.is_connected else 0
        return hal.BreathSample(volume_ml, temperature_dc, counts, True)

    def replace_cell(self) -> None:
        """A new fuel cell: no drift yet."""
        self.cell_born_ms = self.clock.t_ms

    def pending(self) -> int:
        return len(self._ready)

    # -- hal.BreathSensor -----------------------------------------------------------------
    def take(self) -> hal.BreathSample | None:
        if not self._ready or not self.is_connected:
            return None
        self.samples_taken += 1
        return self._ready.popleft()

    def connected(self) -> bool:
        return self.is_connected

    def purge(self) -> None:
        self.purges += 1


class SimRelay(hal.Relay):
    """Engine enable. `bypassed` models a tamper: a wire around the relay."""

    def __init__(self):
        self.closed = False
        self.bypassed = False
        self.switches = 0

    def set(self, closed):
        closed = bool(closed)
        if closed != self.closed:
            self.switches += 1
        self.closed = closed

    def engine_can_start(self) -> bool:
        return self.closed or self.bypassed


class SimAlarm(hal.Alarm):
    def __init__(self):
        self.on = False
        self.activations = 0

    def set(self, on):
        on = bool(on)
        if on and not self.on:
            self.activations += 1
        self.on = on


class SimDisplay(hal.Display):
    def __init__(self):
        self.line1 = ""
        self.line2 = ""
        self.green = False
        self.red = False
        self.updates = 0

    def show(self, line1, line2):
        self.line1 = str(line1)[: self.WIDTH]
        self.line2 = str(line2)[: self.WIDTH]
        self.updates += 1

    def leds(self, green, red):
        self.green = bool(green)
        self.red = bool(red)

    def text(self) -> str:
        return f"{self.line1.rstrip()} | {self.line2.rstrip()}".strip(" |")


class SimKeypad(hal.Keypad):
    KEYS = "0123456789*#ABCD"

    def __init__(self):
        self._keys: deque[str] = deque()

    def press(self, keys: str) -> None:
        for key in keys:
            if key not in self.KEYS:
                raise ValueError(f"no key {key!r} on the keypad (keys: {self.KEYS})")
            self._keys.append(key)

    def pending(self) -> int:
        return len(self._keys)

    def read(self):
        return self._keys.popleft() if self._keys else None


class SimIgnition(hal.Ignition):
    def __init__(self):
        self.is_on = False

    def on(self):
        return self.is_on


class SimSupply(hal.Supply):
    """The vehicle supply. Below BROWNOUT_MV the handset is off (the simulator reboots it)."""

    def __init__(self, millivolts: int = 12600):
        self.mv = millivolts

    def millivolts(self):
        return self.mv

    @property
    def powered(self) -> bool:
        return self.mv >= BROWNOUT_MV


class SimSerial(hal.SerialPort):
    """The handset's USB serial port: bytes in from the host, bytes out to a sink."""

    def __init__(self):
        self._rx = bytearray()
        self.sink = None  # callable(bytes) set by whoever serves the port
        self.tx_bytes = 0
        self.rx_bytes = 0

    def feed(self, data: bytes) -> None:
        """Bytes from the host arrive at the device."""
        self._rx.extend(data)

    def pending(self) -> int:
        return len(self._rx)

    def read(self):
        if not self._rx:
            return b""
        data = bytes(self._rx)
        self._rx = bytearray()
        self.rx_bytes += len(data)
        return data

    def write(self, data):
        data = bytes(data)
        self.tx_bytes += len(data)
        if self.sink is not None:
            self.sink(data)

    def drop_input(self) -> None:
        """A power cut loses whatever the device had not read yet."""
        self._rx = bytearray()


class SimRandom(hal.Random):
    def __init__(self, rng: _random.Random):
        self.rng = rng

    def bits(self, n):
        return self.rng.getrandbits(n) if n > 0 else 0

    def bytes(self, n):
        return bytes(self.rng.getrandbits(8) for _ in range(n))


class SimHardware(hal.Hardware):
    """Every simulated part, wired to one virtual clock and one seed."""

    def __init__(self, clock: VirtualClock | None = None, seed: int | str = 0, storage=None, **sensor):
        self.seed = seed
        clock = clock or VirtualClock()
        super().__init__(
            clock=clock,
            relay=SimRelay(),
            alarm=SimAlarm(),
            display=SimDisplay(),
            keypad=SimKeypad(),
            sensor=FuelCellSensor(clock, seeded(seed, "sensor"), **sensor),
            ignition=SimIgnition(),
            supply=SimSupply(),
            storage=storage if storage is not None else RamFlash(fill=0xFF),
            serial=SimSerial(),
            random=SimRandom(seeded(seed, "device")),
            board="sim",
        )
        # the simulator accepts BENCH inputs and can cut its own power (never a customer unit)
        self.caps = CAP_BENCH | CAP_POWER_CUT

    def bench_sample(self, brac: int, volume_ml: int, temperature_dc: int) -> hal.BreathSample:
        """A bench blow's sample through the simulated fuel cell (FuelCellSensor.bench_sample).
        The core prefers this to its own "sensor as calibrated" sample when the hardware
        has it, so a BENCH BLOW over the wire (lci-tool calibrate, HIL, a bench visit) reads
        what the simulated cell reads."""
        return self.sensor.bench_sample(brac, volume_ml, temperature_dc)

    def power_lost(self) -> None:
        """What a power cut does to the parts: outputs drop, unread input is lost."""
        self.relay.closed = False
        self.alarm.on = False
        self.display.show("", "")
        self.display.leds(False, False)
        self.serial.drop_input()


__all__ = [
    "FuelCellSensor",
    "SimAlarm",
    "SimDisplay",
    "SimHardware",
    "SimIgnition",
    "SimKeypad",
    "SimRandom",
    "SimRelay",
    "SimSerial",
    "SimSupply",
    "seeded",
]
