"""Parts shared by the MicroPython boards with a `machine` module (rp2, esp32).

Each board module has ONE pin table and calls build(pins, board, caps). The bench wiring
(docs/board.md): a relay for engine enable, a horn/light output, two LEDs, an ignition
switch to ground, a 4x4 matrix keypad, a potentiometer on an ADC standing in for the
fuel cell with a "blow" push button, a supply divider on an ADC, and a 16x2 HD44780 LCD
behind a PCF8574 I2C backpack. State files live in one flash folder; the wall clock is
the board's RTC converted to the core's epoch.
"""

import time

import machine

from firmware import hal
from firmware.boards.files import FolderStorage, UrandomRandom
from protocol.coretime import EPOCH_UNIX

# seconds between the port's time.time() epoch and the core's (2000-01-01 on boards)
PORT_EPOCH_UNIX = 946684800 if time.gmtime(0)[0] == 2000 else 0
OFFSET = EPOCH_UNIX - PORT_EPOCH_UNIX
KEYS = "123A456B789C*0#D"  # the 4x4 keypad, row by row


class RtcClock(hal.Clock):
    def __init__(self):
        self.rtc = machine.RTC()
        self.last = time.ticks_ms()
        self.ms = 0

    def now(self):
        return time.time() - OFFSET

    def monotonic_ms(self):
        tick = time.ticks_ms()
        self.ms += time.ticks_diff(tick, self.last)  # ticks wrap; the sum never does
        self.last = tick
        return self.ms

    def set_now(self, seconds):
        t = time.gmtime(seconds + OFFSET)
        self.rtc.datetime((t[0], t[1], t[2], t[6], t[3], t[4], t[5], 0))


class Output(hal.Relay):
    """A GPIO output (relay, horn and lights); `on` drives the pin high."""

    def __init__(self, pin):
        self.pin = machine.Pin(pin, machine.Pin.OUT, value=0)

    def set(self, on):
        self.pin.value(1 if on else 0)


class Ignition(hal.Ignition):
    def __init__(self, pin):
        self.pin = machine.Pin(pin, machine.Pin.IN, machine.Pin.PULL_UP)

    def on(self):
        return self.pin.value() == 0  # the switch pulls it to ground


class MatrixKeypad(hal.Keypad):
    """4x4 matrix: rows driven high one at a time, columns read with pull-downs; one key
    per press (reported when it goes down)."""

    def __init__(self, rows, cols):
        self.rows = [machine.Pin(p, machine.Pin.OUT, value=0) for p in rows]
        self.cols = [machine.Pin(p, machine.Pin.IN, machine.Pin.PULL_DOWN) for p in cols]
        self.down = None

    def _scan(self):
        for r in range(len(self.rows)):
            self.rows[r].value(1)
            for c in range(len(self.cols)):
                if self.cols[c].value():
                    self.rows[r].value(0)
                    return KEYS[r * 4 + c]
            self.rows[r].value(0)
        return None

    def read(self):
        key = self._scan()
        if key == self.down:
            return None
        self.down = key
        return key


class PotSensor(hal.BreathSensor):
    """The bench stand-in for a fuel cell: pressing BLOW takes the potentiometer's reading
    as a complete 1.8 L blow at 34.5 degC (full scale = `full_scale` counts)."""

    def __init__(self, adc_pin, button_pin, purge_pin=None, full_scale=1000):
        self.adc = machine.ADC(machine.Pin(adc_pin))
        self.button = machine.Pin(button_pin, machine.Pin.IN, machine.Pin.PULL_UP)
        self.was_down = False
        self.full_scale = full_scale
        self.pump = Output(purge_pin) if purge_pin is not None else None

    def take(self):
        down = self.button.value() == 0
        pressed = down and not self.was_down
        self.was_down = down
        if not pressed:
            return None
        counts = self.adc.read_u16() * self.full_scale // 65535
        return hal.BreathSample(1800, 345, counts)

    def purge(self):
        if self.pump is not None:
            self.pump.set(True)  # a real pump would be timed; the bench only lights it


class DividerSupply(hal.Supply):
    def __init__(self, adc_pin, ratio_x1000):
        self.adc = machine.ADC(machine.Pin(adc_pin))
        self.ratio = ratio_x1000

    def millivolts(self):
        return self.adc.read_u16() * 3300 // 65535 * self.ratio // 1000


class LcdDisplay(hal.Display):
    """HD44780 16x2 in 4-bit mode behind a PCF8574 (P0 RS, P2 E, P3 backlight, P4-P7 data)."""

    def __init__(self, i2c, address, green_pin, red_pin):
        self.i2c = i2c
        self.address = address
        self.green = Output(green_pin)
        self.red = Output(red_pin)
        for nibble in (0x30, 0x30, 0x30, 0x20):
            self._nibble(nibble, 0)
            time.sleep_ms(5)
        for command in (0x28, 0x0C, 0x06, 0x01):
            self._byte(command, 0)
        time.sleep_ms(2)

    def _nibble(self, value, rs):
        data = (value & 0xF0) | 0x08 | rs
        self.i2c.writeto(self.address, bytes((data | 0x04, data)))

    def _byte(self, value, rs):
        self._nibble(value, rs)
        self._nibble(value << 4, rs)

    def show(self, line1, line2):
        for address, text in ((0x80, line1), (0xC0, line2)):
            self._byte(address, 0)
            for ch in (text + " " * 16)[:16]:
                self._byte(ord(ch) if ord(ch) < 128 else 0x3F, 1)

    def leds(self, green, red):
        self.green.set(green)
        self.red.set(red)


def build(pins, board, serial, caps=0):
    """The Hardware of a bench board wired as `pins` says."""
    i2c = machine.I2C(pins["lcd_i2c"], sda=machine.Pin(pins["lcd_sda"]), scl=machine.Pin(pins["lcd_scl"]), freq=100000)
    hw = hal.Hardware(
        clock=RtcClock(),
        relay=Output(pins["relay"]),
        alarm=Output(pins["horn"]),
        display=LcdDisplay(i2c, pins["lcd_address"], pins["led_green"], pins["led_red"]),
        keypad=MatrixKeypad(pins["keypad_rows"], pins["keypad_cols"]),
        sensor=PotSensor(pins["sensor_adc"], pins["blow_button"], pins.get("purge")),
        ignition=Ignition(pins["ignition"]),
        supply=DividerSupply(pins["supply_adc"], pins["supply_ratio_x1000"]),
        storage=FolderStorage("/lci"),
        serial=serial,
        random=UrandomRandom(),
        board=board,
    )
    hw.caps = caps  # type: ignore[attr-defined]  # handler.py reads it (bench boards only)
    return hw


def pause(ms):
    time.sleep_ms(ms)
