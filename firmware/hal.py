"""The hardware layer: everything physical the core may touch, and nothing else.

The core (firmware/device.py and friends) never imports machine, time or os: it gets one
`Hardware` object whose parts are the classes below. Boards implement them in
firmware/boards/ (rp2.py, esp32.py, unix.py); the simulator implements them in sim/.
Each class here is the interface with a null behaviour, so a board overrides only what it
has. Units are integers everywhere:

- time: whole seconds on the core's own epoch (2020-01-01T00:00:00Z, protocol/coretime.py) and
  a monotonic millisecond counter that never goes back and survives nothing;
- BrAC: units of 0.0001 g/210L (0.020 g/210L is 200);
- breath volume: millilitres; temperatures: tenths of a degree Celsius;
- supply: millivolts.
"""

# The core's epoch is protocol.coretime.EPOCH_UNIX. MicroPython boards count from
# 2000-01-01 and the unix port from 1970: boards convert, the core never sees either.


class Clock:
    def now(self):
        """Wall time, seconds since the core's epoch (as last set by an authorized command)."""
        return 0

    def monotonic_ms(self):
        """Milliseconds since boot; never goes back; restarts at boot."""
        return 0

    def set_now(self, seconds):
        """Set the wall clock (only ever called by the core after an authorized set-time)."""


class Relay:
    """Engine enable: closed lets the starter crank."""

    def set(self, closed):
        pass


class Alarm:
    """Horn and lights (a violation alarm; never cuts the engine)."""

    def set(self, on):
        pass


class Display:
    """The handset's 2 x 16 character display and its two LEDs (green pass, red fail)."""

    WIDTH = 16

    def show(self, line1, line2):
        pass

    def leds(self, green, red):
        pass


class Keypad:
    def read(self):
        """The next key pressed since the last call ('0'-'9', '*', '#', 'A'-'D'), or None."""
        return None


class BreathSample:
    """One blow, as the sensor measured it."""

    def __init__(self, volume_ml, temperature_dc, fuel_cell, complete=True):
        self.volume_ml = volume_ml
        self.temperature_dc = temperature_dc
        self.fuel_cell = fuel_cell  # raw fuel-cell reading (counts), scaled by the calibration
        self.complete = complete  # False: the driver stopped blowing early


class BreathSensor:
    def take(self):
        """A finished BreathSample since the last call, or None."""
        return None

    def connected(self):
        return True

    def purge(self):
        """Start the purge pump between tests."""


class Ignition:
    def on(self):
        return False


class Supply:
    def millivolts(self):
        return 12600


class Storage:
    """Flash files: small, named, written whole or appended; rename is atomic."""

    def read(self, name):
        """The file's bytes, or None if it does not exist."""
        return None

    def read_at(self, name, offset, size):
        """At most `size` bytes of the file from `offset` (b"" past its end), or None if it
        does not exist. A board reads just those bytes; this default reads the whole file."""
        data = self.read(name)
        return None if data is None else data[offset : offset + size]

    def write(self, name, data):
        """Create or replace `name` with `data` (not atomic by itself)."""

    def append(self, name, data):
        """Append `data` to `name` (creating it)."""

    def rename(self, old, new):
        """Atomically replace `new` with `old`."""

    def remove(self, name):
        pass

    def size(self, name):
        """Size in bytes, or -1 if the file does not exist."""
        return -1

    def names(self):
        return []


class SerialPort:
    def read(self):
        """Bytes received since the last call (b"" if none); never blocks."""
        return b""

    def write(self, data):
        pass


class Random:
    def bits(self, n):
        """n random bits as an int (the board's hardware RNG; the simulator's seeded one)."""
        return 0

    def bytes(self, n):
        out = bytearray(n)
        for i in range(n):
            out[i] = self.bits(8)
        return bytes(out)


class Hardware:
    """The bundle the core is built with; a board fills in what it has."""

    def __init__(
        self,
        clock=None,
        relay=None,
        alarm=None,
        display=None,
        keypad=None,
        sensor=None,
        ignition=None,
        supply=None,
        storage=None,
        serial=None,
        random=None,
        board="null",
    ):
        self.clock = clock or Clock()
        self.relay = relay or Relay()
        self.alarm = alarm or Alarm()
        self.display = display or Display()
        self.keypad = keypad or Keypad()
        self.sensor = sensor or BreathSensor()
        self.ignition = ignition or Ignition()
        self.supply = supply or Supply()
        self.storage = storage or Storage()
        self.serial = serial or SerialPort()
        self.random = random or Random()
        self.board = board
