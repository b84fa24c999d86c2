"""Keypad override codes (both runtimes): the request, the 4 h override, the 20 h / 24 h
windows, one per service interval, breath tests still apply, temporary lockouts stay,
wrong codes back off (persisted), single use, and the keypad itself."""

from firmware.config import Config
from protocol import errors
from protocol.endpoint import Refused
from tests.firmware.authority_double import answer
from tests.firmware.device_rig import Rig

HOUR = 3600


def _locked(config=None):
    rig = Rig(config=config)
    rig.token("lockout", {"cause": "unpaid_balance"}, key="billing")
    assert rig.compliance == "lockout"
    return rig


def refused(fn, *args):
    try:
        fn(*args)
    except Refused as refusal:
        return refusal.code
    return None


def test_a_code_lifts_a_lockout_for_four_hours():
    rig = _locked()
    action, until = rig.code()
    assert action == "unlock" and until == rig.clock.wall + 4 * HOUR
    assert rig.compliance == "code_unlock" and rig.screen.text == "UNLOCKED 4 H LEFT"
    assert rig.start(0) == "engine_enabled"  # the breath test still applies ...
    rig.ignition(False)
    rig.advance(121)  # past the free restart
    assert rig.start(500) == "temporary_lockout"  # ... and can fail
    rig.advance(4 * HOUR - 124)
    assert rig.compliance == "lockout"
    kinds = rig.kinds()
    assert "code_request" in kinds and "code_accepted" in kinds and "unlock_start" in kinds and "unlock_end" in kinds


def test_a_code_never_lifts_a_temporary_lockout():
    rig = Rig()
    rig.start(400)
    rig.token("lockout", {"cause": "unpaid_balance"}, key="billing")
    rig.code()
    assert rig.compliance == "code_unlock" and rig.session == "temporary_lockout"
    rig.blow(0)
    assert rig.session == "temporary_lockout" and not rig.relay.on
    rig.advance(300)
    assert rig.session == "test_requested"


def test_one_override_per_service_interval():
    rig = _locked()
    rig.code()
    rig.advance(4 * HOUR)
    assert refused(rig.device.request_code, "unlock") == errors.OVERRIDE_LIMIT
    rig.service()
    rig.close_service()
    rig.token("lockout", {"cause": "unpaid_balance"}, key="billing")
    assert rig.code()[0] == "unlock"  # a new interval, a new override


def test_a_code_must_be_activated_within_twenty_hours():
    rig = _locked()
    request = rig.device.request_code("unlock")
    rig.advance(20 * HOUR + 1)
    assert refused(rig.device.enter_code, answer(request, "unlock")) == errors.CODE_EXPIRED
    assert rig.compliance == "lockout"
    assert rig.last_refusal("code")[0] == errors.CODE_EXPIRED


def test_nothing_of_a_code_outlives_twenty_four_hours():
    rig = _locked(Config(override_activate_s=22 * HOUR))
    request = rig.device.request_code("unlock")
    rig.advance(21 * HOUR)
    action, until = rig.device.enter_code(answer(request, "unlock"))
    assert until == rig.clock.wall + 3 * HOUR  # cut from 4 h to what is left of 24 h


def test_codes_only_where_they_mean_something():
    rig = Rig()
    assert refused(rig.device.request_code, "unlock") == errors.NOT_PERMITTED  # not locked out
    assert refused(rig.device.request_code, "clear") == errors.NOT_PERMITTED  # nothing unpaid
    assert refused(rig.device.request_code, "service") == errors.BAD_ARGUMENT
    assert refused(rig.device.enter_code, "12345678") == errors.NO_CODE_REQUEST
    assert refused(rig.device.enter_code, "12ab") == errors.BAD_ARGUMENT
