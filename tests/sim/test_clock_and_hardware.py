"""The virtual clock and the simulated parts: what the core sees and what the world drives."""

from __future__ import annotations

import pytest

from firmware.ramflash import PowerCut, RamFlash
from protocol import messages
from sim.clock import VirtualClock
from sim.hardware import DAY_MS, FuelCellSensor, SimHardware, seeded


def test_clock_runs_only_when_told_and_never_back():
    clock = VirtualClock(start_s=1000)
    assert (clock.now(), clock.monotonic_ms()) == (1000, 0)
    clock.advance(2500)
    assert (clock.now(), clock.monotonic_ms(), clock.world_s()) == (1002, 2500, 1002)
    with pytest.raises(ValueError):
        clock.advance_to(100)


def test_reboot_restarts_monotonic_but_not_the_wall_clock():
    clock = VirtualClock(start_s=50)
    clock.advance(10_000)
    clock.reboot()
    assert clock.monotonic_ms() == 0
    assert clock.now() == 60
    clock.advance(1000)
    assert (clock.monotonic_ms(), clock.to_monotonic(clock.t_ms)) == (1000, 1000)


def test_set_now_moves_the_device_clock_not_the_world():
    clock = VirtualClock(start_s=100)
    clock.set_now(5000)
    clock.advance(3000)
    assert clock.now() == 5003
    assert clock.world_s() == 103
    assert clock.wall_skew_s == 4900


def _sensor(seed=1, **kw):
    clock = VirtualClock()
    return clock, FuelCellSensor(clock, seeded(seed, "sensor"), **kw)


def test_fresh_sensor_reads_the_brac_within_noise():
    _, sensor = _sensor(noise_units=1.5)
    readings = [sensor.counts_for(400) for _ in range(200)]
    mean = sum(readings) / len(readings)
    assert 398 <= mean <= 402
    assert max(readings) - min(readings) >= 3  # there is noise
    assert all(380 <= r <= 420 for r in readings)


def test_noise_is_seeded():
    one, two, other = _sensor(7)[1], _sensor(7)[1], _sensor(8)[1]
    a = [one.counts_for(300) for _ in range(20)]
    b = [two.counts_for(300) for _ in range(20)]
    c = [other.counts_for(300) for _ in range(20)]
    assert a == b
    assert a != c


def test_cell_drifts_low_with_age_and_reads_low_in_the_cold():
    clock, sensor = _sensor(noise_units=0, drift_ppm_per_day=1000)
    assert sensor.counts_for(1000) == 1000
    clock.advance(100 * DAY_MS)
    assert sensor.counts_for(1000) == 900  # 10 % in 100 days
    sensor.replace_cell()
    assert sensor.counts_for(1000) == 1000
    sensor.ambient_dc = 0  # 0 degC instead of 20
    assert sensor.counts_for(1000) < 1000


def test_a_blow_is_one_sample_and_an_unplugged_sensor_gives_none():
    _, sensor = _sensor(noise_units=0)
    sample = sensor.blow(250, volume_ml=1200, temperature_dc=330, complete=False)
    assert (sample.volume_ml, sample.temperature_dc, sample.fuel_cell, sample.complete) == (1200, 330, 250, False)
    sensor.is_connected = False
    assert sensor.take() is None
    sensor.is_connected = True
    assert sensor.take() is sample
    assert sensor.take() is None


def test_parts_remember_what_the_core_set():
    hw = SimHardware(seed=1)
    hw.relay.set(True)
    hw.alarm.set(True)
    hw.display.show("A" * 20, "line two")
    hw.display.leds(True, False)
    assert hw.relay.closed and hw.alarm.on and hw.display.green
    assert hw.display.line1 == "A" * 16  # 16 characters a line
    assert hw.caps & messages.CAP_BENCH
    hw.power_lost()
    assert not hw.relay.closed and not hw.alarm.on and hw.display.line1 == ""


def test_keypad_queue_and_bad_keys():
    hw = SimHardware()
    hw.keypad.press("A12#")
    assert [hw.keypad.read() for _ in range(5)] == ["A", "1", "2", "#", None]
    with pytest.raises(ValueError):
        hw.keypad.press("x")


def test_relay_bypass_lets_the_engine_start_with_the_relay_open():
    hw = SimHardware()
    assert not hw.relay.engine_can_start()
    hw.relay.bypassed = True
    assert hw.relay.engine_can_start()


def test_storage_is_a_flash_that_can_lose_power_mid_write():
    hw = SimHardware()
    assert isinstance(hw.storage, RamFlash)
    hw.storage.write("f", b"old")
    hw.storage.cut_after(2)
    with pytest.raises(PowerCut):
        hw.storage.write("f", b"new data")
    assert hw.storage.read("f").startswith(b"ne")


def test_device_random_stream_is_seeded_and_separate_from_the_sensor():
    a, b = SimHardware(seed=5), SimHardware(seed=5)
    assert a.random.bits(24) == b.random.bits(24)
    a.sensor.blow(100)  # sensor noise does not move the device's stream
    assert a.random.bytes(8) == b.random.bytes(8)


def test_a_bench_sample_goes_through_the_cell_as_it_is_now():
    clock, sensor = _sensor(3, noise_units=0.0, ambient_dc=200)
    fresh = sensor.bench_sample(400, 1500, 345)
    assert (fresh.volume_ml, fresh.temperature_dc, fresh.fuel_cell, fresh.complete) == (1500, 345, 400, True)
    clock.advance(100 * DAY_MS)  # 150 ppm/day: 1.5 % less sensitive
    assert sensor.bench_sample(400, 1500, 345).fuel_cell == 394
    sensor.ambient_dc = 100  # 10 degC colder: another 3 % less
    assert sensor.bench_sample(400, 1500, 345).fuel_cell == 382
    assert sensor.pending() == 0  # handed to the core at once, never queued for take()
    sensor.is_connected = False
    assert sensor.bench_sample(400, 1500, 345).fuel_cell == 0  # an unplugged cell gives nothing


def test_bench_samples_carry_the_seeded_noise_of_the_sensor_stream():
    hw, twin = SimHardware(seed=4), SimHardware(seed=4)
    a = [hw.bench_sample(400, 1500, 345).fuel_cell for _ in range(20)]
    b = [twin.sensor.counts_for(400) for _ in range(20)]
    assert a == b and len(set(a)) > 1
