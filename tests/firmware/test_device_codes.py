"""Keypad override codes (both runtimes): the request, the 4 h override, the 20 h / 24 h
windows, one per service interval, breath tests still apply, temporary lockouts stay,
wrong codes back off (persisted across a reboot), single use, a new request replaces the
old, the clear code, and the keypad itself."""

from firmware.config import Config
from protocol import errors
from protocol.endpoint import Refused
from tests.firmware.authority_double import answer
from tests.firmware.device_rig import DAY, Rig

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


def test_wrong_codes_back_off_more_and_more_even_across_a_reboot():
    rig = _locked()
    request = rig.device.request_code("unlock")
    for _ in range(3):  # three free tries
        assert refused(rig.device.enter_code, "00000000") == errors.BAD_CODE
    assert refused(rig.device.enter_code, "00000000") == errors.BAD_CODE  # the 4th: 30 s wait
    assert refused(rig.device.enter_code, answer(request, "unlock")) == errors.CODE_BACKOFF
    rig.reboot()  # pulling the battery does not reset the count
    assert refused(rig.device.enter_code, answer(request, "unlock")) == errors.CODE_BACKOFF
    rig.advance(30)
    assert refused(rig.device.enter_code, "11111111") == errors.BAD_CODE  # the 5th: 60 s
    rig.advance(59)
    assert refused(rig.device.enter_code, "11111111") == errors.CODE_BACKOFF
    rig.advance(1)
    assert rig.device.enter_code(answer(request, "unlock"))[0] == "unlock"
    assert rig.device.codes.wrong == 0
    # the first refusal went to the log at once; the 4 after it were counted in RAM, which
    # the reboot lost (refusals changed nothing); 3 since
    assert rig.refusal_total("code") == 1 + 3 and rig.last_refusal("code")[0] == errors.CODE_BACKOFF


def test_a_code_works_once():
    rig = _locked()
    request = rig.device.request_code("unlock")
    code = answer(request, "unlock")
    rig.device.enter_code(code)
    assert refused(rig.device.enter_code, code) == errors.CODE_USED


def test_a_new_request_at_the_keypad_replaces_the_pending_one():
    rig = _locked()
    first = rig.device.request_code("unlock")
    rig.keys("A")  # the client, at the handset
    second = rig.device.codes.pending["request"]
    assert first != second
    assert refused(rig.device.enter_code, answer(first, "unlock")) == errors.BAD_CODE
    assert rig.device.enter_code(answer(second, "unlock"))[0] == "unlock"


def test_a_clear_code_after_full_payment():
    rig = _locked()
    action, until = rig.code("clear")
    assert action == "clear" and until == 0
    assert rig.compliance == "normal" and rig.device.causes == 0


def test_the_keypad_requests_and_enters_a_code():
    rig = _locked()
    rig.keys("A")
    request = rig.device.codes.pending["request"]
    assert rig.screen.lines == ("CODE REQUEST", request)
    code = answer(request, "unlock")
    rig.keys(code[:3])
    assert rig.screen.lines == ("ENTER CODE", code[:3] + "_")
    rig.keys(code[3:] + "#")
    assert rig.compliance == "code_unlock" and rig.screen.text == "UNLOCKED 4 H LEFT"


def test_the_keypad_shows_a_wrong_code_wait_and_cancel_clears_it():
    rig = _locked()
    rig.keys("A")
    for _ in range(4):
        rig.keys("99999999#")
    assert rig.screen.text == "WRONG CODE WAIT 30 S"
    rig.keys("*")
    assert rig.screen.text == "LOCKOUT CALL PROVIDER"


def test_a_code_unlock_survives_a_reboot_and_so_does_its_end():
    rig = _locked()
    rig.code()
    rig.advance(HOUR)
    rig.reboot(off_s=HOUR)
    assert rig.compliance == "code_unlock" and rig.device.override_left() == 2 * HOUR
    rig.advance(2 * HOUR)
    assert rig.compliance == "lockout"


def test_the_backoff_schedule_is_the_security_modules():
    from firmware import keypad

    c = Config()
    assert (c.code_free_tries, c.code_backoff_s, c.code_backoff_max_s) == (
        keypad.BACKOFF_FREE_TRIES,
        keypad.BACKOFF_FIRST_S,
        keypad.BACKOFF_MAX_S,
    )
    rig = _locked()
    rig.device.request_code("unlock")
    waits = []
    for _ in range(12):
        rig.advance(rig.device.codes.wait_left(rig.device.tb))
        refused(rig.device.enter_code, "00000000")
        waits.append(rig.device.codes.wait_left(rig.device.tb))
    assert waits == [keypad.backoff_seconds(n) for n in range(1, 13)]
    assert waits[-1] == 3600 and waits[3] == 30 and waits[4] == 60
    assert DAY > waits[-1]
