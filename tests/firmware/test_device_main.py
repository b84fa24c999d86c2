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
