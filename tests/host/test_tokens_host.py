"""Minting tokens, answering codes, and both Ed25519 backends, on the host (CPython).

Property tests: every token mint() makes for a valid request is granted by the device's
own Authority with the same fields; every corruption of one is refused with a NACK code
and nothing else; the pure verifier and `cryptography` agree on every input; the provider's
codes are accepted by the device and match an independent HMAC computation.
"""

from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware import ed25519, keypad
from firmware.authority import Authority
from host_tools import codes, ed25519_host, keys
from host_tools import tokens as host_tokens
from protocol import error_texts, errors, tokens
from protocol.coretime import DAY
from protocol.endpoint import Refused

SERIAL = "LCI-0001"
NOW = 190_000_000
NONCE = bytes(range(16))

ROOT = keys.RootKey.generate()
MASTER = bytes(range(32))
TECH = keys.delegate(ROOT, "tech-01", ["calibrate"], issued=NOW - DAY, expires=NOW + 90 * DAY)
FIELD = keys.delegate(ROOT, "field-02", ["unlock", "calibrate", "set_time"], issued=NOW - DAY, expires=NOW + 90 * DAY)
BILLING = keys.delegate(ROOT, "billing", ["billing", "unlock"], issued=NOW - DAY, expires=NOW + 365 * DAY)
OFFICE = keys.delegate(ROOT, "office", ["work_order"], issued=NOW - DAY, expires=NOW + 365 * DAY)
EXPIRED = keys.delegate(ROOT, "old", ["unlock"], issued=NOW - 2 * DAY, expires=NOW - DAY)
DEVICE = Authority(SERIAL, ROOT.public_key, keys.derive_device_secret(MASTER, SERIAL))

# printable ASCII: what causes, order ids and VINs are; non-ASCII text grows by JSON escapes
# and a token over 510 bytes is refused by mint (test_mint_refuses_what_the_device_would_refuse)
texts = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=64)
causes = st.sampled_from(tokens.DIRECTIVE_CAUSES)
u32 = st.integers(0, 2**32 - 1)
ACTION_ARGS = {
    "unlock": st.fixed_dictionaries({"seconds": u32}),
    "service": st.just({}),
    "service_close": st.fixed_dictionaries({"next_service": u32, "downloaded": u32}),
    "set_time": st.fixed_dictionaries({"time": u32}),
    "recall": st.fixed_dictionaries({"cause": causes, "days": u32, "seq": u32}),
    "lockout": st.fixed_dictionaries({"cause": causes, "seq": u32}),
    "clear": st.fixed_dictionaries({"cause": causes, "seq": u32}),
    "work_order": st.fixed_dictionaries(
        {"order": st.sampled_from(tokens.ORDERS), "id": texts, "vehicle": texts}
    ),
}
SIGNER_FOR = {"unlock": BILLING, "service": TECH, "service_close": TECH, "set_time": FIELD,
              "recall": BILLING, "lockout": BILLING, "clear": BILLING, "work_order": OFFICE}


@st.composite
def minted(draw):
    action = draw(st.sampled_from(sorted(tokens.ACTION_SCOPES)))
    args = draw(ACTION_ARGS[action])
    signer = draw(st.sampled_from([ROOT, SIGNER_FOR[action]]))
    ttl = draw(st.integers(1, 30 * DAY))
    bound = action in tokens.SESSION_BOUND or draw(st.booleans())
    data = host_tokens.mint(signer, SERIAL, action, args, now=NOW, ttl=ttl,
                            session_nonce=NONCE if bound else None)
    return data, action, args, signer, ttl, bound


@given(minted())
@settings(max_examples=60, deadline=None)
def test_every_minted_token_is_granted_as_minted(case):
    data, action, args, signer, ttl, bound = case
    assert len(data) <= tokens.MAX_TOKEN_BYTES
    grant = DEVICE.check_token(data, NOW, NONCE, [])
    assert (grant.action, grant.args, grant.key_id) == (action, args, signer.key_id)
    assert grant.expires == NOW + ttl
    assert grant.session_bound == bound
    described = host_tokens.describe(data)
    assert (described["action"], described["args"], described["serial"]) == (action, args, SERIAL)
    with pytest.raises(Refused) as refused:
        DEVICE.check_token(data, NOW + ttl, NONCE, [])
    assert refused.value.code == errors.EXPIRED
    with pytest.raises(Refused) as refused:
        DEVICE.check_token(data, NOW, NONCE, [grant.token_id])
    assert refused.value.code == errors.ALREADY_APPLIED


@given(minted(), st.data())
@settings(max_examples=100, deadline=None)
def test_every_corruption_is_refused_with_a_nack_code(case, data):
    token = bytearray(case[0])
    how = data.draw(st.sampled_from(["flip", "truncate", "insert", "overwrite"]))
    i = data.draw(st.integers(0, len(token) - 1))
    if how == "flip":
        token[i] ^= 1 << data.draw(st.integers(0, 7))
    elif how == "truncate":
        del token[i:]
    elif how == "insert":
        token[i:i] = data.draw(st.binary(min_size=1, max_size=8))
    else:
        new = data.draw(st.binary(min_size=1, max_size=8))
        if token[i : i + len(new)] == new:
            return
        token[i : i + len(new)] = new
    with pytest.raises(Refused) as refused:
        DEVICE.check_token(bytes(token), NOW, NONCE, [])
    assert refused.value.code in error_texts.MEANINGS


@given(st.binary(max_size=600))
@settings(max_examples=200, deadline=None)
def test_random_bytes_are_malformed(blob):
    with pytest.raises(Refused) as refused:
        DEVICE.check_token(blob, NOW, NONCE, [])
    assert refused.value.code == errors.MALFORMED_TOKEN


def test_mint_refuses_what_the_device_would_refuse():
    with pytest.raises(host_tokens.MintError, match="may not sign unlock"):
        host_tokens.mint(TECH, SERIAL, "unlock", {"seconds": 60}, now=NOW, ttl=60)
    with pytest.raises(host_tokens.MintError, match="expired"):
        host_tokens.mint(EXPIRED, SERIAL, "unlock", {"seconds": 60}, now=NOW, ttl=60)
    with pytest.raises(host_tokens.MintError, match="bound to the USB session"):
        host_tokens.mint(TECH, SERIAL, "service", {}, now=NOW, ttl=60)
    with pytest.raises(host_tokens.MintError, match="bound to the USB session"):
        host_tokens.mint(FIELD, SERIAL, "set_time", {"time": NOW}, now=NOW, ttl=60)
    with pytest.raises(host_tokens.MintError, match="seconds"):
        host_tokens.mint(ROOT, SERIAL, "unlock", {"seconds": -1}, now=NOW, ttl=60)
    with pytest.raises(host_tokens.MintError, match="unknown action"):
        host_tokens.mint(ROOT, SERIAL, "explode", {}, now=NOW, ttl=60)
    with pytest.raises(host_tokens.MintError, match="ttl"):
        host_tokens.mint(ROOT, SERIAL, "unlock", {"seconds": 1}, now=NOW, ttl=0)
    with pytest.raises(host_tokens.MintError, match="over 510"):
        host_tokens.mint(OFFICE, "S" * 255, "work_order", {"order": "removal", "id": "x" * 64, "vehicle": "v" * 64}, now=NOW, ttl=60)


def test_root_and_delegated_tokens_fit_the_wire_limit():
    args = {"order": "vehicle_switch", "id": "W" * 64, "vehicle": "V" * 64}
    serial = "LCI-" + "9" * 28
    data = host_tokens.mint(OFFICE, serial, "work_order", args, now=NOW, ttl=DAY)
    assert len(data) <= tokens.MAX_TOKEN_BYTES
    assert host_tokens.check(data, ROOT.public_key, serial, NOW).args == args


def test_check_runs_the_device_code():
    data = host_tokens.mint(BILLING, SERIAL, "recall", {"cause": "unpaid_balance", "days": 7, "seq": 1}, now=NOW, ttl=DAY)
    assert host_tokens.check(data, ROOT.public_key, SERIAL, NOW).action == "recall"
    with pytest.raises(Refused) as refused:
        host_tokens.check(data, ROOT.public_key, "LCI-0002", NOW)
    assert refused.value.code == errors.WRONG_DEVICE


def test_describe_shows_the_certificate():
    data = host_tokens.mint(TECH, SERIAL, "service", {}, now=NOW, ttl=600, session_nonce=NONCE)
    info = host_tokens.describe(data)
    assert info["certificate"]["key_id"] == "tech-01"
    assert info["certificate"]["scopes"] == ["calibrate"]
    assert info["session_nonce"] == NONCE.hex()
    with pytest.raises(host_tokens.MintError):
        host_tokens.describe(b"junk")


# ---- both Ed25519 backends ----------------------------------------------------------------------
SIGNATURE = ROOT.sign(b"lci777")


@given(st.binary(max_size=200), st.data())
@settings(max_examples=150, deadline=None)
def test_pure_and_cryptography_verifiers_agree(message, data):
    signature = bytearray(ROOT.sign(message))
    public = bytearray(ROOT.public_key)
    mutate = data.draw(st.sampled_from(["none", "signature", "key", "message", "s_plus_l"]))
    if mutate == "signature":
        signature[data.draw(st.integers(0, 63))] ^= 1 << data.draw(st.integers(0, 7))
    elif mutate == "key":
        public[data.draw(st.integers(0, 31))] ^= 1 << data.draw(st.integers(0, 7))
    elif mutate == "message":
        message = message + b"\x00"
    elif mutate == "s_plus_l":
        s = int.from_bytes(signature[32:], "little") + ed25519._L
        signature[32:] = s.to_bytes(32, "little")
    pure = ed25519.verify(bytes(public), message, bytes(signature))
    assert pure == ed25519_host.verify(bytes(public), message, bytes(signature))
    assert pure == (mutate == "none")


@given(st.binary(min_size=32, max_size=32), st.binary(min_size=64, max_size=64), st.binary(max_size=40))
@settings(max_examples=150, deadline=None)
def test_backends_agree_on_arbitrary_keys_and_signatures(public, signature, message):
    # random keys and signatures: almost always refused, always the same way by both
    pure = ed25519.verify(public, message, signature)
    assert pure == ed25519_host.verify(public, message, signature)


def test_both_verifiers_accept_a_real_signature():
    assert ed25519_host.verify(ROOT.public_key, b"lci777", SIGNATURE)
    assert ed25519.verify(ROOT.public_key, b"lci777", SIGNATURE)


# ---- keypad codes -----------------------------------------------------------------------------
def _reference_answer(master: bytes, serial: str, request_digits: str, action: str, lockout=None) -> str:
    """The answer computed from the spec with the standard library only."""
    secret = keys.derive_device_secret(master, serial)
    message = b"LCI-777 code v1\x00" + serial.encode() + b"\x00" + action.encode() + b"\x00" + request_digits.encode()
    if action == "clear":
        message += b"\x00" + str(lockout).encode()
    mac = hmac.new(secret, message, hashlib.sha256).digest()
    offset = mac[-1] & 0x0F
    value = int.from_bytes(mac[offset : offset + 4], "big") & 0x7FFFFFFF
    return f"{value % 10**8:08d}"


@given(st.text(min_size=1, max_size=30), st.integers(0, 10**9), st.binary(min_size=8, max_size=8),
       st.sampled_from(keypad.CODE_ACTIONS), st.integers(0, 2**32 - 1))
@settings(max_examples=100, deadline=None)
def test_provider_answers_are_what_the_device_accepts(serial, counter, nonce, action, seq):
    device = Authority(serial, ROOT.public_key, keys.derive_device_secret(MASTER, serial))
    request = device.request_code(action, counter, nonce)
    lockout = seq if action == "clear" else None  # a clear code answers one lockout
    answer = codes.answer(MASTER, serial, request, action, lockout=lockout)
    assert answer == _reference_answer(MASTER, serial, request.replace(" ", ""), action, lockout)
    assert device.check_code(request, answer, action, lockout)
    if action == "clear":
        assert not device.check_code(request, answer, action, seq + 1)
    assert codes.describe_request(request)["action"] == action
    assert codes.describe_request(request)["counter"] == counter % 1000
    wrong = f"{(int(answer) + 1) % 10**8:08d}"
    assert not device.check_code(request, wrong, action)


def test_codes_explain_what_is_wrong():
    request = DEVICE.request_code("unlock", 5, bytes(8))
    with pytest.raises(codes.CodeError, match="check digit"):
        codes.answer(MASTER, SERIAL, request[:-1] + str((int(request[-1]) + 1) % 10), "unlock")
    with pytest.raises(codes.CodeError, match="issued for 'unlock'"):
        codes.answer(MASTER, SERIAL, request, "clear", lockout=1)
    with pytest.raises(codes.CodeError, match="answers one lockout"):
        codes.answer(MASTER, SERIAL, DEVICE.request_code("clear", 5, bytes(8)), "clear")
    with pytest.raises(codes.CodeError, match="no keypad code"):
        codes.answer(MASTER, SERIAL, request, "service")
    with pytest.raises(codes.CodeError, match="12 digits"):
        codes.answer(MASTER, SERIAL, "1234", "unlock")
    with pytest.raises(codes.CodeError):
        codes.describe_request("abc")
