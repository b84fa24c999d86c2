"""Scenario files: the worked examples pass, malformed files name file, line and problem."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sim import scenario
from sim.scenario import ScenarioError, loads, parse_at, parse_duration
from sim.timeline import KEYS, to_json

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.toml"))

GOOD = """
[scenario]
name = "tiny"
seed = 3

[[step]]
do = "install"
expect = { compliance = "normal" }

[[step]]
after = "1h"
do = "drive"
minutes = 20
"""


def test_durations_and_times():
    assert parse_duration("90s") == 90_000
    assert parse_duration("1h30m") == 5_400_000
    assert parse_duration("2d") == 172_800_000
    assert parse_duration(5) == 5000
    assert parse_at("d1 08:00") == (24 + 8) * 3_600_000
    assert parse_at("d0 00:00:30") == 30_000
    for bad in ("5 minutes", "", "-3s", "1.5h"):
        with pytest.raises(ValueError):
            parse_duration(bad)


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_every_example_meets_its_expectations(path):
    result = scenario.run(scenario.load(path))
    assert result.ok, result.failures
    assert result.timeline[-1]["event"] == "end"


def test_examples_exist():
    assert len(EXAMPLES) >= 4


def test_an_unmet_expectation_fails_the_run_and_names_the_line():
    text = GOOD.replace('compliance = "normal"', 'compliance = "lockout"')
    result = scenario.run(loads(text, "tiny.toml"))
    assert not result.ok
    failure = result.failures[0]
    assert failure["line"] == 6 and failure["key"] == "compliance"
    assert (failure["expected"], failure["actual"]) == ("lockout", "normal")
    assert any(e["event"] == "expect_failed" for e in result.timeline)


def test_a_refusal_is_a_failure_unless_expected():
    text = GOOD + '\n[[step]]\ndo = "install"\n'
    result = scenario.run(loads(text, "twice.toml"))
    assert [f["key"] for f in result.failures] == ["refused"]
    assert result.failures[0]["actual"] == "WORK_ORDER_MISMATCH"
    text = GOOD + '\n[[step]]\ndo = "install"\nexpect = { refused = "WORK_ORDER_MISMATCH" }\n'
    assert scenario.run(loads(text, "twice.toml")).ok


def _error(text: str) -> ScenarioError:
    with pytest.raises(ScenarioError) as caught:
        loads(text, "bad.toml")
    return caught.value


def test_toml_syntax_error_names_the_line():
    error = _error(GOOD.replace('minutes = 20', 'minutes = = 20'))
    assert error.path == "bad.toml" and error.line == 13
    assert str(error).startswith("bad.toml:13: TOML:")


def test_unknown_action_names_the_line_of_do():
    error = _error(GOOD.replace('do = "drive"', 'do = "fly"'))
    assert error.line == 12
    assert "unknown action 'fly'" in error.problem and "drive" in error.problem


def test_unknown_setting_names_its_line():
    error = _error(GOOD.replace("minutes = 20", "minutes = 20\nspeed = 3"))
    assert error.line == 14
    assert "'drive' has no setting 'speed'" in error.problem


@pytest.mark.parametrize(
    ("change", "line", "words"),
    [
        (('after = "1h"', 'after = "an hour"'), 11, "cannot read duration"),
        (("minutes = 20", 'minutes = "20"'), 13, "must be an integer"),
        (('do = "install"', 'do = "blow"\nbrac = 2.5'), 8, "BrAC in g/210L"),
        (('compliance = "normal"', 'compliance = "fine"'), 8, "no compliance state"),
        (('compliance = "normal"', 'colour = "red"'), 8, "cannot expect 'colour'"),
        (('seed = 3', 'seed = "x"'), 4, "seed must be an integer"),
        (('seed = 3', 'seed = 3\nmood = "sunny"'), 5, "no setting 'mood'"),
        (('after = "1h"', 'after = "1h"\nat = "d1 08:00"'), 12, "not both"),
        (('do = "drive"\nminutes = 20', 'do = "ignition"'), 10, "'ignition' needs 'on'"),
    ],
)
def test_semantic_errors_name_file_line_and_problem(change, line, words):
    error = _error(GOOD.replace(*change))
    assert error.line == line, str(error)
    assert words in error.problem
    assert str(error).startswith(f"bad.toml:{line}: step") or str(error).startswith(f"bad.toml:{line}:")


def test_config_errors_and_missing_steps():
    error = _error(GOOD.replace("[[step]]", "[config]\nset_point = 5\n\n[[step]]", 1))
    assert error.line == 7 and "set_point" in error.problem
    error = _error('[scenario]\nname = "empty"\n')
    assert "no steps" in error.problem
    error = _error(GOOD + "\n[stuff]\nx = 1\n")
    assert "unknown table 'stuff'" in error.problem and error.line == 15


def test_at_must_not_go_back():
    text = GOOD.replace('after = "1h"', 'at = "d2 00:00"') + '\n[[step]]\nat = "d1 00:00"\ndo = "check"\n'
    error = _error(text)
    assert error.line == 15 and "before an earlier step" in error.problem


def test_json_lines_have_the_documented_keys():
    result = scenario.run(loads(GOOD, "tiny.toml"))
    for entry in result.timeline:
        record = json.loads(to_json(entry))
        assert tuple(record) == KEYS
    sources = {e["source"] for e in result.timeline}
    assert {"scenario", "device", "driver", "tech"} <= sources


def test_same_seed_same_timeline():
    one = [to_json(e) for e in scenario.run(loads(GOOD, "a.toml")).timeline]
    two = [to_json(e) for e in scenario.run(loads(GOOD, "a.toml")).timeline]
    other = [to_json(e) for e in scenario.run(loads(GOOD, "a.toml"), seed=4).timeline]
    assert one == two
    assert one != other


EVERY_ACTION = """
[scenario]
seed = 12

[config]
jurisdiction = "california"

[[step]]
do = "install"

[[step]]
after = "1m"
do = "ignition"
on = true

[[step]]
after = "5s"
do = "blow"
brac = 0.025
note = "under California's 0.030 set point"
expect = { session = "engine_enabled" }

[[step]]
do = "keys"
keys = "5"

[[step]]
do = "wait"
for = "20m"

[[step]]
do = "refuse"
expect = { session = "violation", events = ["retest_refused"] }

[[step]]
after = "1m"
do = "ignition"
on = false

[[step]]
after = "1m"
do = "brownout"
millivolts = 5000
for = "3s"
expect = { events = ["boot"], powered = true }

[[step]]
do = "tamper"
kind = "relay"

[[step]]
do = "tamper"
kind = "clear"

[[step]]
do = "set_time"
shift = "-1h"
expect = { events = ["clock_change"] }

[[step]]
do = "service_open"
expect = { compliance = "service" }

[[step]]
do = "log_download"
expect = { chain_ok = true }

[[step]]
do = "calibrate"
reference = 0.035
expect = { events = ["cal_pass"] }

[[step]]
do = "service_close"
next_service_days = 30
expect = { compliance = "normal" }

[[step]]
do = "directive"
action = "lockout"
expect = { compliance = "lockout" }

[[step]]
do = "unlock_token"
seconds = 3600
expect = { compliance = "code_unlock" }

[[step]]
after = "61m"
do = "check"
expect = { compliance = "lockout" }

[[step]]
do = "work_order"
order = "vehicle_switch"
vehicle = "NEW-VIN"
expect = { events = ["work_order"] }
"""


def test_every_action_once():
    result = scenario.run(loads(EVERY_ACTION, "every.toml"))
    assert result.ok, result.failures
    done = {e["detail"]["do"] for e in result.timeline if e["event"] == "step"}
    assert done == set(scenario.ACTIONS) - {"drive", "power_cut", "unlock_code", "service", "check"} | {"check"}


CAL_CHECKS_3 = """
[scenario]
seed = 14

[config]
cal_checks = 3

[[step]]
do = "install"

[[step]]
after = "30d"
do = "drive"
minutes = 25

[[step]]
after = "1d"
do = "service"
expect = { compliance = "normal", causes = [], chain_ok = true, events = ["cal_pass", "service_close"], no_events = ["cal_fail", "cal_finish_refused"] }

[[step]]
after = "1h"
do = "service_open"
expect = { compliance = "service" }

[[step]]
do = "calibrate"
reference = 0.035
expect = { events = ["cal_pass"] }

[[step]]
do = "service_close"
expect = { compliance = "normal" }
"""


def test_a_unit_asking_for_three_checks_gets_three_and_ends_normal():
    result = scenario.run(loads(CAL_CHECKS_3, "cal3.toml"))
    assert result.ok, result.failures
    checks = [e["detail"] for e in result.timeline if e["source"] == "tech" and e["event"] == "cal_check"]
    assert [c["detail"] for c in checks] == ["check 1/3", "check 2/3", "check 3/3"] * 2
    assert all(c["passed"] for c in checks)


def test_the_calibrate_step_has_no_checks_setting_any_more():
    """The number of checks is the handset's cal_checks (CONFIG_GET), as the tool reads it."""
    error = _error(CAL_CHECKS_3.replace("reference = 0.035", "reference = 0.035\nchecks = 2"))
    assert "'calibrate' has no setting 'checks'" in error.problem
