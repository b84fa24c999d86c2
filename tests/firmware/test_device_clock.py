"""The clock (both runtimes): only an authorized set-time moves it, and moving it back
never extends a deadline (recall, temporary lockout, override, service date, back-off);
moving it forward does expire them."""

from firmware.config import Config
from protocol import errors
from protocol.endpoint import Refused
from tests.firmware.device_rig import DAY, Rig


def _set_time(rig, seconds):
    rig.token("set_time", {"time": seconds}, nonce=rig.nonce())


def test_setting_the_clock_back_never_extends_a_recall():
    rig = Rig()
    rig.token("recall", {"cause": "unpaid_balance", "days": 7}, key="billing")
    rig.advance(2 * DAY)
    assert rig.device.recall_left() == 5 * DAY
    _set_time(rig, rig.clock.wall - 30 * DAY)
    assert rig.device.recall_left() == 5 * DAY
    assert rig.screen.text == "SERVICE DUE 5 DAYS"
    rig.advance(5 * DAY)  # by the accumulated run time
    assert rig.compliance == "lockout"


def test_setting_the_clock_back_never_extends_a_temporary_lockout():
    rig = Rig()
    rig.start(400)
    _set_time(rig, rig.clock.wall - 3600)
    assert rig.device.hold_left() == 300
    rig.advance(300)
    assert rig.session == "test_requested"


def test_setting_the_clock_back_never_extends_an_override():
    rig = Rig()
    rig.token("lockout", {"cause": "unpaid_balance"}, key="billing")
    rig.code()
    rig.advance(3600)
    _set_time(rig, rig.clock.wall - 10 * DAY)
    assert rig.device.override_left() == 3 * 3600
    rig.advance(3 * 3600)
    assert rig.compliance == "lockout"


def test_setting_the_clock_back_never_delays_the_service_date():
    rig = Rig()
    rig.advance(50 * DAY)
    _set_time(rig, rig.clock.wall - 40 * DAY)
    assert rig.device.service_left() == 10 * DAY
    rig.advance(10 * DAY)
    assert rig.compliance == "early_service_recall"


def test_setting_the_clock_back_never_revives_a_code_request():
    rig = Rig()
    rig.token("lockout", {"cause": "unpaid_balance"}, key="billing")
    rig.device.request_code("unlock")
    rig.advance(21 * 3600)
    _set_time(rig, rig.clock.wall - 2 * DAY)
    try:
        rig.device.enter_code("00000000")
    except Refused as refusal:
        assert refusal.code == errors.CODE_EXPIRED
    else:
        raise AssertionError("an expired request was revived")


def test_setting_the_clock_forward_expires_deadlines():
    rig = Rig(config=Config(recall_s=3 * DAY))
    rig.token("recall", {"cause": "unpaid_balance", "days": 3}, key="billing")
    _set_time(rig, rig.clock.wall + 3 * DAY)
    rig.advance(1)
    assert rig.compliance == "lockout"


def test_the_run_clock_survives_a_reboot():
    rig = Rig()
    rig.token("recall", {"cause": "unpaid_balance", "days": 7}, key="billing")
    rig.advance(3 * DAY)
    rig.reboot()
    rig.clock.wall -= 20 * DAY  # the RTC lost its time while the power was off
    rig.device.step(rig.clock.ms)
    left = rig.device.recall_left()
    assert 4 * DAY - rig.config.run_save_s <= left <= 4 * DAY
    rig.advance(4 * DAY)
    assert rig.compliance == "lockout"


def test_reading_status_between_a_clock_advance_and_a_step_counts_time_once():
    # the service date is 60 days after the installation; reads after each day passed,
    # before the core steps (a status poll, the simulator asking for the next deadline),
    # must not bring it forward
    rig = Rig()
    for day in range(1, 60):
        rig.clock.advance_ms(DAY * 1000)
        status = rig.device.status()
        rig.device.next_deadline()
        assert status["service_due"] == rig.clock.wall + (60 - day) * DAY, day
        rig.device.step(rig.clock.ms)
        assert rig.compliance == "normal", day
    rig.clock.advance_ms(DAY * 1000)
    rig.device.next_deadline()
    rig.device.step(rig.clock.ms)
    assert rig.compliance == "early_service_recall"
