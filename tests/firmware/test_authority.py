"""The attack table at the Authority level (firmware/authority.py), both runtimes: valid
grants, replay, another device, expiry, scope escalation, wrong keys and roots, small-order
certified keys, the clock set back, session binding, an expired delegation, keypad codes,
construction.

Each attack is refused with its reason code, and the Authority records nothing (the core
applies a Grant and owns replay records, code use and clocks; the device tests add the
device-level versions). Bit flips, truncation, garbage and signed nonsense are
test_authority_bytes.py. Fixtures: tests/firmware/authority_fixtures.py.
"""

from firmware import keypad
from firmware.authority import Authority
from protocol import errors, signing
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
    certificate,
    certificate_body,
    check,
    outcome,
    root_id,
    signed,
    signer,
    token,
)


# ---- the valid cases -------------------------------------------------------------------------
def _protocol_body():
    fields = (root_id("root"), "tech-01", cert_of("tech-01"), SERIAL, "service", {})
    return signing.token_body(*(fields + (NOW - 100, NOW - 10, NOW + 600, b"T" * 16, NONCE)))


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



# ---- keys, scopes and roots -------------------------------------------------------------
def test_scope_escalation_is_refused():
    # a calibrate-only technician key tries to unlock, to set the time, to bill
    assert outcome(token({"key": "tech-01"})) == errors.OUT_OF_SCOPE
    assert outcome(token({"key": "tech-01", "action": "set_time", "args": b'{"time":5}', "nonce": NONCE}), nonce=NONCE) == errors.OUT_OF_SCOPE
    assert outcome(token({"key": "tech-01", "action": "lockout", "args": b'{"cause":"unpaid_balance","seq":1}'})) == errors.OUT_OF_SCOPE
    # the billing key tries a work order; the office key an unlock
    args = b'{"id":"WO-1","order":"removal","vehicle":"x"}'
    assert outcome(token({"key": "billing", "action": "work_order", "args": args})) == errors.OUT_OF_SCOPE
    assert outcome(token({"key": "office"})) == errors.OUT_OF_SCOPE
    # within scope it works
    assert outcome(token({"key": "field-02"})) is None


def test_wrong_keys_are_refused():
    # a token signed by a key other than the one its certificate names
    assert outcome(token({"key": "field-02", "signer": "mallory"})) == errors.BAD_SIGNATURE
    # a "root" token signed by another key
    assert outcome(token({"signer": "mallory"})) == errors.BAD_SIGNATURE
    # a certificate signed by another root, claiming this provider's root
    forged = certificate("mallory", 0x1F, NOW + DAY, "other-root")
    assert outcome(token({"key": "mallory", "cert": forged})) == errors.BAD_DELEGATION
    # a whole chain under another provider's root
    assert outcome(token({"root": "other-root", "key": "mallory", "cert": forged})) == errors.UNKNOWN_KEY
    assert outcome(token({"root": "other-root"})) == errors.UNKNOWN_KEY
    # a delegated key id without a certificate; the root with one
    assert outcome(token({"key": "field-02", "cert": b""})) == errors.UNKNOWN_KEY
    assert outcome(token({"cert": cert_of("field-02")})) == errors.BAD_DELEGATION
    # a certificate for another key id than the token's
    assert outcome(token({"key": "field-02", "cert": cert_of("billing"), "signer": "billing"})) == errors.BAD_DELEGATION


def test_certificate_for_a_small_order_key_is_refused():
    identity = b"\x01" + bytes(31)
    cert = signed("root", certificate_body("weak", identity, 0x1F, NOW + DAY))
    # R = identity, S = 0 "verifies" under the identity key: the certificate must not
    data = body({"key": "weak", "cert": cert}) + identity + bytes(32)
    assert outcome(data) == errors.BAD_DELEGATION


# ---- time and sessions ----------------------------------------------------------------------
def test_clock_set_back_cannot_revive_an_expired_token():
    data = token({"times": (NOW - 700, NOW - 600, NOW)})
    # expired at `now` it stays refused, however often it is tried
    assert outcome(data) == errors.EXPIRED
    assert outcome(data) == errors.EXPIRED
    # moving the clock takes a set_time token: bound to the live session, in scope
    set_back = ('{"time":%d}' % (NOW - 3600)).encode()
    assert outcome(token({"key": "field-02", "action": "set_time", "args": set_back})) == errors.SESSION_MISMATCH
    stale = token({"key": "field-02", "action": "set_time", "args": set_back, "nonce": b"S" * 16})
    assert outcome(stale, nonce=NONCE) == errors.SESSION_MISMATCH
    assert outcome(token({"key": "tech-01", "action": "set_time", "args": set_back, "nonce": NONCE}), nonce=NONCE) == errors.OUT_OF_SCOPE


def test_session_binding():
    data = token({"key": "field-02", "action": "service", "args": b"{}", "nonce": NONCE})
    assert outcome(data, nonce=NONCE) is None
    assert outcome(data, nonce=b"M" * 16) == errors.SESSION_MISMATCH
    assert outcome(data, nonce=None) == errors.SESSION_MISMATCH
    # service and set_time must carry the nonce
    assert outcome(token({"key": "field-02", "action": "service", "args": b"{}"}), nonce=NONCE) == errors.SESSION_MISMATCH
    # an unlock may be bound or not
    assert outcome(token({"nonce": NONCE}), nonce=NONCE) is None
    assert outcome(token({"nonce": NONCE}), nonce=None) == errors.SESSION_MISMATCH


def test_expired_delegation_is_refused():
    data = token({"key": "old-tech", "action": "service", "args": b"{}", "nonce": NONCE})
    assert outcome(data, nonce=NONCE) == errors.DELEGATION_EXPIRED
    assert outcome(data, now=NOW - 2, nonce=NONCE) is None  # before the delegation ended

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
