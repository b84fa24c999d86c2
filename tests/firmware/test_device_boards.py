"""The board modules against a fake `machine` (CPython only: pytest fixtures; the real
`machine` exists only on a board). Pins come from each board's one table."""

import io
import os
import sys
import types

import pytest

from firmware import hal
from firmware.boards import files
from protocol import messages


class FakePin:
    OUT, IN, PULL_UP, PULL_DOWN = 1, 2, 3, 4
    levels = {}  # pin -> level read by IN pins (tests set it)
    driven = {}  # pin -> level written by OUT pins

    def __init__(self, pin, mode=None, pull=None, value=None):
        self.id = pin
        if value is not None:
            FakePin.driven[pin] = value

    def value(self, v=None):
        if v is None:
            if self.id in FakePin.driven and self.id not in FakePin.levels:
                return FakePin.driven[self.id]
            return FakePin.levels.get(self.id, 1)
        FakePin.driven[self.id] = v
        return None


class FakeADC:
    def __init__(self, pin):
        self.pin = pin

    def read_u16(self):
        return 32768


class FakeI2C:
    def __init__(self, bus, sda=None, scl=None, freq=None):
        self.sent = []

    def writeto(self, address, data):
        self.sent.append((address, bytes(data)))


class FakeRTC:
    def __init__(self):
        self.set = None

    def datetime(self, t=None):
        self.set = t


class FakeUART:
    def __init__(self, *a, **k):
        self.rx = b""
        self.tx = b""

    def any(self):
        return len(self.rx)

    def read(self):
        data, self.rx = self.rx, b""
        return data

    def write(self, data):
        self.tx += data


@pytest.fixture
def boards(monkeypatch, tmp_path):
    machine = types.ModuleType("machine")
    machine.Pin, machine.ADC, machine.I2C, machine.RTC, machine.UART = FakePin, FakeADC, FakeI2C, FakeRTC, FakeUART
    monkeypatch.setitem(sys.modules, "machine", machine)
    import time

    for name, value in (("ticks_ms", lambda: 0), ("ticks_diff", lambda a, b: a - b), ("sleep_ms", lambda ms: None)):
        monkeypatch.setattr(time, name, value, raising=False)
    for mod in ("firmware.boards.mpboard", "firmware.boards.rp2", "firmware.boards.esp32"):
        sys.modules.pop(mod, None)
    from firmware.boards import mpboard

    monkeypatch.setattr(mpboard, "FolderStorage", lambda folder: files.FolderStorage(str(tmp_path)))
    FakePin.levels.clear()
    FakePin.driven.clear()
    yield mpboard
    for mod in ("firmware.boards.mpboard", "firmware.boards.rp2", "firmware.boards.esp32"):
        sys.modules.pop(mod, None)


def _stdio(monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"")))
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(io.BytesIO()))


def test_rp2_builds_from_its_pin_table(boards, monkeypatch):
    from firmware.boards import stdio

    monkeypatch.setattr(stdio, "StdioSerial", lambda: hal.SerialPort())
    from firmware.boards import rp2

    hw = rp2.build()
    assert hw.board == "rp2" and hw.caps == 0
    hw.relay.set(True)
    assert FakePin.driven[rp2.PINS["relay"]] == 1
    FakePin.levels[rp2.PINS["ignition"]] = 0
    assert hw.ignition.on()
    FakePin.levels[rp2.PINS["blow_button"]] = 0
    sample = hw.sensor.take()
    assert sample.volume_ml == 1800 and sample.fuel_cell == 500  # half scale of 1000
    assert hw.sensor.take() is None  # one sample per press
    hw.display.show("LCI-777", "READY")
    assert hw.display.i2c.sent  # the LCD got its bytes
    hw.storage.write("a", b"xyz")
    hw.storage.rename("a", "b")
    assert hw.storage.read("b") == b"xyz" and hw.storage.names() == ["b"] and hw.storage.size("b") == 3
    assert 0 <= hw.random.bits(12) < 4096


def test_the_keypad_reports_a_press_once(boards):
    keypad = boards.MatrixKeypad((2, 3, 4, 5), (6, 7, 8, 9))
    FakePin.levels.update({6: 0, 7: 0, 8: 0, 9: 0})
    assert keypad.read() is None

    class Col(FakePin):  # column 7 is connected to row 3 (the "6" key) while it is driven
        def value(self, v=None):
            if v is None:
                return FakePin.driven.get(3, 0)
            return FakePin.value(self, v)

    keypad.cols[1] = Col(7)
    assert keypad.read() == "5"  # row 1, column 1
    assert keypad.read() is None  # still held: no repeat
    FakePin.driven[3] = 0
    keypad.cols[1] = FakePin(7)
    assert keypad.read() is None


def test_the_rtc_clock_speaks_core_seconds(boards):
    clock = boards.RtcClock()
    clock.set_now(200000000)
    assert clock.rtc.set[0] == 2026  # 2020 + ~6.3 years


def test_esp32_builds_from_its_pin_table(boards):
    from firmware.boards import esp32

    hw = esp32.build()
    assert hw.board == "esp32"
    hw.serial.uart.rx = b"\x00abc"
    assert hw.serial.read() == b"\x00abc" and hw.serial.read() == b""
    hw.serial.write(b"xyz")
    assert hw.serial.uart.tx == b"xyz"


def test_unix_board_runs_on_cpython(tmp_path, monkeypatch):
    from firmware.boards import unix

    monkeypatch.setattr(unix, "StdioSerial", lambda: hal.SerialPort())
    hw = unix.build(str(tmp_path / "state"))
    assert hw.board == "unix" and hw.caps == messages.CAP_BENCH
    now = hw.clock.now()
    hw.clock.set_now(now - 1000)
    assert abs(hw.clock.now() - (now - 1000)) <= 1
    hw.storage.append("log-1", b"ab")
    hw.storage.append("log-1", b"c")
    assert hw.storage.read("log-1") == b"abc" and hw.storage.read("nope") is None
    assert os.path.isdir(str(tmp_path / "state"))


def test_stdio_serial_moves_bytes(tmp_path):
    from firmware.boards.stdio import StdioSerial

    rfd, wfd = os.pipe()
    with os.fdopen(rfd, "rb", buffering=0) as rx, open(tmp_path / "out", "wb") as tx:
        os.write(wfd, b"\x03\x00frame")
        serial = StdioSerial(rx, tx)
        assert serial.read() == b"\x03\x00frame"
        assert serial.read() == b""
        serial.write(b"\x01\x02")
    os.close(wfd)
    assert (tmp_path / "out").read_bytes() == b"\x01\x02"


def test_stdio_serial_takes_everything_a_buffered_stdin_holds(tmp_path):
    # a buffered reader pulls every waiting byte into its buffer on the first read, where
    # poll cannot see them: the serial port must hand them all over in one read
    from firmware.boards.stdio import StdioSerial

    rfd, wfd = os.pipe()
    with os.fdopen(rfd, "rb") as rx, open(tmp_path / "out", "wb") as tx:
        os.write(wfd, b"\x05frame\x00")
        serial = StdioSerial(rx, tx)
        assert serial.read() == b"\x05frame\x00"
        os.write(wfd, b"next\x00")
        assert serial.read() == b"next\x00"
    os.close(wfd)


def test_unix_board_clock_runs_at_its_rate(tmp_path, monkeypatch):
    from firmware.boards import unix

    ticks = [5_000_000]  # the host's microsecond tick, moved by hand
    monkeypatch.setattr(unix.UnixClock, "_tick", staticmethod(lambda: ticks[0]))
    monkeypatch.setattr(unix, "StdioSerial", lambda: hal.SerialPort())
    monkeypatch.setenv("LCI_CLOCK_RATE", "600")
    hw = unix.build(str(tmp_path / "state"))
    clock = hw.clock
    start_now = clock.now()
    ticks[0] += 2_000_000  # two wall seconds
    assert clock.monotonic_ms() == 1_200_000
    assert clock.now() - start_now == 1200
    clock.set_now(start_now)
    ticks[0] += 500_000
    assert clock.now() == start_now + 300
    assert unix.poll_ms() == 600_000


def test_unix_board_rtc_runs_on_through_a_restart(tmp_path, monkeypatch):
    from firmware.boards import unix

    host_ms = [1_000_000]
    monkeypatch.setattr(unix, "_host_ms", lambda: host_ms[0])
    monkeypatch.setattr(unix.UnixClock, "_tick", staticmethod(lambda: 0))
    rtc = str(tmp_path / "rtc")
    clock = unix.UnixClock(600, rtc)
    clock.set_now(200_000_000)
    host_ms[0] += 10_000  # ten wall seconds off, at 600 times: 6000 device seconds
    again = unix.UnixClock(600, rtc)
    assert again.now() == 200_006_000
    (tmp_path / "rtc").write_text("torn")
    assert unix.UnixClock(1, rtc).now() > 0  # a torn RTC file: the host's time, no crash
