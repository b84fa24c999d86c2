"""The attack table at the Authority level (firmware/authority.py), on both runtimes.

Each attack is refused with its reason code, and the Authority records nothing (the core
applies a Grant and owns replay records, code use and clocks; the integrator adds the
device-level versions). Tokens are built here by an encoder written from
protocol/SPEC-tokens.md, independent of protocol/tokens.py (one test checks they agree),
and signed by the tests' own pure Ed25519 signer, so the same tests run under MicroPython.

Test functions keep their frames small (tests/firmware/wasi_frames.py explains why).
"""

import struct

from firmware import keypad
from firmware.authority import Authority
from protocol import errors, tokens
from protocol.endpoint import Refused
from tests.firmware import wasi_frames
from tests.firmware.ed25519_signer import Signer, seed_of

SERIAL = "LCI-0001"
SECRET = bytes(range(32))
NOW = 200000
NONCE = b"N" * 16  # the session's HELLO nonce
DAY = 86400

_SIGNERS = {}
_CERTS = {}
_AUTHORITY = []


def _signer(label):
    if label not in _SIGNERS:
        _SIGNERS[label] = Signer(seed_of(label))
    return _SIGNERS[label]


def _root_id(label):
    return tokens.root_id(_signer(label).public_key)


# ---- an encoder written from the spec ------------------------------------------------------
def _s(raw):
    if isinstance(raw, str):
        raw = raw.encode()
    return bytes([len(raw)]) + raw


def _b(raw):
    return struct.pack("<H", len(raw)) + raw


def _certificate(key_id, scopes_bits, expires, root="root"):
    """A certificate for the test key `key_id`, signed by the test key `root`."""
    return _signed(root, _certificate_body(key_id, _signer(key_id).public_key, scopes_bits, expires))


def _certificate_body(key_id, public, scopes_bits, expires):
    body = b"L7\x01\x02" + _s(key_id) + public
    return body + bytes([scopes_bits]) + struct.pack("<II", 1000, expires)


def _signed(label, body):
    return body + _signer(label).sign(body)


def _cert_of(key_id):
    """Certificates of the test keys: (scope bits, expiry)."""
    if key_id not in _CERTS:
        spec = {
            "tech-01": (0x02, NOW + 30 * DAY),  # calibrate only
            "billing": (0x08, NOW + 30 * DAY),
            "office": (0x10, NOW + 30 * DAY),  # work orders
            "field-02": (0x07, NOW + 30 * DAY),  # unlock, calibrate, set_time
            "old-tech": (0x02, NOW - 1),  # its delegation expired a second ago
        }[key_id]
        _CERTS[key_id] = _certificate(key_id, spec[0], spec[1])
    return _CERTS[key_id]


DEFAULT = {
    "root": "root",  # whose root id the token names
    "key": "root",  # key id
    "cert": None,  # certificate bytes (None: the key's own, b"" for none)
    "signer": None,  # who signs (None: the key named)
    "serial": SERIAL,
    "action": "unlock",
    "args": b'{"seconds":3600}',
    "times": (NOW - 100, NOW - 10, NOW + 600),  # issued, not_before, expires
    "id": b"T" * 16,
    "nonce": b"",
}


def _field(options, name):
    return options[name] if name in options else DEFAULT[name]


def _cert_for(options):
    cert = _field(options, "cert")
    if cert is not None:
        return cert
    key = _field(options, "key")
    return b"" if key == "root" else _cert_of(key)


def _body(options):
    body = b"L7\x01\x01" + _root_id(_field(options, "root")) + _s(_field(options, "key"))
    body += _b(_cert_for(options)) + _s(_field(options, "serial"))
    body += _s(_field(options, "action")) + _b(_field(options, "args"))
    body += _times(_field(options, "times")) + _field(options, "id")
    return body + _s(_field(options, "nonce"))


def _times(times):
    return struct.pack("<III", times[0], times[1], times[2])


def token(options=None):
    """A signed token; `options` overrides DEFAULT fields."""
    options = options or {}
    body = _body(options)
    signer = _field(options, "signer") or _field(options, "key")
    return body + _signer(signer).sign(body)


# ---- checking --------------------------------------------------------------------------------
class _Catch:
    """Catches a Refused (a context manager keeps the caller's frame small)."""

    def __enter__(self):
        self.exc = None
        return self

    def __exit__(self, kind, value, tb):
        self.exc = value
        return isinstance(value, Refused)


def _authority():
    if not _AUTHORITY:
        _AUTHORITY.append(Authority(SERIAL, _signer("root").public_key, SECRET))
    return _AUTHORITY[0]


def _check(data, now, nonce, used):
    return _authority().check_token(data, now, nonce, used)


class _Attempt(_Catch):
    def __init__(self, data, now, nonce, used):
        self.call = (data, now, nonce, used)

    def run(self):
        _check(*self.call)

    def code(self):
        with self:
            self.run()
        return None if self.exc is None else self.exc.code


def outcome(data, now=NOW, nonce=None, used=()):
    """None if the token is granted, else the NACK code it is refused with."""
    return _Attempt(data, now, nonce, used).code()


# ---- the valid cases -------------------------------------------------------------------------
def _protocol_body():
    fields = (_root_id("root"), "tech-01", _cert_of("tech-01"), SERIAL, "service", {})
    return tokens.token_body(*(fields + (NOW - 100, NOW - 10, NOW + 600, b"T" * 16, NONCE)))


def test_spec_encoder_agrees_with_protocol_tokens():
    assert _protocol_body() == _body({"key": "tech-01", "action": "service", "args": b"{}", "nonce": NONCE})


def test_root_signed_token_is_granted():
    grant = _check(token(), NOW, None, ())
    assert grant.action == "unlock"
    assert grant.args == {"seconds": 3600}
    assert grant.key_id == "root"
    assert grant.token_id == b"T" * 16
    assert grant.expires == NOW + 600
    assert grant.scopes is None
    assert not grant.session_bound


def test_delegated_tokens_are_granted_within_their_scopes():
    grant = _check(token({"key": "billing", "action": "recall", "args": b'{"cause":"unpaid_balance","days":7}'}), NOW, None, ())
    assert grant.action == "recall" and grant.key_id == "billing" and grant.scopes == ("billing",)
    grant = _check(token({"key": "tech-01", "action": "service", "args": b"{}", "nonce": NONCE}), NOW, NONCE, ())
    assert grant.action == "service" and grant.session_bound
    args = b'{"id":"WO-123","order":"removal","vehicle":"1HGCM82633A004352"}'
    grant = _check(token({"key": "office", "action": "work_order", "args": args}), NOW, None, ())
    assert grant.args["order"] == "removal" and grant.args["id"] == "WO-123"


def test_the_authority_records_nothing():
    data = token({"id": b"P" * 16})
    assert outcome(data) is None
    assert outcome(data) is None  # pure: the core records the id after applying the grant
    assert outcome(data, used=[b"P" * 16]) == errors.REPLAYED


# ---- the attack table --------------------------------------------------------------------------
def test_replay_is_refused():
    data = token({"id": b"R" * 16})
    assert outcome(data, used=[b"A" * 16, b"R" * 16]) == errors.REPLAYED
    assert outcome(data, used={b"R" * 16}) == errors.REPLAYED
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


def test_scope_escalation_is_refused():
    # a calibrate-only technician key tries to unlock, to set the time, to bill
    assert outcome(token({"key": "tech-01"})) == errors.OUT_OF_SCOPE
    assert outcome(token({"key": "tech-01", "action": "set_time", "args": b'{"time":5}', "nonce": NONCE}), nonce=NONCE) == errors.OUT_OF_SCOPE
    assert outcome(token({"key": "tech-01", "action": "lockout", "args": b'{"cause":"unpaid_balance"}'})) == errors.OUT_OF_SCOPE
    # the billing key tries a work order; the office key an unlock
    args = b'{"id":"WO-1","order":"removal","vehicle":"x"}'
    assert outcome(token({"key": "billing", "action": "work_order", "args": args})) == errors.OUT_OF_SCOPE
    assert outcome(token({"key": "office"})) == errors.OUT_OF_SCOPE
    # within scope it works
    assert outcome(token({"key": "field-02"})) is None


def test_expired_delegation_is_refused():
    data = token({"key": "old-tech", "action": "service", "args": b"{}", "nonce": NONCE})
    assert outcome(data, nonce=NONCE) == errors.DELEGATION_EXPIRED
    assert outcome(data, now=NOW - 2, nonce=NONCE) is None  # before the delegation ended


def test_wrong_keys_are_refused():
    # a token signed by a key other than the one its certificate names
    assert outcome(token({"key": "field-02", "signer": "mallory"})) == errors.BAD_SIGNATURE
    # a "root" token signed by another key
    assert outcome(token({"signer": "mallory"})) == errors.BAD_SIGNATURE
    # a certificate signed by another root, claiming this provider's root
    forged = _certificate("mallory", 0x1F, NOW + DAY, "other-root")
    assert outcome(token({"key": "mallory", "cert": forged})) == errors.BAD_DELEGATION
    # a whole chain under another provider's root
    assert outcome(token({"root": "other-root", "key": "mallory", "cert": forged})) == errors.UNKNOWN_KEY
    assert outcome(token({"root": "other-root"})) == errors.UNKNOWN_KEY
    # a delegated key id without a certificate; the root with one
    assert outcome(token({"key": "field-02", "cert": b""})) == errors.UNKNOWN_KEY
    assert outcome(token({"cert": _cert_of("field-02")})) == errors.BAD_DELEGATION
    # a certificate for another key id than the token's
    assert outcome(token({"key": "field-02", "cert": _cert_of("billing"), "signer": "billing"})) == errors.BAD_DELEGATION


def test_certificate_for_a_small_order_key_is_refused():
    identity = b"\x01" + bytes(31)
    cert = _signed("root", _certificate_body("weak", identity, 0x1F, NOW + DAY))
    # R = identity, S = 0 "verifies" under the identity key: the certificate must not
    data = _body({"key": "weak", "cert": cert}) + identity + bytes(32)
    assert outcome(data) == errors.BAD_DELEGATION


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


# ---- bit flips and truncation ------------------------------------------------------------------
def _head_spans(data):
    """(start, end, expected codes) of the fields up to the end of the certificate."""
    at = 4 + 8 + 1 + data[12]  # magic version kind, root id, key id
    c = at + 2  # the certificate's first byte
    k = c + 5 + data[c + 4]  # after the certificate's key id
    out = [(0, 4, (errors.MALFORMED_TOKEN,))]
    out.append((4, 12, (errors.UNKNOWN_KEY,)))
    out.append((12, 13, None))
    out.append((13, at, (errors.BAD_DELEGATION,)))  # key id no longer the certificate's
    out.append((at, c, None))
    out.append((c, c + 4, (errors.MALFORMED_TOKEN,)))
    out.append((c + 4, c + 5, None))
    out.append((c + 5, k, (errors.BAD_DELEGATION,)))
    out.append((k, k + 32, (errors.BAD_DELEGATION,)))  # public key
    out.append((k + 32, k + 33, (errors.BAD_DELEGATION, errors.MALFORMED_TOKEN)))  # scopes
    c += data[at] | data[at + 1] << 8
    out.append((k + 33, c, (errors.BAD_DELEGATION,)))  # times, root signature
    return out


def _tail_spans(data, s):
    """The fields from the serial's length byte `s` on."""
    out = [(s, s + 1, None)]
    a = s + 1 + data[s]  # the action's length byte
    out.append((s + 1, a, (errors.BAD_SIGNATURE,)))
    out.append((a, a + 1, None))
    s = a + 1 + data[a]  # the args' length (u16)
    out.append((a + 1, s, (errors.BAD_SIGNATURE,)))
    out.append((s, s + 2, None))
    a = len(data) - 64 - 1 - 16  # the session nonce's length byte
    out.append((s + 2, a, (errors.BAD_SIGNATURE,)))  # args, times, token id
    out.append((a, a + 1, None))
    out.append((a + 1, len(data), (errors.BAD_SIGNATURE,)))  # nonce, signature
    return out


def _spans(data):
    """(start, end, expected codes) of every field of a delegated, session-bound token."""
    head = _head_spans(data)
    return head + _tail_spans(data, head[len(head) - 1][1])


# flips in length prefixes shift every later field: refused, with whatever check fails first
_LENGTH_CODES = (errors.MALFORMED_TOKEN, errors.BAD_SIGNATURE, errors.BAD_DELEGATION, errors.UNKNOWN_KEY)


def _flip_refused(data, i, expected):
    flipped = bytearray(data)
    flipped[i] ^= 1 << (i % 8)
    code = outcome(bytes(flipped), nonce=NONCE)
    return code is not None and code in (expected or _LENGTH_CODES)


def _span_refused(data, span):
    i = span[0]
    while i < span[1]:
        if not _flip_refused(data, i, span[2]):
            return i
        i += 1
    return None


def _all_flips_refused(data):
    spans = _spans(data)
    i = 0
    while i < len(spans):
        bad = _span_refused(data, spans[i])
        if bad is not None:
            return bad
        i += 1
    return None


def test_bit_flip_in_every_byte_is_refused():
    # a delegated, session-bound token: every field of the token and its certificate
    data = token({"key": "field-02", "action": "service", "args": b"{}", "nonce": NONCE})
    assert outcome(data, nonce=NONCE) is None
    assert _all_flips_refused(data) is None


def _contiguous_end(spans):
    end = 0
    i = 0
    while i < len(spans):
        if spans[i][0] != end or spans[i][1] <= end:
            return -1
        end = spans[i][1]
        i += 1
    return end


def test_bit_flips_cover_every_byte():
    data = token({"key": "field-02", "action": "service", "args": b"{}", "nonce": NONCE})
    assert _contiguous_end(_spans(data)) == len(data)


def _prefixes_malformed(data):
    n = 0
    while n < len(data):
        if outcome(data[:n]) != errors.MALFORMED_TOKEN:
            return n
        n += 1
    return None


def test_truncation_and_extension_are_malformed():
    data = token({"key": "field-02"})
    assert _prefixes_malformed(data) is None
    assert outcome(data + b"\x00") == errors.MALFORMED_TOKEN
    assert outcome(data + data) == errors.MALFORMED_TOKEN


# ---- malformed input of every kind ------------------------------------------------------------
def _garbage(n, seed):
    out = bytearray(n)
    x = seed
    for i in range(n):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        out[i] = x >> 16 & 0xFF
    return bytes(out)


def test_garbage_is_malformed_never_an_exception():
    for value in (b"", b"L7", b"L7\x01\x01", None, 12, "a token", [1, 2]):
        assert outcome(value) == errors.MALFORMED_TOKEN, value
    for n in (1, 17, 100, 300, 510):
        assert outcome(_garbage(n, n)) == errors.MALFORMED_TOKEN, n
    assert outcome(bytes(511)) == errors.MALFORMED_TOKEN  # over the wire limit
    assert outcome(b"L7\x02\x01" + bytes(200)) == errors.MALFORMED_TOKEN  # another version
    assert outcome(b"L7\x01\x02" + bytes(200)) == errors.MALFORMED_TOKEN  # a certificate


def test_signed_but_undecodable_content_is_refused():
    # what only a signer could produce still never escapes as an exception
    assert outcome(token({"args": b"[1,2]"})) == errors.MALFORMED_TOKEN
    assert outcome(token({"args": b"{not json"})) == errors.MALFORMED_TOKEN
    assert outcome(token({"args": b'{"seconds":"\xff"}'})) == errors.MALFORMED_TOKEN
    assert outcome(token({"action": b"\xc3"})) == errors.MALFORMED_TOKEN  # not UTF-8
    assert outcome(token({"serial": b"LCI-\xff"})) == errors.MALFORMED_TOKEN
    assert outcome(token({"action": "self_destruct", "args": b"{}"})) == errors.NOT_SUPPORTED
    assert outcome(token({"args": b'{"seconds":-1}'})) == errors.BAD_ARGUMENT
    assert outcome(token({"args": b'{"seconds":true}'})) == errors.BAD_ARGUMENT
    assert outcome(token({"args": b'{"seconds":1,"extra":2}'})) == errors.BAD_ARGUMENT
    assert outcome(token({"args": b"{}"})) == errors.BAD_ARGUMENT
    assert outcome(token({"action": "work_order", "args": b'{"id":"1","order":"steal","vehicle":""}'})) == errors.BAD_ARGUMENT


def test_session_nonce_of_a_wrong_length_is_malformed():
    assert outcome(token({"nonce": b"N" * 8}), nonce=NONCE) == errors.MALFORMED_TOKEN


# ---- keypad codes ----------------------------------------------------------------------------
def _request():
    return _authority().request_code("unlock", 7, b"\x00\x01\x02\x03\x04\x05\x06\x07")


def _guess(answer, i):
    return "%08d" % ((int(answer) + i * 9973) % 100000000)


def _wrong_codes_rejected(answer, count):
    i = 1
    while i <= count:
        if _authority().check_code(_request(), _guess(answer, i), "unlock"):
            return False
        i += 1
    return True


def test_keypad_brute_force_gets_no_help():
    request = _request()
    answer = keypad.answer_code(SECRET, SERIAL, request, "unlock")
    assert _authority().check_code(request, answer, "unlock")
    # a sample of the 10^8 space: only the answer checks; a code is 8 digits exactly
    assert _wrong_codes_rejected(answer, 300)
    assert not _authority().check_code(request, answer[:7], "unlock")
    assert not _authority().check_code(request, answer + "0", "unlock")
    # the back-off the core enforces makes the expected search over 10 years
    assert keypad.expected_bruteforce_seconds() > 10 * 365 * DAY


def test_reuse_of_a_used_code():
    # the Authority is pure: a right code checks again, so the core consumes the request
    # on use (CODE_USED); a new request, even for the same action, needs a new answer
    request = _request()
    answer = keypad.answer_code(SECRET, SERIAL, request, "unlock")
    assert _authority().check_code(request, answer, "unlock")
    assert _authority().check_code(request, answer, "unlock")
    fresh = _authority().request_code("unlock", 8, b"\x00\x01\x02\x03\x04\x05\x06\x07")
    assert fresh != request
    assert not _authority().check_code(fresh, answer, "unlock")
    assert not _authority().check_code(request, answer, "clear")


def test_request_code_comes_from_serial_counter_and_nonce():
    nonce = b"\x00\x01\x02\x03\x04\x05\x06\x07"
    assert _request() == keypad.request_code(SERIAL, "unlock", 7, nonce)
    other = Authority("LCI-0002", _signer("root").public_key, SECRET)
    assert other.request_code("unlock", 7, nonce) != _request()


# ---- construction --------------------------------------------------------------------------------
def _value_error(*args):
    try:
        Authority(*args)
    except ValueError:
        return True
    return False


def test_constructor_refuses_bad_keys_and_settings():
    root = _signer("root").public_key
    assert _value_error(SERIAL, b"\x01" + bytes(31), SECRET, None)  # small-order root
    assert _value_error(SERIAL, root[:31], SECRET, None)
    assert _value_error(SERIAL, root, SECRET[:16], None)
    assert _value_error("", root, SECRET, None)
    assert _value_error(SERIAL, root, SECRET, {"code_digits": 6})
    assert _value_error(SERIAL, root, SECRET, {"colour": 1})
    assert not _value_error(SERIAL, root, SECRET, {"code_digits": 9})


def test_frames_fit_the_wasi_stack():
    from firmware import authority

    functions = wasi_frames.functions_of(authority) + wasi_frames.functions_of(tokens)
    names = wasi_frames.heap_framed(functions)
    if names is None:
        return  # CPython
    # only host-side encoders may have larger frames
    for name in names:
        assert name in ("token_body", "scope_bits", "certificate_body", "encode_args"), name
