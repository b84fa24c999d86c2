"""Shared fixtures of the Authority attack-table tests (tests/firmware/test_authority*.py).

Tokens are built by an encoder written from protocol/SPEC.md section 9, independent of
protocol/tokens.py, and signed by the tests' own pure Ed25519 signer
(tests/firmware/ed25519_signer.py), so the same tests run under MicroPython.
outcome(token, now, nonce, used) is None when the device's Authority grants the token,
else the NACK code it refuses it with.

"""

import struct

from firmware.authority import Authority
from protocol import tokens
from protocol.coretime import DAY
from protocol.endpoint import Refused
from tests.firmware.ed25519_signer import Signer, seed_of

SERIAL = "LCI-0001"
SECRET = bytes(range(32))
NOW = 200000
NONCE = b"N" * 16  # the session's HELLO nonce

_SIGNERS = {}
_CERTS = {}
_AUTHORITY = []


def signer(label):
    if label not in _SIGNERS:
        _SIGNERS[label] = Signer(seed_of(label))
    return _SIGNERS[label]


def root_id(label):
    return tokens.root_id(signer(label).public_key)


# ---- an encoder written from the spec ------------------------------------------------------
def _s(raw):
    if isinstance(raw, str):
        raw = raw.encode()
    return bytes([len(raw)]) + raw


def _b(raw):
    return struct.pack("<H", len(raw)) + raw


def certificate(key_id, scopes_bits, expires, root="root"):
    """A certificate for the test key `key_id`, signed by the test key `root`."""
    return signed(root, certificate_body(key_id, signer(key_id).public_key, scopes_bits, expires))


def certificate_body(key_id, public, scopes_bits, expires):
    body = b"L7\x01\x02" + _s(key_id) + public
    return body + bytes([scopes_bits]) + struct.pack("<II", 1000, expires)


def signed(label, body):
    return body + signer(label).sign(body)


def cert_of(key_id):
    """Certificates of the test keys: (scope bits, expiry)."""
    if key_id not in _CERTS:
        spec = {
            "tech-01": (0x02, NOW + 30 * DAY),  # calibrate only
            "billing": (0x08, NOW + 30 * DAY),
            "office": (0x10, NOW + 30 * DAY),  # work orders
            "field-02": (0x07, NOW + 30 * DAY),  # unlock, calibrate, set_time
            "old-tech": (0x02, NOW - 1),  # its delegation expired a second ago
        }[key_id]
        _CERTS[key_id] = certificate(key_id, spec[0], spec[1])
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
    return b"" if key == "root" else cert_of(key)


def body(options):
    """The signed part of a token; `options` overrides DEFAULT fields."""
    out = b"L7\x01\x01" + root_id(_field(options, "root")) + _s(_field(options, "key"))
    out += _b(_cert_for(options)) + _s(_field(options, "serial"))
    out += _s(_field(options, "action")) + _b(_field(options, "args"))
    out += _times(_field(options, "times")) + _field(options, "id")
    return out + _s(_field(options, "nonce"))


def _times(times):
    return struct.pack("<III", times[0], times[1], times[2])


def token(options=None):
    """A signed token; `options` overrides DEFAULT fields."""
    options = options or {}
    data = body(options)
    who = _field(options, "signer") or _field(options, "key")
    return data + signer(who).sign(data)


# ---- checking --------------------------------------------------------------------------------
class _Catch:
    """Catches a Refused (a context manager keeps the caller's frame small)."""

    def __enter__(self):
        self.exc = None
        return self

    def __exit__(self, kind, value, tb):
        self.exc = value
        return isinstance(value, Refused)


def authority():
    if not _AUTHORITY:
        _AUTHORITY.append(Authority(SERIAL, signer("root").public_key, SECRET))
    return _AUTHORITY[0]


def check(data, now, nonce, used):
    return authority().check_token(data, now, nonce, used)


class _Attempt(_Catch):
    def __init__(self, data, now, nonce, used):
        self.call = (data, now, nonce, used)

    def run(self):
        check(*self.call)

    def code(self):
        with self:
            self.run()
        return None if self.exc is None else self.exc.code


def outcome(data, now=NOW, nonce=None, used=()):
    """None if the token is granted, else the NACK code it is refused with."""
    return _Attempt(data, now, nonce, used).code()
