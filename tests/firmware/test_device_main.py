"""firmware/main.py's loop on a test bench (both runtimes): it steps the device, sleeps no
longer than the next deadline, and survives a fault in a step."""

from firmware import main
from tests.firmware.authority_double import AuthorityDouble
from tests.firmware.device_rig import Rig


def _runner():
    rig = Rig()
    slept = []

    def pause(ms):
        slept.append(ms)
        rig.clock.advance_ms(ms)

    runner = main.Runner(rig.hw, pause, rig.config, AuthorityDouble)
    return rig, runner, slept


def test_the_loop_steps_and_sleeps_until_the_next_thing():
    rig, runner, slept = _runner()
    runner.run(loops=5)
    assert slept == [main.POLL_MS] * 5  # inputs are polled every 20 ms
    assert runner.device.provisioned and runner.device.compliance.state == "normal"


def test_a_fault_in_a_step_is_counted_and_the_loop_goes_on():
    rig, runner, slept = _runner()
    calls = []

    def broken(now_ms=None):
        calls.append(now_ms)
        raise ValueError("a bug")

    runner.device.step = broken
    runner.run(loops=3)
    assert runner.faults == 3 and len(slept) == 3


def test_the_board_is_chosen_by_platform():
    module = main.board()
    assert hasattr(module, "build") and hasattr(module, "pause")


def test_a_unit_whose_root_key_the_authority_refuses_still_boots():
    from firmware.device import Device

    rig = Rig()  # provisioned with the double's key, which the real Authority refuses
    device = Device(rig.hw, rig.config)  # the real firmware/authority.py
    assert device.provisioned and device.authority is None
    device.step(rig.clock.ms)
    assert device.compliance.state == "normal"


class BrokenKeypad:
    """A keypad driver with a bug: every read raises."""

    def read(self):
        return 1 // 0


def _records(runner):
    from firmware import eventlog
    from tests.firmware.device_rig import _all_records

    return [eventlog.decode_record(r) for r in _all_records(runner.device.log)]


def _faults(runner):
    from firmware import eventlog

    return [r for r in _records(runner) if r["kind"] == eventlog.FAULT]


def test_a_fault_is_written_to_the_log_with_its_type_and_place_at_most_once_a_minute():
    rig, runner, slept = _runner()
    rig.hw.keypad = BrokenKeypad()
    runner.run(loops=10)  # 10 faults within 200 ms
    faults = _faults(runner)
    assert len(faults) == 1 and faults[0]["value"] == 1, faults
    kind, place = faults[0]["detail"].split(" ")
    assert kind == "ZeroDivisionError" and place.startswith("test_device_main.py:"), faults[0]["detail"]
    assert runner.faults == 10 and runner.device.compliance.state == "normal"
    rig.clock.advance_ms(60000)
    runner.run(loops=1)  # a minute on: the 9 counted since, and this one
    faults = _faults(runner)
    assert len(faults) == 2 and faults[1]["value"] == 10, faults


def test_the_count_of_a_burst_is_written_when_its_minute_is_up():
    rig, runner, slept = _runner()
    keypad = rig.hw.keypad
    rig.hw.keypad = BrokenKeypad()
    runner.run(loops=3)
    rig.hw.keypad = keypad  # the fault is gone
    rig.clock.advance_ms(60000)
    runner.run(loops=1)
    faults = _faults(runner)
    assert [f["value"] for f in faults] == [1, 2], faults


def test_a_clean_stop_writes_shutdown_and_saves():
    from firmware import eventlog

    rig, runner, slept = _runner()

    def interrupted(ms):
        raise KeyboardInterrupt

    runner.pause = interrupted
    try:
        runner.run()
        raise AssertionError("the interrupt was swallowed")
    except KeyboardInterrupt:
        pass
    assert _records(runner)[-1]["kind"] == eventlog.SHUTDOWN


def test_a_boot_with_another_configuration_writes_config_change():
    from firmware import eventlog
    from firmware.config import Config

    rig = Rig()
    rig.reboot()
    assert eventlog.CONFIG_CHANGE not in [r["kind"] for r in rig.records()]  # the same one
    rig.config = Config(jurisdiction="washington")
    rig.reboot()
    changes = [r for r in rig.records() if r["kind"] == eventlog.CONFIG_CHANGE]
    assert len(changes) == 1 and changes[0]["detail"].startswith("config "), changes
