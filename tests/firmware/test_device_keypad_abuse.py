"""Keypad abuse and token unlocks (both runtimes): a request over the link never replaces the
client's pending request, wrong codes stop counting against the client with time, token
unlocks use the override allowance, a session-bound token works once in its session.
"""

from firmware.config import Config
from protocol import errors, messages
from protocol.endpoint import Refused
from tests.firmware.authority_double import answer, mint
from tests.firmware.device_rig import START, Rig
from tests.firmware.test_handler import Host

HOUR = 3600
UNLOCK = messages.ACTIONS.index("unlock")


def _locked(config=None):
    rig = Rig(config=config)
    rig.token("lockout", {"cause": "unpaid_balance"}, key="billing")
    assert rig.compliance == "lockout"
    return rig


def refused(fn, *args, **kw):
    try:
        fn(*args, **kw)
    except Refused as refusal:
        return refusal.code
    return None


# ---- the pending request ----------------------------------------------------------------------
def test_a_request_over_the_link_never_replaces_the_clients_pending_request():
    rig = _locked()
    host = Host(rig)
    host.hello()
    rig.keys("A")  # the client, at the handset, on the phone with the provider
    request = rig.device.codes.pending["request"]
    assert host.nack(messages.CODE_REQUEST, action=UNLOCK) == errors.NOT_PERMITTED  # anyone on the cable
    assert rig.device.codes.pending["request"] == request
    rig.keys(answer(request, "unlock") + "#")  # the client's code still works
    assert rig.compliance == "code_unlock"


def test_pressing_the_request_key_over_and_over_does_not_fill_the_log():
    rig = _locked()
    rig.keys("A")
    request = rig.device.codes.pending["request"]
    count = rig.device.log.count
    for _ in range(300):  # anyone in the car, pressing A
        rig.keys("A")
        rig.advance(0)
    assert rig.device.log.count == count  # the same request shown again, nothing written
    assert rig.device.codes.pending["request"] == request
    rig.advance(61)
    rig.keys("A")  # a minute on: a new request, one record
    assert rig.device.codes.pending["request"] != request
    assert rig.device.log.count == count + 1
    rig.keys(answer(rig.device.codes.pending["request"], "unlock") + "#")
    assert rig.compliance == "code_unlock"


def test_a_request_over_the_link_once_the_pending_one_expired():
    rig = _locked()
    rig.keys("A")
    rig.advance(20 * HOUR + 1)  # past its activation window
    request = rig.device.request_code("unlock")
    assert rig.device.codes.pending["request"] == request
    assert rig.device.enter_code(answer(request, "unlock"))[0] == "unlock"


# ---- wrong codes decay --------------------------------------------------------------------------
def test_wrong_codes_stop_counting_against_the_client_with_time():
    rig = _locked()
    device = rig.device
    rig.keys("A")
    for _ in range(11):  # someone at the keypad: eleven wrong codes, the longest wait
        rig.advance(device.codes.wait_left(device.tb))
        assert refused(device.enter_code, "00000000") == errors.BAD_CODE
    assert device.codes.wait_left(device.tb) == HOUR
    rig.advance(12 * HOUR)  # and leaves
    rig.keys("A")  # the client: a fresh request, a typo, then the right code
    request = device.codes.pending["request"]
    assert refused(device.enter_code, "00000000") == errors.BAD_CODE
    assert device.codes.wait_left(device.tb) == 0  # a typo costs nothing after 12 quiet hours
    assert device.enter_code(answer(request, "unlock"))[0] == "unlock"


def test_the_decay_is_one_wrong_code_per_decay_period():
    rig = _locked(Config(code_decay_s=HOUR))
    device = rig.device
    rig.keys("A")
    for _ in range(6):  # 6 wrong: the count is 6, the wait 240 s
        rig.advance(device.codes.wait_left(device.tb))
        refused(device.enter_code, "00000000")
    assert device.codes.wrong_count(device.tb) == 6
    rig.advance(2 * HOUR)
    assert device.codes.wrong_count(device.tb) == 4
    assert refused(device.enter_code, "00000000") == errors.BAD_CODE
    assert device.codes.wrong == 5 and device.codes.wait_left(device.tb) == 60  # the 5th's wait
    rig.reboot()  # the count and its time are persisted
    assert rig.device.codes.wrong_count(rig.device.tb) == 5


# ---- token unlocks use the override allowance -----------------------------------------------------
def test_a_token_unlock_uses_the_override_allowance():
    rig = _locked()  # one override per service interval
    rig.token("unlock", {"seconds": HOUR}, key="tech")
    assert rig.compliance == "code_unlock"
    rig.advance(HOUR)
    assert rig.compliance == "lockout"
    assert refused(rig.token, "unlock", {"seconds": HOUR}) == errors.OVERRIDE_LIMIT
    assert refused(rig.device.request_code, "unlock") == errors.OVERRIDE_LIMIT
    assert rig.compliance == "lockout"


def test_a_keypad_override_uses_it_for_tokens_too():
    rig = _locked()
    rig.code()
    rig.advance(4 * HOUR)
    assert rig.compliance == "lockout"
    assert refused(rig.token, "unlock", {"seconds": HOUR}, key="tech") == errors.OVERRIDE_LIMIT
    rig.service()
    rig.close_service()  # a new service interval, a new allowance
    rig.token("lockout", {"cause": "unpaid_balance"}, key="billing")
    rig.token("unlock", {"seconds": HOUR}, key="tech")
    assert rig.compliance == "code_unlock"


def test_an_unlock_for_good_needs_a_key_that_lifts_every_cause():
    rig = _locked()
    assert refused(rig.token, "unlock", {"seconds": 0}, key="tech") == errors.OUT_OF_SCOPE
    assert rig.compliance == "lockout"
    rig.token("unlock", {"seconds": 0})  # the root's
    assert rig.compliance == "code_unlock" and rig.device.override_left() is None


# ---- a session-bound token works once in its session -------------------------------------------------
def test_a_session_bound_token_never_works_twice_in_its_session():
    rig = Rig(config=Config(used_tokens_kept=4))
    host = Host(rig)
    nonce = host.hello()["nonce"]
    back = mint("set_time", {"time": START + 60}, nonce=nonce, expires=START + HOUR)
    assert host.ok(messages.TOKEN, token=back)["detail"] == "clock %d" % (START + 60)
    rig.advance(600)
    for n in range(6):  # newer directives push its record out of the kept ids
        rig.token("lockout", {"cause": "unpaid_balance"}, key="billing", expires=START + 30 * 86400 + n)
    assert len(rig.device.used_ids) == 4
    wall = rig.clock.wall
    assert host.nack(messages.TOKEN, token=back) == errors.ALREADY_APPLIED
    assert rig.clock.wall == wall  # the clock was not set back a second time
    host.hello()  # a new session: the token is bound to the old one
    assert host.nack(messages.TOKEN, token=back) == errors.SESSION_MISMATCH
