"""The token and certificate byte format (protocol/tokens.py), on both runtimes.

The golden tokens are the worked examples of protocol/SPEC.md section 9: signed with the
RFC 8032 TEST 1 key as the provider root and the TEST 2 key as technician "tech-01",
by CPython's `cryptography` (Ed25519 signatures are deterministic).
"""

from binascii import unhexlify
from hashlib import sha256

from firmware import ed25519
from protocol import errors, messages, signing, tokens
from protocol.endpoint import Refused
from tests.dualtest import raises

ROOT_PUBLIC = unhexlify("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
TECH_PUBLIC = unhexlify("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c")
GOLDEN_CERT = unhexlify(
    "4c37010207746563682d30313d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c"
    "0640e9430bc01c250df5b0a702097bd03b73910af5028b6a447de0e1f1cce3394ac034969fad19ff07566db2"
    "fa2ed9cf5448597d9efecb0f6eb6b9890da5d1989c35c653c293a60c01"
)
GOLDEN_SERVICE = unhexlify(
    "4c37010121fe31dfa154a26107746563682d303175004c37010207746563682d30313d4017c3e843895a92b7"
    "0aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c0640e9430bc01c250df5b0a702097bd03b73910af502"
    "8b6a447de0e1f1cce3394ac034969fad19ff07566db2fa2ed9cf5448597d9efecb0f6eb6b9890da5d1989c35"
    "c653c293a60c01084c43492d30303031077365727669636502007b7d802b530b802b530b9039530b00010203"
    "0405060708090a0b0c0d0e0f10101112131415161718191a1b1c1d1e1f1f5add6efe84e267c2418fd35f8756"
    "30fcf19566d8d93bd3f5172db9e610700fb2e6e4aa0bd162e9672b091812739936b1914c6ddb93f9a551a222"
    "9f516b210b"
)
GOLDEN_UNLOCK = unhexlify(
    "4c37010121fe31dfa154a26104726f6f740000084c43492d3030303106756e6c6f636b11007b227365636f6e"
    "6473223a31343430307d802b530b802b530b007d540b000102030405060708090a0b0c0d0e0f00f324be9b67"
    "324db8c456800407c2afbfa87b95d7ebcf405a48367ec2b025508877c75c0e78bd77648e9eb80f833cbcc438"
    "54f39b9026efe52f964f3a55619a07"
)
T0 = 190000000
IDS = bytes(range(16))
NONCE = bytes(range(16, 32))


def _refusal(fn, *args):
    """The NACK code of the TokenError `fn(*args)` raises."""
    return raises(tokens.TokenError, fn, *args).code


def _encodes(args):
    """True if token_body takes these arguments, False if it refuses them."""
    try:
        signing.token_body(*args)
    except (ValueError, tokens.TokenError):
        return False
    return True


def test_root_id_is_sha256_prefix():
    assert tokens.root_id(ROOT_PUBLIC) == sha256(ROOT_PUBLIC).digest()[:8]
    assert tokens.root_id(ROOT_PUBLIC) == unhexlify("21fe31dfa154a261")


def test_golden_certificate_layout():
    body = signing.certificate_body("tech-01", TECH_PUBLIC, ("calibrate", "set_time"), 189000000, 220536000)
    assert GOLDEN_CERT[:-64] == body
    cert = tokens.parse_certificate(GOLDEN_CERT)
    assert cert.key_id == b"tech-01"
    assert cert.public_key == TECH_PUBLIC
    assert cert.scopes == ("calibrate", "set_time")
    assert (cert.issued, cert.expires) == (189000000, 220536000)
    assert cert.signed == body
    assert ed25519.verify(ROOT_PUBLIC, cert.signed, cert.signature)


def _service_body():
    head = (tokens.root_id(ROOT_PUBLIC), "tech-01", GOLDEN_CERT, "LCI-0001", "service", {})
    return signing.token_body(*(head + (T0, T0, T0 + 3600, IDS, NONCE)))


def _unlock_body():
    head = (tokens.root_id(ROOT_PUBLIC), "root", b"", "LCI-0001", "unlock", {"seconds": 14400})
    return signing.token_body(*(head + (T0, T0, T0 + 86400, IDS)))


def test_golden_service_token_layout():
    assert GOLDEN_SERVICE[:-64] == _service_body()
    tok = tokens.decode_token(tokens.parse_token(GOLDEN_SERVICE))
    assert (tok.key_id, tok.serial, tok.action, tok.args) == ("tech-01", "LCI-0001", "service", {})
    assert (tok.issued, tok.not_before, tok.expires) == (T0, T0, T0 + 3600)
    assert tok.token_id == IDS and tok.session_nonce == NONCE
    assert tok.certificate.raw == GOLDEN_CERT
    assert ed25519.verify(TECH_PUBLIC, tok.signed, tok.signature)


def test_golden_unlock_token_layout():
    assert GOLDEN_UNLOCK[:-64] == _unlock_body()
    tok = tokens.decode_token(tokens.parse_token(GOLDEN_UNLOCK))
    assert tok.certificate is None and tok.session_nonce is None
    assert tok.args == {"seconds": 14400}
    assert tok.args_raw == b'{"seconds":14400}'
    assert ed25519.verify(ROOT_PUBLIC, tok.signed, tok.signature)


def test_args_are_compact_sorted_json():
    args = {"vehicle": "1HGCM82633A004352", "order": "removal", "id": "WO-123"}
    assert signing.encode_args("work_order", args) == b'{"id":"WO-123","order":"removal","vehicle":"1HGCM82633A004352"}'
    assert signing.encode_args("service", {}) == b"{}"


def test_scopes_bits():
    assert signing.scope_bits(("unlock",)) == 1
    assert signing.scope_bits(("work_order", "unlock")) == 0x11
    assert tokens.scope_names(0x1F) == tokens.SCOPES
    assert tokens.scope_names(signing.scope_bits(("billing", "set_time"))) == ("set_time", "billing")
    raises((ValueError, tokens.TokenError), signing.scope_bits, ("root",))


def test_actions_scopes_and_arguments_are_consistent():
    for action in tokens.ACTION_SCOPES:
        assert tokens.ACTION_SCOPES[action] in tokens.SCOPES
        assert action in tokens.ARGUMENTS
        assert action in messages.ACTIONS  # the wire's action byte can name it
    for action in tokens.SESSION_BOUND:
        assert action in tokens.ACTION_SCOPES
    assert len(tokens.ARGUMENTS) == len(tokens.ACTION_SCOPES)


def test_check_args():
    assert tokens.check_args("unlock", {"seconds": 0}) is None
    assert tokens.check_args("unlock", {"seconds": 0xFFFFFFFF}) is None
    assert _refusal(tokens.check_args, "unlock", {"seconds": 0x100000000}) == errors.BAD_ARGUMENT
    assert _refusal(tokens.check_args, "unlock", {"seconds": -1}) == errors.BAD_ARGUMENT
    assert _refusal(tokens.check_args, "unlock", {"seconds": True}) == errors.BAD_ARGUMENT
    assert _refusal(tokens.check_args, "unlock", {"seconds": "1"}) == errors.BAD_ARGUMENT
    assert _refusal(tokens.check_args, "unlock", {}) == errors.BAD_ARGUMENT
    assert _refusal(tokens.check_args, "unlock", {"seconds": 1, "more": 1}) == errors.BAD_ARGUMENT
    assert _refusal(tokens.check_args, "unlock", [1]) == errors.BAD_ARGUMENT
    # a directive's cause is one of a closed set (SPEC section 9.4), not free text
    for action in ("recall", "lockout", "clear"):
        args = {"cause": "unpaid_balance", "days": 7, "seq": 1} if action == "recall" else {"cause": "unpaid_balance", "seq": 1}
        assert tokens.check_args(action, args) is None
        for cause in ("tamper", "service_due", "", "x" * 64, 1):
            args["cause"] = cause
            assert _refusal(tokens.check_args, action, args) == errors.BAD_ARGUMENT, (action, cause)
        # seq is required
        args = {"cause": "unpaid_balance", "days": 7} if action == "recall" else {"cause": "unpaid_balance"}
        assert _refusal(tokens.check_args, action, args) == errors.BAD_ARGUMENT, action
    assert tokens.DIRECTIVE_CAUSES == ("unpaid_balance",)
    assert _refusal(tokens.check_args, "work_order", {"order": "theft", "id": "1", "vehicle": ""}) == errors.BAD_ARGUMENT
    for order in tokens.ORDERS:
        assert tokens.check_args("work_order", {"order": order, "id": "WO-1", "vehicle": "v"}) is None
    assert _refusal(tokens.check_args, "explode", {}) == errors.NOT_SUPPORTED


def test_token_error_is_a_refused():
    exc = tokens.TokenError(errors.MALFORMED_TOKEN, "why")
    assert isinstance(exc, Refused)
    assert exc.code == errors.MALFORMED_TOKEN and exc.detail == "why"


def _body(*changes):
    """token_body's arguments for a root-signed unlock, with (index, value) changes."""
    args = [tokens.root_id(ROOT_PUBLIC), "root", b"", "LCI-0001", "unlock", {"seconds": 1}]
    args += [T0, T0, T0 + 1, IDS, None]
    for change in changes:
        args[change[0]] = change[1]
    return args


def test_token_body_refuses_what_the_device_would():
    assert _encodes(_body())
    assert not _encodes(_body((0, b"1234567")))  # root id
    assert not _encodes(_body((1, "tech 01")))  # key id characters
    assert not _encodes(_body((1, "")))
    assert not _encodes(_body((1, "k" * 33)))
    assert not _encodes(_body((2, GOLDEN_CERT)))  # the root with a certificate
    assert not _encodes(_body((1, "tech-01")))  # a delegated key without one
    assert not _encodes(_body((9, bytes(15))))  # token id
    assert not _encodes(_body((10, bytes(8))))  # session nonce
    assert _encodes(_body((10, NONCE)))
    assert not _encodes(_body((6, -1)))
    assert not _encodes(_body((8, 1 << 32)))
    assert not _encodes(_body((7, True)))
    assert not _encodes(_body((5, {"seconds": -5})))
    assert not _encodes(_body((4, "explode")))


def test_certificate_body_refuses_bad_input():
    raises((ValueError, tokens.TokenError), signing.certificate_body, "root", TECH_PUBLIC, ("unlock",), 0, 1)
    raises((ValueError, tokens.TokenError), signing.certificate_body, "tech", TECH_PUBLIC[:31], ("unlock",), 0, 1)
    raises((ValueError, tokens.TokenError), signing.certificate_body, "tech", TECH_PUBLIC, (), 0, 1)
    raises((ValueError, tokens.TokenError), signing.certificate_body, "tech", TECH_PUBLIC, ("root",), 0, 1)
    raises((ValueError, tokens.TokenError), signing.certificate_body, "tech", TECH_PUBLIC, ("unlock",), 0, -1)


def _malformed(data):
    return _refusal(tokens.parse_token, data) == errors.MALFORMED_TOKEN


def _with(data, index, value):
    out = bytearray(data)
    out[index] = value
    return bytes(out)


def test_parse_token_structure_errors():
    assert tokens.parse_token(bytearray(GOLDEN_UNLOCK)).expires == T0 + 86400
    assert _malformed(b"")
    assert _malformed(GOLDEN_UNLOCK[:-1])
    assert _malformed(GOLDEN_UNLOCK + b"\x00")
    assert _malformed(_with(GOLDEN_UNLOCK, 0, 0x4D))  # magic
    assert _malformed(_with(GOLDEN_UNLOCK, 2, 2))  # version
    assert _malformed(_with(GOLDEN_UNLOCK, 3, 2))  # kind
    assert _malformed(GOLDEN_CERT)  # a certificate is not a token
    assert _malformed(bytes(tokens.MAX_TOKEN_BYTES + 1))
    assert _malformed(None)
    assert _malformed(7.5)
    # the session nonce length byte of the unlock token (0) set to 5
    assert _malformed(_with(GOLDEN_UNLOCK, len(GOLDEN_UNLOCK) - 65, 5))


def test_parse_certificate_structure_errors():
    assert _refusal(tokens.parse_certificate, GOLDEN_CERT[:-1]) == errors.MALFORMED_TOKEN
    assert _refusal(tokens.parse_certificate, GOLDEN_CERT + b"\x00") == errors.MALFORMED_TOKEN
    # scopes byte (after magic 2, version, kind, key id 1+7, public key 32): unknown bit
    assert _refusal(tokens.parse_certificate, _with(GOLDEN_CERT, 44, 0x20)) == errors.MALFORMED_TOKEN
    assert tokens.parse_certificate(_with(GOLDEN_CERT, 44, 0x1F)).scopes == tokens.SCOPES


def test_decode_token_errors():
    tok = tokens.parse_token(GOLDEN_UNLOCK)
    tok.args_raw = b"[1]"
    assert _refusal(tokens.decode_token, tok) == errors.MALFORMED_TOKEN
    tok.args_raw = b"{"
    assert _refusal(tokens.decode_token, tok) == errors.MALFORMED_TOKEN
    tok.args_raw = b'{"seconds":1}'
    tok.serial_raw = b"\xff"
    assert _refusal(tokens.decode_token, tok) == errors.MALFORMED_TOKEN
    tok.serial_raw = b"LCI-0001"
    tok.action_raw = b"fly"
    assert _refusal(tokens.decode_token, tok) == errors.NOT_SUPPORTED
