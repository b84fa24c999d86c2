"""The attack table at the Authority level, both runtimes: scope escalation, wrong keys
and roots, small-order certified keys.

Under the WASI MicroPython runner this file allocates well under the VM's 64 MB heap: the
runner's guest (tests/mpy/guest.py) does not survive a garbage collection (see
docs/security.md section 7), so the Authority tests are split across files to stay below
it. Keep it so when adding tests, or make the guest GC-safe first.
"""

from protocol import errors
from tests.firmware.authority_fixtures import (
    DAY,
    NONCE,
    NOW,
    body,
    cert_of,
    certificate,
    certificate_body,
    outcome,
    signed,
    token,
)


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


