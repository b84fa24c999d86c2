"""The attack table at the Authority level (firmware/authority.py), both runtimes: valid
grants, replay, another device, expiry, keypad codes, construction.

Each attack is refused with its reason code, and the Authority records nothing (the core
applies a Grant and owns replay records, code use and clocks; the integrator adds the
device-level versions). The rest of the table: test_authority_keys.py (scopes, wrong
keys), test_authority_session.py (clock, session binding, expired delegation),
test_authority_bytes.py (bit flips, truncation, garbage, signed nonsense). Fixtures:
tests/firmware/authority_fixtures.py.

Under the WASI MicroPython runner this file allocates well under the VM's 64 MB heap: the
runner's guest (tests/mpy/guest.py) does not survive a garbage collection (see
docs/security.md section 7), so the Authority tests are split across files to stay below
it. Keep it so when adding tests, or make the guest GC-safe first.
"""

from firmware import keypad
from firmware.authority import Authority
from protocol import errors, tokens
from tests.dualtest import raises
from tests.firmware.authority_fixtures import (
    DAY,
    NONCE,
    NOW,
    SECRET,
    SERIAL,
    authority,
    body,
    cert_of,
    check,
    outcome,
    root_id,
    signer,
    token,
)


# ---- the valid cases -------------------------------------------------------------------------
def _protocol_body():
    fields = (root_id("root"), "tech-01", cert_of("tech-01"), SERIAL, "service", {})
    return tokens.token_body(*(fields + (NOW - 100, NOW - 10, NOW + 600, b"T" * 16, NONCE)))


def test_spec_encoder_agrees_with_protocol_tokens():
    assert _protocol_body() == body({"key": "tech-01", "action": "service", "args": b"{}", "nonce": NONCE})


def test_root_signed_token_is_granted():
    grant = check(token(), NOW, None, ())
    assert grant.action == "unlock"
    assert grant.args == {"seconds": 3600}
    assert grant.key_id == "root"
    assert grant.token_id == b"T" * 16
    assert grant.expires == NOW + 600
    assert grant.scopes is None
    assert not grant.session_bound


def test_delegated_tokens_are_granted_within_their_scopes():
    grant = check(token({"key": "billing", "action": "recall", "args": b'{"cause":"unpaid_balance","days":7,"seq":1}'}), NOW, None, ())
    assert grant.action == "recall" and grant.key_id == "billing" and grant.scopes == ("billing",)
    grant = check(token({"key": "tech-01", "action": "service", "args": b"{}", "nonce": NONCE}), NOW, NONCE, ())
    assert grant.action == "service" and grant.session_bound
    args = b'{"id":"WO-123","order":"removal","vehicle":"1HGCM82633A004352"}'
    grant = check(token({"key": "office", "action": "work_order", "args": args}), NOW, None, ())
    assert grant.args["order"] == "removal" and grant.args["id"] == "WO-123"


def test_the_authority_records_nothing():
    data = token({"id": b"P" * 16})
    assert outcome(data) is None
    assert outcome(data) is None  # pure: the core records the id after applying the grant
    assert outcome(data, used=[b"P" * 16]) == errors.ALREADY_APPLIED


# ---- the attack table --------------------------------------------------------------------------
def test_replay_is_refused():
    # a recorded id is answered "already applied" (nothing changes), whatever else is wrong now
    data = token({"id": b"R" * 16})
    assert outcome(data, used=[b"A" * 16, b"R" * 16]) == errors.ALREADY_APPLIED
    assert outcome(data, used={b"R" * 16}) == errors.ALREADY_APPLIED
    assert outcome(data, used=[b"A" * 16]) is None


def test_token_for_another_device_is_refused():
    assert outcome(token({"serial": "LCI-0002"})) == errors.WRONG_DEVICE
    assert outcome(token({"serial": "LCI-000"})) == errors.WRONG_DEVICE
    assert outcome(token({"serial": ""})) == errors.WRONG_DEVICE


def test_expired_token_is_refused():
    data = token({"times": (NOW - 700, NOW - 600, NOW)})
    assert outcome(data, now=NOW - 1) is None
    assert outcome(data, now=NOW) == errors.EXPIRED  # expires is exclusive
    assert outcome(data, now=NOW + 10 * DAY) == errors.EXPIRED


def test_not_yet_valid_token_is_refused():
    data = token({"times": (NOW, NOW + 60, NOW + 600)})
    assert outcome(data) == errors.NOT_YET_VALID
    assert outcome(data, now=NOW + 59) == errors.NOT_YET_VALID
    assert outcome(data, now=NOW + 60) is None


# ---- keypad codes ----------------------------------------------------------------------------
def _request():
    return authority().request_code("unlock", 7, b"\x00\x01\x02\x03\x04\x05\x06\x07")


def _guess(answer, i):
    return "%08d" % ((int(answer) + i * 9973) % 100000000)


def _wrong_codes_rejected(answer, count):
    i = 1
    while i <= count:
        if authority().check_code(_request(), _guess(answer, i), "unlock"):
            return False
        i += 1
    return True


def test_keypad_brute_force_gets_no_help():
    request = _request()
    answer = keypad.answer_code(SECRET, SERIAL, request, "unlock")
    assert authority().check_code(request, answer, "unlock")
    # a sample of the 10^8 space: only the answer checks; a code is 8 digits exactly
    assert _wrong_codes_rejected(answer, 300)
    assert not authority().check_code(request, answer[:7], "unlock")
    assert not authority().check_code(request, answer + "0", "unlock")
    # the back-off the core enforces makes the expected search over 10 years
    assert keypad.expected_bruteforce_seconds() > 10 * 365 * DAY


def test_reuse_of_a_used_code():
    # the Authority is pure: a right code checks again, so the core consumes the request
    # on use (CODE_USED); a new request, even for the same action, needs a new answer
    request = _request()
    answer = keypad.answer_code(SECRET, SERIAL, request, "unlock")
    assert authority().check_code(request, answer, "unlock")
    assert authority().check_code(request, answer, "unlock")
    fresh = authority().request_code("unlock", 8, b"\x00\x01\x02\x03\x04\x05\x06\x07")
    assert fresh != request
    assert not authority().check_code(fresh, answer, "unlock")
    assert not authority().check_code(request, answer, "clear")


def test_request_code_comes_from_serial_counter_and_nonce():
    nonce = b"\x00\x01\x02\x03\x04\x05\x06\x07"
    assert _request() == keypad.request_code(SERIAL, "unlock", 7, nonce)
    other = Authority("LCI-0002", signer("root").public_key, SECRET)
    assert other.request_code("unlock", 7, nonce) != _request()


# ---- construction --------------------------------------------------------------------------------
def test_constructor_refuses_bad_keys_and_settings():
    root = signer("root").public_key
    raises(ValueError, Authority, SERIAL, b"\x01" + bytes(31), SECRET, None)  # small-order root
    raises(ValueError, Authority, SERIAL, root[:31], SECRET, None)
    raises(ValueError, Authority, SERIAL, root, SECRET[:16], None)
    raises(ValueError, Authority, "", root, SECRET, None)
    raises(ValueError, Authority, SERIAL, root, SECRET, {"code_digits": 6})
    raises(ValueError, Authority, SERIAL, root, SECRET, {"colour": 1})
    Authority(SERIAL, root, SECRET, {"code_digits": 9})
