"""Breath-test evaluation and the configuration it reads (both runtimes)."""

from firmware import breath
from firmware.config import Config, ConfigError
from firmware.hal import BreathSample
from tests.dualtest import raises

CONFIG = Config()


def judge(fuel_cell, volume=1800, temperature=345, complete=True, gain=breath.GAIN_ONE, config=CONFIG, purging=False):
    return breath.evaluate(BreathSample(volume, temperature, fuel_cell, complete), config, gain, purging)


def test_below_the_set_point_passes_at_or_above_fails():
    assert judge(0) == (breath.PASS, 0, "")
    assert judge(199) == (breath.PASS, 199, "")
    assert judge(200) == (breath.FAIL, 200, "")
    assert judge(850) == (breath.FAIL, 850, "")


def test_california_set_point_is_0_030():
    california = Config("california")
    assert california.set_point == 300
    assert judge(250, config=california)[0] == breath.PASS
    assert judge(300, config=california)[0] == breath.FAIL


def test_aborts_are_not_fails():
    assert judge(900, complete=False) == (breath.ABORT, 0, "incomplete")
    assert judge(900, volume=1499) == (breath.ABORT, 0, "low_volume")
    assert judge(900, volume=1500)[0] == breath.FAIL  # exactly the minimum volume counts
    assert judge(900, temperature=279) == (breath.ABORT, 0, "temperature")
    assert judge(900, temperature=421) == (breath.ABORT, 0, "temperature")
    assert judge(900, purging=True) == (breath.ABORT, 0, "purging")


def test_the_reading_is_scaled_by_the_calibration_gain():
    assert breath.scale(150, breath.GAIN_ONE) == 150
    assert breath.scale(150, 14000) == 210  # a sensor that reads 40 % low
    assert judge(150, gain=14000) == (breath.FAIL, 210, "")
    assert breath.scale(3, 5000) == 2  # rounded half up: 1.5 -> 2
    assert breath.scale(-5, breath.GAIN_ONE) == 0
    assert breath.scale(10**9, breath.GAIN_ONE) == breath.BRAC_MAX


def test_config_has_the_issue_defaults():
    c = CONFIG
    assert (c.set_point, c.min_volume_ml) == (200, 1500)
    assert (c.temp_lockout_s, c.temp_lockout_long_s, c.fails_for_long, c.fails_window_s) == (300, 900, 3, 900)
    assert c.free_restart_s == 120
    assert (c.retest_first_min_s, c.retest_first_max_s) == (300, 900)
    assert (c.retest_next_min_s, c.retest_next_max_s, c.retest_window_s) == (900, 2700, 360)
    assert c.violation_threshold == 3
    assert c.service_interval_s == 60 * 86400 and c.recall_s == 7 * 86400
    assert (c.cal_ref_min, c.cal_ref_max, c.cal_tolerance, c.cal_checks, c.cal_check_gap_s) == (300, 500, 50, 2, 300)
    assert (c.override_s, c.override_activate_s, c.override_dead_s, c.overrides_per_service) == (14400, 72000, 86400, 1)
    assert Config("washington").service_interval_s == 30 * 86400
    assert Config("service_90").service_interval_s == 90 * 86400


def test_config_as_dict_round_trips():
    d = Config("california", recall_s=3 * 86400).as_dict()
    assert d["jurisdiction"] == "california" and d["set_point"] == 300 and d["recall_s"] == 3 * 86400
    jurisdiction = d.pop("jurisdiction")
    assert Config(jurisdiction, **d).as_dict() == Config("california", recall_s=3 * 86400).as_dict()


def test_config_refuses_what_it_does_not_know():
    raises(ConfigError, Config, set_pont=200)  # a typo is an error, not a silent default
    raises(ConfigError, Config, set_point=5)  # below the range
    raises(ConfigError, Config, set_point="200")
    raises(ConfigError, Config, tamper_recall=True)  # booleans are not integers here
    raises(ConfigError, Config, retest_first_min_s=1000, retest_first_max_s=900)
    raises(ConfigError, Config, jurisdiction="atlantis")


def test_tolerance_is_absolute_or_a_percentage():
    assert CONFIG.cal_tolerance_for(400) == 50
    assert Config(cal_tolerance_pct=10).cal_tolerance_for(400) == 40
